"""The beat grid: where steps, beats and bars fall in time (seconds on a monotonic clock).

Step n starts at ``origin + n * step_seconds``. Step 0 is beat 1 of bar 1. A live grid gets its
origin from the musician's first note (fixed ``--bpm``), from an estimate of the first phrase
(``--bpm auto``) or from MIDI clock; an offline grid from the file's tempo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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
