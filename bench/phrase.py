"""When does livecomp answer a real phrase? Calls cut from held-out pieces, played into the
performer as `livecomp duet` drives it (the CLI's defaults), then silence.

    python bench/phrase.py [--model piano] [--corpora piano,pop909,nottingham] [--phrase-bars 4,8]

For each piece of a corpus's test split, from bars 1, 9, 17, 25 (the first bar line after an
upbeat):

- 4-bar calls: the share answered on the bar line right after the call (bar 5, no empty bar);
- 8-bar calls: the share that got an answer before their end (at bar 5: the musician played
  on, and the answer stopped after its first step) -- the price of answering on phrase ends;
- free calls: each 4-bar call cut at a random step of its third bar (not on a bar line, so no
  phrase length): the share answered within one bar of the call's last sound.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import typer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

from livecomp.cli.common import _phrase_bars  # noqa: E402
from livecomp.model.engine import Engine  # noqa: E402
from livecomp.model.folder import find_model  # noqa: E402
from livecomp.music.roll import PianoRoll, onsets_of, roll_to_midi  # noqa: E402
from livecomp.perform.duet import duet  # noqa: E402
from livecomp.perform.performer import PerformerConfig  # noqa: E402

from judge import CORPORA  # noqa: E402

STARTS = (0, 8, 16, 24)


def slices(roll: PianoRoll, bars: int) -> list[tuple[np.ndarray, tuple[int, int], int]]:
    """Stretches of ``bars`` whole bars of one meter from the bars ``STARTS`` (after an upbeat):
    (frames, meter, steps per bar)."""
    frames, starts = roll.to_states(3), roll.bar_starts() + [roll.n_steps]
    upbeat = 1 if len(starts) > 2 and starts[1] - starts[0] < roll.steps_per_bar(starts[1]) else 0
    out = []
    for at in STARTS:
        b0 = at + upbeat
        if b0 + bars >= len(starts):
            break
        bar = roll.steps_per_bar(starts[b0])
        num, den = roll.meter_at(starts[b0])
        if {starts[b + 1] - starts[b] for b in range(b0, b0 + bars)} != {bar} or (num * 4) % den:
            continue
        part = frames[starts[b0]:starts[b0 + bars]]
        if onsets_of(part).sum() >= 4 and onsets_of(part[-bar:]).any():
            out.append((part, (num, den), bar))
    return out


def first_answer(engine: Engine, frames: np.ndarray, meter: tuple[int, int], cfg: PerformerConfig) -> int | None:
    """The step the first answer was planned to start on, or None."""
    roll = PianoRoll(frames, 4, [(0, 500_000)], [(0, *meter)])
    result = duet(engine, roll_to_midi(roll), cfg)
    return result.answers[0][0] if result.answers else None


def measure(engine: Engine, corpus: str, cfg: PerformerConfig, seed: int) -> dict:
    from livecomp_train.data import load_corpus

    rolls = [r for r in load_corpus(CORPORA.get(corpus, corpus), 4, progress=False).splits["test"] if r.n_steps]
    rng = np.random.default_rng(seed)
    at_bar_5, interrupted, within_bar = [], [], []
    for roll in rolls:
        for frames, meter, bar in slices(roll, 4):
            at_bar_5.append(first_answer(engine, frames, meter, cfg) == len(frames))
            cut = 2 * bar + int(rng.integers(1, bar))                    # inside the third bar, not on its line
            free = frames[:cut].copy()
            ends = np.flatnonzero(free.any(1))
            if not ends.size:
                continue
            end = ends[-1] + 1                                              # the step after the last sound
            start = first_answer(engine, free, meter, cfg)
            within_bar.append(start is not None and start - end <= bar)
        for frames, meter, bar in slices(roll, 8):
            start = first_answer(engine, frames, meter, cfg)
            interrupted.append(start is not None and start < len(frames))
    return {"corpus": corpus, "calls_4": len(at_bar_5), "at_bar_5": float(np.mean(at_bar_5)),
            "calls_8": len(interrupted), "interrupted_8": float(np.mean(interrupted)),
            "free": len(within_bar), "within_bar": float(np.mean(within_bar))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="piano")
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--phrase-bars", default=None, help="as the CLI option (default: the performer's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.chdir(ROOT)
    cfg = PerformerConfig(seed=args.seed)
    if args.phrase_bars is not None:
        try:
            cfg = replace(cfg, phrase_bars=_phrase_bars(args.phrase_bars))  # as the CLI reads it
        except typer.Exit as exc:                                            # its sentence is said
            sys.exit(exc.exit_code)
    engine = Engine(find_model(args.model), provider="cpu")
    print(f"model {engine.name}; phrase bars {cfg.phrase_bars}, silence {cfg.silence_beats:g} beats")
    print(f"{'corpus':<12}{'4-bar calls':>12}{'at bar 5':>10}{'8-bar calls':>13}{'cut at 5':>10}"
          f"{'free calls':>12}{'within a bar':>14}")
    for corpus in args.corpora.split(","):
        r = measure(engine, corpus, cfg, args.seed)
        print(f"{corpus:<12}{r['calls_4']:>12}{r['at_bar_5']:>10.2f}{r['calls_8']:>13}{r['interrupted_8']:>10.2f}"
              f"{r['free']:>12}{r['within_bar']:>14.2f}")


if __name__ == "__main__":
    main()
