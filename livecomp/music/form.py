"""Form: when an answer's bar brings back the call's bar at the same place in the phrase.

Real music repeats itself at the phrase: a folk tune's second phrase starts as its first did, and
its sixth bar is its second bar again in more than a third of the Nottingham tunes. The models
cannot learn this (they see one bar back, not a phrase), so the performer carries a small learnt
model of form: a logistic regression on features of the call (``repeat_features``), trained on
the real music a model learnt from (``bench/musicality.py --gate``), that gives for answer bar j
the probability that the composer's bar j of the answer repeats bar j of the call. The performer
draws against that probability, so its answer bars repeat the call about as often as the
composers' own next bars do in the music it learnt from (the gate's mean probability against the
real share, on calls it never saw: ``bench/musicality.py --gate``).

Everything here reads only the call and the answer so far: no judge, no measure of the answer
chooses anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .roll import HELD, OFF, STRUCK, onsets_of

FEATURES = ("first", "second", "third", "later", "after_copy", "call_bars", "bar_repeats", "bar_repeats_2",
            "call_repeats", "bar_notes", "call_density", "eighths", "in_scale")


def fresh(bar: np.ndarray) -> np.ndarray:
    """A bar as it sounds on its own: the keys held into its first step struck there."""
    out = np.array(bar, copy=True)
    if len(out):
        out[0][out[0] == HELD] = STRUCK
    return out


def same_bar(a: np.ndarray, b: np.ndarray) -> bool:
    """Two bars that sound the same from their first step (a key held into one and struck in the
    other at its first step counts as the same)."""
    return a.shape == b.shape and bool(np.array_equal(fresh(a), fresh(b)))


def phrase_bars(call: np.ndarray, steps_per_bar: int, first_step: int) -> list[np.ndarray]:
    """The bars of a call's phrase: cut on the grid's bar lines from the one nearest the call's
    first step (``first_step``: an upbeat belongs to the bar before the phrase) to the first at or
    after its end (the call's last bar filled with silence), at least one bar."""
    start = (first_step + steps_per_bar // 2) // steps_per_bar * steps_per_bar
    end = -(-(first_step + len(call)) // steps_per_bar) * steps_per_bar
    out = []
    for k in range(max((end - start) // steps_per_bar, 1)):
        a = start + k * steps_per_bar - first_step
        bar = np.zeros((steps_per_bar, call.shape[1]), call.dtype)
        lo, hi = max(a, 0), min(a + steps_per_bar, len(call))
        if hi > lo:
            bar[lo - a:hi - a] = call[lo:hi]
        out.append(bar)
    return out


def repeat_features(bars: list[np.ndarray], j: int, after_copy: bool, steps_per_beat: int,
                    in_scale: float) -> np.ndarray:
    """The features (``FEATURES``) of answer bar ``j`` bringing back the call's bar ``j`` of its
    phrase ``bars`` (frames of whole bars), after an answer bar that did (``after_copy``) or not;
    ``in_scale``: the share of the call's onsets in its key (``CallStyle.own_scale``)."""
    hits = [onsets_of(b) for b in bars]
    notes = np.array([h.sum() for h in hits], np.float64)
    sounding = [k for k in range(len(bars)) if notes[k]]
    equal = {(a, b) for a in sounding for b in sounding if a < b and same_bar(bars[a], bars[b])}
    twin = {a for pair in equal for a in pair}
    positions = np.concatenate([np.nonzero(h)[0] for h in hits]) if notes.sum() else np.zeros(0)
    eighth = max(steps_per_beat // 2, 1)
    return np.array([
        j == 0, j == 1, j == 2, j >= 3, after_copy and j > 0,
        math.log2(len(bars)),
        j in twin,
        (j - 2, j) in equal or (j, j + 2) in equal,
        len(twin) / max(len(sounding), 1),
        math.log1p(notes[j]),
        math.log1p(notes.sum() / len(bars)),
        float((positions % eighth == 0).mean()) if positions.size else 0.0,
        in_scale], np.float64)


@dataclass(frozen=True)
class RepeatGate:
    """A logistic regression on ``repeat_features`` (standardised by ``mean`` and ``scale``)."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, features: np.ndarray) -> float:
        z = (np.asarray(features, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return float(1.0 / (1.0 + math.exp(-(float(z @ np.asarray(self.weights)) + self.bias))))

    def to_json(self) -> dict:
        return {"features": list(FEATURES), "mean": [round(float(v), 6) for v in self.mean],
                "scale": [round(float(v), 6) for v in self.scale],
                "weights": [round(float(v), 6) for v in self.weights], "bias": round(float(self.bias), 6)}

    @classmethod
    def from_json(cls, table) -> "RepeatGate":
        """A gate as model.json keeps it (``repeat_gate``); a ValueError says in one sentence what
        is wrong."""
        if not isinstance(table, dict) or list(table.get("features", [])) != list(FEATURES):
            raise ValueError(f"repeat_gate must name the features {', '.join(FEATURES)} in that order")
        parts = []
        for name in ("mean", "scale", "weights"):
            values = table.get(name)
            if not isinstance(values, list) or len(values) != len(FEATURES) or \
                    not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise ValueError(f"repeat_gate's {name} must be {len(FEATURES)} finite numbers")
            parts.append(tuple(float(v) for v in values))
        if not all(v > 0 for v in parts[1]):
            raise ValueError("repeat_gate's scale must be positive")
        bias = table.get("bias")
        if not isinstance(bias, (int, float)) or not math.isfinite(bias):
            raise ValueError("repeat_gate's bias must be a finite number")
        return cls(*parts, float(bias))


class Repeats:
    """Which bars of one answer bring back the call's bar at the same place in its phrase (answer
    bar j the phrase's bar j, ``phrase_bars``): each bar drawn in turn against the gate's
    probability (``draw``)."""

    def __init__(self, call: np.ndarray, steps_per_bar: int, steps_per_beat: int, first_step: int,
                 in_scale: float, gate: RepeatGate | None):
        self.bars = phrase_bars(call, steps_per_bar, first_step)
        self.steps_per_beat, self.in_scale, self.gate = steps_per_beat, in_scale, gate
        self.after_copy = False

    def probability(self, j: int) -> float:
        """The probability that answer bar ``j`` brings back the call's bar ``j``, after the bars drawn."""
        if self.gate is None or j >= len(self.bars) or not onsets_of(self.bars[j]).any():
            return 0.0
        return self.gate.probability(repeat_features(self.bars, j, self.after_copy, self.steps_per_beat,
                                                     self.in_scale))

    def draw(self, j: int, rng: np.random.Generator, before: np.ndarray | None = None) -> np.ndarray | None:
        """The call's bar ``j`` to play as answer bar ``j``, with the probability the gate gives
        (a key it holds into its first step that the last frame of the answer ``before`` it does
        not sound is struck there), else None."""
        p = self.probability(j)
        self.after_copy = bool(p > 0 and rng.random() < p)
        if not self.after_copy:
            return None
        bar = np.array(self.bars[j], copy=True)
        sounding = before[-1] > OFF if before is not None and len(before) else np.zeros(bar.shape[1], bool)
        bar[0][(bar[0] == HELD) & ~sounding] = STRUCK
        return bar


def fit_gate(x: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = 1e-3) -> RepeatGate:
    """The logistic regression of labels ``y`` (N,) on features ``x`` (N, F), each row weighing
    ``weights``, by Newton's method with an L2 penalty ``l2`` on the standardised weights."""
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = np.c_[(x - mean) / scale, np.ones(len(x))]
    w, total = np.zeros(z.shape[1]), weights.sum()
    penalty = l2 * np.r_[np.ones(z.shape[1] - 1), 0.0]
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-z @ w))
        grad = z.T @ (weights * (p - y)) / total + penalty * w
        hess = (z * (weights * p * (1 - p))[:, None]).T @ z / total + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return RepeatGate(tuple(mean), tuple(scale), tuple(w[:-1]), float(w[-1]))


# The default model's gate (``bench/musicality.py --gate --models piano``): for a model whose
# model.json has none.
REPEAT_GATE = RepeatGate(
    mean=(
        0.227649, 0.228042, 0.142733, 0.401576, 0.076421, 2.346718, 0.069021, 0.023316, 0.069021,
        2.694577, 2.715123, 0.854871, 0.938093),
    scale=(
        0.419315, 0.41957, 0.3498, 0.490217, 0.265671, 0.753557, 0.253489, 0.150906, 0.178042, 0.501043,
        0.444112, 0.173997, 0.079043),
    weights=(
        0.257566, 0.344737, -0.199639, -0.372914, 1.13137, 0.693837, 0.091109, -0.008228, 0.170856,
        0.222084, -0.666147, 0.324587, 0.286318),
    bias=-3.306339)
