"""An Ableton Link session as the beat grid (``--sync link``).

Link keeps the peers of a network (a DAW, a drum machine app, another livecomp) on one tempo
and one bar phase: each peer's beat timeline maps its clock to beats, and with the same
``quantum`` (here the bar) their bar lines fall together. ``LinkFollower`` reads that
timeline as livecomp's grid: step n of the grid is beat ``bar_beat + n / steps_per_beat`` of
the session, where ``bar_beat`` is a bar line of the session's phase, so every bar line of
livecomp's is one of Link's. Tempo changes made by any peer move the grid at once (the step
loop reads it afresh each step and hands the scheduler only what falls due soon).

Where the peers use Link's start/stop sync (a DAW's transport), the session's play state is
followed as MIDI clock's transport is: a stop silences livecomp until the session plays
again, and a start is bar 1 at the bar line the session starts on. A session without start/stop
(no peer has ever played) runs freely.

Link's clock (the system's raw monotonic clock, in microseconds) is placed on livecomp's
(``now``: the monotonic clock, or JACK's frames as seconds) by reading the two together at
every use, so a JACK clock that runs a little slow stays placed.

Needs the LinkPython-extern package (``pip install 'livecomp[link]'``), a binding of Ableton's
Link library (GPL-2.0-or-later).
"""

from __future__ import annotations

import math
from typing import Callable

from .grid import _Steps


class LinkError(RuntimeError):
    """Link cannot be used here (the binding is not installed)."""


def _link_module():
    try:
        import link
    except ImportError:
        raise LinkError("--sync link needs Ableton Link's Python binding: pip install 'livecomp[link]' "
                        "(the LinkPython-extern package).") from None
    return link


class LinkFollower(_Steps):
    """The grid of an Ableton Link session, joined at ``bpm`` (which the session's tempo
    replaces once a peer is there). ``now``: livecomp's clock (seconds). ``check`` after each
    step says whether the session's transport stopped, started or jumped."""

    def __init__(self, now: Callable[[], float], steps_per_beat: int = 4, beats_per_bar: int = 4,
                 bpm: float = 120.0):
        link = _link_module()
        self.now = now
        self.steps_per_beat = steps_per_beat
        self.beats_per_bar = beats_per_bar
        self.quantum = float(beats_per_bar)
        self.link = link.Link(float(bpm))
        self.link.startStopSyncEnabled = True
        self.link.enabled = True
        self._clock = self.link.clock()
        self.transport_seen = False          # a peer has played (start/stop sync in use)
        self.playing = False
        self.ready = True
        self.bar_beat = 0.0
        self.resumed_at = self.now()         # when the grid last began (a start, a jump)
        self._last: tuple[float, float] | None = None   # (time, step) at the last check
        self._anchor(self.resumed_at)

    # -- clocks ----------------------------------------------------------------------------------

    def _offset(self) -> float:
        """Seconds to add to Link's clock to read livecomp's: the two read together, the pair
        read in the shortest time of three kept."""
        best = None
        for _ in range(3):
            a = self.now()
            micros = self._clock.micros()
            b = self.now()
            if best is None or b - a < best[0]:
                best = (b - a, (a + b) / 2 - micros / 1e6)
        return best[1]

    def _state(self):
        return self.link.captureAppSessionState()

    def _beat_at(self, t: float) -> float:
        return self._state().beatAtTime(int(round((t - self._offset()) * 1e6)), self.quantum)

    def _anchor(self, t: float) -> None:
        """Step 0 on the session's bar line at or before ``t``."""
        self.bar_beat = math.floor(self._beat_at(t) / self.quantum + 1e-6) * self.quantum
        self._last = None

    # -- the grid ----------------------------------------------------------------------------------

    @property
    def peers(self) -> int:
        return self.link.numPeers()

    @property
    def bpm(self) -> float:
        return self._state().tempo()

    @property
    def step_seconds(self) -> float:
        return 60.0 / (self.bpm * self.steps_per_beat)

    def time_of(self, step: float) -> float:
        micros = self._state().timeAtBeat(self.bar_beat + step / self.steps_per_beat, self.quantum)
        return micros / 1e6 + self._offset()

    def step_at(self, t: float) -> float:
        return (self._beat_at(t) - self.bar_beat) * self.steps_per_beat

    @property
    def origin(self) -> float:
        return self.time_of(0)

    # -- the transport ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """The session plays: always, until a peer uses start/stop; then as the peers say."""
        playing = self._state().isPlaying()
        self.transport_seen = self.transport_seen or playing
        return playing or not self.transport_seen

    def paused(self, t: float) -> bool:
        return False                          # Link has no cable to pull: a gone peer leaves the tempo

    def feed(self, message: list[int], t: float) -> str | None:
        return None                           # MIDI clock on the input says nothing under Link

    def _read_transport(self) -> str | None:
        playing = self._state().isPlaying()
        if playing == self.playing:
            return None
        self.playing = playing
        if playing:
            self.transport_seen = True
            return "start"
        return "stop" if self.transport_seen else None

    def check(self) -> list[str]:
        """After a step: what the session did since the last check ("start": bar 1 on the bar
        line it starts from; "stop"; "jumped": the session's beats moved under livecomp, as
        when peers whose phase differs are joined; the bar lines stay the session's, the steps
        go on from where the beats now say)."""
        t = self.now()
        done = []
        moved = self._read_transport()
        if moved == "start":
            start = self._state().timeForIsPlaying() / 1e6 + self._offset()
            self._anchor(start)
            self.resumed_at = start
            done.append("start")
        elif moved == "stop":
            done.append("stop")
        step = self.step_at(t)
        if self._last is not None and not done:
            then, before = self._last
            if abs(step - (before + (t - then) / self.step_seconds)) > 1.0:
                self.resumed_at = t
                done.append("jumped")
        self._last = (t, step)
        return done

    def close(self) -> None:
        self.link.enabled = False
