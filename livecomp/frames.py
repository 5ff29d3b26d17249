"""Notes and frames as the performer hears and plays them: what the musician plays folded into
one frame of key states per step (``FrameBuilder``), frames turned back into note events
(``NoteTracker``) and events into frames (``played_frames``).
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


class FrameBuilder:
    """Keys struck, held and sustained, folded into one frame of key states per step."""

    def __init__(self, sustain: bool = True):
        self.sustain = sustain
        self.down: set[int] = set()              # keys physically held
        self.sustained: set[int] = set()         # released under the pedal
        self.pedal = False
        self.struck: dict[int, set[int]] = {}    # step -> keys struck in its window
        self.velocities: deque[int] = deque(maxlen=16)

    def note_on(self, step: int, pitch: int, velocity: int) -> None:
        key = pitch - LOW_KEY
        if not 0 <= key < N_KEYS:
            return
        self.struck.setdefault(step, set()).add(key)
        self.down.add(key)
        self.sustained.discard(key)
        self.velocities.append(velocity)

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
        return int(round(np.mean(self.velocities))) if self.velocities else default


class NoteTracker:
    """Turns a stream of frames into note on/off events, notes carried across calls."""

    def __init__(self, velocity: int):
        self.velocity = velocity
        self.sounding = np.zeros(N_KEYS, bool)

    def feed(self, frames: np.ndarray, first_step: int) -> list[Event]:
        events: list[Event] = []
        for i, frame in enumerate(frames):
            step = first_step + i
            on = frame > OFF
            attack = (frame == STRUCK) | (on & ~self.sounding)
            for key in np.flatnonzero(self.sounding & (~on | attack)):
                events.append(Event(step, "off", int(key) + LOW_KEY))
            for key in np.flatnonzero(attack):
                events.append(Event(step, "on", int(key) + LOW_KEY, self.velocity))
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
