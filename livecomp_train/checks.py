"""The checks an export makes of its graphs before it keeps them: for the same noise, bar.onnx
returns exactly the frames of the torch sampler (noise within ``TIE_MARGIN`` of a CDF boundary,
where float rounding decides the draw, is redrawn for the check), and step.onnx writes the first
step bar.onnx writes, leaving the state encode.onnx leaves after it. A difference raises
``ExportError``.
"""

from __future__ import annotations

import numpy as np
import torch

from livecomp.model.engine import Engine, tempered_log_prob

from .codes import torch_state
from .models.common import N_KEYS

TIE_MARGIN = 2e-6


class ExportError(ValueError):
    """An export that did not verify, or could not be written."""


def check_step(engine: Engine, primers: list[np.ndarray], candidates: int = 4, seed: int = 0) -> int:
    """step.onnx writes the first step bar.onnx writes for the same noise, with its
    log-probability, and the state after it is encode.onnx's; returns the steps compared."""
    rng = np.random.default_rng(seed)
    compared = 0
    for primer in primers:
        state, _ = engine.encode(primer[None])
        state = state.repeat(candidates)
        noise = rng.random((candidates, engine.bar_steps, N_KEYS), dtype=np.float32)
        bar_frames, _, _ = engine.bar_from_noise(state, noise, 1.0)
        frames, logp, after = engine.step_from_noise(state, noise[:, :1], 1.0)
        encoded, logits = engine.encode(frames, state)
        if not np.array_equal(frames, bar_frames[:, :1]):
            raise ExportError("step.onnx and bar.onnx wrote different first steps for the same noise.")
        if not np.allclose(logp, tempered_log_prob(logits, frames, 1.0), rtol=1e-4, atol=1e-3):
            raise ExportError("step.onnx gives another log-probability than encode.onnx for its step.")
        if not all(np.allclose(after.tensors[n], encoded.tensors[n], atol=1e-4) for n in after.tensors):
            raise ExportError("step.onnx leaves another state than encode.onnx after its step.")
        compared += candidates
    return compared


def engine_state_in_torch(engine_state, model) -> tuple[torch.Tensor, ...]:
    """An engine's state (``livecomp.model.engine.State``) as the torch model's state tensors."""
    return torch_state(model, tuple(torch.from_numpy(engine_state.tensors[n]) for n, _ in model.state_shapes()))


def check_sampler(model, engine: Engine, primers: list[np.ndarray], temperature: float = 1.0,
                  candidates: int = 4, seed: int = 0) -> int:
    """Bars sampled by onnxruntime equal the torch sampler's for the same noise, after each
    primer; returns the number of bars compared. Raises ExportError on any difference."""
    rng = np.random.default_rng(seed)
    compared = 0
    for primer in primers:
        state, _ = engine.encode(primer[None])
        state = state.repeat(candidates)
        for _attempt in range(20):
            noise = rng.random((candidates, engine.bar_steps, N_KEYS), dtype=np.float32)
            with torch.no_grad():
                frames, logp, _ = model.sample(engine_state_in_torch(state, model), torch.from_numpy(noise),
                                               torch.tensor(temperature))
                if near_tie(model, state, frames, noise, temperature):
                    continue
            onnx_frames, onnx_logp, _ = engine.bar_from_noise(state, noise, temperature)
            if not np.array_equal(onnx_frames, frames.numpy()):
                diff = int((onnx_frames != frames.numpy()).sum())
                raise ExportError(f"bar.onnx and the torch sampler wrote different frames for the same noise "
                                  f"({diff} key states differ).")
            if not np.allclose(onnx_logp, logp.numpy(), rtol=1e-4, atol=1e-3):
                raise ExportError("bar.onnx and the torch sampler give different log-probabilities for the same bar.")
            compared += candidates
            break
    return compared


def near_tie(model, state, frames: torch.Tensor, noise: np.ndarray, temperature: float) -> bool:
    """Whether any draw of the bar had its noise within TIE_MARGIN of a CDF boundary (for a
    mixture of transposed copies, also of a boundary between copies)."""
    noise = torch.from_numpy(noise)
    n = len(getattr(model, "shifts", [0]))
    if n > 1:                                                      # the chosen copy's distributions
        logp, _ = model.copy_log_probs(frames, engine_state_in_torch(state, model))          # (B, n, T, 88, K)
        u = noise[..., 0] * n
        if (u - u.round()).abs().min() < TIE_MARGIN * n:
            return True
        copy, noise = model.choose_copy(noise)
        index = copy[:, None, :, None, None].expand(-1, 1, -1, N_KEYS, logp.shape[-1])
        logits = logp.gather(1, index).squeeze(1)
    elif getattr(model, "link", None) is not None:                 # joint keys: each group's lowest key's noise
        logits = model.group_scores(frames, engine_state_in_torch(state, model))             # (B, T, groups, K^n)
        g = model.cfg.joint_keys
        noise = torch.nn.functional.pad(noise, (0, logits.shape[2] * g - N_KEYS))[..., ::g]
    else:
        logits, _ = model(frames, engine_state_in_torch(state, model))      # the sampling distributions
    cdf = torch.softmax(logits / temperature, -1).cumsum(-1)[..., :-1]
    margin = (cdf - noise.unsqueeze(-1)).abs().min()
    return bool(margin < TIE_MARGIN)
