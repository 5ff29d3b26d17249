"""How many keys sound at once: a model's own bars against the music's, after the same openings.

    python bench/texture.py [--models piano,folk] [--corpora nottingham,pop909,piano]
                            [--split valid] [--prime 32] [--seed 0] [--one-step]

For each piece of a corpus's split (at least prime + one bar long) the model hears the first
``--prime`` steps (its state after them, through ``advance.onnx``) and samples one bar at
temperature 1 (``bar.onnx``, one candidate, no choosing: the model's own distribution). Prints,
per model and corpus, the share of steps with 0, 1, ..., 8 or more keys sounding in those bars,
and the same for the piece's own next bar ("real"), with the mean of each. A model whose keys
within a chunk are drawn on their own spreads that count where the music keeps it steady (a
tune over block chords sounds 4 or 5 keys at every step).

Beside the counts, ``2nd alone``: the share of steps that strike the second-highest key sounding
while no key under it is struck. In a tune over held chords that is a second melody note struck
with the first, over the chord; a model whose groups of keys hear each other only through one
linear map for the whole keyboard strikes it several times as often as the tunes do.

``--one-step`` draws each step of the bar instead from the real music before it (the model's
state after the piece up to that step, ``step.onnx``): what the model does at one step, with no
drift from its own earlier steps. It also prints where each second top note lies: in the same
group of 4 keys as the top key (one joint draw), in the other group of the same chunk of 8 (the
groups' link), or in another chunk (the decoder's state).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livecomp.model.engine import Engine  # noqa: E402
from livecomp.model.folder import find_model  # noqa: E402
from livecomp.music.roll import STRUCK  # noqa: E402
from livecomp_train.data import load_corpus  # noqa: E402

from judge import CORPORA  # noqa: E402

MOST = 8                      # the last column counts this many keys or more


def counts(frames: np.ndarray) -> np.ndarray:
    """Share of steps of frames (..., steps, 88) with 0 .. MOST (or more) keys sounding."""
    sounding = np.minimum((np.asarray(frames) > 0).sum(-1).ravel(), MOST)
    return np.bincount(sounding, minlength=MOST + 1) / max(sounding.size, 1)


def _seconds_alone(frames: np.ndarray) -> tuple[int, list[tuple[int, int]]]:
    """Steps of frames (..., steps, 88), and (second key, top key) of each step that strikes its
    second-highest sounding key and no key under it."""
    flat = np.asarray(frames).reshape(-1, np.asarray(frames).shape[-1])
    found = []
    for frame in flat:
        keys = np.flatnonzero(frame)
        if keys.size >= 2 and frame[keys[-2]] == STRUCK and not (frame[keys[:-2]] == STRUCK).any():
            found.append((int(keys[-2]), int(keys[-1])))
    return len(flat), found


def second_alone(frames: np.ndarray) -> float:
    """Share of steps of frames (..., steps, 88) that strike their second-highest sounding key
    and no key under it."""
    steps, found = _seconds_alone(frames)
    return len(found) / max(steps, 1)


def second_where(frames: np.ndarray, chunk: int = 8, group: int = 4) -> tuple[int, np.ndarray]:
    """Of the steps ``second_alone`` counts: how many, and the share whose second key is in the
    top key's group, in the other group of its chunk, in another chunk."""
    found = _seconds_alone(frames)[1]
    where = np.zeros(3)
    for a, b in found:
        where[0 if a // group == b // group else 1 if a // chunk == b // chunk else 2] += 1
    return len(found), where / max(len(found), 1)


def openings(corpus: str, split: str, prime: int) -> list[np.ndarray]:
    """The first prime + one bar of each piece of the split that long (key states, 3 per key)."""
    rolls = load_corpus(CORPORA.get(corpus, corpus), 4, progress=False).splits[split]
    out = []
    for roll in rolls:
        frames = roll.to_states(3)
        if len(frames) >= prime + roll.steps_per_bar(prime):
            out.append(frames[:prime + roll.steps_per_bar(prime)])
    return out


def model_draws(model: str, pieces: list[np.ndarray], prime: int, seed: int, one_step: bool = False) -> np.ndarray:
    """What the model samples after each piece's opening, to the piece's end: (pieces, steps, 88).
    One bar of its own; with ``one_step``, each step drawn from the real steps before it."""
    engine = Engine(find_model(model), provider="cpu")
    rng = np.random.default_rng(seed)
    out = []
    for piece in pieces:
        state = engine.advance(piece[:prime][None].astype(np.int64))
        if not one_step:
            out.append(engine.bar(state, 1, 1.0, rng, steps=len(piece) - prime)[0][0])
            continue
        steps = []
        for t in range(prime, len(piece)):
            steps.append(engine.bar(state, 1, 1.0, rng, steps=1)[0][0, 0])
            state = engine.advance(piece[t:t + 1][None].astype(np.int64), state)
        out.append(np.stack(steps))
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="piano")
    parser.add_argument("--corpora", default="nottingham,pop909,piano")
    parser.add_argument("--split", default="valid", choices=("valid", "test"))
    parser.add_argument("--prime", type=int, default=32, help="steps heard before the bar (default 32: 2 bars)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one-step", action="store_true", help="each step drawn from the real steps before it")
    args = parser.parse_args()
    os.chdir(ROOT)                                    # the corpora's paths are the repository's
    header = "".join(f"{k:>7}" for k in range(MOST)) + f"{str(MOST) + '+':>7}{'mean':>8}{'2nd alone':>11}"
    for corpus in args.corpora.split(","):
        pieces = [p for p in openings(corpus, args.split, args.prime) if len(p) - args.prime == 16]   # 4/4 bars
        real = np.stack([p[args.prime:] for p in pieces])
        print(f"\n{corpus} ({args.split}): {len(pieces)} pieces in 4/4, one bar after {args.prime} steps"
              f"{', each step drawn after the real ones' if args.one_step else ''}; share of steps by keys sounding")
        print(f"{'':<28}{header}")
        rows = [("real", real)] + [(m, model_draws(m, pieces, args.prime, args.seed, args.one_step))
                                   for m in args.models.split(",")]
        for name, frames in rows:
            share = counts(frames)
            mean = float((np.asarray(frames) > 0).sum(-1).mean())
            print(f"{Path(name).name:<28}" + "".join(f"{v:>7.3f}" for v in share) + f"{mean:>8.2f}"
                  f"{second_alone(frames):>11.3f}")
        print("second top notes struck alone: how many; where, from the top key (its group / its chunk's other "
              "group / another chunk)")
        for name, frames in rows:
            n, where = second_where(frames)
            print(f"  {Path(name).name:<26}{n:>5}   " + " / ".join(f"{v:.2f}" for v in where))


if __name__ == "__main__":
    main()
