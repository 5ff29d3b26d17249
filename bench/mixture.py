"""Mixtures of transposed copies: validation NLL of each kept benchmark model as the mean of its
copies transposed by -m..m semitones, for m = 0 (the model as trained) up to --max-shift; the m
with the lowest validation NLL is chosen and its test NLL printed (the test split is read for
that m alone).

Two ways to combine the copies, both exact distributions over frames:

- mixture: each frame from one copy, p(frame) = mean of the copies' p(frame). For the basic RNN
  this is ``livecomp train|eval|export --mix-shifts m`` (``BasicConfig.mix_shifts``), and its
  figures here are that model's, through ``livecomp_train.evaluate``.
- key average: each key's probability the mean of the copies' (per key and in the model's key
  order, so EnDeCell's conditionals stay conditionals). For the basic RNN the keys stay
  independent given the state, the form of the published independent-key models.

    python bench/mixture.py [--max-shift 4] [--runs basic-jsb,basic-nottingham]

With --ensemble RUN RUN ... it scores instead whole runs together on the validation and test
splits of the first run's data, for the first k runs, k = 1..n, beside run k alone: their
mixture (each frame from one run, equal weights) and, for EnDeCell runs, their key mean (each
key's conditional the mean of the runs', the model ``livecomp eval|export RUN --with RUN ...``
runs).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livecomp.model.scoring import Tally, batches  # noqa: E402
from livecomp_train.checkpoint import load_model  # noqa: E402
from livecomp_train.data import BENCHMARKS, load_benchmark  # noqa: E402
from livecomp_train.evaluate import evaluate  # noqa: E402
from livecomp_train.models.common import N_KEYS, transposed  # noqa: E402


@torch.no_grad()
def copies_nll(model, sequences, m: int) -> tuple[float, float]:
    """NLL per frame of (the mixture, the key average) of the model's copies transposed by -m..m,
    each copy the model itself run on transposed frames."""
    mixture, average = Tally(accuracy=False), Tally(accuracy=False)
    for frames, mask in batches(sequences, 16384):
        x = torch.from_numpy(frames)
        frame_logp, key_p = [], torch.zeros(x.shape, dtype=torch.float64)
        reached = torch.zeros(N_KEYS, dtype=torch.float64)
        for s in range(-m, m + 1):
            heard = transposed(x, s)
            logits, _ = model(heard)
            logp = F.log_softmax(logits.float(), -1).gather(-1, heard.unsqueeze(-1)).squeeze(-1)
            logp = transposed(logp, -s).double()       # back on the heard keys; 0 where the copy cannot reach
            on = transposed(torch.ones(N_KEYS), -s).double()
            frame_logp.append(logp.sum(-1))            # a key the copy cannot reach: off for certain
            key_p += logp.exp() * on
            reached += on
        mixture.add((torch.logsumexp(torch.stack(frame_logp), 0) - math.log(2 * m + 1)).numpy(), mask, frames)
        average.add((key_p / reached).log().sum(-1).numpy(), mask, frames)
    return mixture.result()["nll"], average.result()["nll"]


@torch.no_grad()
def runs_together(models, sequences, key_mean: bool) -> list[tuple[float, float]]:
    """For the first k of ``models``, k = 1..n: (NLL per frame of their mixture, each frame from
    one run with equal weights; of their key mean, each key's conditional the mean of theirs, as
    ``models.ensemble.Ensemble``; NaN unless ``key_mean``). Each run scores each batch once."""
    tallies = [(Tally(accuracy=False), Tally(accuracy=False)) for _ in models]
    for frames, mask in batches(sequences, 16384):
        x = torch.from_numpy(frames)
        keys = torch.stack([F.log_softmax(m(x)[0].double(), -1).gather(-1, x.unsqueeze(-1)).squeeze(-1)
                            for m in models])                           # (n, B, T, 88): log p of each key's state
        frame = keys.sum(-1)
        for k, (mixture, mean) in enumerate(tallies, 1):
            mixture.add((torch.logsumexp(frame[:k], 0) - math.log(k)).numpy(), mask, frames)
            if key_mean:
                mean.add((torch.logsumexp(keys[:k], 0) - math.log(k)).sum(-1).numpy(), mask, frames)
    return [(a.result()["nll"], b.result()["nll"] if key_mean else math.nan) for a, b in tallies]


def ensemble(runs: list[Path]) -> None:
    loaded = [load_model(run) for run in runs]
    meta = loaded[0][1]
    key_mean = all(m["model"]["architecture"] == "endecell" for _, m in loaded)
    corpus = load_benchmark(meta["train"]["data"])
    print(f"{len(runs)} runs on {meta['train']['data']}, NLL per frame (nats)")
    for i, run in enumerate(runs, 1):
        print(f"  {i}: {run}")
    print(f"{'runs':>4s} {'split':>5s} {'run k alone':>12s} {'mixture of 1..k':>16s} {'key mean of 1..k':>17s}")
    for split in ("valid", "test"):
        sequences = corpus.sequences(split, meta["model"]["key_states"])
        together = runs_together([m for m, _ in loaded], sequences, key_mean)
        for k, ((model, _), (mixed, mean)) in enumerate(zip(loaded, together), 1):
            alone = evaluate(model, sequences, accuracy=False).nll
            print(f"{k:4d} {split:>5s} {alone:12.4f} {mixed:16.4f} {mean:17.4f}", flush=True)
    if key_mean:
        print("key mean: the model `livecomp eval RUN --with RUN ...` scores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, default=Path(__file__).resolve().parent / "checkpoints")
    parser.add_argument("--max-shift", type=int, default=4)
    parser.add_argument("--runs", default="", help="comma-separated run names (default: every benchmark run)")
    parser.add_argument("--ensemble", type=Path, nargs="+", help="score these runs together instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.ensemble:
        ensemble(args.ensemble)
        return
    wanted = {r for r in args.runs.split(",") if r}
    print(f"validation NLL per frame (nats) of the mean of copies transposed by -m..m; 1 thread of {os.cpu_count()}")
    for run in sorted(p for p in args.checkpoints.iterdir() if (p / "best.pt").exists()):
        if wanted and run.name not in wanted:
            continue
        model, meta = load_model(run)
        data = meta["train"]["data"]
        if data not in BENCHMARKS or meta["model"]["architecture"] not in ("basic", "endecell"):
            continue
        corpus = load_benchmark(data)
        valid = corpus.sequences("valid", meta["model"]["key_states"])
        basic = meta["model"]["architecture"] == "basic"
        print(f"\n{run.name} ({data})")
        print(f"{'m':>3s} {'copies':>6s} {'mixture':>9s} {'key average':>12s}")
        best = {"mixture": (math.inf, 0), "key average": (math.inf, 0)}
        for m in range(args.max_shift + 1):
            mixed, average = copies_nll(model, valid, m)
            if basic:                                   # the model livecomp runs with --mix-shifts m
                mixed = evaluate(load_model(run, mix_shifts=m)[0], valid, accuracy=False).nll
            best = {"mixture": min(best["mixture"], (mixed, m)), "key average": min(best["key average"], (average, m))}
            print(f"{m:3d} {2 * m + 1:6d} {mixed:9.4f} {average:12.4f}", flush=True)
        test = corpus.sequences("test", meta["model"]["key_states"])
        for way, (nll, m) in best.items():
            if basic and way == "mixture":
                figure = evaluate(load_model(run, mix_shifts=m)[0], test, accuracy=False).nll
            else:
                figure = copies_nll(model, test, m)[way == "key average"]
            print(f"chosen {way}: m = {m} ({2 * m + 1} copies), validation {nll:.4f}, test {figure:.4f}")


if __name__ == "__main__":
    main()
