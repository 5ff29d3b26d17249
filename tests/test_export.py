"""`livecomp export`, the onnxruntime engine, `livecomp eval` on an exported folder and
`livecomp generate`, on small models trained here on real MIDI files (16th notes, 3 key states)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import mido
import numpy as np
import pytest
import torch

from livecomp.model.engine import Engine
from livecomp.model.folder import ModelError, shipped_models

from conftest import TUNES as NOTTINGHAM
from test_training import ENV, livecomp

ARCHS = {
    "basic": ["--model", "basic", "--hidden", "32", "--layers", "2", "--neighbour-keys", "6"],
    # a mixture of copies transposed by -1..1: its graphs are the model's own advance and sampler
    "basic-mixture": ["--model", "basic", "--hidden", "32", "--layers", "1", "--neighbour-keys", "6", "--mix-shifts",
                      "1"],
    "endecell": ["--model", "endecell", "--chunk", "8", "--enc-hidden", "16", "--hidden", "32", "--layers", "1",
                 "--dec-hidden", "16", "--neighbour-keys", "8"],
    # each chunk's keys drawn 4 at a time, one choice among their 81 states, each group told what
    # was drawn below it by a layer of 8 units as well as by the linear link
    "endecell-joint": ["--model", "endecell", "--chunk", "8", "--joint-keys", "4", "--link-hidden", "8",
                       "--enc-hidden", "16", "--hidden", "32", "--layers", "1", "--dec-hidden", "16",
                       "--neighbour-keys", "8", "--lookback", "4"],
    # a lookback shorter than the bar: the bar graph reads frames it wrote itself
    "endecell-lookback": ["--model", "endecell", "--chunk", "8", "--enc-hidden", "16", "--hidden", "32", "--layers",
                          "1",
                          "--dec-hidden", "16", "--neighbour-keys", "8", "--lookback", "4"],
}


@pytest.fixture(scope="module")
def tunes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tunes")
    for f in sorted(NOTTINGHAM.glob("reelsa-c*.mid"))[:30] + sorted(NOTTINGHAM.glob("jigs*.mid"))[:10]:
        shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(scope="module", params=sorted(ARCHS))
def exported(request, tunes, tmp_path_factory) -> tuple[Path, Path]:
    """(run folder, exported folder) of a small model of each architecture."""
    root = tmp_path_factory.mktemp(request.param)
    run, out = root / "run", root / "model"
    livecomp("train", *ARCHS[request.param], "--data", tunes, "--key-states", "3", "--epochs", "1",
             "--window", "32", "--batch-size", "16", "--quiet", "--seed", "3", "--out", run, check=True)
    result = livecomp("export", run, "--out", out, "--candidates", "4", check=True)
    assert "sampled bars equal to torch's" in result.stdout
    return run, out


def torch_model(run: Path):
    from livecomp_train.checkpoint import load_model
    return load_model(run)[0]


def test_export_writes_the_contract_and_checked_itself(exported):
    run, out = exported
    info = json.loads((out / "model.json").read_text())
    assert info["format"] == 1 and info["key_states"] == 3 and info["steps_per_beat"] == 4
    assert info["steps_per_bar"] == info["bar_steps"] == 16 and info["low_key"] == 21 and info["n_keys"] == 88
    assert sorted(info["files"]) == ["advance", "bar", "encode", "step"]
    assert abs(info["checks"]["valid_nll_onnx"] - info["checks"]["valid_nll_torch"]) <= 1e-4
    assert info["checks"]["bars_equal_to_torch"] > 0
    (metric,) = info["metrics"].values()
    assert metric["split"] == "test" and 0 < metric["nll"] < 88 * math.log(3)
    assert info["training"]["seed"] == 3 and info["training"]["frames"] > 0
    assert info["candidates"] == 4 and Engine(out, provider="cpu").candidates == 4     # listen's default with it
    assert "answers choose among 4 candidate bars" in livecomp("models", out, check=True).stdout
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]      # no temporary folder left


def test_the_bar_graph_loops_over_one_beat(exported):
    """bar.onnx is one beat's sampler in an ONNX Loop run once a beat (onnxruntime's planner
    takes seconds over a whole bar unrolled); that it samples torch's bars is checked below."""
    import onnx

    _, out = exported
    graph = onnx.load(str(out / "bar.onnx")).graph
    (loop,) = [n for n in graph.node if n.op_type == "Loop"]
    trips = next(t for t in graph.initializer if t.name == loop.input[0])
    assert int(onnx.numpy_helper.to_array(trips)) == 4 and len(graph.node) < 10


