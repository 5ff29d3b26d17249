"""The pieces the bar graphs are built of (``graphs``, ``endecell_bar``): keys carried as
thermometer codes, weights rewritten to read them, inverse-CDF draws of a chunk's keys or of a
group of keys together, LSTM layers as single nodes, and the state between the graphs' layout
and the model's.

State tensors are batch-first in the graphs (``[B] + shape`` as in model.json), float32; the
previous frame travels as float key states.
"""

from __future__ import annotations

import torch
from torch import nn

from .models.common import N_KEYS
from .models.joint import group_states


def torch_state(model, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Batch-first float state (as the graphs take it) -> the model's own layout."""
    h, c, *rest = state
    out = (h.transpose(0, 1).contiguous(), c.transpose(0, 1).contiguous())
    return out + tuple(r.long() for r in rest)


def graph_state(state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    h, c, *rest = state
    return (h.transpose(0, 1), c.transpose(0, 1)) + tuple(r.float() for r in rest)


def codes_of(states: torch.Tensor, key_states: int) -> torch.Tensor:
    """Key states (B, n) (int or float) -> thermometer codes (B, n (K - 1)): per key
    [state >= 1, state >= 2]. The bar graphs carry keys in this code, because the sampler's
    comparisons produce it directly; the weights that read it are rewritten to match
    (``from_one_hot``), so the model computes what it computed on one-hot codes."""
    codes = states.unsqueeze(-1) >= torch.arange(1, key_states, dtype=states.dtype)
    return codes.float().reshape(states.shape[0], -1)


def from_one_hot(weight: torch.Tensor, keys: int, key_states: int) -> torch.Tensor:
    """Columns of ``weight`` (out, keys (K-1)) that read one-hot codes -> the same map on
    thermometer codes: one-hot = M @ thermometer per key, M = [[1, -1], [0, 1]] for K = 3."""
    k1 = key_states - 1
    m = torch.eye(k1) - torch.diag(torch.ones(k1 - 1), 1)
    return weight @ torch.kron(torch.eye(keys), m)


class Sampler(nn.Module):
    """Inverse-CDF draws of ``keys`` keys in a few nodes.

    scores (..., keys, K) tempered, noise (B, keys (K-1)) (each key's uniform repeated K-1
    times) -> thermometer codes (1, B, keys (K-1)): the CDF is one product with a triangular
    matrix, and comparing it with the noise gives [state >= 1, state >= 2] for each key.
    All shapes are constants.
    """

    def __init__(self, key_states: int, keys: int):
        super().__init__()
        K = self.K = key_states
        self.keys = keys
        self.register_buffer("cdf", torch.triu(torch.ones(K, K))[:, :K - 1].contiguous())   # p -> P(state <= k)

    def forward(self, scores: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        cdf = (torch.softmax(scores, -1) @ self.cdf).reshape(1, -1, self.keys * (self.K - 1))
        return (cdf <= noise).float()


class JointSampler(nn.Module):
    """Inverse-CDF draws of one group of n keys as one choice among its K^n states.

    scores (1, B, K^n) tempered, noise (B, 1) (the group's lowest key's uniform) -> thermometer
    codes (1, B, n (K-1)) of the class drawn: the CDF is one product with a triangular matrix,
    the classes it passes are a prefix of ones, and one product of that prefix with the steps
    between consecutive classes' codes is the drawn class's codes. As ``draw_states`` over the
    classes.
    """

    def __init__(self, key_states: int, keys: int):
        super().__init__()
        K, n = key_states, keys
        classes = K ** n
        self.register_buffer("cdf", torch.triu(torch.ones(classes, classes))[:, :classes - 1].contiguous())
        states = group_states(torch.arange(classes), K, n)
        codes = codes_of(states, K)                                          # (classes, n (K-1))
        self.register_buffer("steps", (codes[1:] - codes[:-1]).contiguous())  # class j -> j + 1
        self.register_buffer("powers", (K ** torch.arange(n)).float().repeat_interleave(K - 1))   # codes -> class

    def forward(self, scores: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        passed = (torch.softmax(scores, -1) @ self.cdf <= noise).float()   # (1, B, classes - 1)
        return passed @ self.steps

    def classes_of(self, codes: torch.Tensor) -> torch.Tensor:
        """Thermometer codes (..., n (K-1)) -> the class they code (...) int64: each bit adds K^i."""
        return (codes @ self.powers).long()


def expand_noise(noise: torch.Tensor, key_states: int) -> torch.Tensor:
    """noise (B, S, 88) -> (B, S, 88 (K-1)): each key's uniform once per thermometer bit."""
    if key_states == 2:
        return noise
    return noise.unsqueeze(-1).expand(-1, -1, -1, key_states - 1).reshape(-1, noise.shape[1], N_KEYS * (key_states - 1))


def states_of(codes: torch.Tensor, key_states: int) -> torch.Tensor:
    """Thermometer codes (..., 88 (K-1)) -> key states (..., 88) float: the bits summed."""
    return codes @ torch.kron(torch.eye(N_KEYS), torch.ones(key_states - 1, 1))


def frozen(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach().contiguous().clone(), requires_grad=False)


class LSTMNodes(nn.Module):
    """An nn.LSTM's layers as one ONNX LSTM node each per step (the runtime's fused kernel does
    both products and the gates), states kept as (1, B, H) so no reshaping sits between steps."""

    def __init__(self, lstm: nn.LSTM):
        super().__init__()
        self.layers = nn.ModuleList()
        for layer in range(lstm.num_layers):
            cell = nn.LSTM(lstm.input_size if layer == 0 else lstm.hidden_size, lstm.hidden_size)
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, f"{kind}_l0").data.copy_(getattr(lstm, f"{kind}_l{layer}").detach())
            cell.requires_grad_(False)
            self.layers.append(cell)

    def forward(self, x: torch.Tensor, hs: list[torch.Tensor], cs: list[torch.Tensor]):
        """x (1, B, D), hs and cs lists of (1, B, H) -> new hs, cs."""
        new_h, new_c = [], []
        for cell, h, c in zip(self.layers, hs, cs):
            _, (h, c) = cell(x, (h, c))
            new_h.append(h)
            new_c.append(c)
            x = h
        return new_h, new_c
