"""Time, and sending MIDI messages at their times: live on the monotonic clock, from a thread of
its own, or offline on a simulated clock.

Each message waits in a heap until its time: the thread sleeps until ``spin_s`` before it, then
spins (checking the clock) for the last fraction of a millisecond, sends, and records how late
the send was. Scheduling never blocks the caller. The scheduler knows which notes it has
started and not yet ended, so ``stop`` and ``panic`` can release every one of them.

The live loop takes its time, what it hears and its schedulers from a timeline (``timeline``):
this module's ``Scheduler`` on real ports, its ``OfflineScheduler`` for a file played offline.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections import deque
from typing import Callable

import numpy as np

from ..io.midi import channel as channel_of
from ..io.midi import is_note, is_note_on, note_off, silence

now = time.perf_counter           # monotonic, sub-microsecond


# Below a JACK client's process thread (its server's 10 less 5). Only the sending thread, which
# mostly sleeps: a real-time thread that computes (the step loop running the model) would keep
# the other threads of the process off its core, and one of them may hold the interpreter lock
# the sends wait for.
SEND_PRIORITY = 4
RELEASE: list[int] = []           # in the plan: note-off for whatever sounds when its time comes
SILENCE_AGAIN_S = 0.03            # the way out's All Sound Off / All Notes Off, sent again after this


def realtime(priority: int) -> bool:
    """Run the calling thread first-in-first-out at ``priority`` (1-99), as JACK runs its own
    threads, so that a busy machine's other programs cannot hold it up for a time slice (several
    milliseconds). Granted to root and to users with an rtprio limit (the audio group of a
    machine set up for JACK); elsewhere nothing changes and False is returned."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError):
        return False
    return True


LATENESS_KEPT = 20_000            # sends whose lateness the percentiles are of: some hours' worth


