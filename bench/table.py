"""Print the benchmark table: test NLL per frame of the kept checkpoints next to published rows.

    python bench/table.py [--checkpoints bench/checkpoints]

Each kept run folder holds best.pt/best.json of one model (architecture x dataset). The
figures are recomputed here with the same code as `livecomp eval RUN --split test`. The basic
runs are also scored as mixtures of their copies transposed by -m..m semitones (`livecomp eval
RUN --mix-shifts m`), with the m that `bench/mixture.py` chose on the validation split. The
key-by-key EnDeCell JSB run is also scored with further checkpoints of its recipe (a run folder
for its best.pt, or RUN/snapshot-EEEE.pt, the weights `livecomp train --snapshots` kept at epoch
EEEE), each key's conditional the mean of theirs (`livecomp eval RUN --with RUN2/snapshot-0150.pt
...`); those runs are kept beside it and listed below the table, not as rows of their own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livecomp_train.checkpoint import load_ensemble, load_model  # noqa: E402
from livecomp_train.configs import TrainConfig, command_line  # noqa: E402
from livecomp_train.data import load_benchmark  # noqa: E402
from livecomp_train.evaluate import evaluate  # noqa: E402

PUBLISHED = [  # test NLL per frame (nats): JSB Chorales, Nottingham
    ("RNN (Boulanger-Lewandowski 2012)", 8.71, 4.46),
    ("LSTM (Bai et al. 2018)", 8.45, 3.29),
    ("TCN (Bai et al. 2018)", 8.10, 3.07),
    ("RNN-NADE (Boulanger-Lewandowski 2012)", 5.56, 2.31),
]
DATASETS = ("jsb", "nottingham")
MIXTURES = {"basic-jsb": 5, "basic-nottingham": 4}   # run -> m, chosen on validation by bench/mixture.py
# run -> the other checkpoints of its mean (each key's conditional the mean of theirs): a run folder
# means its best.pt, RUN/snapshot-EEEE.pt that run's validated weights at epoch EEEE (--snapshots)
ENSEMBLES = {"endecell-jsb-chunk1": [  # each 150-epoch run's weights at the end of its schedule (chosen on validation)
    f"endecell-jsb-chunk1-s{seed}/snapshot-0150.pt" for seed in (1, 2, 3, 6, 7, 8, 9, 10, 12)]}
MEMBERS = {Path(m).parts[0] for ms in ENSEMBLES.values() for m in ms}   # scored with their mean, not alone


def runs_of(name: str) -> list[str]:
    """The run folders a row's checkpoints come from, each once: the run's own, then its mean's."""
    return list(dict.fromkeys([name] + [Path(m).parts[0] for m in ENSEMBLES.get(name, [])]))


def snapshot_epochs(run: str) -> list[int]:
    """The epochs of the run's snapshots (RUN/snapshot-EEEE.pt) that a mean uses."""
    return [int(Path(m).stem.split("-")[1]) for ms in ENSEMBLES.values() for m in ms
            if Path(m).parts[0] == run and Path(m).name.startswith("snapshot-")]


def cost_checkpoint(run: str) -> str:
    """The checkpoint a run's cost row describes: its best.pt where the table scores that (a row of its
    own, or a bare run folder in a mean), else the latest of its snapshots a mean uses."""
    epochs = snapshot_epochs(run)                 # none for a run that is not a mean's member
    if not epochs or any(run in ms for ms in ENSEMBLES.values()):
        return run
    return f"{run}/snapshot-{max(epochs):04d}.pt"


def mean_label(name: str) -> str:
    """How many checkpoints a mean averages, and from how many runs."""
    n, runs = len(ENSEMBLES[name]) + 1, len(runs_of(name))
    return f"mean of {n} runs" if n == runs else f"mean of {n} checkpoints of {runs} runs"


def label(model: dict) -> str:
    """A row's name: the architecture, and for EnDeCell the keys it reads and writes a step."""
    if model["architecture"] == "endecell":
        chunk = model.get("chunk", 1)
        return f"endecell, {'key by key' if chunk == 1 else f'{chunk} keys a step'}"
    return model["architecture"]


def trained_on(meta: dict) -> str:
    """Where a run trained: the GPU's name (runs record it), or for older runs the device asked for."""
    if "trained_on" in meta:
        return meta["trained_on"]
    return "cuda" if meta["train"].get("device", "auto").startswith("cuda") else "cpu"


