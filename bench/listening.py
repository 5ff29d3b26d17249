"""A blind listening test: pairs of (call + livecomp's answer) and (call + the real continuation),
shuffled, as WAV files for a person to judge; the key is kept apart, and the same script scores
the person's answers.

    python bench/listening.py render OUT [--pairs 20] [--model piano] [--corpus piano] [--bpm 100] [--seed 0]
    python bench/listening.py score OUT ANSWERS

``render`` takes calls from the corpus's test split (pieces no shipped model trained on, as
bench/judge.py does), answers each through the performer with the CLI's defaults, and writes
OUT/NN-A.wav and OUT/NN-B.wav (one is livecomp's, at random) with fluidsynth, plus the MIDI
files; the key goes to OUT.key.json, beside the folder, not in it. Hand the folder alone to
the listener.

ANSWERS is a text file with one line per pair, "NN A" or "NN B": the one the listener takes for
livecomp's. ``score`` prints how many were right and the chance of doing at least as well by
guessing (one-sided binomial): a listener who cannot tell stays near half.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from livecomp.files import atomic_write_bytes  # noqa: E402
from livecomp.music.audio import AudioError, render_wav  # noqa: E402
from livecomp.music.roll import PianoRoll, roll_to_midi  # noqa: E402
from livecomp.perform.performer import PerformerConfig  # noqa: E402

from judge import CORPORA, answers, gather_calls  # noqa: E402


def key_path(out: Path) -> Path:
    return out.with_name(out.name + ".key.json")


def render(out: Path, pairs: int, model: str, corpus: str, bpm: float, seed: int) -> None:
    calls, _ = gather_calls(CORPORA[corpus], 4, per_piece=4)
    rng = np.random.default_rng(seed)
    chosen = [calls[i] for i in sorted(rng.choice(len(calls), min(pairs, len(calls)), replace=False))]
    fakes, _, _ = answers(model, chosen, replace(PerformerConfig(), seed=seed), seed)
    out.mkdir(parents=True, exist_ok=True)
    key = {"model": model, "corpus": corpus, "seed": seed, "livecomp": {}}
    tempo = int(round(60_000_000 / bpm))
    for n, (call, fake) in enumerate(zip(chosen, fakes), 1):
        livecomp_is = "A" if rng.random() < 0.5 else "B"
        parts = {livecomp_is: fake, ("B" if livecomp_is == "A" else "A"): call["real"]}
        for side, continuation in parts.items():
            frames = np.concatenate([call["call"], continuation])
            roll = PianoRoll(frames, call["spb"], [(0, tempo)], [(0, *call["meter"])])
            mid = out / f"{n:02d}-{side}.mid"
            roll_to_midi(roll).save(mid)
            render_wav(mid, out / f"{n:02d}-{side}.wav")
        key["livecomp"][f"{n:02d}"] = livecomp_is
    atomic_write_bytes(key_path(out), json.dumps(key, indent=2).encode())
    print(f"wrote {len(chosen)} pairs to {out} (the key: {key_path(out)}, not for the listener)")


def binomial_tail(right: int, total: int) -> float:
    """P(at least ``right`` of ``total`` by guessing at 1/2)."""
    return sum(math.comb(total, k) for k in range(right, total + 1)) / 2 ** total


def score(out: Path, answers_file: Path) -> tuple[int, int, float]:
    key = json.loads(key_path(out).read_text())["livecomp"]
    said = {}
    for line in answers_file.read_text().splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].upper() in ("A", "B"):
            said[f"{int(fields[0]):02d}"] = fields[1].upper()
    right = sum(said.get(n) == side for n, side in key.items() if n in said)
    total = len([n for n in key if n in said])
    return right, total, binomial_tail(right, total) if total else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render")
    r.add_argument("out", type=Path)
    r.add_argument("--pairs", type=int, default=20)
    r.add_argument("--model", default="piano")
    r.add_argument("--corpus", default="piano", choices=list(CORPORA))
    r.add_argument("--bpm", type=float, default=100.0)
    r.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score")
    s.add_argument("out", type=Path)
    s.add_argument("answers", type=Path)
    args = parser.parse_args()
    if args.command == "render":
        out = args.out.resolve()
        os.chdir(ROOT)
        try:
            render(out, args.pairs, args.model, args.corpus, args.bpm, args.seed)
        except AudioError as exc:
            sys.exit(f"listening.py: {exc}")
    else:
        right, total, p = score(args.out, args.answers)
        print(f"{right} of {total} pairs told right ({right / max(total, 1):.0%}); "
              f"chance of doing as well by guessing: {p:.3f}")


if __name__ == "__main__":
    main()
