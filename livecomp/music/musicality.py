"""How a continuation relates to its call: the measures ``bench/musicality.py`` reports, and the
call's style the performer uses to choose among candidate bars.

Everything is counted on onsets (a key struck, or off -> on) of frames of key states
``(steps, 88)``. Positions in the bar come from absolute grid steps (``first_step`` is the step
of the first frame; bar lines fall on multiples of ``steps_per_bar``).

- key: histogram intersection of the two pitch-class profiles (onsets per pitch class, each
  normalised to sum 1), ``sum(min(p, q))``: 1 = the same use of the 12 pitch classes.
- rhythm: the same intersection of onset-position-in-bar profiles.
- density: continuation onsets per bar / call onsets per bar.
- register: |mean onset pitch of the continuation - that of the call|, semitones.
- silent: share of continuation bars without an onset.
- echo: share of continuation bars that repeat a bar of the call (the same frames, at any
  transposition); bars without an onset are never echoes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .roll import LOW_KEY, N_KEYS, onsets_of

# What one unit of agreement with the call is worth against the model's log-probability of a
# bar, in nats, when the performer chooses among candidates (bench/musicality.py --fit-weight).
# Infinite: agreement alone decides, the log-probability only breaks ties. Each candidate is a
# fair sample of the model already; adding its log-probability prefers the sparsest bars (the
# likeliest bar of 16 has about half the notes of real music: docs/figures.md, "The judge").
FIT_WEIGHT_NATS = math.inf
# The weight of each term of a candidate's fit (see ``CallStyle``).
FIT_TERMS = {"key": 6.0, "scale": 4.0, "rhythm": 6.0, "register": 1.0, "density": 1.0}
HIGHER_AGREES = ("key", "scale", "rhythm", "groove")    # the terms that grow with agreement (the others: distances)
# How far from its call an answer may go: the value of each term that one real continuation in
# ten (FLOOR_SHARE) falls short of (key, scale, rhythm, groove) or goes past (register, density), for the
# first bar after a 4-bar call (1) and the first two (2), by how much of the call itself keeps to
# its key (``CallStyle.own_scale`` below 0.9, 0.9 to 0.97, above). Measured on calls from bars 1,
# 9, 17 and 25 of the pieces the default model learnt from (the training splits of piano-midi.de
# + Mutopia, POP909 and Nottingham, each collection weighing the same): printed by
# `python bench/musicality.py --floors`. A model may carry its own, measured the same way on the
# data it learnt from (model.json's fit_floors; ``floors_from_json``): every shipped one does.
FLOOR_SHARE = 0.1
FIT_FLOORS: dict[int, tuple[tuple[float, dict[str, float]], ...]] = {
    1: ((0.9, {"key": 0.356, "scale": 0.583, "rhythm": 0.639, "register": 0.908, "density": 0.652, "groove": 0.522}),
        (0.97, {"key": 0.391, "scale": 0.769, "rhythm": 0.657, "register": 0.742, "density": 0.585, "groove": 0.556}),
        (math.inf, {"key": 0.422, "scale": 0.909, "rhythm": 0.664, "register": 0.718, "density": 0.642,
                    "groove": 0.587})),
    2: ((0.9, {"key": 0.445, "scale": 0.603, "rhythm": 0.692, "register": 0.823, "density": 0.57, "groove": 0.562}),
        (0.97, {"key": 0.524, "scale": 0.8, "rhythm": 0.734, "register": 0.644, "density": 0.509, "groove": 0.604}),
        (math.inf, {"key": 0.567, "scale": 0.911, "rhythm": 0.742, "register": 0.606, "density": 0.558,
                    "groove": 0.604})),
}


def floors_from_json(table) -> dict[int, tuple[tuple[float, dict[str, float]], ...]]:
    """A model's own floors as model.json keeps them (``fit_floors``: for "1" and "2" bars, a list
    of [upper bound of the call's own share in its key, or null for none, {term: value}]), in
    the form of ``FIT_FLOORS``; a ValueError says in one sentence what is wrong."""
    terms = set(FIT_FLOORS[1][0][1])
    if not isinstance(table, dict) or set(table) != {"1", "2"}:
        raise ValueError('fit_floors must have the floors of "1" and "2" bars')
    out = {}
    for bars, rows in table.items():
        if not isinstance(rows, list) or not rows or not all(isinstance(r, list) and len(r) == 2 for r in rows):
            raise ValueError(f"fit_floors[{bars!r}] must be a list of [bound, floors] pairs")
        uppers = [math.inf if r[0] is None else r[0] for r in rows]
        if not all(isinstance(u, (int, float)) and not isinstance(u, bool) for u in uppers) \
                or uppers != sorted(set(uppers)) or uppers[-1] != math.inf:
            raise ValueError(f"fit_floors[{bars!r}]: the bounds must rise and end with null")
        for _, floors in rows:
            if not isinstance(floors, dict) or set(floors) != terms or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in floors.values()):
                raise ValueError(f"fit_floors[{bars!r}]: each floors must give a number for each of {sorted(terms)}")
        out[int(bars)] = tuple((u, {k: float(v) for k, v in r[1].items()}) for u, r in zip(uppers, rows))
    return out


def floors_to_json(table: dict) -> dict:
    """``FIT_FLOORS``'s form as model.json keeps it (``floors_from_json``)."""
    return {str(bars): [[None if math.isinf(u) else u, dict(f)] for u, f in rows] for bars, rows in table.items()}


# Krumhansl and Kessler's key profiles (1982): how well each pitch class fits a major and a minor key on C.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_MAJOR_SCALE = np.isin(np.arange(12), [0, 2, 4, 5, 7, 9, 11])
_MINOR_SCALE = np.isin(np.arange(12), [0, 2, 3, 5, 7, 8, 10, 11])      # natural minor and its leading tone
_KEY_PROFILES = np.array([np.roll(p, t) for t in range(12) for p in (_MAJOR_PROFILE, _MINOR_PROFILE)])
_KEY_PROFILES = (_KEY_PROFILES - _KEY_PROFILES.mean(1, keepdims=True)) / _KEY_PROFILES.std(1, keepdims=True)  # (24, 12)
_KEY_SCALES = np.array([np.roll(s, t) for t in range(12) for s in (_MAJOR_SCALE, _MINOR_SCALE)])


def scale_of(pitch_classes: np.ndarray) -> np.ndarray:
    """The pitch classes (12,) bool of the key a pitch-class profile fits best (Krumhansl-Schmuckler:
    the highest correlation with the 24 rotated key profiles); a few notes of a triad are enough
    to tell C major's D, F, A and B from its chromatic neighbours."""
    if pitch_classes.sum() == 0 or np.ptp(pitch_classes) == 0:
        return np.ones(12, bool)
    z = (pitch_classes - pitch_classes.mean()) / pitch_classes.std()
    return _KEY_SCALES[int(np.argmax(_KEY_PROFILES @ z))]


_PITCH = np.arange(N_KEYS, dtype=np.float64) + LOW_KEY
_PITCH_CLASS = np.eye(12)[(np.arange(N_KEYS) + LOW_KEY) % 12]                   # (88, 12)


def _overlaps(profile: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``overlap(profile, row)`` for each row of ``rows`` (K, n)."""
    total, sums = profile.sum(), rows.sum(1, keepdims=True)
    if total == 0:
        return np.zeros(len(rows))
    return np.minimum(profile / total, rows / np.maximum(sums, 1e-12)).sum(1) * (sums[:, 0] > 0)


def pitch_class_profile(frames: np.ndarray) -> np.ndarray:
    """Onsets per pitch class (12,) of frames (steps, 88)."""
    per_key = onsets_of(frames).sum(0)
    return np.bincount((np.arange(N_KEYS) + LOW_KEY) % 12, weights=per_key, minlength=12)


def position_profile(frames: np.ndarray, steps_per_bar: int, first_step: int = 0) -> np.ndarray:
    """Onsets per position in the bar (steps_per_bar,) of frames (steps, 88) starting at ``first_step``."""
    per_step = onsets_of(frames).sum(1)
    positions = (first_step + np.arange(len(frames))) % steps_per_bar
    return np.bincount(positions, weights=per_step, minlength=steps_per_bar)


def overlap(p: np.ndarray, q: np.ndarray) -> float:
    """Histogram intersection of two count profiles, each normalised to sum 1 (0 when either is empty)."""
    sp, sq = p.sum(), q.sum()
    if sp == 0 or sq == 0:
        return 0.0
    return float(np.minimum(p / sp, q / sq).sum())


def mean_pitch(frames: np.ndarray) -> float | None:
    """Mean MIDI pitch of the onsets, or None without any."""
    keys = np.nonzero(onsets_of(frames))[1]
    return float(keys.mean()) + LOW_KEY if keys.size else None


def bar_onsets(frames: np.ndarray, steps_per_bar: int) -> np.ndarray:
    """Onsets in each whole bar of frames (bars,)."""
    bars = len(frames) // steps_per_bar
    return onsets_of(frames[:bars * steps_per_bar]).reshape(bars, -1).sum(1)


def transposition_free(frames: np.ndarray) -> bytes | None:
    """Frames shifted down to their lowest sounding key, as bytes: equal for two stretches of
    music that are the same at some transposition (None when nothing sounds)."""
    sounding = np.flatnonzero(np.asarray(frames).any(0))
    if not sounding.size:
        return None
    out = np.zeros_like(frames, dtype=np.uint8)
    out[:, :N_KEYS - sounding[0]] = frames[:, sounding[0]:]
    return out.tobytes()


def _call_bars(call: np.ndarray, steps_per_bar: int, first_step: int) -> set:
    """The call's whole bars with an onset (cut on the grid's bar lines), transposition-free."""
    lead = (-first_step) % steps_per_bar
    bars = (call[s:s + steps_per_bar] for s in range(lead, len(call) - steps_per_bar + 1, steps_per_bar))
    return {transposition_free(bar) for bar in bars if onsets_of(bar).any()}


def echo(continuation: np.ndarray, call: np.ndarray, steps_per_bar: int, first_step: int = 0) -> float:
    """Share of the continuation's bars whose frames repeat a bar of the call at any transposition.

    ``continuation`` starts on a bar line; the call's bars are cut on the grid's bar lines
    (``first_step`` is the call's first step). Bars without an onset are never echoes."""
    call_bars = _call_bars(call, steps_per_bar, first_step)
    bars = [continuation[b * steps_per_bar:(b + 1) * steps_per_bar] for b in range(len(continuation) // steps_per_bar)]
    if not bars:
        return 0.0
    return sum(onsets_of(bar).any() and transposition_free(bar) in call_bars for bar in bars) / len(bars)


def measures(call: np.ndarray, continuation: np.ndarray, steps_per_bar: int, call_first_step: int = 0) -> dict:
    """The measures of one (call, continuation) pair. The continuation starts on a bar line and
    holds whole bars; ``call_first_step`` places the call on the grid."""
    bars = max(len(continuation) // steps_per_bar, 1)
    call_bars = max(len(call) / steps_per_bar, 1e-9)
    call_notes = onsets_of(call).sum()
    cont_notes = onsets_of(continuation).sum()
    call_pitch, cont_pitch = mean_pitch(call), mean_pitch(continuation)
    return {
        "key": overlap(pitch_class_profile(call), pitch_class_profile(continuation)),
        "rhythm": overlap(position_profile(call, steps_per_bar, call_first_step),
                          position_profile(continuation, steps_per_bar)),
        "density": float((cont_notes / bars) / (call_notes / call_bars)) if call_notes else float("nan"),
        "register": abs(cont_pitch - call_pitch) if cont_pitch is not None and call_pitch is not None else float("nan"),
        "silent": float((bar_onsets(continuation, steps_per_bar) == 0).mean()),
        "echo": echo(continuation, call, steps_per_bar, call_first_step),
    }


@dataclass
class CallStyle:
    """What a call sounds like, to choose the candidate bar of an answer that continues it best.

    A candidate's fit is its agreement with the call in the terms ``measures`` uses, each
    weighted by ``FIT_TERMS``: key overlap, the share of its onsets in the key the call fits best
    (``scale_of``), rhythm overlap, minus the distance of its mean and spread of pitch from the
    call's (per 12 semitones) and |log2 of its density against the call's|; a bar that repeats a
    bar of the call (at any transposition) is not chosen while another candidate is left.

    ``choose`` takes the first candidate sampled that is no further from the call in any term
    than nine real continuations in ten (``FIT_FLOORS``): the best fit of several candidates
    agrees with its call more than real music does (its harmony stays where the call's was,
    where the composer's moves on), so agreement screens the candidates and the model's own
    sampling chooses among those left. ``floors=False`` gives the previous choice: the best by
    ``weight`` nats per unit of fit added to each candidate's log-probability.
    """

    pitch_classes: np.ndarray          # (12,) onsets per pitch class
    scale: np.ndarray                  # (12,) the pitch classes of the key the call fits best
    positions: np.ndarray              # (steps_per_bar,) onsets per position in the bar
    pitch: float | None                # mean onset pitch
    spread: float                      # standard deviation of the onset pitches
    per_bar: float                     # onsets per bar
    bars: set                          # the call's bars with an onset, transposition-free (see ``echo``)
    steps_per_bar: int
    own_scale: float = 1.0             # the share of the call's own onsets in its key
    last_bar: np.ndarray | None = None  # (steps_per_bar,) onsets per position in the call's last bar with one
    floors: dict | None = None         # the model's own FIT_FLOORS (model.json's fit_floors), if it has them

    @classmethod
    def of(cls, call: np.ndarray, steps_per_bar: int, first_step: int = 0, floors: dict | None = None) -> "CallStyle":
        """The style of a call: frames (steps, 88) whose first is grid step ``first_step``; its
        answers are screened by ``floors`` (a model's own), else by ``FIT_FLOORS``."""
        steps, keys = np.nonzero(onsets_of(call))
        classes = pitch_class_profile(call)
        last = 0 if not steps.size else max((first_step + steps[-1]) // steps_per_bar * steps_per_bar - first_step, 0)
        scale = scale_of(classes).astype(np.float64)
        return cls(classes, scale, position_profile(call, steps_per_bar, first_step),
                   mean_pitch(call),
                   float(keys.std()) if keys.size else 0.0,
                   float(keys.size) / max(len(call) / steps_per_bar, 1.0), _call_bars(call, steps_per_bar, first_step),
                   steps_per_bar, float(classes @ scale / classes.sum()) if keys.size else 1.0,
                   position_profile(call[last:], steps_per_bar, first_step + last), floors)

    def terms(self, candidates: np.ndarray, before: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each term of the agreement with the call (``FIT_TERMS``) of each candidate bar (K, steps,
        88) (K,), as the answer so far (``before``: its frames, starting on a bar line) followed by
        the candidate: key, scale and rhythm (higher agrees more), register and density (lower),
        and groove: the rhythm overlap of the candidate bar with the bar before it (the answer's
        last, or the call's last with an onset), which a figuration carried on keeps high."""
        hits = onsets_of(candidates)                                           # (K, S, 88)
        per_key = hits.sum(1).astype(np.float64)                               # (K, 88)
        positions = np.zeros((len(candidates), self.steps_per_bar))
        positions[:, :candidates.shape[1]] = hits.sum(2)[:, :self.steps_per_bar]
        answered = before is not None and len(before) > 0
        previous = position_profile(before[-self.steps_per_bar:], self.steps_per_bar) if answered else \
            self.last_bar if self.last_bar is not None else self.positions
        groove = _overlaps(previous, positions)
        bars = candidates.shape[1] / self.steps_per_bar
        if answered:
            per_key = per_key + onsets_of(before).sum(0)
            positions = positions + position_profile(before, self.steps_per_bar)
            bars += len(before) / self.steps_per_bar
        notes = per_key.sum(1)                                                 # (K,)
        pitch = per_key @ _PITCH / np.maximum(notes, 1)
        spread = np.sqrt(np.maximum(per_key @ _PITCH ** 2 / np.maximum(notes, 1) - pitch ** 2, 0))
        if self.pitch is None:
            register = np.ones(len(candidates))
        else:
            register = np.where(notes > 0, (np.abs(pitch - self.pitch) + np.abs(spread - self.spread)) / 12.0, 1.0)
        classes = per_key @ _PITCH_CLASS                                       # (K, 12)
        return {"key": _overlaps(self.pitch_classes, classes),
                "scale": (classes @ self.scale) / np.maximum(notes, 1),        # share of onsets in the call's key
                "rhythm": _overlaps(self.positions, positions),
                "register": register,
                "density": np.abs(np.log2((notes + 1.0) / (self.per_bar * bars + 1.0))),
                "groove": groove}

    def _echoes(self, candidates: np.ndarray) -> np.ndarray:
        """Which candidate bars repeat a bar of the call at any transposition (K,) bool."""
        if candidates.shape[1] != self.steps_per_bar:
            return np.zeros(len(candidates), bool)
        return np.array([transposition_free(bar) in self.bars for bar in candidates], bool)

    def fit(self, candidates: np.ndarray, before: np.ndarray | None = None) -> np.ndarray:
        """Agreement with the call of each candidate bar (K, steps, 88) (K,): the ``terms``
        weighted by ``FIT_TERMS`` (register and density count against), -inf for an echo of the call."""
        terms = self.terms(candidates, before)
        out = sum(FIT_TERMS[k] * (terms[k] if k in HIGHER_AGREES else -terms[k]) for k in FIT_TERMS)
        out[self._echoes(candidates)] = -np.inf
        return out

    def misses(self, candidates: np.ndarray, before: np.ndarray | None = None) -> np.ndarray:
        """How many ``FIT_FLOORS`` each candidate bar falls beyond (K,), as the answer so far
        followed by it (a third bar or later against the floors of two); an echo of the call
        misses them all."""
        terms = self.terms(candidates, before)
        bars = 1 if before is None or not len(before) else 2
        floors = next(f for upper, f in (self.floors or FIT_FLOORS)[bars] if self.own_scale < upper)
        out = sum(((terms[k] < floors[k]) if k in HIGHER_AGREES else (terms[k] > floors[k])).astype(np.int64)
                  for k in floors)
        out[self._echoes(candidates)] = len(floors) + 1
        return out

    def choose_step(self, candidates: np.ndarray, sounding: np.ndarray, sound: bool = False) -> int:
        """Index of the candidate step (K, 88), sampled independently, to play along with keys
        ``sounding`` (88,) bool: the first whose onsets all lie in the call's key and that sounds
        no 3 adjacent semitones together with ``sounding`` (one of them its own); else the first
        without such a cluster; else the first. With ``sound`` (a beat of an accompaniment while
        the musician plays) a candidate of those that sounds a key of its own there comes first:
        an accompanist holds or strikes something on every beat. Rejection sampling: the model's
        distribution given those conditions, so a likely silence is not preferred to a likely note."""
        hits = onsets_of(candidates[:, None])[:, 0]                            # (K, 88)
        in_key = ~(hits & ~(_PITCH_CLASS @ self.scale > 0)[None]).any(1)                 # (K,)
        own = candidates > 0
        both = own | np.asarray(sounding, bool)[None]
        runs = both[:, :-2] & both[:, 1:-1] & both[:, 2:]                       # (K, 86): keys k, k+1, k+2
        clear = ~(runs & (own[:, :-2] | own[:, 1:-1] | own[:, 2:])).any(1)
        sounds = own.any(1) if sound else np.ones(len(candidates), bool)
        for ok in (clear & in_key & sounds, clear & in_key, clear & sounds, clear):
            if ok.any():
                return int(np.argmax(ok))
        return 0

    def choose(self, candidates: np.ndarray, logp: np.ndarray, weight: float = FIT_WEIGHT_NATS,
               before: np.ndarray | None = None, floors: bool = True) -> int:
        """Index of the candidate to play (after ``before``).

        With ``floors`` (the default): the first, in the order sampled, that keeps within every
        ``FIT_FLOORS`` (rejection sampling: the model's own distribution given that the bar is no
        further from its call than nine real continuations in ten are), and where none does, the
        best by ``weight`` among those that miss the fewest. Without: the best by ``weight`` of
        all: the log-probability + ``weight`` x fit; with an infinite weight the best fit (the
        log-probability breaks ties); with weight 0 the likeliest."""
        logp = np.asarray(logp, np.float64)
        if floors:
            misses = self.misses(candidates, before)
            if (misses == 0).any():
                return int(np.argmax(misses == 0))
            fewest = np.flatnonzero(misses == misses.min())
            return int(fewest[self._best(candidates[fewest], logp[fewest], weight, before)])
        return self._best(candidates, logp, weight, before)

    def _best(self, candidates: np.ndarray, logp: np.ndarray, weight: float, before: np.ndarray | None) -> int:
        if weight <= 0:
            return int(np.argmax(logp))
        fit = self.fit(candidates, before)
        if not np.isfinite(fit).any():
            return int(np.argmax(logp))
        if math.isinf(weight):
            return int(np.lexsort((logp, fit))[-1])
        return int(np.argmax(logp + weight * fit))
