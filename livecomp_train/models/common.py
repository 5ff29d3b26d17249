"""Pieces both model families share: key-state encoding, per-key likelihood, sampling from given noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from livecomp.music.roll import N_KEYS  # noqa: F401  (one definition, the piano roll's)


def one_hot_states(frames: torch.Tensor, key_states: int) -> torch.Tensor:
    """Key states (..., K keys) int64 -> float features (..., K * (key_states - 1)).

    ``off`` is the all-zero code, so a frame of silence is a zero vector.
    """
    if key_states == 2:
        return frames.clamp(max=1).float()
    codes = F.one_hot(frames, key_states)[..., 1:].float()       # (..., keys, key_states - 1)
    return codes.flatten(-2)


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], weight_drop: float = 0.0):
    """``lstm(x, state)``; in training with ``weight_drop`` p > 0, with DropConnect on its
    hidden-to-hidden weights (AWD-LSTM's weight drop, Merity et al. 2018): each recurrent weight
    dropped with probability p (the rest scaled by 1 / (1 - p)), one mask per call, the same at
    every step. It regularises the recurrence itself, which dropout between layers never
    touches, and leaves the module and its weights as they are, so checkpoints and graphs do
    not see it."""
    if not lstm.training or weight_drop == 0:
        return lstm(x, state)
    params = {name: F.dropout(p, weight_drop) if name.startswith("weight_hh") else p
              for name, p in lstm.named_parameters()}
    return torch.func.functional_call(lstm, params, (x, state))


def transposed(frames: torch.Tensor, s: int) -> torch.Tensor:
    """Key states (..., 88) moved up s semitones (down for s < 0); keys pushed off the keyboard
    are dropped and the keys left empty are off."""
    if s >= 0:
        return F.pad(frames[..., :N_KEYS - s], (s, 0))
    return F.pad(frames[..., -s:], (0, -s))


def frame_log_likelihood(logits: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """log p(frame) summed over keys: logits (..., 88, K), frames (..., 88) -> (...) in nats."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, frames.unsqueeze(-1)).squeeze(-1).sum(-1)


def draw_states(logits: torch.Tensor, noise: torch.Tensor, temperature: torch.Tensor | float | None = None
                ) -> torch.Tensor:
    """One state per key by inverting the tempered CDF at ``noise`` (uniform in [0, 1)).

    logits (..., keys, K), noise (..., keys) -> states (..., keys) int64. Deterministic for given
    noise, so torch and ONNX agree sample for sample. ``temperature=None``: already tempered.
    """
    probs = F.softmax(logits if temperature is None else logits / temperature, dim=-1)
    cdf = probs.cumsum(-1)[..., :-1]                              # (..., keys, K - 1)
    return (cdf <= noise.unsqueeze(-1)).sum(-1)


def tempered_log_prob(logits: torch.Tensor, states: torch.Tensor, temperature: torch.Tensor | float | None = None
                      ) -> torch.Tensor:
    """log p(states) under the tempered distribution, summed over the last key axis:
    logits (..., keys, K), states (..., keys) -> (...)."""
    logp = F.log_softmax(logits if temperature is None else logits / temperature, dim=-1)
    return logp.gather(-1, states.unsqueeze(-1)).squeeze(-1).sum(-1)


def sample_states(logits: torch.Tensor, noise: torch.Tensor, temperature: torch.Tensor | float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``draw_states`` and the log-probability of the draw: (states (..., keys), log p (...))."""
    states = draw_states(logits, noise, temperature)
    return states, tempered_log_prob(logits, states, temperature)
