"""The beat grid: where steps, beats and bars fall in time (seconds on a monotonic clock).

Step n starts at ``origin + n * step_seconds``. Step 0 is beat 1 of bar 1. A live grid gets its
origin from the musician's first note (fixed ``--bpm``), from an estimate of the first phrase
(``--bpm auto``) or from MIDI clock; an offline grid from the file's tempo.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..io import midi


class _Steps:
    """What every grid derives from ``step_at``, ``steps_per_beat`` and ``beats_per_bar``."""

    steps_per_beat: int
    beats_per_bar: int

    def step_at(self, t: float) -> float:
        raise NotImplementedError

    @property
    def steps_per_bar(self) -> int:
        return self.steps_per_beat * self.beats_per_bar

    def nearest_step(self, t: float) -> int:
        """The step a note played at ``t`` belongs to (the nearest grid line)."""
        return math.floor(self.step_at(t) + 0.5)


@dataclass
class Grid(_Steps):
    origin: float                 # seconds of step 0 (beat 1 of bar 1)
    bpm: float                    # quarter notes per minute
    steps_per_beat: int = 4
    beats_per_bar: int = 4        # quarter-note beats in a bar (3/4: 3; 6/8: 3)

    @property
    def step_seconds(self) -> float:
        return 60.0 / (self.bpm * self.steps_per_beat)

    def time_of(self, step: float) -> float:
        """Seconds at which ``step`` starts."""
        return self.origin + step * self.step_seconds

    def step_at(self, t: float) -> float:
        """Fractional step at time ``t``."""
        return (t - self.origin) / self.step_seconds

    def follow(self, onsets: list[tuple[int, float]], max_change: float = 0.04) -> bool:
        """Follow a small drift in the musician's tempo and phase.

        ``onsets`` are recent notes as (the step they were placed on, seconds played). When at
        least six of them span two beats or more, a least-squares line ``t = origin + step *
        step_seconds`` through them replaces the grid, if it explains them to within an eighth of
        a step (rms: the musician is playing on this grid, not in triplets or rubato) and its
        tempo is within ``max_change`` of the current one. Step numbers keep their meaning.
        Returns whether the grid moved."""
        if len(onsets) < 6:
            return False
        k = np.array([s for s, _ in onsets], float)
        t = np.array([t for _, t in onsets], float)
        if np.ptp(k) < 2 * self.steps_per_beat:
            return False
        slope, intercept = np.polyfit(k, t, 1)
        rms = float(np.sqrt(np.mean((t - (intercept + slope * k)) ** 2)))
        if rms > self.step_seconds / 8 or abs(slope / self.step_seconds - 1) > max_change:
            return False
        self.origin, self.bpm = float(intercept), 60.0 / (slope * self.steps_per_beat)
        return True


MAX_BEATS_PER_BAR = 64


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
    if not 1 <= int(steps) // steps_per_beat <= MAX_BEATS_PER_BAR:
        raise ValueError(f"a {text} bar has {int(steps) // steps_per_beat} beats; --meter takes 1 to "
                         f"{MAX_BEATS_PER_BAR} beats a bar")
    return int(steps) // steps_per_beat


CHANGE_RUN = 6          # MIDI clock: ticks in a row drifting further off the line: the tempo changed
LOST_RUN = 6            # MIDI clock: ticks in a row a whole number of periods late: that many were lost
LATE_S = 0.001          # MIDI clock: a tick this much later than the others' line is held back, not the tempo


def _least_squares(k: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line ``t = intercept + slope * k``."""
    dk = k - k.mean()
    slope = float(dk @ (t - t.mean()) / (dk @ dk))
    return slope, float(t.mean() - slope * k.mean())