def test_onnx_log_likelihood_equals_torch_on_the_validation_split(exported, tunes):
    from livecomp.model.engine import score
    from livecomp_train.data import load_corpus
    from livecomp_train.evaluate import evaluate

    run, out = exported
    corpus = load_corpus(str(tunes), 4, progress=False)
    valid = corpus.sequences("valid", 3)
    assert valid
    onnx_nll = score(Engine(out, provider="cpu"), valid)["nll"]
    assert abs(onnx_nll - evaluate(torch_model(run), valid, accuracy=False).nll) <= 1e-4


def test_the_bar_graph_samples_exactly_what_the_torch_sampler_samples(exported, tunes):
    from livecomp_train.checks import engine_state_in_torch, near_tie

    run, out = exported
    model, engine = torch_model(run), Engine(out, provider="cpu")
    primer = np.asarray(__import__("livecomp.music.roll", fromlist=["x"]).midi_to_roll(
        sorted(tunes.glob("*.mid"))[0]).to_states(3)[:32])
    state = engine.advance(primer).repeat(3)
    rng = np.random.default_rng(11)
    compared = 0
    for temperature in (1.0, 0.7, 1.5) * 4:
        if compared == 3:
            break
        noise = rng.random((3, engine.bar_steps, 88), dtype=np.float32)
        with torch.no_grad():
            frames, logp, after = model.sample(engine_state_in_torch(state, model), torch.from_numpy(noise),
                                               torch.tensor(temperature))
            if near_tie(model, state, frames, noise, temperature):
                continue              # float rounding may decide a draw this close to a boundary
        onnx_frames, onnx_logp, onnx_after = engine.bar_from_noise(state, noise, temperature)
        assert np.array_equal(onnx_frames, frames.numpy())
        np.testing.assert_allclose(onnx_logp, logp.numpy(), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(onnx_after.tensors["h"], after[0].transpose(0, 1).numpy(), atol=1e-4)
        compared += 1
    assert compared == 3


def test_state_chains_and_bars_are_reproducible(exported):
    _, out = exported
    engine = Engine(out, provider="cpu")
    rng = np.random.default_rng(0)
    a = (rng.random((1, 7, 88)) < 0.05).astype(np.int64) * 2
    b = (rng.random((1, 5, 88)) < 0.05).astype(np.int64) * 2
    whole = engine.advance(np.concatenate([a, b], 1))
    chained = engine.advance(b, engine.advance(a))
    encoded, logits = engine.encode(np.concatenate([a, b], 1))
    assert logits.shape == (1, 12, 88, 3)
    for name in whole.tensors:
        np.testing.assert_allclose(chained.tensors[name], whole.tensors[name], atol=1e-5)
        np.testing.assert_allclose(encoded.tensors[name], whole.tensors[name], atol=1e-5)

    f1, l1, _ = engine.bar(whole, candidates=4, temperature=0.9, seed=5)
    f2, l2, _ = engine.bar(whole, candidates=4, temperature=0.9, seed=5)
    assert f1.shape == (4, 16, 88) and np.array_equal(f1, f2) and np.array_equal(l1, l2)
    assert not np.array_equal(f1[0], f1[1]) or not np.array_equal(f1[1], f1[2])   # candidates differ

    # a shorter bar (3/4: 12 steps) is the start of the graph's bar for the same noise, written
    # by step.onnx step by step, or (a folder without it) cut from bar.onnx's and re-encoded
    short, short_logp, short_after = engine.bar(whole, temperature=0.9, seed=5, steps=12)
    assert np.array_equal(short[0], f1[0, :12])
    expected = engine.advance(short, whole)
    np.testing.assert_allclose(short_after.tensors["h"], expected.tensors["h"], atol=1e-5)
    long, _, _ = engine.bar(whole, seed=1, steps=40)
    assert long.shape == (1, 40, 88)
    if engine.info.get("mix_shifts") or engine.info["training"]["model"].get("joint_keys", 1) > 1:
        return          # a mixture's or a joint model's folder always has step.onnx (folder.py refuses it without)
    engine._step = None
    cut, cut_logp, cut_after = engine.bar(whole, temperature=0.9, seed=5, steps=12)
    assert np.array_equal(cut, short)
    np.testing.assert_allclose(cut_logp, short_logp, rtol=1e-4)
    np.testing.assert_allclose(cut_after.tensors["h"], short_after.tensors["h"], atol=1e-5)


def test_eval_of_the_exported_folder_gives_the_checkpoint_figures(exported, tunes):
    run, out = exported
    from_checkpoint = json.loads(livecomp("eval", run, "--split", "valid", "--json", check=True).stdout)
    from_onnx = json.loads(livecomp("eval", out, "--split", "valid", "--json", check=True).stdout)
    assert from_onnx["provider"] == "cpu" and from_onnx["frames"] == from_checkpoint["frames"]
    assert abs(from_onnx["nll"] - from_checkpoint["nll"]) <= 1e-4
    assert abs(from_onnx["nll_after_first"] - from_checkpoint["nll_after_first"]) <= 1e-4
    if json.loads((out / "model.json").read_text()).get("mix_shifts"):
        assert from_onnx["accuracy"] is None        # its per-key conditionals' maxima are not its best frame
    elif from_onnx["architecture"] == "basic":
        assert from_onnx["accuracy"] == pytest.approx(from_checkpoint["accuracy"], abs=1e-4)


def test_a_run_exported_as_a_mixture_scores_what_eval_gives_it(exported, tmp_path):
    """`--mix-shifts` runs a basic checkpoint's weights as a mixture of transposed copies, the same
    through eval (torch) and an export (onnxruntime); elsewhere it is refused in one sentence."""
    run, out = exported
    refused = livecomp("eval", out, "--mix-shifts", "1")
    assert refused.returncode != 0 and "fixed when it was exported" in refused.stderr
    assert "Traceback" not in refused.stderr
    if json.loads((out / "model.json").read_text())["architecture"] != "basic":
        result = livecomp("export", run, "--out", tmp_path / "mixed", "--mix-shifts", "1")
        assert result.returncode != 0 and "is a basic RNN's" in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "mixed").exists()
        return
    from_checkpoint = json.loads(livecomp("eval", run, "--mix-shifts", "2", "--split", "valid", "--json",
                                          check=True).stdout)
    livecomp("export", run, "--out", tmp_path / "mixed", "--mix-shifts", "2", check=True)
    info = json.loads((tmp_path / "mixed" / "model.json").read_text())
    assert info["mix_shifts"] == 2 and info["state"][0]["shape"][1] == 5 * info["training"]["model"]["hidden"]
    from_onnx = json.loads(livecomp("eval", tmp_path / "mixed", "--split", "valid", "--json", check=True).stdout)
    assert abs(from_onnx["nll"] - from_checkpoint["nll"]) <= 1e-4
    as_trained = json.loads(livecomp("eval", run, "--split", "valid", "--json", check=True).stdout)
    assert from_checkpoint["nll"] != as_trained["nll"]


