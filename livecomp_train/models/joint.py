"""Joint keys (``EnDeCellConfig.joint_keys``): a group of keys drawn as one choice among all
their states, reported as each key's conditional, and a per-key head turned into the joint head
that draws the same."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def below_groups_mask(cfg, per_group: int) -> torch.Tensor:
    """A causal mask (groups per_group, chunk (K-1)) for a map from the codes of a chunk's keys to
    ``per_group`` outputs for each of its groups: group q reads the codes of the groups below it."""
    k1 = cfg.key_states - 1
    reads = torch.arange(cfg.chunk * k1) // (cfg.joint_keys * k1)             # the group each code column is of
    writes = torch.arange(cfg.groups * per_group) // per_group                # the group each output serves
    return (reads.unsqueeze(0) < writes.unsqueeze(1)).float()


class GroupLink(nn.Module):
    """What each group of a chunk is told of the groups drawn below it, beyond the linear link:
    a layer of ``link_hidden`` units that reads the decoder's vector for the chunk and the codes
    of the keys drawn below the group (a causal mask), and adds its output to the group's scores.

    The linear link adds the same scores for a key drawn below whatever the music around it, so
    it cannot say both "a chord's key struck: strike its neighbours" and "a melody note struck:
    no second one beside it". This layer reads where the chunk is and what it holds, so it can.
    Its output weights start at zero: a model given one starts as the model without it."""

    def __init__(self, cfg):
        super().__init__()
        m = cfg.link_hidden
        self.groups, self.units = cfg.groups, m
        self.context = nn.Linear(cfg.dec_hidden, m)
        self.codes = nn.Linear(cfg.chunk * (cfg.key_states - 1), cfg.groups * m, bias=False)
        self.out = nn.Parameter(torch.zeros(cfg.groups, m, cfg.classes))
        self.register_buffer("mask", below_groups_mask(cfg, m), persistent=False)

    def forward(self, vector: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """vector (..., dec_hidden), codes of the chunk's keys (..., chunk (K-1)) -> scores to
        add to its groups' (..., groups K^n)."""
        below = F.linear(codes, self.codes.weight * self.mask).view(*codes.shape[:-1], self.groups, self.units)
        hidden = torch.relu(self.context(vector).unsqueeze(-2) + below)            # (..., G, m)
        return (hidden.unsqueeze(-2) @ self.out).squeeze(-2).flatten(-2)            # (..., G K^n)


def group_states(classes: torch.Tensor, key_states: int, keys: int) -> torch.Tensor:
    """Classes of a joint draw of ``keys`` keys (...) int64 -> their key states (..., keys), the
    lowest key first: class = sum_i state_i K^i."""
    powers = key_states ** torch.arange(keys, device=classes.device)
    return torch.div(classes.unsqueeze(-1), powers, rounding_mode="floor") % key_states


def key_logits(joint: torch.Tensor, states: torch.Tensor, key_states: int) -> torch.Tensor:
    """Scores of a joint draw of n keys -> each key's conditional given the keys below it.

    joint (..., K^n): unnormalised log-probabilities of the n keys' states together, class
    ``sum_i state_i K^i`` (key 0 the lowest); states (..., n) the true states. Returns (..., n, K):
    for key i, log p(key i = k, keys < i as given) up to a constant, the keys above i summed
    out, so a log-softmax over K is key i's conditional and the sum over keys of the picked
    ones is the log-probability of the n keys together."""
    n, K = states.shape[-1], key_states
    x = joint.reshape(*joint.shape[:-1], *([K] * n))          # dims state_{n-1}, ..., state_0
    out = []
    for i in range(n):                                         # x: dims state_{n-1} .. state_i
        m = torch.logsumexp(x, dim=tuple(range(-(n - i), -1))) if n - i > 1 else x
        out.append(m)                                          # (..., K): key i's scores
        if i + 1 < n:
            pick = states[..., i].reshape(*states.shape[:-1], *([1] * (n - i)))
            x = x.gather(-1, pick.expand(*x.shape[:-1], 1)).squeeze(-1)
    return torch.stack(out, -2)


def joint_head(weight: torch.Tensor, bias: torch.Tensor, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """A per-key head (chunk K, H) and its bias -> the joint head of ``cfg`` (groups K^n, H) that
    scores each group's states as the sum of its keys' scores: the same distribution, each key
    independent, from which a model with ``joint_keys`` learns how the keys go together."""
    K, n = cfg.key_states, cfg.joint_keys
    classes = torch.arange(cfg.classes)
    states = group_states(classes, K, n)                                                   # (classes, n)
    pick = torch.zeros(cfg.groups * cfg.classes, cfg.chunk * K)
    for q in range(cfg.groups):
        for i in range(n):
            pick[q * cfg.classes + classes, (q * n + i) * K + states[:, i]] = 1.0
    return pick @ weight, pick @ bias