class Scheduler:
    def __init__(self, send: Callable[..., None], spin_s: float = 0.0006, guard_s: float = 30.0,
                 priority: int | None = None, lead_s: Callable[[], float] | None = None,
                 drop: Callable[[], None] | None = None, now: Callable[[], float] = now):
        """``priority``: ask for real-time priority for the sending thread (``realtime``);
        ``self.realtime`` then says whether it was granted. ``lead_s``: for a port that places
        each message at its own time (livecomp's JACK client, at its frame): how long before
        its time a message is handed over, as ``send(message, t)``; ``drop()`` then drops what
        was handed over and has not left (a panic). ``now``: the time messages are planned
        on (JACK's frames for livecomp's JACK client: ``jackclient.FRAME_TIME``)."""
        self._plan(send, now)
        self._lead = lead_s
        self._drop = drop
        self._priority = priority
        self._started = threading.Event()
        self.spin_s = spin_s
        self.guard_s = guard_s                      # release a machine note held longer than this
        self._thread = threading.Thread(target=self._run, name="livecomp-scheduler", daemon=True)
        self._thread.start()
        self._started.wait()

    def _plan(self, send: Callable[[list[int]], None], now: Callable[[], float]) -> None:
        self._send = send
        self._now = now
        self._lead: Callable[[], float] | None = None
        self._drop: Callable[[], None] | None = None
        self.realtime = False
        self._heap: list = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self.sounding: dict[tuple[int, int], float] = {}   # (channel, pitch) -> time of its note-on (sent or due)
        self._ahead: deque = deque()                       # (due, message) handed over ahead of its time
        self._ahead_lock = threading.Lock()
        self.channels: set[int] = set()
        self.lateness: deque[float] = deque(maxlen=LATENESS_KEPT)   # seconds, of the latest sends
        self._timed = 0                             # timed sends in all
        self._latest = 0.0                          # the largest lateness of them all

    # -- planning -----------------------------------------------------------------------------

    def at(self, t: float, message: list[int], tag: int = 0) -> None:
        """Send ``message`` (raw MIDI bytes) at time ``t`` (``now()`` seconds). ``tag`` groups
        messages that ``cancel`` may drop together (an answer)."""
        with self._cond:
            heapq.heappush(self._heap, (t, next(self._seq), message, tag))
            self._cond.notify()

    def cancel(self, tag: int, after: float = 0.0) -> None:
        """Drop the messages of ``tag`` due at or after ``after`` (their note-offs too: release
        what they would have ended with ``release``)."""
        with self._cond:
            self._heap = [item for item in self._heap if not (item[3] == tag and item[0] >= after)]
            heapq.heapify(self._heap)
            self._cond.notify()

    def release(self, t: float | None = None) -> None:
        """Note-off, at ``t`` (default now), for every note this scheduler has started and not
        ended by then. Which notes those are is decided by the sending thread when ``t`` comes,
        not now: a note-on it is sending at this moment (taken from the plan a moment before a
        ``cancel``) is ended too."""
        t = self._now() if t is None else t
        with self._cond:
            heapq.heappush(self._heap, (t, next(self._seq), RELEASE, -1))
            self._cond.notify()

    def hush(self) -> None:
        """Now, with the thread running on: note-off for every note this scheduler has started
        and not ended, then ``midi.silence`` on each channel it used (the panic control)."""
        t = self._now()
        if self._drop is not None:
            self._drop()                    # what was handed over ahead of its time and not left
            self._taken_back(t)
        self.release(t)
        for channel in sorted(self.channels):
            for message in silence(channel):
                self.at(t, message, tag=-1)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        if self._priority is not None:
            self.realtime = realtime(self._priority)
        self._started.set()
        while True:
            with self._cond:
                while not self._stopped and not self._heap:
                    self._cond.wait(timeout=1.0)
                    self._guard()
                if self._stopped:
                    return
                lead = self._lead() if self._lead is not None else 0.0
                wait = self._heap[0][0] - lead - self._now() - (0.0 if lead else self.spin_s)
                if wait > 0:
                    self._cond.wait(timeout=min(wait, 0.05))   # woken early by new, sooner messages
                    self._guard()
                    continue
                t, _, message, tag = heapq.heappop(self._heap)
            while not lead and self._now() < t:                    # the last fraction of a millisecond
                time.sleep(0)                                      # spin, but let the MIDI input thread in
            self._deliver(t, message, lead, timed=tag >= 0)

    def _deliver(self, t: float, message: list[int], lead: float = 0.0, timed: bool = True) -> None:
        if message is RELEASE:
            # a note-on handed over ahead of its time may be due after ``t``: its note-off goes after it
            for (channel, pitch), since in list(self.sounding.items()):
                self._send_now(note_off(channel, pitch), max(t, since), lead, timed=False)
        else:
            self._send_now(message, t, lead, timed)

    def _send_now(self, message: list[int], due: float, lead: float = 0.0, timed: bool = True) -> None:
        """Send ``message`` now, or with a lead hand it over now with its time ``due``. The
        lateness kept is the send's (the hand-over's) against when it was meant, for the
        ``timed`` messages, those planned ahead on the grid: a release or the silence of a
        panic is due the moment it is asked for, and would count the output's lead as late."""
        if lead > 0:
            self._send(message, due)
        else:
            self._send(message)
        sent = self._now()
        if timed:
            late = sent - (due - lead)
            self.lateness.append(late)
            self._timed += 1
            self._latest = max(self._latest, late)
        self._track(message, due if lead > 0 else sent)       # handed over: it sounds from its time
        if lead > 0 and is_note(message):
            with self._ahead_lock:
                self._ahead.append((due, message))
                while self._ahead and self._ahead[0][0] < sent - 1.0:   # long gone: the port wrote them
                    self._ahead.popleft()

    def _taken_back(self, t: float) -> None:
        """The port dropped what was handed over and due after ``t``: undo those notes, the
        latest first. A note-on that never left does not sound; a note whose note-off never left
        still does, so the release that follows ends it with a note-off of its own (not only
        with the channels' All Sound Off)."""
        with self._ahead_lock:
            gone = [(due, m) for due, m in self._ahead if due > t]
            self._ahead = deque((due, m) for due, m in self._ahead if due <= t)
            for due, message in reversed(gone):
                key = (channel_of(message), message[1])
                if is_note_on(message):
                    self.sounding.pop(key, None)
                else:
                    self.sounding[key] = t

    def _track(self, message: list[int], at: float) -> None:
        """What sounds after ``message`` left at ``at``: each note started and not ended, by
        channel and pitch, and every channel used."""
        if is_note(message):
            key = (channel_of(message), message[1])
            self.channels.add(key[0])
            if is_note_on(message):
                self.sounding[key] = at
            else:
                self.sounding.pop(key, None)

    def _guard(self) -> None:
        """The stuck-note guard: end any note held far longer than any answer plans."""
        limit = self._now() - self.guard_s
        for (channel, pitch), since in list(self.sounding.items()):
            if since < limit:
                self._send_now(note_off(channel, pitch), self._now(), timed=False)

    # -- the way out --------------------------------------------------------------------------

    def panic(self) -> None:
        """Stop the thread, drop every plan, and silence: note-off for every sounding note, then
        All Sound Off, All Notes Off and sustain off on every channel used, and those three once
        more ``SILENCE_AGAIN_S`` later, so one period a JACK client overran (and whose messages
        JACK dropped) cannot leave a note sounding. Safe to call more than once."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)
        if self._drop is not None:
            self._safe(self._drop)
            self._taken_back(self._now())
        for channel, pitch in list(self.sounding):
            self._safe_send(note_off(channel, pitch))
        self.sounding.clear()
        for repeat in range(2):
            if repeat:      # once more a little later: a MIDI system that overran a period drops what it held
                time.sleep(SILENCE_AGAIN_S)
            for channel in sorted(self.channels):
                for message in silence(channel):
                    self._safe_send(message)

    def _safe_send(self, message: list[int]) -> None:
        self._safe(self._send, message)

    @staticmethod
    def _safe(action: Callable, *args) -> None:
        try:
            action(*args)
        except Exception:   # a lost port: nothing more can be released there
            pass

    def lateness_ms(self) -> dict[str, float]:
        """p50 and p99 lateness of the latest LATENESS_KEPT sends (all of a session of a few hours),
        the largest of all and how many were sent, in milliseconds: a night's sends are not kept
        one by one, nor sorted at every beat."""
        if not self.lateness:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0, "sent": 0}
        late = np.array(self.lateness) * 1e3
        return {"p50": float(np.percentile(late, 50)), "p99": float(np.percentile(late, 99)),
                "max": self._latest * 1e3, "sent": self._timed}


class OfflineScheduler(Scheduler):
    """The scheduler on a simulated clock, with no thread: ``advance(t)`` sends, in order, what
    is due before ``t``, as the thread would have, each at its planned time (``sent`` keeps
    them). ``panic`` ends what sounds with note-offs alone: a file of the music needs no
    controllers, and no port can have lost a message."""

    def __init__(self, send: Callable[[list[int]], None], now: Callable[[], float]):
        self._plan(send, now)
        self.sent: list[tuple[float, list[int]]] = []

    def advance(self, t: float) -> None:
        while self._heap and self._heap[0][0] < t:
            due, _, message, _ = heapq.heappop(self._heap)
            self._deliver(due, message)

    def _send_now(self, message: list[int], due: float, lead: float = 0.0, timed: bool = True) -> None:
        self._send(message)
        self.sent.append((due, message))
        self._track(message, due)

    def panic(self) -> None:
        t = self._now()
        self.advance(t)
        self._heap.clear()
        for channel, pitch in sorted(self.sounding):
            self._send_now(note_off(channel, pitch), t)