def test_runs_exported_as_an_ensemble_score_what_eval_gives_them(exported, tmp_path):
    """`--with RUN` averages EnDeCell runs' per-key conditionals, the same through eval (torch) and
    an export (onnxruntime), whose bar graph the export checked against torch; the ensemble scores
    no worse than its runs' mean. Elsewhere it is refused in one sentence."""
    run, out = exported
    refused = livecomp("eval", out, "--with", run)
    assert refused.returncode != 0 and "fixed when it was exported" in refused.stderr
    if json.loads((out / "model.json").read_text())["architecture"] != "endecell":
        result = livecomp("export", run, "--out", tmp_path / "ensemble", "--with", run)
        assert result.returncode != 0 and "an ensemble averages EnDeCell runs" in result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "ensemble").exists()
        return
    if json.loads((out / "model.json").read_text())["training"]["model"].get("joint_keys", 1) > 1:
        for command in (["eval", run, "--with", run], ["export", run, "--out", tmp_path / "ensemble", "--with", run]):
            result = livecomp(*command)
            assert result.returncode != 0 and "cannot be one of its members" in result.stderr
            assert "Traceback" not in result.stderr and not (tmp_path / "ensemble").exists()
        return
    from livecomp_train.checkpoint import read_checkpoint, save_checkpoint
    tensors, meta = read_checkpoint(run)                       # a second run: the weights moved at random
    generator = torch.Generator().manual_seed(7)
    tensors["model"] = {k: v + 0.05 * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
                        for k, v in tensors["model"].items()}
    other = tmp_path / "other"
    other.mkdir()
    save_checkpoint(other / "best.pt", tensors, meta)
    scores = [json.loads(livecomp("eval", r, "--split", "valid", "--json", check=True).stdout)["nll"] for r in (run,
                                                                                                                other)]
    both = json.loads(livecomp("eval", run, "--with", other, "--split", "valid", "--json", check=True).stdout)
    assert both["runs"] == 2 and both["nll"] <= sum(scores) / 2 and both["nll"] not in scores
    result = livecomp("export", run, "--with", other, "--out", tmp_path / "ensemble", check=True)
    assert "sampled bars equal to torch's" in result.stdout
    info = json.loads((tmp_path / "ensemble" / "model.json").read_text())
    assert info["ensemble"] == 2 and info["state"][0]["shape"][1] == 2 * info["training"]["model"]["time_hidden"]
    from_onnx = json.loads(livecomp("eval", tmp_path / "ensemble", "--split", "valid", "--json", check=True).stdout)
    assert abs(from_onnx["nll"] - both["nll"]) <= 1e-4


