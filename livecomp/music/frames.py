"""Notes and frames as the performer hears and plays them: what the musician plays folded into
one frame of key states per step (``FrameBuilder``), frames turned back into note events
(``NoteTracker``) at the loudness the musician shaped (``Dynamics``), and events into frames
(``played_frames``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .roll import HELD, LOW_KEY, N_KEYS, OFF, STRUCK


@dataclass(frozen=True)
class Event:
    """Something to play at a grid step: note "on"/"off", or "stop": drop every planned event at
    or after ``step`` and release whatever still sounds."""

    step: int
    kind: str
    pitch: int = 0
    velocity: int = 0


# Where the musician's own playing says too little (a few notes, no chords), the accents a
# pianist gives by default: velocity above the mean on the bar line, on the beat, on the half
# beat and elsewhere, and a chord's top note over the others.
METRIC_ACCENTS = (8.0, 4.0, 0.0, -4.0)
TOP_VOICE = 8.0
PRIOR_NOTES = 4                          # what the defaults weigh, in notes of the musician's own
MAX_ACCENT = 32.0


def metric_class(step: int, steps_per_beat: int, steps_per_bar: int) -> int:
    """0: on the bar line, 1: on a beat, 2: on a half beat, 3: anywhere else."""
    if step % steps_per_bar == 0:
        return 0
    if step % steps_per_beat == 0:
        return 1
    half = steps_per_beat // 2
    return 2 if half and steps_per_beat % 2 == 0 and step % half == 0 else 3


@dataclass(frozen=True)
class Dynamics:
    """How loud livecomp plays each note: the musician's recent loudness, accented where the
    musician accents (by place in the bar, and a chord's top note over the others), each
    accent measured from the musician's own notes and drawn towards a pianist's default where
    they are few (``FrameBuilder.dynamics_shape``). ``Dynamics(80)`` is one flat loudness."""

    base: int
    metric: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    top: float = 0.0
    steps_per_beat: int = 4
    steps_per_bar: int = 16

    def velocity(self, step: int, top: bool, chord: bool) -> int:
        """A note struck at grid ``step``; ``top``: the highest of a chord (``chord``: struck
        with others); a chord's other notes lie under its top by the musician's margin."""
        v = self.base + self.metric[metric_class(step, self.steps_per_beat, self.steps_per_bar)]
        if chord:
            v += self.top / 2 if top else -self.top / 2
        return int(min(max(round(v), 1), 127))


class FrameBuilder:
    """Keys struck, held and sustained, folded into one frame of key states per step."""

    def __init__(self, sustain: bool = True):
        self.sustain = sustain
        self.down: set[int] = set()              # keys physically held
        self.sustained: set[int] = set()         # released under the pedal
        self.pedal = False
        self.struck: dict[int, set[int]] = {}    # step -> keys struck in its window
        self.attacks: deque[tuple[int, int, int]] = deque(maxlen=64)   # (step, key, velocity)

    def note_on(self, step: int, pitch: int, velocity: int) -> None:
        key = pitch - LOW_KEY
        if not 0 <= key < N_KEYS:
            return
        self.struck.setdefault(step, set()).add(key)
        self.down.add(key)
        self.sustained.discard(key)
        self.attacks.append((step, key, velocity))

    def note_off(self, step: int, pitch: int) -> None:
        key = pitch - LOW_KEY
        if key in self.down:
            self.down.discard(key)
            if self.pedal and self.sustain:
                self.sustained.add(key)

    def set_pedal(self, down: bool) -> None:
        self.pedal = down
        if not down:
            self.sustained.clear()

    def frame(self, step: int) -> np.ndarray:
        """Key states (88,) uint8 of ``step``: struck in its window, else sounding, else off."""
        frame = np.zeros(N_KEYS, np.uint8)
        frame[list(self.down | self.sustained)] = HELD
        frame[list(self.struck.pop(step, ()))] = STRUCK
        for old in [s for s in self.struck if s < step]:       # late arrivals for closed steps
            frame[list(self.struck.pop(old))] = STRUCK
        return frame

    def silent(self) -> bool:
        """No key sounding and no pedal held."""
        return not (self.down or self.sustained or self.pedal)

    def dynamics(self, default: int = 80) -> int:
        """The musician's recent loudness: mean velocity of the last 16 attacks."""
        recent = [v for _, _, v in list(self.attacks)[-16:]]
        return int(round(np.mean(recent))) if recent else default

    def dynamics_shape(self, steps_per_beat: int, steps_per_bar: int, default: int = 80) -> Dynamics:
        """The musician's loudness and accents over the last 64 attacks (``Dynamics``): each
        accent the mean of the musician's own notes there less the mean of all, weighed with
        the default accent as if it were PRIOR_NOTES notes more."""
        base = self.dynamics(default)
        attacks = list(self.attacks)
        if not attacks:
            return Dynamics(base, METRIC_ACCENTS, TOP_VOICE, steps_per_beat, steps_per_bar)
        mean = float(np.mean([v for _, _, v in attacks]))

        def drawn(values: list[float], prior: float) -> float:
            accent = (sum(values) + PRIOR_NOTES * prior) / (len(values) + PRIOR_NOTES)
            return float(min(max(accent, -MAX_ACCENT), MAX_ACCENT))

        by_class: list[list[float]] = [[], [], [], []]
        chords: dict[int, list[tuple[int, int]]] = {}
        for step, key, velocity in attacks:
            by_class[metric_class(step, steps_per_beat, steps_per_bar)].append(velocity - mean)
            chords.setdefault(step, []).append((key, velocity))
        margins = [max(chord)[1] - float(np.mean([v for _, v in sorted(chord)[:-1]]))
                   for chord in chords.values() if len(chord) > 1]
        metric = tuple(drawn(values, prior) for values, prior in zip(by_class, METRIC_ACCENTS))
        return Dynamics(base, metric, drawn(margins, TOP_VOICE), steps_per_beat, steps_per_bar)


def likely_next(frames: list[np.ndarray]) -> np.ndarray:
    """The frame (88,) uint8 of the step after ``frames`` if nothing new is struck in it: each key
    sounding in the last goes on sounding, or stops, as the keys of ``frames`` most often did
    the step after they were in the same state (struck, or held on; a tie: sounding)."""
    out = np.zeros(N_KEYS, np.uint8)
    before, after = np.stack(frames[:-1] or frames[-1:]), np.stack(frames[1:] or frames[-1:])
    for state in (STRUCK, HELD):
        was = before == state
        on, off = int((after[was] == HELD).sum()), int((after[was] == OFF).sum())
        if on >= off:
            out[frames[-1] == state] = HELD
    return out


class NoteTracker:
    """Turns a stream of frames into note on/off events, notes carried across calls."""

    def __init__(self, dynamics: Dynamics | int):
        self.dynamics = dynamics if isinstance(dynamics, Dynamics) else Dynamics(int(dynamics))
        self.sounding = np.zeros(N_KEYS, bool)

    def feed(self, frames: np.ndarray, first_step: int) -> list[Event]:
        events: list[Event] = []
        for i, frame in enumerate(frames):
            step = first_step + i
            on = frame > OFF
            attack = (frame == STRUCK) | (on & ~self.sounding)
            for key in np.flatnonzero(self.sounding & (~on | attack)):
                events.append(Event(step, "off", int(key) + LOW_KEY))
            struck = np.flatnonzero(attack)
            for key in struck:
                velocity = self.dynamics.velocity(step, top=key == struck[-1], chord=len(struck) > 1)
                events.append(Event(step, "on", int(key) + LOW_KEY, velocity))
            self.sounding = on
        return events

    def close(self, step: int) -> list[Event]:
        events = [Event(step, "off", int(k) + LOW_KEY) for k in np.flatnonzero(self.sounding)]
        self.sounding[:] = False
        return events


def played_frames(events: list[Event], start: int, end: int) -> np.ndarray:
    """livecomp's part between steps ``start`` and ``end`` as frames (end - start, 88) of key
    states: struck at each note-on, held until its note-off (the inverse of ``NoteTracker``)."""
    frames = np.zeros((end - start, N_KEYS), np.uint8)
    begun: dict[int, int] = {}
    for e in sorted(events, key=lambda e: (e.step, e.kind == "on")):
        key = e.pitch - LOW_KEY
        if e.kind == "on":
            begun[key] = e.step
        elif e.kind == "off" and key in begun:
            first = begun.pop(key)
            lo, hi = max(first, start), min(e.step, end)
            if lo < hi:
                frames[lo - start:hi - start, key] = HELD
            if start <= first < end:
                frames[first - start, key] = STRUCK
    return frames
