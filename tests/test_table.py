"""bench/table.py prints each kept run's recipe; a time budget that never moved its schedule is left out."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from livecomp_train.configs import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("table", ROOT / "bench" / "table.py")
table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table)


def write_log(run: Path, epoch_seconds: list[float], steps_per_epoch: int = 10) -> None:
    """A run's log.jsonl: a validation after each epoch, which took epoch_seconds[e] of training."""
    run.mkdir()
    lines, trained = [], 0.0
    for e, seconds in enumerate(epoch_seconds, 1):
        trained += seconds
        lines.append({"epoch": e, "step": e * steps_per_epoch, "trained_s": trained, "valid_nll": 5.0})
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


@pytest.mark.parametrize("epoch_seconds, never_bound", [
    ([1.0] * 20, True),           # 20 s of a 100 s cap: the schedule ran on its 20 epochs
    ([6.0] * 16, False),          # the budget ran out first and ended the run
    ([8.0] + [1.0] * 19, False),  # it ended on its epochs, but a slow first epoch put the budget's share ahead
])
def test_a_time_budget_is_left_out_of_the_recipe_only_where_it_never_moved_the_schedule(
        tmp_path, epoch_seconds, never_bound):
    run = tmp_path / "run"
    write_log(run, epoch_seconds)
    cfg = TrainConfig(epochs=20, time_budget_s=100.0)
    assert table.budget_never_bound(run, cfg) is never_bound


def test_a_run_without_a_budget_prints_as_it_ran(tmp_path):
    write_log(tmp_path / "run", [1.0] * 20)
    assert not table.budget_never_bound(tmp_path / "run", TrainConfig(epochs=20, time_budget_s=0.0))


def test_a_mean_member_is_costed_and_counted_as_the_checkpoint_the_mean_scores(monkeypatch):
    ensembles = {"a": ["b/snapshot-0150.pt", "c", "c/snapshot-0100.pt", "d/snapshot-0100.pt", "d/snapshot-0150.pt"]}
    monkeypatch.setattr(table, "ENSEMBLES", ensembles)
    assert [table.cost_checkpoint(run) for run in table.runs_of("a")] == [
        "a", "b/snapshot-0150.pt", "c", "d/snapshot-0150.pt"]
    assert table.mean_label("a") == "mean of 6 checkpoints of 4 runs"
    monkeypatch.setattr(table, "ENSEMBLES", {"a": ["b/snapshot-0150.pt"]})
    assert table.mean_label("a") == "mean of 2 runs"
    monkeypatch.setattr(table, "ENSEMBLES", {"a": ["b", "c"]})
    assert table.mean_label("a") == "mean of 3 runs"