def robust_line(k: np.ndarray, t: np.ndarray) -> tuple[float, float, float]:
    """(slope, intercept, spread): the least-squares line ``t = intercept + slope * k`` through
    tick times, and how far off it the ticks usually lie. A tick can arrive late but never
    early (a busy source or machine holds it back, then sends what it owes at once): ticks
    later than the line by more than the others' spread are left out and the line is fitted
    again."""
    keep = np.ones(len(k), bool)
    for _ in range(4):
        slope, intercept = _least_squares(k[keep], t[keep])
        late = t - (intercept + slope * k)
        usual = np.median(late[keep])
        spread = max(LATE_S, 4.0 * float(np.median(np.abs(late[keep] - usual))))
        fits = late <= usual + spread
        if fits.sum() < max(2, len(k) // 2) or (fits == keep).all():
            break
        keep = fits
    return float(slope), float(intercept + usual), spread


def _tempo_change(k: np.ndarray, t: np.ndarray) -> int:
    """Where the tempo changed (the index of the first tick after it), or 0: the newest
    ``CHANGE_RUN`` ticks all lie off the line through the ticks before them, to the same side
    and each further than the one before (ticks lost stay as far off; ticks held back come
    back)."""
    if len(k) < 2 * CHANGE_RUN:
        return 0
    before = slice(None, -CHANGE_RUN)
    slope, intercept, spread = robust_line(k[before] - k[-1], t[before])
    off = t - (intercept + slope * (k - k[-1]))
    off *= np.sign(off[-1])
    run = off[-CHANGE_RUN:]
    if not ((run > spread).all() and (np.diff(run) > 0).all()):
        return 0
    first = len(k) - CHANGE_RUN
    while first > 1 and spread < off[first - 1] < off[first]:
        first -= 1
    return first


class ClockFollower(_Steps):
    """A grid driven by MIDI clock (24 ticks per quarter note) from another device.

    Start (0xFA) puts the next tick at beat 1 of bar 1; Continue (0xFB) resumes at the song
    position; Song Position Pointer (0xF2, in 16ths) moves it; Stop (0xFC) pauses. Step times
    come from the ticks received since the transport last moved and, beyond the last, from the
    tick period over the last two beats. A pause in the ticks longer than ``GAP_TICKS`` tick
    periods (a cable pulled, a frozen source) starts the line again from the next tick.

    ``feed`` is called by the thread that reads the grid (the step loop), never beside it: one
    thread owns the follower. It returns what the transport did ("start", "continue", "stop",
    "position") or None for a tick.
    """

    TICKS_PER_BEAT = 24
    GAP_TICKS = 12                             # half a beat without ticks: the clock paused

    def __init__(self, steps_per_beat: int = 4, beats_per_bar: int = 4):
        self.steps_per_beat = steps_per_beat
        self.beats_per_bar = beats_per_bar
        self.ticks_per_step = self.TICKS_PER_BEAT / steps_per_beat
        self.running = False
        self.position = 0                      # ticks since beat 1 of bar 1 of the next tick
        self.times: list[tuple[int, float]] = []   # (tick index, time) of the last two beats' ticks
        self._fit: tuple[float, float] | None = None
        self._behind: deque[float] = deque(maxlen=LOST_RUN)   # the latest ticks' lateness, in periods
        self.ticks = 0                         # ticks heard, in all
        self.lost = 0                          # ticks found missing

    def _moved(self) -> None:
        """The transport moved: ticks before it say nothing about the line after it."""
        self.times = []
        self._fit = None
        self._behind.clear()

    def feed(self, message: list[int], t: float) -> str | None:
        status = message[0]
        if status == midi.START:
            self.running, self.position = True, 0
            self._moved()
            return "start"
        if status == midi.CONTINUE:
            self.running = True
            self._moved()
            return "continue"
        if status == midi.STOP:
            self.running = False
            return "stop"
        if status == midi.SONG_POSITION and len(message) >= 3:   # in 16th notes
            self.position = (message[1] | message[2] << 7) * self.TICKS_PER_BEAT // 4
            self._moved()
            return "position"
        if status == midi.CLOCK and self.running:
            if self.paused(t):
                self._moved()                  # the ticks paused: the line starts again here
            self.ticks += 1
            self._count_lost(t)
            self.times = (self.times + [(self.position, t)])[-2 * self.TICKS_PER_BEAT:]
            self.position += 1
            self._fit = None
        return None

    def _count_lost(self, t: float) -> None:
        """A tick lost on the way (a MIDI system that overran its period drops what arrived in
        it) would put every later beat a tick late. When ``LOST_RUN`` ticks in a row each come
        the same whole number of periods later than the line says, with no pause and no burst
        (ticks held back come at once, each less late than the one before), that many were
        lost: the position moves on by as many. Needs a beat of ticks to trust the line. The
        count stays the clock's word otherwise: a source that pauses a moment and goes on is
        followed as it counts."""
        if len(self.times) < self.TICKS_PER_BEAT:
            self._behind.clear()
            return
        zero, period = self._line()
        self._behind.append((t - zero) / period - self.position)
        if len(self._behind) < LOST_RUN:
            return
        behind = np.array(self._behind)
        lost = round(float(np.median(behind)))
        # the same lateness each time (a tempo change makes it grow), a whole number of periods
        if lost >= 1 and np.ptp(behind) < 0.15 and abs(np.median(behind) - lost) < 0.15:
            run = LOST_RUN - 1                 # the run's ticks already held, this one comes next
            self.times = self.times[:-run] + [(k + lost, when) for k, when in self.times[-run:]]
            self.position += lost
            self.lost += lost
            self._behind.clear()
            self._fit = None

    def silent_since(self, t: float) -> float:
        """Seconds at ``t`` since the last tick (0 before any)."""
        return t - self.times[-1][1] if self.times else 0.0

    def paused(self, t: float) -> bool:
        """Running, but at ``t`` no tick for ``GAP_TICKS`` tick periods: the source went quiet
        without a Stop."""
        return self.running and self.ready and self.silent_since(t) > self.GAP_TICKS * self._rough_period()

    def _rough_period(self) -> float:
        """Seconds per tick from the first and last ticks held (no fit: cheap, for pauses)."""
        (k0, t0), (k1, t1) = self.times[0], self.times[-1]
        return (t1 - t0) / (k1 - k0) if k1 > k0 else 0.02

    @property
    def ready(self) -> bool:
        return len(self.times) >= 2

    def _line(self) -> tuple[float, float]:
        """(time of tick 0, seconds per tick): a least-squares line through the last two beats of
        ticks, so the jitter of single ticks averages out (``robust_line``: ticks held back and
        sent at once neither tilt the tempo nor move the bar lines). When the newest ticks drift
        away from the line through the ones before, each further than the last, the tempo
        changed: the line starts again from the last tick before the change."""
        fit = self._fit
        if fit is None:
            k = np.array([k for k, _ in self.times], float)
            t = np.array([t for _, t in self.times], float)
            changed = _tempo_change(k, t)
            if changed:
                self.times, k, t = self.times[changed - 1:], k[changed - 1:], t[changed - 1:]
            slope, at_last, _ = robust_line(k - k[-1], t)
            fit = self._fit = (at_last - k[-1] * slope, slope)
        return fit

    @property
    def tick_seconds(self) -> float:
        return self._line()[1]

    @property
    def bpm(self) -> float:
        return 60.0 / (self.tick_seconds * self.TICKS_PER_BEAT)

    @property
    def step_seconds(self) -> float:
        return self.tick_seconds * self.ticks_per_step

    def time_of(self, step: float) -> float:
        """Seconds of ``step`` on the clock's grid (extrapolated past the last tick)."""
        zero, period = self._line()
        return zero + step * self.ticks_per_step * period

    def step_at(self, t: float) -> float:
        zero, period = self._line()
        return (t - zero) / period / self.ticks_per_step

    @property
    def origin(self) -> float:
        return self.time_of(0)

    @property
    def resumed_at(self) -> float:
        """When the ticks of the current line began (the transport's last move)."""
        return self.times[0][1]