def budget_never_bound(run: Path, cfg: TrainConfig) -> bool:
    """True when a run's time budget never moved its schedule: at every validation in its log the
    share of the budget used stayed below the share of its epochs done (the cosine schedule
    follows the larger), and the run ended on its epochs. Such a budget is only a cap, and the
    printed recipe leaves it out, so that it runs the same on a slower machine."""
    log = run / "log.jsonl"
    if not cfg.time_budget_s or not log.exists():
        return False
    records = [json.loads(line) for line in log.read_text().splitlines()]
    ends = [r for r in records if r["epoch"] > 0]
    if not ends or records[-1]["epoch"] < cfg.epochs:
        return False
    steps_per_epoch = min(r["step"] / r["epoch"] for r in ends)
    total = cfg.epochs * steps_per_epoch
    return all(r["trained_s"] / cfg.time_budget_s <= r["step"] / total for r in records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, default=Path(__file__).resolve().parent / "checkpoints")
    args = parser.parse_args()

    rows = {}
    for run in sorted(p for p in args.checkpoints.iterdir() if (p / "best.pt").exists()):
        if run.name in MEMBERS:
            continue
        model, meta = load_model(run)
        data = meta["train"]["data"]
        if data not in DATASETS:                   # the shipped models, trained on MIDI files: not a benchmark row
            continue
        corpus = load_benchmark(data)
        seqs = corpus.sequences("test", meta["model"]["key_states"])
        scores = evaluate(model, seqs)
        rows[(label(meta["model"]), data)] = (scores, meta, run.name)
        if run.name in MIXTURES:
            m = MIXTURES[run.name]
            mixed = evaluate(load_model(run, mix_shifts=m)[0], seqs, accuracy=False)
            rows[("basic, mixture of transposed copies", data)] = (mixed, meta, None)
        if run.name in ENSEMBLES:
            members = [run] + [args.checkpoints / other for other in ENSEMBLES[run.name]]
            mean = evaluate(load_ensemble(members)[0], seqs, accuracy=False)
            rows[(f"{label(meta['model'])}, {mean_label(run.name)}", data)] = (mean, meta, None)

    print(f"test NLL per frame, nats (first frame from the zero state; t > 0 in brackets); {os.cpu_count()} cores")
    print(f"{'model':50s} {'JSB':>16s} {'Nottingham':>16s}")
    for name, jsb, nott in PUBLISHED:
        print(f"{name:50s} {jsb:16.2f} {nott:16.2f}")
    for name in sorted({name for name, _ in rows}):
        cells = []
        for data in DATASETS:
            if (name, data) in rows:
                s = rows[(name, data)][0]
                cells.append(f"{s.nll:.2f} ({s.nll_after_first:.2f})")
            else:
                cells.append("-")
        print(f"{'livecomp ' + name:50s} {cells[0]:>16s} {cells[1]:>16s}")
    print("mixtures of transposed copies: " + ", ".join(f"{run} {2 * m + 1} copies (m = {m})" for run,
                                                        m in MIXTURES.items()))
    means = ", ".join(f"{run} with {', '.join(others)}" for run, others in ENSEMBLES.items())
    print("means (each key's conditional the mean of the checkpoints'): " + means)
    print()
    print(f"{'run (checkpoint)':40s} {'frame acc':>9s} {'params':>9s} {'train wall s':>12s} {'frames/s':>9s} "
          f"{'epochs':>6s}  trained on")
    kept = [name for _, (_, _, name) in sorted(rows.items()) if name is not None]   # None: a mixture, an ensemble
    kept = list(dict.fromkeys(run for name in kept for run in runs_of(name)))
    accuracy = {name: s.accuracy for _, (s, _, name) in rows.items() if name is not None}
    metas = {}
    for name in kept:
        checkpoint = cost_checkpoint(name)
        model, meta = metas[name] = load_model(args.checkpoints / checkpoint)
        params = sum(p.numel() for p in model.parameters())
        acc = f"{accuracy[name]:.4f}" if name in accuracy else "-"    # a mean's member: scored in the mean
        print(f"{checkpoint:40s} {acc:>9s} {params:9d} {meta.get('wall_s', float('nan')):12.0f} "
              f"{meta.get('frames_per_s', float('nan')):9.0f} {meta['epoch']:6d}  {trained_on(meta)}")
    print()
    for name in kept:
        cfg = TrainConfig(**metas[name][1]["train"])
        if budget_never_bound(args.checkpoints / name, cfg):
            cfg.time_budget_s = 0.0             # a cap its run never reached: the schedule ran on epochs
        used = snapshot_epochs(name)
        if used and not cfg.snapshots:          # kept from its last.pt: --snapshots only saves, it trains the same
            cfg.snapshots = math.gcd(*used)
        print(f"{name}: {command_line(cfg, 'runs/' + name)}")
    for name, others in ENSEMBLES.items():
        print(f"{name}, {mean_label(name)}: livecomp eval runs/{name} "
              + " ".join(f"--with runs/{other}" for other in others))


if __name__ == "__main__":
    main()
