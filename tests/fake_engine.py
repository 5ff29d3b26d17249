"""An engine without a model, for the performer's logic where no exported model may be at hand:
it answers with the keys it last heard sounding, struck on each beat and held for three 16ths."""

from __future__ import annotations

import numpy as np

from livecomp.model.engine import State
from livecomp.music.roll import HELD, N_KEYS, STRUCK


class EchoEngine:
    name = architecture = "echo"
    key_states, steps_per_beat, beats_per_bar, steps_per_bar, bar_steps = 3, 4, 4, 16, 16
    candidates = 16
    fit_floors = None
    repeat_gate = None

    def specialists(self) -> list:
        return []

    def loaded_specialists(self) -> list:
        return []

    def initial_state(self, batch: int = 1) -> State:
        return State({"last": np.zeros((batch, N_KEYS), np.float32)})

    def advance(self, frames: np.ndarray, state: State | None = None) -> State:
        last = (state or self.initial_state(len(frames))).tensors["last"].copy()
        for step in np.moveaxis(np.asarray(frames), 1, 0):                # (B, 88) per step
            sounding = step > 0
            rows = sounding.any(-1)
            last[rows] = sounding[rows]
        return State({"last": last})

    def bar(self, state: State, candidates: int = 1, temperature: float = 1.0, seed=None, steps: int | None = None):
        steps = self.steps_per_bar if steps is None else steps
        if state.batch == 1 and candidates > 1:
            state = state.repeat(candidates)
        keys = state.tensors["last"] > 0
        pattern = np.array([STRUCK, HELD, HELD, 0] * (steps // 4 + 1), np.int64)[:steps]
        frames = keys[:, None, :] * pattern[None, :, None]
        return frames.astype(np.int64), np.zeros(state.batch), State({"last": state.tensors["last"].copy()})
