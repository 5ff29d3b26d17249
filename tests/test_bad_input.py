"""Bad input as a user gives it, to every command, each run as a subprocess with a timeout: a
non-zero exit (or success where the input is odd but readable), one sentence on stderr naming
the user's own path or value, no traceback, and nothing touched in the working folder but the
outputs asked for.

Each case is (id, files to make, arguments, expected exit, words expected on stderr, outputs
the command may write). Paths in arguments are relative to the case's own working folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from conftest import ROOT, make_midi, note

CHECKPOINT = ROOT / "bench" / "checkpoints" / "shipped-basic"
MODEL = ROOT / "livecomp" / "exported" / "basic"
TUNE = ROOT / "livecomp" / "examples" / "phrase.mid"   # a real tune that ships with livecomp (bars 1-8 of a reel)
TIMEOUT = 120


# -- the files a case may need ----------------------------------------------------------------

def meta_midi(path: Path, *meta, notes=((60, 0, 480 * 8),)) -> None:
    """One track: the meta events at tick 0, then the notes (pitch, start, end)."""
    events = [(0, m) for m in meta]
    for pitch, start, end in notes:
        events += note(pitch, start, end)
    make_midi(path, events, midi_type=0)


def zero_beats(folder: Path) -> None:
    meta_midi(folder / "zero-beats.mid", mido.MetaMessage("time_signature", numerator=0, denominator=4))


def zero_tempo(folder: Path) -> None:
    meta_midi(folder / "zero-tempo.mid", mido.MetaMessage("set_tempo", tempo=0))


def smpte(folder: Path) -> None:
    raw = bytearray(TUNE.read_bytes())
    raw[12:14] = b"\xe7\x28"                             # 25 frames a second, 40 ticks a frame
    (folder / "smpte.mid").write_bytes(bytes(raw))


def endless_note(folder: Path) -> None:
    """1 tick a beat, one note of 0x0FFFFFFF ticks: 268 million beats."""
    make_midi(folder / "endless.mid", note(60, 0, 0x0FFFFFFF), ticks_per_beat=1)


def type_2(folder: Path) -> None:
    mid = mido.MidiFile(type=2, ticks_per_beat=480)
    for first in (60, 67):
        events = [e for i in range(4) for e in note(first + i, i * 480, i * 480 + 400)]
        mid.tracks.append(mido.MidiTrack(m.copy(time=t - prev) for (t, m), prev in
                                         zip(events, [0] + [t for t, _ in events[:-1]])))
    mid.save(folder / "type2.mid")


def meter_change(folder: Path) -> None:
    events = [(0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
              (480 * 8, mido.MetaMessage("time_signature", numerator=7, denominator=8))]
    for i, pitch in enumerate([60, 64, 67, 72, 67, 64, 60, 55] * 3):
        events += note(pitch, i * 240, i * 240 + 200)
    make_midi(folder / "meters.mid", events, midi_type=0)


def outside_piano(folder: Path) -> None:
    meta_midi(folder / "outside.mid", notes=[(10, 0, 480), (115, 480, 960)])


def zero_ticks(folder: Path) -> None:
    raw = bytearray(TUNE.read_bytes())
    raw[12:14] = b"\x00\x00"                             # the header's division
    (folder / "zero-ticks.mid").write_bytes(bytes(raw))


def user_folder(folder: Path) -> None:
    (folder / "mine").mkdir()
    (folder / "mine" / "notes.txt").write_text("a folder of the user's own\n")


def users_configs(folder: Path) -> None:
    (folder / "mine").mkdir()
    (folder / "mine" / "config.json").write_text('{"the user": "own settings"}\n')
    (folder / "mine" / "best.json").write_text('{"the user": "own results"}\n')


def link_to_mine(folder: Path) -> None:
    (folder / "link").symlink_to(folder / "mine")


def a_run(folder: Path) -> None:
    shutil.copytree(CHECKPOINT, folder / "run")


def a_file(folder: Path) -> None:
    (folder / "file.txt").write_text("a file of the user's own\n")


def a_take(folder: Path) -> None:
    (folder / "take.mid").write_bytes(TUNE.read_bytes())


def model_with(**changes):
    def make(folder: Path) -> None:
        shutil.copytree(MODEL, folder / "model")
        info = json.loads((folder / "model" / "model.json").read_text())
        info.update(changes)
        (folder / "model" / "model.json").write_text(json.dumps(info))
    return make


def deep_json(folder: Path) -> None:
    (folder / "corpus.json").write_text("[" * 100000 + "]" * 100000)


def graph_at(path: str):
    """A model folder whose encode graph's path leads elsewhere, with that file's sha256."""
    def make(folder: Path) -> None:
        import hashlib
        shutil.copytree(MODEL, folder / "model")
        info = json.loads((folder / "model" / "model.json").read_text())
        target = (folder / "model" / path) if not Path(path).is_absolute() else Path(path)
        info["files"]["encode"] = {"path": path, "sha256": hashlib.sha256(target.read_bytes()).hexdigest()}
        (folder / "model" / "model.json").write_text(json.dumps(info))
    return make


def recipe_of(text: str):
    def make(folder: Path) -> None:
        (folder / "recipe.toml").write_text(text)
    return make


def corpus_with(sequences):
    def make(folder: Path) -> None:
        (folder / "corpus.json").write_text(json.dumps({"train": sequences, "valid": sequences, "test": []}))
    return make


MIDI = str(TUNE)
CASES = [
    # data loss
    ("export-over-a-users-folder", [a_run, user_folder], ["export", "run", "--out", "mine"], 1,
     "not an exported model", []),
    ("export-over-its-own-run", [a_run], ["export", "run", "--out", "run"], 1, "not an exported model", []),
    ("export-over-a-file", [a_run, a_file], ["export", "run", "--out", "file.txt"], 1, "is a file", []),
    ("record-into-a-folder", [user_folder], ["listen", "--in", "x", "--out", "y", "--record", "mine"], 1,
     "is a folder", []),
    ("record-over-a-take", [a_take], ["listen", "--in", "x", "--out", "y", "--record", "take.mid"], 1,
     "already exists", []),
    ("record-under-a-file", [a_file], ["listen", "--in", "x", "--out", "y", "--record", "file.txt/take.mid"], 1,
     "is a file", []),
    ("train-over-a-users-configs", [users_configs], ["train", "--data", "jsb", "--epochs", "1", "--out", "mine"], 1,
     "already holds files (best.json, config.json)", []),
    ("roll-png-and-midi-out-one-file", [a_take], ["roll", "take.mid", "--png", "o", "--midi-out", "o"], 1,
     "--png and --midi-out both name o", []),
    ("roll-midi-out-over-its-input", [a_take], ["roll", "take.mid", "--midi-out", "take.mid"], 1,
     "being read", []),
    ("generate-out-and-png-one-file", [], ["generate", "--out", "g.mid", "--png", "g.mid"], 1,
     "--out and --png both name g.mid", []),
    ("duet-out-over-its-performance", [a_take], ["duet", "take.mid", "--model", "basic", "--out", "take.mid"], 1,
     "being read", []),
    # hangs and crashes on odd files
    ("roll-zero-beats", [zero_beats], ["roll", "zero-beats.mid"], 0, "", []),
    ("roll-zero-tempo", [zero_tempo], ["roll", "zero-tempo.mid"], 0, "", []),
    ("roll-zero-ticks", [zero_ticks], ["roll", "zero-ticks.mid"], 1, "0 ticks", []),
    ("generate-primer-zero-beats", [zero_beats], ["generate", "--model", "basic", "--bars", "1", "--primer",
                                                  "zero-beats.mid", "--out", "g.mid"], 0, "", ["g.mid"]),
    ("duet-zero-beats", [zero_beats], ["duet", "zero-beats.mid", "--model", "basic", "--out", "d.mid"], 0, "",
     ["d.mid"]),
    ("duet-zero-tempo", [zero_tempo], ["duet", "zero-tempo.mid", "--model", "basic", "--out", "d.mid"], 0, "",
     ["d.mid"]),
    ("duet-smpte", [smpte], ["duet", "smpte.mid", "--model", "basic", "--out", "d.mid"], 1, "SMPTE", []),
    ("roll-smpte", [smpte], ["roll", "smpte.mid"], 1, "SMPTE", []),
    ("duet-endless-note", [endless_note], ["duet", "endless.mid", "--model", "basic", "--out", "d.mid"], 1,
     "its timing is damaged", []),
    ("duet-type-2", [type_2], ["duet", "type2.mid", "--model", "basic", "--out", "d.mid"], 0, "", ["d.mid"]),
    ("duet-meter-change", [meter_change], ["duet", "meters.mid", "--model", "basic", "--out", "d.mid"], 0,
     "meter changes", ["d.mid"]),
    ("duet-outside-the-piano", [outside_piano], ["duet", "outside.mid", "--model", "basic", "--out", "d.mid"], 1,
     "outside the piano", []),
    # values out of range
    ("generate-negative-seed", [], ["generate", "--seed", "-5", "--out", "g.mid"], 2, "--seed", []),
    ("duet-negative-seed", [], ["duet", "--seed", "-5", "--out", "d.mid"], 2, "--seed", []),
    ("listen-negative-seed", [], ["listen", "--in", "x", "--out", "y", "--seed", "-5"], 2, "--seed", []),
    ("generate-nan-temperature", [], ["generate", "--temperature", "nan", "--out", "g.mid"], 2,
     "--temperature takes a finite number, not 'nan'", []),
    ("train-infinite-lr", [], ["train", "--lr=-inf", "--out", "r"], 2, "--lr takes a finite number, not '-inf'", []),
    ("listen-meter-of-99-beats", [], ["listen", "--in", "x", "--out", "y", "--meter", "99/4"], 1,
     "a 99/4 bar has 99 beats; --meter takes 1 to 64 beats a bar", []),
    ("generate-primer-bars-alone", [], ["generate", "--primer-bars", "2", "--out", "g.mid"], 1, "--primer", []),
    ("generate-into-a-folder", [user_folder], ["generate", "--out", "mine"], 1, "is a folder", []),
    ("generate-png-into-a-folder", [user_folder], ["generate", "--out", "g.mid", "--png", "mine"], 1,
     "--png mine is a folder", []),
    ("roll-png-under-a-file", [a_file], ["roll", MIDI, "--png", "file.txt/r.png"], 1, "file.txt", []),
    # damaged model folders
    ("model-beats-per-bar-0", [model_with(beats_per_bar=0)], ["generate", "--model", "model", "--out", "g.mid"], 1,
     "beats_per_bar", []),
    ("model-steps-per-beat-text", [model_with(steps_per_beat="four")],
     ["generate", "--model", "model", "--out", "g.mid"], 1, "steps_per_beat", []),
    ("model-state-text", [model_with(state="h,c")], ["generate", "--model", "model", "--out", "g.mid"], 1,
     "state", []),
    ("model-unknown-architecture", [model_with(architecture="transformer")],
     ["generate", "--model", "model", "--out", "g.mid"], 1, "transformer", []),
    ("model-graph-outside-absolute", [graph_at("/etc/hostname")], ["models", "model"], 1,
     "leads out of the model folder", []),
    ("model-graph-outside-relative", [a_file, graph_at("../file.txt")], ["models", "model"], 1,
     "leads out of the model folder", []),
    ("model-low-key", [model_with(low_key=0)], ["generate", "--model", "model", "--out", "g.mid"], 1,
     "low_key", []),
    ("model-floors-without-a-term", [model_with(fit_floors={"1": [[None, {"key": 0.5}]], "2": []})],
     ["generate", "--model", "model", "--out", "g.mid"], 1, "fit_floors", []),
    ("model-floors-text", [model_with(fit_floors="tight")], ["generate", "--model", "model", "--out", "g.mid"], 1,
     "fit_floors", []),
    ("model-repeat-gate-short", [model_with(repeat_gate={"features": ["first"], "mean": [0], "scale": [1],
                                                         "weights": [0], "bias": 0})],
     ["generate", "--model", "model", "--out", "g.mid"], 1, "repeat_gate", []),
    ("model-specialists-text", [model_with(specialists="folk")], ["generate", "--model", "model", "--out", "g.mid"],
     1, "specialists", []),
    ("model-specialist-unknown", [model_with(specialists=["no-such-model"])],
     ["duet", "--model", "model", "--out", "d.mid"], 1, "specialist 'no-such-model'", []),
    ("listen-model-specialist-unknown", [model_with(specialists=["no-such-model"])],
     ["listen", "--model", "model", "--in", "x", "--out", "y"], 1, "specialist 'no-such-model'", []),
    ("models-card-of-wrong-types", [model_with(musicality=3, training="x", metrics={"x": {"nll": "a"}},
                                               parameters=True)], ["models", "model"], 0, "", []),
    # training
    ("train-hidden-0", [], ["train", "--hidden", "0", "--out", "r"], 2, "--hidden", []),
    ("train-layers-0", [], ["train", "--layers", "0", "--out", "r"], 2, "--layers", []),
    ("train-dropout-2", [], ["train", "--dropout", "2", "--out", "r"], 2, "--dropout", []),
    ("train-window-0", [], ["train", "--window", "0", "--out", "r"], 2, "--window", []),
    ("train-batch-0", [], ["train", "--batch-size", "0", "--out", "r"], 2, "--batch-size", []),
    ("train-epochs-0", [], ["train", "--epochs", "0", "--out", "r"], 2, "--epochs", []),
    ("train-budget-0", [], ["train", "--time-budget", "0", "--out", "r"], 1, "--time-budget", []),
    ("train-budget-negative", [], ["train", "--time-budget", "-5m", "--out", "r"], 1, "--time-budget", []),
    ("train-device-gpu0", [], ["train", "--device", "gpu0", "--out", "r"], 1, "gpu0", []),
    ("train-out-a-file", [a_file], ["train", "--out", "file.txt"], 1, "is a file", []),
    ("train-resume-changes-settings", [a_run], ["train", "--resume", "run", "--hidden", "64"], 1, "--hidden", []),
    ("train-corpus-pitch-text", [corpus_with([[["60"]] * 80])], ["train", "--data", "corpus.json", "--out", "r"], 1,
     "not a MIDI pitch", []),
    ("train-corpus-pitch-fraction", [corpus_with([[[60.5]] * 80])], ["train", "--data", "corpus.json", "--out", "r"],
     1, "not a MIDI pitch", []),
    ("train-corpus-pitch-nan", [corpus_with([[[60, float("nan")]] * 80])],
     ["train", "--data", "corpus.json", "--out", "r"], 1, "nan is not a MIDI pitch", []),
    ("eval-corpus-pitch-infinity", [corpus_with([[[60, float("inf")]] * 80])],
     ["eval", str(MODEL), "--data", "corpus.json"], 1, "inf is not a MIDI pitch", []),
    ("train-corpus-nested-deep", [deep_json], ["train", "--data", "corpus.json", "--out", "r"], 1,
     "nests its lists deeper", []),
    ("export-data-of-another-grid", [a_run], ["export", "run", "--data", "jsb", "--out", "m"], 1,
     "on a grid of 1 step(s) per beat", []),
    ("train-data-one-midi-file", [a_take], ["train", "--data", "take.mid", "--out", "r"], 1,
     "is one MIDI file; --data takes a folder of MIDI files", []),
    ("export-an-exported-folder", [], ["export", str(MODEL), "--out", "m"], 1,
     "is an exported model folder, not a training run", []),
    ("export-out-a-link", [a_run, user_folder, link_to_mine], ["export", "run", "--out", "link"], 1,
     "is a link", []),
    ("generate-soundfont-missing", [], ["generate", "--out", "g.mid", "--wav", "g.wav", "--soundfont", "no.sf2"], 1,
     "the soundfont no.sf2 does not exist", []),
    ("generate-soundfont-without-wav", [], ["generate", "--out", "g.mid", "--soundfont", "no.sf2"], 1,
     "give --wav too", []),
    ("eval-other-grid", [], ["eval", str(ROOT / "livecomp" / "exported" / "folk"), "--data", "jsb"], 1, "grid", []),
    ("train-recipe-missing", [], ["train", "--recipe", "no.toml", "--out", "r"], 1, "the recipe no.toml does not "
                                                                                    "exist", []),
    ("train-recipe-out-of-range", [recipe_of("[train]\nhidden = 0\n")], ["train", "--recipe", "recipe.toml", "--out",
                                                                         "r"],
     1, "sets hidden = 0: Input should be greater than or equal to 1", []),
    ("train-recipe-unknown-setting", [recipe_of("[train]\nhiden = 64\n")], ["train", "--recipe", "recipe.toml",
                                                                            "--out", "r"],
     1, "sets 'hiden', which is not a setting", []),
    ("train-recipe-sets-the-output", [recipe_of("[train]\nout = 'elsewhere'\n")],
     ["train", "--recipe", "recipe.toml", "--out", "r"], 1, "sets 'out', which is not a setting", []),
    ("train-recipe-other-table", [recipe_of("[listen]\nbpm = 90\n")], ["train", "--recipe", "recipe.toml", "--out",
                                                                       "r"],
     1, "must hold one table, [train]", []),
    ("train-recipe-not-toml", [recipe_of("hidden 64\n")], ["train", "--recipe", "recipe.toml", "--out", "r"],
     1, "is not valid TOML", []),
    ("train-resume-with-a-recipe", [a_run, recipe_of("[train]\nhidden = 64\n")],
     ["train", "--resume", "run", "--recipe", "recipe.toml"], 1, "--recipe cannot change them", []),
]


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_sentence_and_costs_nothing(tmp_path, case):
    name, makers, args, code, words, outputs = case
    for make in makers:
        make(tmp_path)
    before = tree(tmp_path)
    result = subprocess.run([sys.executable, "-m", "livecomp.cli", *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=TIMEOUT, env={**__import__("os").environ,
                                                             "LIVECOMP_CACHE": str(tmp_path.parent / "cache")})
    assert "Traceback" not in result.stderr, result.stderr
    if code is None:
        assert result.returncode != 0, result.stdout
    else:
        assert result.returncode == code, (result.stdout, result.stderr)
    assert words in result.stderr, result.stderr
    if result.returncode == 1:
        lines = [line for line in result.stderr.splitlines() if line.startswith("livecomp:")]
        assert len(lines) == 1, result.stderr                   # one sentence of livecomp's own
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if k not in outputs} == before


def test_duet_reads_a_file_with_a_tempo_of_0_as_roll_does(tmp_path):
    """The event no music can have is left out before the times are worked out: the call keeps
    its 120 bpm and is answered."""
    zero_tempo(tmp_path)
    result = subprocess.run([sys.executable, "-m", "livecomp.cli", "duet", "zero-tempo.mid", "--model", "basic",
                             "--out", "d.mid", "--silence-beats", "1"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert "1 answer," in result.stdout and "at 120 bpm" in result.stdout, result.stdout


def test_a_model_name_with_terminal_escape_codes_is_shown_plain(tmp_path):
    model_with(name="\x1b]0;owned\x07\x1b[2Jred", training={"corpus": "\x1b[31mx",
                                                            "corpus_licence": "\x9b2J"})(tmp_path)
    result = subprocess.run([sys.executable, "-m", "livecomp.cli", "models", "model"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\x9b" not in result.stdout
    assert "?]0;owned??[2Jred" in result.stdout, result.stdout


def test_an_api_that_cannot_be_reached_is_one_sentence_without_the_librarys_own_lines(tmp_path):
    """Where there is no ALSA sequencer (this machine), alsa-lib writes its own "ALSA lib
    seq_hw.c" line to stderr; livecomp's sentence carries it, and nothing else is written."""
    import os

    if os.path.exists("/dev/snd/seq"):
        pytest.skip("this machine has an ALSA sequencer")
    result = subprocess.run([sys.executable, "-m", "livecomp.cli", "ports", "--api", "alsa"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livecomp: cannot reach the alsa MIDI system"), lines
    assert "load the snd-seq module, or use --api jack" in lines[0]


def test_sync_link_without_links_binding_is_one_sentence_naming_the_extra(tmp_path):
    """Where LinkPython-extern is not installed (here: a ``link`` that cannot be imported comes
    first on the path), --sync link says what to install before it opens any port."""
    shadow = tmp_path / "shadow" / "link"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not here')\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path / "shadow")}
    result = subprocess.run([sys.executable, "-m", "livecomp.cli", "listen", "--in", "x", "--out", "y", "--sync",
                             "link",
                             "--model", "basic"], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
                            env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "pip install 'livecomp[link]'" in result.stderr, result.stderr
