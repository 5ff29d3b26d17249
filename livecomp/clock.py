"""The beat grid: where steps, beats and bars fall in time (seconds on a monotonic clock).

Step n starts at ``origin + n * step_seconds``. Step 0 is beat 1 of bar 1. A live grid gets its
origin from the musician's first note (fixed ``--bpm``), from an estimate of the first phrase
(``--bpm auto``) or from MIDI clock; an offline grid from the file's tempo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Grid:
    origin: float                 # seconds of step 0 (beat 1 of bar 1)
    bpm: float                    # quarter notes per minute
    steps_per_beat: int = 4
    beats_per_bar: int = 4        # quarter-note beats in a bar (3/4: 3; 6/8: 3)

    @property
    def step_seconds(self) -> float:
        return 60.0 / (self.bpm * self.steps_per_beat)

    @property
    def steps_per_bar(self) -> int:
        return self.steps_per_beat * self.beats_per_bar

    def time_of(self, step: float) -> float:
        """Seconds at which ``step`` starts."""
        return self.origin + step * self.step_seconds

    def step_at(self, t: float) -> float:
        """Fractional step at time ``t``."""
        return (t - self.origin) / self.step_seconds

    def nearest_step(self, t: float) -> int:
        """The step a note played at ``t`` belongs to (the nearest grid line)."""
        return math.floor(self.step_at(t) + 0.5)

    def next_line(self, step: int, unit: str = "bar") -> int:
        """The first bar (or beat) line at or after ``step``."""
        size = self.steps_per_bar if unit == "bar" else self.steps_per_beat
        return -(-step // size) * size

    def bar_beat(self, t: float) -> tuple[int, int]:
        """(bar, beat), both from 1, at time ``t``."""
        step = max(math.floor(self.step_at(t)), 0)
        return step // self.steps_per_bar + 1, (step % self.steps_per_bar) // self.steps_per_beat + 1


def parse_meter(text: str, steps_per_beat: int = 4) -> int:
    """'4/4' -> quarter-note beats per bar (4); '6/8' -> 3; '7/8' -> 3.5 is refused."""
    try:
        num, den = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--meter takes N/D like 4/4 or 6/8, not {text!r}") from None
    if num < 1 or den not in (1, 2, 4, 8, 16):
        raise ValueError(f"--meter takes N/D like 4/4 or 6/8, not {text!r}")
    steps = num * 4 * steps_per_beat / den
    if steps != int(steps) or int(steps) % steps_per_beat:
        raise ValueError(f"a {text} bar is not a whole number of beats on this grid")
    return int(steps) // steps_per_beat


def estimate_tempo(onsets: list[float], low: float = 60.0, high: float = 180.0, steps_per_beat: int = 4
                   ) -> tuple[float, float]:
    """Tempo (bpm) and phase (seconds of a beat line) that best explain a phrase's onsets.

    Every candidate tempo from ``low`` to ``high`` bpm (0.1 bpm apart) is scored by how close
    the onsets fall to its 16th grid when the grid is anchored on the first onset, then refined
    by a least-squares fit of the onsets to their grid steps. A faster grid always has lines
    nearer to any onset, so among tempos that explain the phrase about equally well the slowest
    is the base; of it and its doubles that fit as well (quavers at 120 bpm are 16ths at 60) the
    one nearest 100 bpm wins (the onsets alone cannot tell them apart). Needs at least 3 onsets.
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
    near = good[good < good[0] + 20]                                 # the slowest tempo region that fits
    base = tempos[near[np.argmin(scores[near])]]
    # its doubles fit as well (quavers at 120 bpm are 16ths at 60): take the one nearest 100 bpm
    octaves = [base * 2 ** k for k in range(4) if base * 2 ** k <= high + 1e-9
               and scores[np.argmin(np.abs(tempos - base * 2 ** k))] <= threshold]
    bpm = min(octaves, key=lambda b: abs(np.log2(b / 100.0)))
    step = 60.0 / (bpm * steps_per_beat)
    k = np.round(rel / step)
    if np.ptp(k) > 0:                                              # least squares: t = t0 + k * step
        slope, intercept = np.polyfit(k, t, 1)
        return 60.0 / (slope * steps_per_beat), float(intercept)
    return float(bpm), float(t[0])
