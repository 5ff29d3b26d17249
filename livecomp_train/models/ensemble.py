"""Several trained EnDeCell runs as one model: each key's conditional probability the mean of
the runs' conditionals for that key.

EnDeCell writes a frame key by key, each key conditioned on the keys written below it, so
averaging the runs' conditionals key by key is again an exact autoregressive distribution
over frames:

    p(key_i | keys < i, history) = mean over runs of p_run(key_i | keys < i, history)

It is sampled the same way: each key drawn once from the mean conditional, and every run's
decoder told the draw (``sample_lockstep``). Independently trained runs disagree most where
each is unsure, and the mean there is better calibrated than either run: on JSB Chorales two
key-by-key runs of the same recipe average 0.12 nats a frame below either on validation
(``bench/mixture.py --ensemble``). Averaging per key beats mixing whole frames (each frame from
one run), because the runs may take turns within a frame.

The state is the runs' states side by side: the time LSTMs' h and c concatenated along the
hidden axis ([layers, sum of the runs' hidden sizes]), and the previous frame (and with a
lookback the last L frames) once, since every run heard the same frames. So an ensemble has
the state tensors of one EnDeCell, and its exported folder is read like any other.
"""

from __future__ import annotations

import torch
from torch import nn

from .endecell import EnDeCell
from .lockstep import mean_conditional, predict_lockstep, sample_lockstep

SHARED = ("key_states", "chunk", "lookback", "time_layers")   # what the runs must agree on


class Ensemble(nn.Module):
    """``members``: trained EnDeCell models that agree on ``SHARED``."""

    def __init__(self, members: list[EnDeCell]):
        super().__init__()
        if not members or not all(isinstance(m, EnDeCell) for m in members):
            raise ValueError("an ensemble averages EnDeCell runs; give one or more.")
        first = members[0].cfg
        if any(m.cfg.joint_keys > 1 for m in members):
            raise ValueError("an ensemble averages runs key by key; a run that draws keys jointly (--joint-keys) "
                             "cannot be one of its members.")
        for m in members[1:]:
            for name in SHARED:
                if getattr(m.cfg, name) != getattr(first, name):
                    raise ValueError(f"the runs of an ensemble must share {name}: one has {getattr(first, name)}, "
                                     f"another {getattr(m.cfg, name)}.")
        self.members = nn.ModuleList(members)
        self.cfg = first                                   # the settings the runs share
        self.sizes = [m.cfg.time_hidden for m in members]

    # -- state ------------------------------------------------------------------------------

    def state_shapes(self) -> list[tuple[str, list[int]]]:
        shapes = self.members[0].state_shapes()
        layers = self.cfg.time_layers
        return [("h", [layers, sum(self.sizes)]), ("c", [layers, sum(self.sizes)])] + shapes[2:]

    def initial_state(self, batch: int, device=None):
        return self._joined([m.initial_state(batch, device) for m in self.members])

    def _split(self, state) -> list:
        """The ensemble's state -> each run's (None stays None)."""
        if state is None:
            return [None] * len(self.members)
        h, c, *rest = state
        return [(hm, cm, *rest) for hm, cm in zip(h.split(self.sizes, -1), c.split(self.sizes, -1))]

    @staticmethod
    def _joined(states: list) -> tuple:
        _, _, *rest = states[0]
        return (torch.cat([s[0] for s in states], -1), torch.cat([s[1] for s in states], -1), *rest)

    # -- the model ----------------------------------------------------------------------------

    def forward(self, frames: torch.Tensor, state=None, targets: torch.Tensor | None = None):
        """As ``EnDeCell.forward``; the logits are the log of the runs' mean conditionals."""
        logits, after = zip(*(m(frames, s, targets) for m, s in zip(self.members, self._split(state))))
        return mean_conditional(list(logits)), self._joined(list(after))

    def advance(self, frames: torch.Tensor, state=None):
        return self._joined([m.advance(frames, s) for m, s in zip(self.members, self._split(state))])

    def predict(self, frames: torch.Tensor, state=None) -> torch.Tensor:
        return predict_lockstep(list(self.members), self._split(state), frames, mean_conditional)

    def sample(self, state, noise: torch.Tensor, temperature=1.0):
        """As ``EnDeCell.sample``: each key drawn from the runs' mean conditional (tempered)."""
        frames, logp, after = sample_lockstep(list(self.members), self._split(state), noise, temperature,
                                              mean_conditional)
        return frames, logp, self._joined(after)

