"""Where bar 1 begins when no clock says so: at the first note played (a fixed ``--bpm``), or
from the first phrase (``--bpm auto``: its tempo and phase).

Each waits on ``take(timeout)``, the live loop's source of heard messages ((time, message) or
None when the wait ran out), until it knows, or until ``stopping`` is set; what it heard
meanwhile is returned to be placed on the grid it found.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from ..io.midi import is_note, is_note_on
from .grid import Grid

Take = Callable[[float], "tuple[float, list[int]] | None"]


def bar_1(take: Take, stopping: threading.Event, now: Callable[[], float], bpm: float | None, steps_per_beat: int,
          beats_per_bar: int, log: Callable[[str], None]) -> tuple[list, Grid | None]:
    """(what was heard, the grid whose beat 1 of bar 1 is the first note: at ``bpm``, or with
    None at the first phrase's tempo), said in one line; no grid if stopped first."""
    if bpm is not None:
        pending, origin = first_note(take, stopping)
        words = f"beat 1 of bar 1 at the first note; {bpm:g} bpm"
    else:
        pending, found = first_phrase(take, stopping, now, steps_per_beat)
        bpm, origin, notes = found if found is not None else (None, None, 0)
        words = f"tempo {bpm or 0:.1f} bpm from the first phrase of {notes} notes; its first note is beat 1 of bar 1"
    if origin is None:
        return pending, None
    log(f"{words}, {beats_per_bar} beats a bar")
    return pending, Grid(origin=origin, bpm=bpm, steps_per_beat=steps_per_beat, beats_per_bar=beats_per_bar)


def first_note(take: Take, stopping: threading.Event) -> tuple[list, float | None]:
    """(what was heard, the time of the first note-on: beat 1 of bar 1; None if stopped first)."""
    pending = []
    while not stopping.is_set():
        got = take(0.05)
        if got is None:
            continue
        pending.append(got)
        if is_note_on(got[1]):
            return pending, got[0]
    return pending, None


def first_phrase(take: Take, stopping: threading.Event, now: Callable[[], float], steps_per_beat: int,
                 gap: float = 0.6) -> tuple[list, tuple[float, float, int] | None]:
    """The first phrase (until ``gap`` seconds with no key down, at least 4 notes): (what was
    heard, (bpm, time of its first note: beat 1 of bar 1, its notes); None if stopped first)."""
    pending, down, last = [], set(), None
    while not stopping.is_set():
        got = take(0.02)
        if got is not None:
            pending.append(got)
            t, m = got
            if is_note_on(m):
                down.add(m[1])
            elif is_note(m):
                down.discard(m[1])
            last = t
            continue
        onsets = [t for t, m in pending if is_note_on(m)]
        if len(onsets) >= 4 and not down and now() - last >= gap:
            bpm, origin = estimate_tempo(onsets, steps_per_beat=steps_per_beat)
            return pending, (bpm, origin, len(onsets))
    return pending, None


def _on_the_beat(rel: np.ndarray, bpm: float, steps_per_beat: int) -> float:
    """How metrical a reading of the onsets is: the mean, over onsets, of 1 on a beat, 1/2 on a
    half beat, 0 elsewhere on the 16th grid."""
    k = np.round(rel / (60.0 / (bpm * steps_per_beat))).astype(int) % steps_per_beat
    half = steps_per_beat // 2 if steps_per_beat % 2 == 0 else -1
    return float(np.mean(np.where(k == 0, 1.0, np.where(k == half, 0.5, 0.0))))


def estimate_tempo(onsets: list[float], low: float = 60.0, high: float = 180.0, steps_per_beat: int = 4
                   ) -> tuple[float, float]:
    """Tempo (bpm) and phase (seconds of a beat line) that best explain a phrase's onsets.

    Every candidate tempo from ``low`` to ``high`` bpm (0.1 bpm apart) is scored by how close
    the onsets fall to its 16th grid when the grid is anchored on the first onset, then refined
    by a least-squares fit of the onsets to their grid steps. Of the tempos that explain the
    phrase about equally well, a tempo and its doubles are one reading (quavers at 120 bpm are
    16ths at 60), and the one nearest 100 bpm stands for it (the onsets alone cannot tell them
    apart); of readings not an octave apart (quarter notes at 84 bpm are every third 16th at
    63), the one that puts most onsets on its beats and half beats wins. Needs at least 3 onsets.
    """
    t = np.asarray(sorted(onsets), float)
    if len(t) < 3:
        raise ValueError("a tempo needs at least three notes")
    rel = t - t[0]
    tempos = np.arange(low, high + 1e-9, 0.1)
    steps = 60.0 / (tempos * steps_per_beat)
    pos = rel[None, :] / steps[:, None]
    err = np.abs(pos - np.round(pos)) * steps[:, None]               # seconds off each grid
    scores = np.sqrt(np.mean(np.minimum(err, 0.03) ** 2, axis=1))   # rms, each onset counted to 30 ms
    threshold = scores.min() * 1.5 + 0.002                           # within timing noise of the best
    good = np.flatnonzero(scores <= threshold)
    regions = np.split(good, np.flatnonzero(np.diff(good) > 1) + 1)  # runs of tempos that fit
    fitting = [float(tempos[r[np.argmin(scores[r])]]) for r in regions]
    families: dict[int, list[float]] = {}                            # tempos an octave apart: one reading
    for b in fitting:
        key = next((k for k, f in families.items() if abs(np.log2(b / f[0]) - round(np.log2(b / f[0]))) < 0.01),
                   len(families))
        families.setdefault(key, []).append(b)
    # of a tempo and its doubles (quavers at 120 bpm are 16ths at 60) the one nearest 100 bpm; of
    # readings not an octave apart (quarter notes at 84 are 16ths at 63 x 3), the one that puts
    # the onsets on its beats and half beats
    readings = [min(f, key=lambda b: abs(np.log2(b / 100.0))) for f in families.values()]
    bpm = max(readings, key=lambda b: (round(_on_the_beat(rel, b, steps_per_beat), 6), -abs(np.log2(b / 100.0))))
    step = 60.0 / (bpm * steps_per_beat)
    k = np.round(rel / step)
    if np.ptp(k) > 0:                                              # least squares: t = t0 + k * step
        slope, intercept = np.polyfit(k, t, 1)
        return 60.0 / (slope * steps_per_beat), float(intercept)
    return float(bpm), float(t[0])
