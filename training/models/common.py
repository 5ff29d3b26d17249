"""Pieces both model families share: key-state encoding, per-key likelihood, sampling from given noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F

N_KEYS = 88


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


def sample_states(logits: torch.Tensor, noise: torch.Tensor, temperature: torch.Tensor | float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one state per key by inverting the CDF at ``noise`` (uniform in [0, 1)).

    logits (..., keys, K), noise (..., keys) -> (states (..., keys) int64, log p of the sampled
    states under the tempered distribution, summed over keys (...)). Deterministic for given noise,
    so torch and ONNX agree sample for sample.
    """
    logp = F.log_softmax(logits / temperature, dim=-1)
    cdf = logp.exp().cumsum(-1)                                    # (..., keys, K)
    states = (cdf <= noise.unsqueeze(-1)).sum(-1).clamp(max=logits.shape[-1] - 1)
    picked = logp.gather(-1, states.unsqueeze(-1)).squeeze(-1)
    return states, picked.sum(-1)