@pytest.mark.parametrize("damage", ["truncated onnx", "edited model.json", "missing file", "other format",
                                    "other architecture"])
def test_a_damaged_model_folder_is_refused_with_one_sentence(exported, tmp_path, damage):
    _, out = exported
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    info = json.loads((bad / "model.json").read_text())
    if damage == "truncated onnx":
        blob = (bad / "bar.onnx").read_bytes()
        (bad / "bar.onnx").write_bytes(blob[: len(blob) // 2])
    elif damage == "edited model.json":
        info["state"][0]["shape"][-1] += 1
        (bad / "model.json").write_text(json.dumps(info))
    elif damage == "missing file":
        (bad / "encode.onnx").unlink()
    elif damage == "other architecture":              # the label alone changed: the graphs say what they are
        info["architecture"] = {"basic": "endecell", "endecell": "basic"}[info["architecture"]]
        (bad / "model.json").write_text(json.dumps(info))
    else:
        info["format"] = 2
        (bad / "model.json").write_text(json.dumps(info))
    with pytest.raises(ModelError):
        Engine(bad, provider="cpu")
    result = livecomp("generate", "--model", bad, "--bars", "1", "--out", tmp_path / "x.mid")
    assert result.returncode == 1 and not (tmp_path / "x.mid").exists()
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


def test_a_failed_check_leaves_no_folder(exported, tmp_path, monkeypatch):
    import livecomp_train.export as export_module

    run, _ = exported
    monkeypatch.setattr(export_module, "NLL_TOLERANCE", -1.0)       # no export can pass this
    with pytest.raises(export_module.ExportError):
        export_module.export(run, tmp_path / "model", progress=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


def test_an_older_export_is_replaced_and_nothing_else_is(exported, tmp_path):
    """Re-exporting replaces the older export's model.json and graphs and keeps the files its
    owner put beside them; a folder whose model.json only looks like one is not taken."""
    import livecomp_train.export as export_module

    run, out = exported
    if "basic" not in run.parent.name:
        pytest.skip("one architecture shows it")
    older = tmp_path / "model"
    shutil.copytree(out, older)
    (older / "notes.txt").write_text("left by the older export's owner")
    before = (older / "model.json").read_text()
    export_module.export(run, older, progress=lambda *_: None)
    assert (older / "notes.txt").read_text() == "left by the older export's owner"
    assert (older / "model.json").read_text() != before
    assert not list(tmp_path.glob(".model*"))
    lookalike = tmp_path / "lookalike"
    lookalike.mkdir()
    (lookalike / "model.json").write_text('{"format": 1, "architecture": "basic"}')
    (lookalike / "song.mid").write_bytes(b"MThd")
    with pytest.raises(export_module.ExportError, match="not an exported model"):
        export_module.export(run, lookalike, progress=lambda *_: None)
    assert sorted(p.name for p in lookalike.iterdir()) == ["model.json", "song.mid"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "song.mid").write_bytes(b"MThd")
    with pytest.raises(export_module.ExportError, match="not an exported model"):
        export_module.export(run, mine, progress=lambda *_: None)
    assert [p.name for p in mine.iterdir()] == ["song.mid"]


def test_a_re_export_keeps_the_floors_the_gate_and_the_specialists_measured_for_the_model(exported, tmp_path):
    """Exported over an older export of the same run, the new model.json keeps the floors and
    the repeat gate measured on its training data, and the specialists chosen for it, and says
    so; the card's figures, which describe the weights replaced, go. From a run that learnt from
    other data, the floors and the gate are not kept, and a line says why."""
    import livecomp_train.export as export_module

    run, out = exported
    if "basic" not in run.parent.name:
        pytest.skip("one architecture shows it")
    shipped = json.loads((shipped_models()["piano"] / "model.json").read_text())
    older = tmp_path / "model"
    shutil.copytree(out, older)
    info = json.loads((older / "model.json").read_text())
    measured = {k: shipped[k] for k in ("fit_floors", "repeat_gate", "musicality")}
    (older / "model.json").write_text(json.dumps({**info, **measured, "specialists": ["folk"]}))
    said = []
    export_module.export(run, older, progress=said.append)
    new = json.loads((older / "model.json").read_text())
    assert new["fit_floors"] == shipped["fit_floors"] and new["repeat_gate"] == shipped["repeat_gate"]
    assert new["specialists"] == ["folk"] and "musicality" not in new
    assert "kept from the export this replaces: fit_floors, repeat_gate, specialists" in said
    assert any("describe the weights replaced" in line for line in said)
    Engine(older, provider="cpu")

    elsewhere = dict(new, training=dict(new["training"], corpus=str(tmp_path / "other-tunes")))
    (older / "model.json").write_text(json.dumps(elsewhere))
    said.clear()
    export_module.export(run, older, progress=said.append)
    new = json.loads((older / "model.json").read_text())
    assert "fit_floors" not in new and "repeat_gate" not in new and new["specialists"] == ["folk"]
    assert any(line.startswith("not kept from the export this replaces: fit_floors (measured on") and
               "repeat_gate" in line for line in said)


def test_generate_continues_a_primer_in_its_own_tempo_and_meter(exported, tmp_path):
    _, out = exported
    primer = NOTTINGHAM / "jigs1.mid"       # 6/8
    if not primer.exists():
        primer = next(p for p in sorted(NOTTINGHAM.glob("jigs*.mid")))
    from livecomp.music.roll import midi_to_roll
    heard = midi_to_roll(primer)
    result = tmp_path / "cont.mid"
    livecomp("generate", "--model", out, "--primer", primer, "--bars", "3", "--seed", "4", "--candidates", "3",
             "--out", result, "--png", tmp_path / "cont.png", check=True)
    back = midi_to_roll(result)
    assert back.meters[:len(heard.meters)] == heard.meters
    assert [us for _, us in back.tempos] == [us for _, us in heard.tempos]
    bar = heard.steps_per_bar(heard.n_steps - 1)
    start = heard.bar_starts()[-1] + bar                  # the first bar line after the primer
    assert back.n_steps <= start + 3 * bar and start % bar == heard.bar_starts()[-1] % bar
    assert np.array_equal(back.frames[:heard.n_steps] > 0, heard.frames > 0)
    assert (tmp_path / "cont.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not shipped_models(), reason="no shipped models in livecomp/exported/")
def test_generate_with_the_shipped_default_model_is_reproducible(tmp_path):
    first, second = tmp_path / "a.mid", tmp_path / "b.mid"
    for path in (first, second):
        livecomp("generate", "--bars", "8", "--out", path, "--png", path.with_suffix(".png"), check=True)
    assert first.read_bytes() == second.read_bytes()
    notes = [m for t in mido.MidiFile(first).tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert notes
    assert first.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = tmp_path / "c.mid"
    livecomp("generate", "--bars", "8", "--seed", "1", "--out", other, check=True)
    assert other.read_bytes() != first.read_bytes()


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth is not installed")
def test_wav_is_rendered_through_fluidsynth(exported, tmp_path):
    import wave

    from livecomp.music.audio import AudioError, find_soundfont
    try:
        find_soundfont()
    except AudioError:
        pytest.skip("no General MIDI soundfont installed")
    _, out = exported
    livecomp("generate", "--model", out, "--primer", NOTTINGHAM / "jigs1.mid", "--primer-bars", "2", "--bars", "2",
             "--out", tmp_path / "x.mid", "--wav", tmp_path / "x.wav", check=True)
    with wave.open(str(tmp_path / "x.wav")) as w:
        seconds = w.getnframes() / w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    assert seconds >= 4 * 1.5                                 # four 6/8 bars (three quarter notes each) at 120 bpm
    peak = 20 * np.log10(np.abs(audio.astype(np.int32)).max() / 32767)
    assert abs(peak - (-1.0)) < 0.1, peak                     # normalised: fluidsynth alone peaks near -24 dBFS


def test_wav_without_fluidsynth_says_so(exported, tmp_path, monkeypatch):
    _, out = exported
    monkeypatch.setitem(ENV, "PATH", str(tmp_path))                  # no fluidsynth on this PATH
    result = livecomp("generate", "--model", out, "--bars", "1", "--out", tmp_path / "x.mid", "--wav",
                      tmp_path / "x.wav")
    assert result.returncode == 1 and "fluidsynth is not installed" in result.stderr
    assert not (tmp_path / "x.mid").exists() and not (tmp_path / "x.wav").exists()   # found before the work


def test_the_wheel_carries_the_shipped_models(tmp_path):
    import subprocess
    import sys
    import zipfile

    from conftest import ROOT
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    assert "Warning" not in build.stderr, build.stderr             # no deprecated licence table, no data undeclared
    (wheel,) = tmp_path.glob("livecomp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in shipped_models():
        for file in ("model.json", "encode.onnx", "advance.onnx", "bar.onnx", "step.onnx"):
            assert f"livecomp/exported/{model}/{file}" in names


def test_providers_are_chosen_explicitly_and_reported(exported, tmp_path):
    from livecomp.model.engine import cuda_usable

    _, out = exported
    engine = Engine(out, provider="auto")
    assert engine.provider_used == "cpu" or (cuda_usable() and engine.provider_used == "cuda")
    result = livecomp("generate", "--model", out, "--bars", "1", "--out", tmp_path / "x.mid", "--provider", "cuda")
    if cuda_usable():
        assert result.returncode == 0 and "onnxruntime on cuda" in result.stdout
    else:
        assert result.returncode == 1 and "no usable GPU" in result.stderr
        assert "onnxruntime on cpu" in livecomp("generate", "--model", out, "--bars", "1", "--out",
                                                tmp_path / "y.mid", check=True).stdout


def test_a_joint_model_without_its_step_graph_is_refused_in_one_sentence(exported, tmp_path):
    """A bar cut short is written step by step: a group's tempered log-probability is not the
    product of its keys' tempered conditionals, so encode.onnx cannot score it instead."""
    _, out = exported
    info = json.loads((out / "model.json").read_text())
    if info["training"]["model"].get("joint_keys", 1) == 1:
        return
    folder = tmp_path / "model"
    shutil.copytree(out, folder)
    del info["files"]["step"]
    (folder / "model.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match=r"draws keys in groups \(joint_keys\) needs its step graph"):
        Engine(folder, provider="cpu")
