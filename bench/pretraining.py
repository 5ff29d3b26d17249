"""Does pre-training EnDeCell's encoder/decoder as an autoencoder help? Print the validation
curves of the same EnDeCell trained from scratch and from the pre-trained autoencoder.

    python bench/pretraining.py [--runs bench/pretraining]

The three run folders keep the logs and settings of the runs behind the answer in docs/figures.md:
`autoencoder` (livecomp train --model endecell --pretrain-autoencoder ...), `pretrained`
(the same EnDeCell settings as `scratch`, plus --init-from the autoencoder run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def curve(run: Path) -> list[float]:
    return [json.loads(line)["valid_nll"] for line in (run / "log.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path(__file__).resolve().parent / "pretraining")
    args = parser.parse_args()
    auto = curve(args.runs / "autoencoder")
    scratch, pretrained = curve(args.runs / "scratch"), curve(args.runs / "pretrained")
    print(f"autoencoder: reconstruction NLL per frame {auto[0]:.2f} -> {auto[-1]:.2f} nats over {len(auto)} epochs")
    print("validation NLL per frame (nats) of EnDeCell on JSB, by epoch")
    print(f"{'epoch':>5s} {'scratch':>9s} {'pretrained':>10s}")
    for epoch in (1, 2, 5, 10, 15, 20):
        if epoch <= min(len(scratch), len(pretrained)):
            print(f"{epoch:5d} {scratch[epoch - 1]:9.3f} {pretrained[epoch - 1]:10.3f}")
    n = min(len(scratch), len(pretrained))
    print(f"best within the first {n} epochs: scratch {min(scratch[:n]):.3f}, pretrained {min(pretrained[:n]):.3f}")


if __name__ == "__main__":
    main()
