"""Where the live loop takes its time, what it hears and its schedulers from: ``WallTimeline`` on
real ports, ``Rehearsal`` for a file played offline (``livecomp duet``, and tests of the live
loop), where time jumps from one message to the next and the ``OfflineScheduler`` sends as the
sending thread would have, at the planned times exactly.
"""

from __future__ import annotations

import queue
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable

from .scheduler import OfflineScheduler, Scheduler, now


class WallTimeline:
    """Live time: the monotonic clock (or ``now``: JACK's frames as seconds, for livecomp's
    JACK client), the queue the input port's thread fills, and schedulers that send from threads
    of their own."""

    def __init__(self, now: Callable[[], float] = now):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.now = now

    def put(self, item: tuple[float, list[int]]) -> None:
        self._queue.put(item)

    def get(self, timeout: float) -> tuple[float, list[int]]:
        """The next message heard, waiting at most ``timeout`` seconds (else ``queue.Empty``)."""
        return self._queue.get(timeout=timeout)

    def scheduler(self, send: Callable[..., None], priority: int | None = None, lead_s=None, drop=None) -> Scheduler:
        return Scheduler(send, priority=priority, lead_s=lead_s, drop=drop, now=self.now)

    def background(self, work: Callable[[], object]) -> Future:
        """``work`` on a thread of its own (loading a model), its result a future."""
        return ThreadPoolExecutor(1, thread_name_prefix="livecomp-load").submit(work)


class Rehearsal:
    """Simulated time for messages known beforehand (a file): waiting for the next message
    jumps to it, waiting in vain jumps to the end of the wait, and the schedulers made here send
    what falls due on the way. The same messages give the same run, as fast as the model runs."""

    def __init__(self, messages: Iterable[tuple[float, list[int]]], start: float = 0.0):
        self._messages = deque(sorted(messages, key=lambda m: m[0]))
        self.t = start
        self._schedulers: list[OfflineScheduler] = []
        self._calls: list[tuple[float, Callable[[], None]]] = []

    def now(self) -> float:
        return self.t

    def get(self, timeout: float) -> tuple[float, list[int]]:
        if self._messages and self._messages[0][0] <= self.t + timeout:
            item = self._messages.popleft()
            self.to(max(self.t, item[0]))
            return item
        self.to(self.t + timeout)
        raise queue.Empty

    def to(self, t: float) -> None:
        """Move the time on to ``t``: what falls due before it is sent."""
        self.t = max(self.t, t)
        for scheduler in self._schedulers:
            scheduler.advance(self.t)
        for call in [c for c in self._calls if c[0] <= self.t]:
            self._calls.remove(call)
            call[1]()

    def call_at(self, t: float, action: Callable[[], None]) -> None:
        """Do ``action`` once the time reaches ``t`` (a musician's Ctrl-C, in a test)."""
        self._calls.append((t, action))

    def background(self, work: Callable[[], object]) -> Future:
        """``work`` done at once: simulated time does not move while it runs."""
        future: Future = Future()
        try:
            future.set_result(work())
        except Exception as exc:
            future.set_exception(exc)
        return future

    def scheduler(self, send: Callable[[list[int]], None], priority: int | None = None, lead_s=None,
                  drop=None) -> OfflineScheduler:
        """A scheduler that sends each message at its planned time exactly (a lead means nothing here)."""
        scheduler = OfflineScheduler(send, self.now)
        self._schedulers.append(scheduler)
        return scheduler
