"""bench/sweep.py: recipes run side by side, ranked by validation NLL, finished runs not run again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = "--model basic --data jsb --hidden 16 --layers 1 --window 16 --batch-size 16 --epochs 1"


def sweep(recipes: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "sweep.py"), str(recipes), "--out", str(out),
                           "--jobs", "2", "--device", "cpu", *extra], capture_output=True, text=True, timeout=600)


def test_a_sweep_ranks_its_runs_by_validation_and_does_not_rerun_finished_ones(tmp_path):
    recipes = tmp_path / "recipes.txt"
    recipes.write_text(f"# two sizes\nsmall: {TINY} --seed 1\nwider: {TINY} --hidden 48 --seed 1  # wider\n")
    result = sweep(recipes, tmp_path / "runs", "--extra", "--time-budget 600")
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("validation NLL per frame, best first")[1].splitlines()[2:]
    names = [line.split()[0] for line in table]
    nll = {line.split()[0]: float(line.split()[1]) for line in table}
    assert sorted(names) == ["small", "wider"] and nll[names[0]] <= nll[names[1]]
    for name in names:
        kept = json.loads((tmp_path / "runs" / name / "best.json").read_text())
        assert abs(kept["valid"]["nll"] - nll[name]) < 1e-3
        assert kept["train"]["time_budget_s"] == 600                 # --extra reached every run
    assert json.loads((tmp_path / "runs" / "wider" / "config.json").read_text())["model"]["hidden"] == 48
    again = sweep(recipes, tmp_path / "runs")
    assert again.returncode == 0 and "started" not in again.stdout   # both had finished
    # a run that did not end (its .done missing, as after a stop) goes on from its last checkpoint
    (tmp_path / "runs" / "small.done").unlink()
    resumed = sweep(recipes, tmp_path / "runs")
    assert resumed.returncode == 0 and "started small" in resumed.stdout and "started wider" not in resumed.stdout
    log = (tmp_path / "runs" / "small.log").read_text().splitlines()
    commands = [line for line in log if "livecomp.cli train" in line]
    assert len(commands) == 2 and "--resume" not in commands[0] and "--resume" in commands[1]


def test_a_line_without_a_name_is_one_sentence(tmp_path):
    recipes = tmp_path / "recipes.txt"
    recipes.write_text(f"{TINY}\n")
    result = sweep(recipes, tmp_path / "runs")
    assert result.returncode != 0 and "recipes.txt:1:" in result.stderr and "Traceback" not in result.stderr
