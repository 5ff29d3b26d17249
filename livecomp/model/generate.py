"""Writing new music with an exported model: a primer (or silence) folded into the state, then
bars sampled one call each, the best of K candidates by likelihood kept."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..music.roll import PianoRoll
from .engine import Engine


def continue_roll(engine: Engine, primer: PianoRoll | None, bars: int, temperature: float = 1.0,
                  candidates: int = 1, seed: int | None = 0,
                  progress: Callable[[int], None] | None = None) -> tuple[PianoRoll, PianoRoll]:
    """Continue ``primer`` (on the model's grid) by ``bars`` bars of its last meter.

    The primer is padded with silence to its next bar line, so the continuation starts on a
    bar line; its tempo and meter maps carry over. Without a primer the model starts from
    silence in 4/4 at 120 bpm. Returns (the whole roll, the continuation alone as a roll of
    the same length with the primer's steps off), both on the model's grid.
    """
    rng = np.random.default_rng(seed)
    if primer is None:
        primer = PianoRoll(np.zeros((0, 88), np.uint8), engine.steps_per_beat,
                           meters=[(0, engine.beats_per_bar, 4)])
    if primer.steps_per_beat != engine.steps_per_beat:
        raise ValueError(f"the primer is on a grid of {primer.steps_per_beat} steps per beat; "
                         f"the model plays {engine.steps_per_beat}")
    heard = primer.to_states(engine.key_states)
    end = primer.n_steps
    if end == 0:
        start, bar = 0, primer.steps_per_bar(0)
    else:
        last = primer.bar_starts()[-1]                  # the bar the primer ends in
        bar = primer.steps_per_bar(last)
        start = last + bar                              # the next bar line
    heard = np.concatenate([heard, np.zeros((start - end, 88), heard.dtype)])
    state = engine.advance(heard) if len(heard) else engine.initial_state()
    parts = []
    for done in range(bars):
        if progress is not None:
            progress(done)                              # bars written so far
        frames, logp, after = engine.bar(state, candidates=candidates, temperature=temperature, seed=rng, steps=bar)
        best = int(np.argmax(logp))
        parts.append(frames[best])
        state = after.take(best)
    answer = np.concatenate(parts) if parts else np.zeros((0, 88), np.int64)
    whole = np.concatenate([heard, answer]).astype(np.uint8)
    only_answer = whole.copy()
    only_answer[:start] = 0
    common = dict(steps_per_beat=primer.steps_per_beat, tempos=list(primer.tempos), meters=list(primer.meters))
    return PianoRoll(whole, **common), PianoRoll(only_answer, **common)
