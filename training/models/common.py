"""Pieces both model families share: key-state encoding, per-key likelihood, sampling from given noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from livecomp.roll import N_KEYS  # noqa: F401  (one definition, the piano roll's)


def one_hot_states(frames: torch.Tensor, key_states: int) -> torch.Tensor:
    """Key states (..., K keys) int64 -> float features (..., K * (key_states - 1)).

    ``off`` is the all-zero code, so a frame of silence is a zero vector.
    """
    if key_states == 2:
        return frames.clamp(max=1).float()
    codes = F.one_hot(frames, key_states)[..., 1:].float()       # (..., keys, key_states - 1)
    return codes.flatten(-2)


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
