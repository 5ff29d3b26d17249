"""`livecomp train` and `livecomp eval` end to end, on tiny budgets: resume after SIGKILL,
torchrun with two processes, and one clear sentence for each kind of bad input."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, bad_midi_files

TINY = ["--hidden", "24", "--layers", "1", "--window", "16", "--batch-size", "16", "--quiet", "--seed", "7"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def livecomp(*args, check=False, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "livecomp.cli", *map(str, args)], capture_output=True,
                            text=True, timeout=600, env=ENV, **kwargs)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def final_valid_nll(run: Path) -> float:
    lines = (run / "log.jsonl").read_text().splitlines()
    return json.loads(lines[-1])["valid_nll"]


@pytest.mark.parametrize("averaging", [[], ["--ema", "0.999"]], ids=["raw", "ema"])
def test_a_run_killed_and_resumed_ends_like_an_uninterrupted_one(tmp_path, averaging):
    args = ["train", "--model", "basic", "--data", "jsb", "--epochs", "4", *TINY, *averaging]
    livecomp(*args, "--out", tmp_path / "whole", check=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "livecomp.cli", *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.monotonic() + 300
    while not (killed / "log.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)                                    # into the second epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    livecomp("train", "--resume", killed, "--quiet", check=True)

    assert final_valid_nll(killed) == final_valid_nll(tmp_path / "whole")


def test_two_process_torchrun_trains_a_checkpoint_that_evaluates(tmp_path):
    run = tmp_path / "ddp"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "livecomp.cli", "train", "--model", "endecell", "--data", "jsb", "--epochs", "1",
         "--chunk", "8", "--enc-hidden", "16", "--dec-hidden", "16", *TINY, "--out", str(run)],
        capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run / "best.json").read_text())["world_size"] == 2
    scored = livecomp("eval", run, "--data", "jsb", "--split", "valid", "--json", check=True)
    scores = json.loads(scored.stdout)
    assert scores["frames"] == 4602 and 0 < scores["nll"] < 61.0


def test_with_ema_the_best_checkpoint_holds_the_averaged_weights_not_the_last_ones(tmp_path):
    import torch

    from livecomp_train.checkpoint import read_checkpoint

    run = tmp_path / "ema"
    livecomp("train", "--model", "basic", "--data", "jsb", "--epochs", "1", *TINY, "--ema", "0.9", "--out", run,
             check=True)
    last, _ = read_checkpoint(run / "last.pt")
    best, _ = read_checkpoint(run / "best.pt")
    assert set(last["ema"]) == set(last["model"])
    for name, raw in last["model"].items():
        assert torch.equal(best["model"][name], last["ema"][name]), name
    assert any(not torch.equal(raw, last["ema"][name]) for name, raw in last["model"].items())
    scores = json.loads(livecomp("eval", run, "--data", "jsb", "--split", "valid", "--json", check=True).stdout)
    assert scores["nll"] == pytest.approx(json.loads((run / "best.json").read_text())["valid"]["nll"], rel=1e-5)


def test_snapshots_keep_each_nth_epochs_validated_weights_and_score_together_with_with(tmp_path):
    run = tmp_path / "snapshots"
    livecomp("train", "--model", "endecell", "--data", "jsb", "--epochs", "3", "--chunk", "8", "--enc-hidden", "16",
             "--dec-hidden", "16", *TINY, "--ema", "0.9", "--snapshots", "2", "--out", run, check=True)
    assert sorted(p.name for p in run.glob("snapshot-*")) == ["snapshot-0002.pt"]
    lines = (run / "log.jsonl").read_text().splitlines()
    logged = {json.loads(line)["epoch"]: json.loads(line)["valid_nll"] for line in lines}

    def nll(*args) -> float:
        return json.loads(livecomp("eval", *args, "--data", "jsb", "--split", "valid", "--json",
                                   check=True).stdout)["nll"]

    snapshot, best = nll(run / "snapshot-0002.pt"), nll(run)
    assert snapshot == pytest.approx(logged[2], rel=1e-5)
    assert json.loads((run / "best.json").read_text())["train"]["snapshots"] == 2
    together = nll(run, "--with", run / "snapshot-0002.pt")     # each key's conditional the mean of the two
    assert together <= (snapshot + best) / 2 + 1e-6


@pytest.fixture(scope="module")
def basic_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "basic"
    livecomp("train", "--model", "basic", "--data", "jsb", "--epochs", "1", *TINY, "--out", run,
             "--scheduled-sampling", "0.5", "--target-weight", "linear", "--transpose", "2", check=True)
    return run


def test_training_keeps_the_best_checkpoint_with_a_sampled_picture(basic_run):
    meta = json.loads((basic_run / "best.json").read_text())
    assert meta["model"]["architecture"] == "basic" and meta["corpus"] == "jsb"
    assert (basic_run / "best.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_reports_both_first_frame_conventions(basic_run):
    result = livecomp("eval", basic_run, "--data", "jsb", "--split", "test", check=True)
    assert "4725 frames" in result.stdout
    assert "NLL per frame, t > 0" in result.stdout and "frame accuracy" in result.stdout


def _one_sentence(result, *words):
    assert result.returncode != 0
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err


def test_unknown_data_name_is_one_sentence():
    _one_sentence(livecomp("train", "--data", "bach", *TINY), "'bach'", "jsb, nottingham, jsb16")


def test_empty_folder_is_one_sentence(tmp_path):
    _one_sentence(livecomp("train", "--data", tmp_path, *TINY), "holds no MIDI files")


def test_folder_of_only_corrupt_files_is_one_sentence(tmp_path):
    bad_midi_files(tmp_path / "bad")
    _one_sentence(livecomp("train", "--data", tmp_path / "bad", *TINY), "none of the 4 MIDI files")


def test_checkpoint_of_the_other_architecture_is_refused_by_eval(basic_run):
    _one_sentence(livecomp("eval", basic_run, "--model", "endecell"), "'basic'", "'endecell'")


def test_damaged_checkpoint_is_refused_by_eval(tmp_path):
    (tmp_path / "best.pt").write_bytes(b"not a checkpoint")
    _one_sentence(livecomp("eval", tmp_path), "not a readable livecomp checkpoint")


def test_endecell_starts_from_a_pretrained_autoencoder_or_another_endecell(tmp_path):
    import torch

    from livecomp_train.checkpoint import CheckpointError, init_from, load_model
    from livecomp_train.models import EnDeCellConfig, build_model

    sizes = ["--chunk", "8", "--enc-hidden", "16", "--dec-hidden", "16", *TINY]
    livecomp("train", "--model", "endecell", "--pretrain-autoencoder", "--data", "jsb", "--epochs", "1",
             *sizes, "--out", tmp_path / "ae", check=True)
    autoencoder, meta = load_model(tmp_path / "ae", "autoencoder")
    cfg = EnDeCellConfig(key_states=2, chunk=8, enc_hidden=16, dec_hidden=16, time_hidden=24, time_layers=1,
                         encoder_skip=True)
    model = build_model(cfg)
    init_from(model, str(tmp_path / "ae"))
    for name, value in autoencoder.pretrained_state().items():
        assert torch.equal(model.state_dict()[name], value), name
    with pytest.raises(CheckpointError, match="does not fit this one"):
        init_from(build_model(EnDeCellConfig(chunk=4, enc_hidden=16, dec_hidden=16, time_hidden=24,
                                                          encoder_skip=True)),
                               str(tmp_path / "ae"))
    livecomp("train", "--model", "endecell", "--init-from", tmp_path / "ae", "--data", "jsb", "--epochs", "1",
             *sizes, "--out", tmp_path / "full", check=True)
    # a whole EnDeCell run starts a model with a lookback added: the same model until it learns to look back
    full, meta = load_model(tmp_path / "full", "endecell")
    looking = build_model(EnDeCellConfig(**{**meta["model"], "lookback": 4})).eval()
    init_from(looking, str(tmp_path / "full"))
    frames = torch.randint(0, 2, (2, 12, 88), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(looking(frames)[0], full(frames)[0], atol=1e-6)


def test_a_basic_run_starts_from_another_basic_runs_kept_weights(basic_run, tmp_path):
    """--init-from for the basic RNN: the new run's model starts as the other run's best.pt (so
    it can train on at a new rate, or on other data); other sizes get one sentence."""
    import torch

    from livecomp_train.checkpoint import init_from, load_model
    from livecomp_train.models import BasicConfig, build_model

    source, meta = load_model(basic_run, "basic")
    model = build_model(BasicConfig(**meta["model"]))
    init_from(model, str(basic_run))
    for name, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    on = tmp_path / "on"
    livecomp("train", "--model", "basic", "--data", "jsb", "--epochs", "1", *TINY, "--lr", "1e-4",
             "--init-from", basic_run, "--out", on, check=True)
    # the first validation of the new run scores about what the run it started from kept
    first = json.loads((on / "log.jsonl").read_text().splitlines()[0])["valid_nll"]
    assert abs(first - json.loads((basic_run / "best.json").read_text())["valid"]["nll"]) < 1.0
    wider = livecomp("train", "--model", "basic", "--data", "jsb", "--epochs", "1", *TINY, "--hidden", "32",
                     "--init-from", basic_run, "--out", tmp_path / "wider")
    _one_sentence(wider, "does not fit this one")
    missing = livecomp("train", "--model", "basic", "--data", "jsb", "--epochs", "1", *TINY,
                       "--init-from", tmp_path / "nothing", "--out", tmp_path / "none")
    _one_sentence(missing, "nothing")


def test_trains_and_evaluates_on_a_folder_of_midi_files_with_three_key_states(tmp_path, monkeypatch):
    import shutil

    from conftest import TUNES as NOTTINGHAM
    folder = tmp_path / "tunes"
    folder.mkdir()
    for f in sorted(NOTTINGHAM.glob("hpps*.mid"))[:40]:
        shutil.copy(f, folder / f.name)
    monkeypatch.setitem(ENV, "LIVECOMP_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    livecomp("train", "--model", "basic", "--data", folder, "--key-states", "3", "--epochs", "1", *TINY,
             "--out", run, check=True)
    meta = json.loads((run / "best.json").read_text())
    assert meta["steps_per_beat"] == 4 and meta["model"]["key_states"] == 3
    scores = json.loads(livecomp("eval", run, "--split", "valid", "--json", check=True).stdout)
    assert scores["sequences"] > 0 and 0 < scores["nll"] < 88 * math.log(3)   # better than a uniform guess


@pytest.mark.parametrize("model_args", [
    ["--model", "basic", "--neighbour-keys", "0", "--transpose", "3", "--ema", "0.99", "--input-dropout", "0.1",
     "--weight-drop", "0.3"],
    ["--model", "endecell", "--chunk", "8", "--no-encoder-skip", "--target-weight", "step", "--target-skip", "4",
     "--input-dropout", "0.1", "--weight-drop", "0.2", "--dec-dropout", "0.2"],
])
def test_the_printed_recipe_of_a_run_starts_a_run_with_the_same_settings(tmp_path, model_args):
    import shlex

    from livecomp_train.configs import TrainConfig, command_line

    first = tmp_path / "first"
    livecomp("train", "--data", "jsb", "--epochs", "1", *model_args, *TINY, "--out", first, check=True)
    cfg = TrainConfig(**json.loads((first / "config.json").read_text()))
    again = tmp_path / "again"
    recipe = shlex.split(command_line(cfg, again))
    assert recipe[:2] == ["livecomp", "train"]
    livecomp(*recipe[1:], "--quiet", check=True)
    assert json.loads((again / "config.json").read_text()) == json.loads((first / "config.json").read_text())


@pytest.mark.parametrize("full_at, kept", [("config.json", None), ("best.pt", None), ("last.pt", "best.pt")],
                         ids=["at-start", "first-checkpoint", "mid-run"])
def test_a_disk_that_fills_is_one_sentence_saying_what_is_kept(tmp_path, monkeypatch, full_at, kept):
    """The disk fills when the run writes ``full_at``: one sentence naming the file; a run that
    kept no checkpoint leaves no folder behind (a new run may take the same --out), one that
    kept its best says where it is."""
    import errno

    from typer.testing import CliRunner

    import livecomp.files as files
    from livecomp.cli import app

    write = files._write

    def filling(path, data):
        if path.name == full_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(path, data)

    monkeypatch.setattr(files, "_write", filling)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--model", "basic", "--data", "jsb", "--epochs", "1", *TINY,
                                      "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert f"cannot write {out / full_at} (No space left on device)" in result.output, result.output
    assert "Traceback" not in result.output
    if kept is None:
        assert not out.exists() and "nothing of it is left" in result.output
    else:
        assert (out / kept).is_file() and f"{out / kept}, is kept" in result.output


def test_ctrl_c_says_what_the_run_leaves(tmp_path):
    """Ctrl-C before the first checkpoint leaves no folder (the same --out takes a new run);
    after one, last.pt is kept and the sentence says how to go on."""
    def interrupted(out: Path, wait_for: str) -> subprocess.CompletedProcess:
        proc = subprocess.Popen([sys.executable, "-m", "livecomp.cli", "train", "--model", "basic", "--data", "jsb",
                                 "--epochs", "50", "--hidden", "256", "--layers", "2", "--quiet", "--out", str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        deadline = time.monotonic() + 300
        while not (out / wait_for).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    early = interrupted(tmp_path / "early", "config.json")
    assert early.returncode == 130, early.stderr
    assert "stopped by Ctrl-C; the run kept no checkpoint" in early.stderr and not (tmp_path / "early").exists()
    late = interrupted(tmp_path / "late", "last.pt")
    assert late.returncode == 130, late.stderr
    assert f"last.pt is kept: pass --resume {tmp_path / 'late'} to go on" in late.stderr


BENCHMARKS = ("basic-jsb", "basic-nottingham", "endecell-jsb", "endecell-jsb-chunk1", "endecell-nottingham",
              "endecell-nottingham-chunk1")
KEPT_RUNS = {**{f"benchmarks/{run}": run for run in BENCHMARKS},
             "piano": "shipped-piano", "piano-all-first": "piano-all-first", "piano-classical": "piano-classical",
             "piano-first": "piano-classical/first", "pop": "shipped-pop", "folk": "shipped-folk",
             "folk-link": "folk-link", "folk-joint": "folk-joint", "folk-plain": "folk-plain",
             "piano-all": "piano-all", "pop-lookback": "pop-lookback", "pop-joint": "pop-joint",
             "pop-link": "pop-link",
             "basic": "shipped-basic", "piano-joint": "piano-joint"}


@pytest.mark.parametrize("name", sorted(KEPT_RUNS))
def test_each_kept_runs_recipe_is_what_it_was_trained_with(name):
    """recipes/NAME.toml gives the settings of the run kept in bench/checkpoints (the shipped
    models' and the phases before them, and the benchmark table's rows; where each started from
    and the device it ran on aside)."""
    from dataclasses import asdict

    from livecomp.cli.training import _parse_seconds
    from livecomp_train.configs import CONFIGS, TrainConfig, config_from_dict, configs_from_options, read_recipe

    kept = ROOT / "bench" / "checkpoints" / KEPT_RUNS[name] / "config.json"
    stored = json.loads(kept.read_text())
    options = {option[2:].replace("-", "_"): value for option,
               value in read_recipe(ROOT / "recipes" / f"{name}.toml").items()}
    options["time_budget"] = _parse_seconds(options.get("time_budget"))
    run, model = configs_from_options(options, options["model"])
    cfg = asdict(TrainConfig(**run, model=asdict(CONFIGS[options["model"]](**model))))
    stored["model"] = asdict(config_from_dict(stored["model"]))
    for settings in (cfg, stored):
        settings.pop("init_from")
        settings.pop("device")                       # where it ran, not what it learnt
    assert cfg == {**stored, **{k: cfg[k] for k in set(cfg) - set(stored)}}


def test_a_recipe_sets_the_options_it_names_and_the_command_line_wins(tmp_path):
    from conftest import TUNES

    (tmp_path / "recipe.toml").write_text('# a small EnDeCell\n[train]\nmodel = "endecell"\nchunk = 8\nhidden = 32\n'
                                          'layers = 1\nenc-hidden = 16\ndec-hidden = 16\nepochs = 1\nwindow = 32\n'
                                          'encoder-skip = false\ntime-budget = "1m"\n')
    livecomp("train", "--recipe", tmp_path / "recipe.toml", "--data", TUNES, "--hidden", "24", "--quiet",
             "--out", tmp_path / "run", check=True)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (cfg["epochs"], cfg["window"], cfg["time_budget_s"], cfg["data"]) == (1, 32, 60.0, str(TUNES))
    assert cfg["model"]["architecture"] == "endecell" and cfg["model"]["chunk"] == 8
    assert cfg["model"]["time_hidden"] == 24 and cfg["model"]["encoder_skip"] is False     # --hidden won


def test_a_runs_recipe_text_reads_back_as_its_settings(tmp_path):
    """configs.recipe_text writes a run's settings as a recipe file that read_recipe reads back
    into the same settings (what wrote recipes/benchmarks/ from the kept runs)."""
    from dataclasses import asdict

    from livecomp.cli.training import _parse_seconds
    from livecomp_train.configs import CONFIGS, TrainConfig, configs_from_options, read_recipe, recipe_text

    kept = json.loads((ROOT / "bench" / "checkpoints" / "shipped-piano" / "config.json").read_text())
    cfg = TrainConfig(**{**kept, "data": 'a "quoted" folder\\x', "time_budget_s": 90.0})
    (tmp_path / "r.toml").write_text(recipe_text(cfg, "a comment\non two lines"))
    options = {option[2:].replace("-", "_"): value for option, value in read_recipe(tmp_path / "r.toml").items()}
    options["time_budget"] = _parse_seconds(options.get("time_budget"))
    run, model = configs_from_options(options, options["model"])
    again = TrainConfig(**run, model=asdict(CONFIGS[options["model"]](**model)))
    assert asdict(again) == {**asdict(cfg), "device": "auto", "model": asdict(again)["model"]}
    added = {k: v for k, v in asdict(again)["model"].items() if k not in cfg.model}    # settings newer than the run
    assert asdict(again)["model"] == {**cfg.model, **added}
