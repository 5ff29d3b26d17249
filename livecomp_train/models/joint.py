"""Joint keys (``EnDeCellConfig.joint_keys``): a group of keys drawn as one choice among all
their states, reported as each key's conditional, and a per-key head turned into the joint head
that draws the same."""

from __future__ import annotations

import torch


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
