"""Following an external clock's transport (``--sync clock`` or ``link``) for the step loop:
waiting until the clock runs, saying what it follows, and noticing when it stops, goes quiet
without Stop (a cable pulled), starts again or moves (Song Position Pointer). The follower
(``grid.ClockFollower`` or ``link.LinkFollower``) keeps the beat grid; this keeps what its
transport did since the step loop last looked. How the music reacts (silence, a fresh call) is
the loop's.
"""

from __future__ import annotations

import math
import threading
from typing import Callable

from .grid import ClockFollower
from .link import LinkFollower

PAUSE_GRACE_S = 0.05                    # how long a seeming pause waits for ticks still on the way


def follower_for(sync: str, now: Callable[[], float], steps_per_beat: int, beats_per_bar: int,
                 bpm: float | None) -> ClockFollower | LinkFollower | None:
    """The follower of ``sync`` ("clock": MIDI clock; "link": an Ableton Link session, at ``bpm``
    where it starts one); None for "internal"."""
    if sync == "clock":
        return ClockFollower(steps_per_beat, beats_per_bar)
    if sync == "link":
        return LinkFollower(now, steps_per_beat, beats_per_bar, bpm or 120.0)
    return None


class Transport:
    """``follower``'s transport, read through ``take(timeout)`` (the loop's next message heard,
    feeding clock messages to ``feed`` on the way) on ``now``'s time, until ``stopping`` is set."""

    def __init__(self, follower: ClockFollower | LinkFollower, take: Callable, stopping: threading.Event,
                 now: Callable[[], float]):
        self.follower = follower
        self._take = take
        self.stopping = stopping
        self.now = now
        self.moves: list[str] = []        # what the transport did since the loop last looked

    @property
    def name(self) -> str:
        return "Ableton Link" if isinstance(self.follower, LinkFollower) else "MIDI clock"

    def feed(self, message: list[int], t: float) -> None:
        """A system message heard at ``t``: MIDI clock for the follower (a Link session has none)."""
        moved = self.follower.feed(message, t)
        if moved is not None:
            self.moves.append(moved)

    def _link_moves(self) -> None:
        if isinstance(self.follower, LinkFollower):
            self.moves += self.follower.check()

    def wait_until_running(self, pending: list) -> list:
        """Wait until the clock runs with two ticks to go by; the notes heard meanwhile are added
        to ``pending``."""
        f = self.follower
        while not self.stopping.is_set() and not (f.running and f.ready and not f.paused(self.now())):
            got = self._take(0.02)
            if got is not None:
                pending.append(got)
        return pending

    def started(self, beats_per_bar: int) -> str:
        """The clock runs for the first time (the Start waited for is not a restart): the line
        that says what is followed."""
        self.moves = []
        f = self.follower
        if isinstance(f, LinkFollower):
            peers = f"{f.peers} peer{'s' * (f.peers != 1)}" if f.peers else "no peer yet"
            line = (f"following Ableton Link at {f.bpm:.1f} bpm ({peers}); bar lines on the session's "
                    f"{beats_per_bar}-beat phase")
            f.check()                                                # transitions from here on
            return line
        return f"following MIDI clock at {f.bpm:.1f} bpm; beat 1 of bar 1 at its Start"

    def step_now(self) -> int:
        """The step the clock is in now (its window may have closed already: it is decided at once)."""
        return max(math.floor(self.follower.step_at(self.now())), 0)

    def moved(self, pending: list) -> list[str] | None:
        """After each step: None while the clock runs on; else what it did (a pause: none named).
        A seeming pause first waits ``PAUSE_GRACE_S`` for ticks a late reader has not passed on
        yet (the notes heard meanwhile are added to ``pending``)."""
        f = self.follower
        self._link_moves()
        grace = self.now() + PAUSE_GRACE_S
        while not self.moves and f.running and f.paused(self.now()) and (left := grace - self.now()) > 0:
            got = self._take(left)
            if got is not None:
                pending.append(got)
        moved, self.moves = self.moves, []
        if not moved and f.running and not f.paused(self.now()):
            return None
        return moved

    def resumed(self, pending: list, moved: list[str]) -> tuple[list, str]:
        """Wait until a clock that ``moved`` runs again: (the messages heard meanwhile that belong
        to the music after it, the line that says what happened); nothing when the wait ended
        with ``stopping`` (the clock may have no ticks to say where it is)."""
        pending = self.wait_until_running(pending)
        if self.stopping.is_set():
            return [], ""
        self._link_moves()                                   # the start that ended the wait sets bar 1
        moved, self.moves = moved + self.moves, []           # a Stop's wait ends with the Start: one move
        f = self.follower
        since = f.resumed_at - f.step_seconds / 2            # a note with the first tick counts
        what = ", ".join(dict.fromkeys(moved)) or "paused"
        return [(t, m) for t, m in pending if t >= since], f"{self.name}: {what}"
