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

With ``mix_shifts`` m > 0 the model is a mixture of 2m + 1 transposed copies of itself, the
same weights in each: copy s hears everything transposed by s semitones (keys pushed off the
keyboard are not heard) and its scores are moved back by s (a key it cannot reach is off for
certain). Each frame is drawn from one copy chosen uniformly, so p(frame | history) is the mean
of the copies' probabilities, a distribution over whole frames in which keys are no longer
independent: the copies disagree where the chord goes, and the mixture keeps each copy's
chord whole instead of averaging them key by key. A model trained with transposition
(``--transpose``) is nearly the same at every shift, so its copies are a cheap ensemble. The
scores it gives are the mixture's per-key conditionals, key k given the keys below it in the
same frame (as EnDeCell's), so the log-likelihood of a known frame is exact. The copies' states
travel side by side: h and c are [layers, (2m + 1) hidden].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..configs import BasicConfig
from .common import N_KEYS, one_hot_states, run_lstm, sample_states, tempered_log_prob, transposed

OFF_FOR_CERTAIN = -1e4      # a copy's score for "on" at a key it cannot reach


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

    @property
    def shifts(self) -> list[int]:
        """The copies' transpositions in semitones: [0] for the plain model."""
        m = self.cfg.mix_shifts
        return list(range(-m, m + 1))

    def state_shapes(self) -> list[tuple[str, list[int]]]:
        """State tensors per batch row, as in model.json: h and c, each [layers, hidden] (the
        copies side by side for a mixture), and the previous frame [88] when the classifiers read it."""
        width = len(self.shifts) * self.cfg.hidden
        shapes = [("h", [self.cfg.layers, width]), ("c", [self.cfg.layers, width])]
        return shapes + ([("prev", [N_KEYS])] if self.neighbours is not None else [])

    def initial_state(self, batch: int, device=None) -> tuple[torch.Tensor, ...]:
        shape = (self.cfg.layers, batch, len(self.shifts) * self.cfg.hidden)    # torch's LSTM layout
        state = (torch.zeros(shape, device=device), torch.zeros(shape, device=device))
        if self.neighbours is not None:
            state += (torch.zeros(batch, N_KEYS, dtype=torch.long, device=device),)
        return state

    def _copies(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (B, ..., 88) -> (B n, ..., 88): each row as each copy hears it, copy s
        transposed up by s semitones, keys pushed off the keyboard dropped."""
        if len(self.shifts) == 1:
            return frames
        return torch.stack([transposed(frames, s) for s in self.shifts], 1).flatten(0, 1)

    def _originals(self, logits: torch.Tensor) -> torch.Tensor:
        """The copies' scores (B n, ..., 88, K) on their own keys -> (B, n, ..., 88, K) on the
        heard keys: copy s's key k + s scores key k; a key the copy cannot reach is off for certain."""
        n = len(self.shifts)
        logits = logits.unflatten(0, (-1, n))
        off = logits.new_tensor([0.0] + [OFF_FOR_CERTAIN] * (self.cfg.key_states - 1))
        off = off.expand_as(logits[..., :1, :])                                 # (B, n, ..., 1, K)
        out = []
        for i, s in enumerate(self.shifts):
            copy = logits[:, i]
            if s >= 0:
                out.append(torch.cat([copy[..., s:, :]] + [off[:, i]] * s, -2))
            else:
                out.append(torch.cat([off[:, i]] * -s + [copy[..., :N_KEYS + s, :]], -2))
        return torch.stack(out, 1)

    def _lstm_state(self, state):
        """(h, c) with the copies side by side -> torch's layout with a row per copy."""
        return tuple(t.reshape(self.cfg.layers, -1, self.cfg.hidden) for t in state[:2])

    def _merged(self, h: torch.Tensor, c: torch.Tensor):
        return tuple(t.reshape(self.cfg.layers, -1, len(self.shifts) * self.cfg.hidden) for t in (h, c))

    def _scores(self, top: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        """Top-layer outputs (B, T, H) and previous frames (B, T, 88) -> logits (B, T, 88, K)."""
        logits = self.head(self.out_dropout(top)).view(*top.shape[:-1], N_KEYS, self.cfg.key_states)
        if self.neighbours is not None:
            B, T, _ = prev.shape
            x = one_hot_states(prev.unsqueeze(-1), self.cfg.key_states)       # (B, T, 88, K - 1)
            x = x.reshape(B * T, N_KEYS, -1).transpose(1, 2)                   # (B T, K - 1, 88)
            logits = logits + self.neighbours(x).transpose(1, 2).reshape(B, T, N_KEYS, -1)
        return logits

    def _copy_scores(self, frames: torch.Tensor, state):
        """The copies' scores on their own keys, scoring frames[:, t] from the state before it:
        frames (B, T, 88) -> (logits (B n, T, 88, K), state after); for the plain model (n = 1)
        these are its scores."""
        B, T, _ = frames.shape
        if state is None:
            state = self.initial_state(B, frames.device)
        x = self.input_dropout(one_hot_states(self._copies(frames), self.cfg.key_states))   # (B n, T, F)
        h0, c0 = self._lstm_state(state)
        out, (h, c) = run_lstm(self.lstm, x, (h0, c0), self.cfg.weight_drop)   # (B n, T, H)
        before = torch.cat([h0[-1].unsqueeze(1), out[:, :-1]], dim=1)           # output before frame t
        after = self._merged(h, c)
        if self.neighbours is None:
            return self._scores(before, None), after
        previous = torch.cat([state[2].unsqueeze(1), frames[:, :-1]], dim=1)  # frame before frame t
        return self._scores(before, self._copies(previous)), after + (frames[:, -1],)

    def copy_log_probs(self, frames: torch.Tensor, state):
        """Each copy's log-probabilities of every key state, on the heard keys, scoring
        frames[:, t] from the state before it: frames (B, T, 88) -> ((B, n, T, 88, K), state after)."""
        logits, after = self._copy_scores(frames, state)
        return F.log_softmax(self._originals(logits).float(), -1), after

    def forward(self, frames: torch.Tensor, state=None, targets: torch.Tensor | None = None):
        """frames (B, T, 88) int64 -> (logits (B, T, 88, K) scoring frames[:, t] from the
        state before it, state after all T frames). The plain model's keys are independent given
        the state, so its scores do not depend on ``targets`` (accepted for the same call as
        EnDeCell); a mixture's are its per-key conditionals, key k given frames[:, t]'s keys below k."""
        if len(self.shifts) == 1:
            return self._copy_scores(frames, state)
        logp, after = self.copy_log_probs(frames, state)                     # (B, n, T, 88, K)
        n = logp.shape[1]
        true = logp.gather(-1, frames.unsqueeze(1).expand(-1, n, -1, -1).unsqueeze(-1)).squeeze(-1)
        below = true.cumsum(-1) - true                                          # log p of the keys below, per copy
        return torch.logsumexp(below.unsqueeze(-1) + logp, 1), after

    def advance(self, frames: torch.Tensor, state=None):
        """The state after frames (B, T, 88), without scoring them (all a listener needs)."""
        if state is None:
            state = self.initial_state(frames.shape[0], frames.device)
        heard = self._copies(frames)
        _, (h, c) = self.lstm(one_hot_states(heard, self.cfg.key_states), self._lstm_state(state))
        after = self._merged(h, c)
        return after if self.neighbours is None else after + (frames[:, -1],)

    def predict(self, frames: torch.Tensor, state=None) -> torch.Tensor:
        """The most likely frame at each step given the true history: (B, T, 88) -> (B, T, 88);
        a mixture's is written greedily key by key, each key its most likely state given the
        keys chosen below it."""
        if len(self.shifts) == 1:
            logits, _ = self.forward(frames, state)
            return logits.argmax(-1)
        logp, _ = self.copy_log_probs(frames, state)                         # (B, n, T, 88, K)
        below = torch.zeros(logp.shape[:3], device=logp.device)                 # (B, n, T)
        keys = []
        for k in range(N_KEYS):
            best = torch.logsumexp(below.unsqueeze(-1) + logp[..., k, :], 1).argmax(-1)     # (B, T)
            below = below + logp[..., k, :].gather(-1, best.unsqueeze(1).expand_as(below).unsqueeze(-1)).squeeze(-1)
            keys.append(best)
        return torch.stack(keys, -1)

    def choose_copy(self, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A mixture's draw of its copy from a frame's noise (..., 88): the first key's uniform u
        picks copy floor(u n) (an index into ``shifts``), and that key's own draw takes
        u n - floor(u n), uniform again and independent of the choice. -> (copy (...) int64,
        noise for the keys (..., 88))."""
        n = len(self.shifts)
        u = noise[..., 0] * n
        copy = u.floor().clamp(max=n - 1)
        return copy.long(), torch.cat([(u - copy).unsqueeze(-1), noise[..., 1:]], -1)

    def sample(self, state, noise: torch.Tensor, temperature=1.0):
        """Sample S frames autoregressively: noise (B, S, 88) uniform -> (frames (B, S, 88),
        logp (B,), state after them). A mixture draws each frame from one copy (``choose_copy``);
        temperature divides each copy's scores."""
        frames, total = [], 0.0
        n = len(self.shifts)
        for s in range(noise.shape[1]):
            h, c = self._lstm_state(state)
            prev = self._copies(state[2]).unsqueeze(1) if self.neighbours is not None else None
            logits = self._scores(h[-1].unsqueeze(1), prev)[:, 0]                   # (B n, 88, K)
            step_noise = noise[:, s]
            if n == 1:
                step, logp = sample_states(logits, step_noise, temperature)
            else:
                logits = self._originals(logits)                                    # (B, n, 88, K)
                copy, step_noise = self.choose_copy(step_noise)
                chosen = (F.one_hot(copy, n).to(logits.dtype)[..., None, None] * logits).sum(1)
                step, _ = sample_states(chosen, step_noise, temperature)
                each = tempered_log_prob(logits, step.unsqueeze(1).expand(-1, n, -1), temperature)
                logp = torch.logsumexp(each, 1) - math.log(n)
            frames.append(step)
            total = total + logp
            code = one_hot_states(self._copies(step), self.cfg.key_states).unsqueeze(1)
            _, (h, c) = self.lstm(code, (h, c))
            state = self._merged(h, c)
            if self.neighbours is not None:
                state += (step,)
        return torch.stack(frames, 1), total, state
