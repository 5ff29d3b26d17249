"""Writing frames with one EnDeCell or several in lockstep, chunk by chunk (group by group with
joint keys): at each chunk a mix of the writers' scores (``mean_conditional``: one run's own, or
the log of the mean of several runs' probabilities) is drawn from or maximised, and every
writer is told the choice. ``EnDeCell.sample`` and ``predict`` are the one-run case, an
``Ensemble``'s the several-run one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .common import N_KEYS, sample_states

if TYPE_CHECKING:
    from .endecell import EnDeCell


def mean_conditional(logits: list[torch.Tensor]) -> torch.Tensor:
    """Several runs' logits (..., K) for the same keys -> the log of their mean probabilities,
    as logits (one run: its own logits). How chunk writers driven in lockstep mix their scores."""
    if len(logits) == 1:
        return logits[0]
    logp = torch.stack([F.log_softmax(x.float(), -1) for x in logits])
    return torch.logsumexp(logp, 0) - math.log(len(logits))


def write_frame(writers: list, mix, choose):
    """Drive chunk writers (``EnDeCell._chunk_writer``) in lockstep: at each chunk ``mix`` turns
    their logits into one distribution's logits, ``choose(logits, first_key) -> (states, logp)``
    picks the states, and every writer is told them. Returns (frame (N, 88), total logp (N,))."""
    steps = [next(w) for w in writers]
    total = 0.0
    while True:
        lo = steps[0][0]
        states, logp = choose(mix([logits for _, logits in steps]), lo)
        total = total + logp
        try:
            steps = [w.send(states) for w in writers]
        except StopIteration as done:
            return done.value, total


def _greedy(logits: torch.Tensor, first_key: int):
    logp = F.log_softmax(logits, -1)
    best = logp.max(-1)
    return best.indices, best.values.sum(-1)


def predict_lockstep(models: list[EnDeCell], states: list, frames: torch.Tensor, mix) -> torch.Tensor:
    """``EnDeCell.predict`` of the distribution ``mix`` makes of the models' conditionals (one
    state each, None for the zero state): frames (B, T, 88) -> (B, T, 88)."""
    B, T, _ = frames.shape
    writers = []
    for model, state in zip(models, states):
        before, previous, back, _ = model._history(frames, state)
        writers.append(model._chunk_writer(before.reshape(B * T, -1), previous.reshape(B * T, N_KEYS),
                                           back.reshape(B * T, N_KEYS) if back is not None else None))
    out, _ = write_frame(writers, mix, _greedy)
    return out.view(B, T, N_KEYS)


def sample_lockstep(models: list[EnDeCell], states: list, noise: torch.Tensor, temperature, mix):
    """``EnDeCell.sample`` of the distribution ``mix`` makes of the models' conditionals: each
    key drawn once from the mixed conditional and every model told the draw. ``states``: one
    per model, (h, c, prev, *hist) as ``initial_state``; the models share key states, chunk and
    lookback. Returns (frames (B, S, 88), logp (B,), the models' states after them)."""
    states = [tuple(state) for state in states]
    frames, total = [], 0.0
    for s in range(noise.shape[1]):
        step_noise = noise[:, s]

        def draw(logits, first_key):
            return sample_states(logits, step_noise[:, first_key:first_key + logits.shape[1]], temperature)

        writers = [model._chunk_writer(h[-1], prev, hist[0][:, 0] if hist else None)
                   for model, (h, c, prev, *hist) in zip(models, states)]
        frame, logp = write_frame(writers, mix, draw)
        frames.append(frame)
        total = total + logp
        after = []
        for model, (h, c, prev, *hist) in zip(models, states):
            _, (h, c) = model.time(model.encode_frames(frame).unsqueeze(1), (h, c))
            hist = [torch.cat([hist[0][:, 1:], frame.unsqueeze(1)], 1)] if hist else []
            after.append((h, c, frame, *hist))
        states = after
    return torch.stack(frames, 1), total, states
