"""Training cost of the benchmark models on this machine: frames per second of a training step.

    python bench/speed.py [--checkpoints bench/checkpoints] [--steps 6] [--threads 1]

For each kept benchmark run, its model is rebuilt from its recipe and trained for a few steps
on batches of its own training windows (forward, backward, AdamW step, as `livecomp train`
does), on one thread by default, as the table's runs were. For EnDeCell it also times the
same steps with every frame encoded (not each distinct frame once), alternating the two so
that a noisy machine weighs on both alike: the ratio is the saving of the deduplication.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from livecomp_train.checkpoint import read_checkpoint  # noqa: E402
from livecomp_train.data import load_corpus, make_windows, transpose_batch  # noqa: E402
from livecomp_train.models import build_model, config_from_dict  # noqa: E402
from livecomp_train.models.common import frame_log_likelihood  # noqa: E402

DATASETS = ("jsb", "nottingham")


def step_seconds(model, optimizer, batches) -> list[float]:
    """Seconds of one training step on each batch."""
    times = []
    for x in batches:
        t0 = time.perf_counter()
        logits, _ = model(x)
        loss = -frame_log_likelihood(logits, x).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, default=Path(__file__).resolve().parent / "checkpoints")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per model (and per way of encoding)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"training step, frames/s on {args.threads} thread(s) of {os.cpu_count()} cores "
          f"(median of {args.steps} steps; {torch.__version__})")
    print(f"{'run':28s} {'frames/s':>9s} {'every frame encoded':>20s} {'saving':>7s} {'distinct frames':>15s}")
    for run in sorted(p for p in args.checkpoints.iterdir() if (p / "best.pt").exists()):
        _, meta = read_checkpoint(run / "best.pt")
        train = meta["train"]
        if train["data"] not in DATASETS:
            continue
        torch.manual_seed(0)
        cfg = config_from_dict(meta["model"])
        model = build_model(cfg).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        corpus = load_corpus(train["data"], train["steps_per_beat"], progress=False)
        windows, lengths, _ = make_windows(corpus.splits["train"], train["window"], train["hop_bars"], cfg.key_states)
        rng = np.random.default_rng(0)
        batches = []
        for _ in range(args.steps + 1):                              # the first is a warm-up
            idx = rng.choice(len(windows), train["batch_size"], replace=False)
            batch = transpose_batch(windows[idx], train.get("transpose", 0), rng)
            batches.append(torch.from_numpy(batch.astype(np.int64)))
        frames = batches[0].shape[0] * batches[0].shape[1]
        distinct = np.mean([len(torch.unique(b.reshape(-1, 88), dim=0)) / frames for b in batches])

        if cfg.architecture != "endecell":
            t = np.median(step_seconds(model, optimizer, batches)[1:])
            print(f"{run.name:28s} {frames / t:9.0f} {'':>20s} {'':>7s} {'':>15s}")
            continue
        once, every = [], []
        step_seconds(model, optimizer, batches[:1])
        for b in batches[1:]:
            once += step_seconds(model, optimizer, [b])
            with patch.object(model, "encode_frames", model._encode):
                every += step_seconds(model, optimizer, [b])
        a, b = np.median(once), np.median(every)
        print(f"{run.name:28s} {frames / a:9.0f} {frames / b:20.0f} {b / a:6.2f}x {distinct:15.0%}")


if __name__ == "__main__":
    main()
