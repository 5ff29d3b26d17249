"""The basic RNN: a stacked LSTM over piano-roll frames with 88 key classifiers per step.

At step t the model scores frame t from the state after frames < t: the first frame is
scored from the initial (zero) state. Each key's classifier is a softmax over the model's
``key_states`` (2 reproduces the original 88 sigmoid units; 3 is off/held/struck), and the
keys of one frame are independent given the state.

With ``neighbour_keys`` > 0 each key's classifier also reads the previous frame around its
own key (a convolution over the keyboard, the same weights at every key), a skip connection
that lets the LSTM spend its units on harmony and form rather than on "this key was just on".
The previous frame then travels in the state, so state still chains exactly. 0 is the
original form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import N_KEYS, one_hot_states, run_lstm, sample_states


@dataclass
class BasicConfig:
    key_states: int = 2
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.3
    input_dropout: float = 0.0
    weight_drop: float = 0.0         # training: DropConnect on the LSTM's recurrent weights
    neighbour_keys: int = 0
    architecture: str = "basic"


class BasicRNN(nn.Module):
    def __init__(self, cfg: BasicConfig):
        super().__init__()
        self.cfg = cfg
        features = N_KEYS * (cfg.key_states - 1)
        self.input_dropout = nn.Dropout(cfg.input_dropout)
        self.lstm = nn.LSTM(features, cfg.hidden, cfg.layers, batch_first=True,
                            dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.out_dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, N_KEYS * cfg.key_states)
        r = cfg.neighbour_keys
        self.neighbours = nn.Conv1d(cfg.key_states - 1, cfg.key_states, 2 * r + 1, padding=r) if r else None

    def state_shapes(self) -> list[tuple[str, list[int]]]:
        """State tensors per batch row, as in model.json: h and c, each [layers, hidden], and
        the previous frame [88] when the classifiers read it."""
        shapes = [("h", [self.cfg.layers, self.cfg.hidden]), ("c", [self.cfg.layers, self.cfg.hidden])]
        return shapes + ([("prev", [N_KEYS])] if self.neighbours is not None else [])

    def initial_state(self, batch: int, device=None) -> tuple[torch.Tensor, ...]:
        shape = (self.cfg.layers, batch, self.cfg.hidden)                 # torch's LSTM layout
        state = (torch.zeros(shape, device=device), torch.zeros(shape, device=device))
        if self.neighbours is not None:
            state += (torch.zeros(batch, N_KEYS, dtype=torch.long, device=device),)
        return state

    def _scores(self, top: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        """Top-layer outputs (B, T, H) and previous frames (B, T, 88) -> logits (B, T, 88, K)."""
        logits = self.head(self.out_dropout(top)).view(*top.shape[:-1], N_KEYS, self.cfg.key_states)
        if self.neighbours is not None:
            B, T, _ = prev.shape
            x = one_hot_states(prev.unsqueeze(-1), self.cfg.key_states)       # (B, T, 88, K - 1)
            x = x.reshape(B * T, N_KEYS, -1).transpose(1, 2)                   # (B T, K - 1, 88)
            logits = logits + self.neighbours(x).transpose(1, 2).reshape(B, T, N_KEYS, -1)
        return logits

    def forward(self, frames: torch.Tensor, state=None, targets: torch.Tensor | None = None):
        """frames (B, T, 88) int64 -> (logits (B, T, 88, K) scoring frames[:, t] from the
        state before it, state after all T frames). Keys are independent given the state, so
        the scores do not depend on ``targets`` (accepted for the same call as EnDeCell)."""
        B, T, _ = frames.shape
        if state is None:
            state = self.initial_state(B, frames.device)
        x = self.input_dropout(one_hot_states(frames, self.cfg.key_states))   # (B, T, F)
        out, (h, c) = run_lstm(self.lstm, x, state[:2], self.cfg.weight_drop)    # (B, T, H)
        before = torch.cat([state[0][-1].unsqueeze(1), out[:, :-1]], dim=1)   # output before frame t
        if self.neighbours is None:
            return self._scores(before, None), (h, c)
        previous = torch.cat([state[2].unsqueeze(1), frames[:, :-1]], dim=1)  # frame before frame t
        return self._scores(before, previous), (h, c, frames[:, -1])

    def advance(self, frames: torch.Tensor, state=None):
        """The state after frames (B, T, 88), without scoring them (all a listener needs)."""
        if state is None:
            state = self.initial_state(frames.shape[0], frames.device)
        _, (h, c) = self.lstm(one_hot_states(frames, self.cfg.key_states), state[:2])
        return (h, c) if self.neighbours is None else (h, c, frames[:, -1])

    def predict(self, frames: torch.Tensor, state=None) -> torch.Tensor:
        """The most likely frame at each step given the true history: (B, T, 88) -> (B, T, 88)."""
        logits, _ = self.forward(frames, state)
        return logits.argmax(-1)

    def sample(self, state, noise: torch.Tensor, temperature=1.0):
        """Sample S frames autoregressively: noise (B, S, 88) uniform -> (frames (B, S, 88),
        logp (B,), state after them)."""
        frames, total = [], 0.0
        for s in range(noise.shape[1]):
            prev = state[2].unsqueeze(1) if self.neighbours is not None else None
            logits = self._scores(state[0][-1].unsqueeze(1), prev)             # (B, 1, 88, K)
            step, logp = sample_states(logits[:, 0], noise[:, s], temperature)
            frames.append(step)
            total = total + logp
            _, (h, c) = self.lstm(one_hot_states(step, self.cfg.key_states).unsqueeze(1), state[:2])
            state = (h, c) if self.neighbours is None else (h, c, step)
        return torch.stack(frames, 1), total, state
