"""The step loop, for ``livecomp listen`` on real ports and ``livecomp duet`` on a file alike.

The input port's callback only timestamps messages and queues them. The step loop wakes when
each step's window closes (half a step after its grid line), places the queued messages on
their nearest steps, lets the performer fold the step into the model's state and decide, and
hands what it plans to the scheduler, which sends each message at its grid time minus
``latency_ms``. Time, the queue and the scheduler come from a clock: the wall clock live,
simulated time offline (``timeline.Rehearsal``). Every way out (Ctrl-C, SIGTERM, an error, a
lost port) releases every note livecomp started and sends All Notes Off on its channels;
``--record`` is written then.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from pathlib import Path

from ..io import midi
from ..io.midi import Recorder, is_note_on
from ..io.ports import sender_of
from ..model.engine import Engine
from ..timing.downbeat import bar_1
from ..timing.grid import ClockFollower, Grid
from ..timing.link import LinkFollower
from ..timing.pulse import Pulse
from ..timing.scheduler import SEND_PRIORITY
from ..timing.timeline import WallTimeline
from ..timing.transport import Transport, follower_for
from .config import LiveConfig
from .controls import Controls
from .performer import Performer, PerformerConfig
from .switch import ModelSwitch
from .thru import Thru
from .view import AREA, Holds, draw_status, tell_answers

WAITING_DRAW_S = 0.5             # before bar 1 the status area is drawn this often
AT_ONCE = ("panic", "mute")      # buttons that end what livecomp plays act as they are pressed


class CountInPressed(Exception):
    """The count-in button, pressed before bar 1: the wait for the first note gives way to it."""


LOOKAHEAD_S = 0.25                      # MIDI clock: planned notes are timed this long before they are due


class Live:
    def __init__(self, engine: Engine, performer_cfg: PerformerConfig, cfg: LiveConfig, send, log=print,
                 click_send=None, timeline=None, until=None, loader=None):
        """``send`` and ``click_send``: a function that sends a message at once, or a port that
        may place messages at their own times (``send(message, at)``, ``lead_s``, ``drop()``:
        livecomp's JACK client). ``timeline``: where time, what is heard and the schedulers come
        from (``WallTimeline`` live, ``Rehearsal`` offline). ``until(n)``: asked as each step n
        begins; True ends the run. ``loader(name)``: an engine for a model the keyboard chooses."""
        self.engine = engine
        self.cfg = cfg
        self.performer = Performer(engine, engine.steps_per_beat * cfg.beats_per_bar, engine.steps_per_beat,
                                   performer_cfg)
        self.recorder = Recorder.beside(Path(cfg.record), log) if cfg.record is not None else None   # on request
        self.recorded: Path | None = None                                  # where the recording went
        self.timeline = timeline or WallTimeline()
        self.now = self.timeline.now
        self.until = until
        self._send_port, placing = sender_of(send)
        if self.recorder is not None and "drop" in placing:
            placing["drop"] = self.recorder.dropping(placing["drop"], self.now)
        priority = SEND_PRIORITY if cfg.realtime else None
        self.scheduler = self.timeline.scheduler(self._send, priority=priority, **placing)
        self.grid: Grid | ClockFollower | None = None
        self.bpm: float | None = cfg.bpm
        self.follower = follower_for(cfg.sync, self.now, engine.steps_per_beat, cfg.beats_per_bar, cfg.bpm)
        self.stopping = threading.Event()
        self.transport = Transport(self.follower, self._take, self.stopping, self.now) if self.follower else None
        self.log = log
        self.clicks = self.scheduler
        if click_send is not None:
            click, placing = sender_of(click_send)
            self.clicks = self.timeline.scheduler(click, priority=priority, **placing)
        self._onsets: deque = deque(maxlen=12)        # (step, seconds) of recent notes: --bpm auto follows them
        self._planned: list[tuple[int, list[int], int]] = []   # (step, message, answer) not yet scheduled
        self.holds = Holds(log)                      # the machine holding the loop back, said as it happens
        self._waiting_drawn = -math.inf               # the status area drawn before bar 1
        self.told = 0                                 # answers logged so far (view.tell_answers)
        self.told_joins = 0                           # of them, times duet mode joined the musician
        self.thru = Thru(self._send_port, cfg.thru_channel) if cfg.thru else None
        self.pulse = Pulse(self.scheduler, self.clicks, engine.steps_per_beat, self.performer.steps_per_bar, cfg)
        self.controls = Controls(cfg.controls) if cfg.controls else None
        self.models = ModelSwitch(list(cfg.models), engine.name, loader, self.timeline.background,
                                  engine.steps_per_beat)
        self.models.keep(engine.name, engine)

    # -- ports --------------------------------------------------------------------------------

    def _send(self, message: list[int], at: float | None = None) -> None:
        """Send ``message`` now, or hand it to a port that places it at ``at``."""
        if at is None:
            self._send_port(message)
        else:
            self._send_port(message, at)
        if self.recorder is not None:
            self.recorder.add("played", self.now() if at is None else at, message)

    def heard(self, message: list[int], t: float) -> None:
        """The input callback: timestamp and queue, never block. MIDI clock travels through the
        same queue, so only the step loop touches the clock follower. With ``thru`` a note or the
        pedal also goes straight to the output, ahead of the step loop."""
        if midi.is_system(message) and self.follower is None or not midi.well_formed(message):
            return                                        # a broken message is not passed on either
        if self.thru is not None:
            self.thru.pass_on(message)
        self.timeline.put((t, message))

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        """Listen and answer until ``stopping`` is set; always leaves silence behind."""
        try:
            self._loop()
        finally:
            self.stopping.set()
            if isinstance(self.follower, LinkFollower):
                self.follower.close()                             # leave the session
            if self.cfg.status:
                AREA.close()                                      # the stop line goes where it was
            self.scheduler.panic()
            self.clicks.panic()
            if self.thru is not None:
                self.thru.end()
            if self.cfg.send_clock:
                self._send_port([midi.STOP])                     # followers halt with us
            if self.recorder is not None:
                bpm = self.follower.bpm if self.follower is not None and self.follower.ready else self.bpm
                self.recorded = self.recorder.save_somewhere(Path(self.cfg.record), bpm or 120.0,
                                                             self.grid.origin if self.grid else None, self.log,
                                                             end=self.now())

    def _loop(self) -> None:
        if self.cfg.origin is not None:
            self._new_grid(self.cfg.origin, self.cfg.bpm)
            pending, n = [], 0
        elif self.follower is not None:
            pending, n = self._clock_start()
        elif self.cfg.count_in and self.cfg.bpm is not None:
            pending, n = self._count_in(), 0
        else:
            try:
                pending, self.grid = bar_1(self._take_before_bar_1, self.stopping, self.now, self.cfg.bpm,
                                           self.engine.steps_per_beat, self.cfg.beats_per_bar, self.log)
                self.bpm, n = self.grid.bpm if self.grid else self.bpm, 0
            except CountInPressed:                     # the musician is ready: a bar of clicks, then bar 1
                self.cfg.count_in = self.cfg.count_in or 1
                pending, n = self._count_in(), 0
        if self.grid is None:
            return
        while not self.stopping.is_set() and not (self.until is not None and self.until(n)):
            closes = self.grid.time_of(n + 0.5)
            waited = self.now() < closes                   # in time for the window: a late wake is the machine's
            while not self.stopping.is_set():          # wait for the window to close, and take what
                got = self._take(max(closes - self.now(), 0.0))   # is here already when it has (a late loop)
                if got is None:
                    break
                if not self._at_once(got[1], n):
                    pending.append(got)
            if self.stopping.is_set():
                break
            if waited:
                self.holds.woke(self.now() - closes)
            if self.follower is not None:
                moved = self._clock_moved(pending)
                if moved is not None:
                    pending, n = moved
                    continue
            ready = [(t, m) for t, m in pending if t < closes]     # later ones belong to later steps
            pending = [(t, m) for t, m in pending if t >= closes]
            for t, message in ready:
                self._place(t, message)
            if ready and self.cfg.bpm is None and isinstance(self.grid, Grid) and not self.performer.answering:
                recent = [(k, t) for k, t in self._onsets if k > n - 4 * self.performer.steps_per_bar]
                if self.grid.follow(recent):
                    self.bpm = self.grid.bpm
            self._hand_over(n)                             # what earlier steps planned, timed now
            if (engine := self.models.ready(self.performer, self.log)) is not None:
                self.engine = engine                       # a model chosen on the keyboard, between calls
                self.performer.use(engine)
            self._plan(self.performer.step(n))
            self._hand_over(n)
            tell_answers(self)
            self.pulse.step(self.grid, n + 1)
            if self.cfg.status and n % self.engine.steps_per_beat == 0:
                draw_status(self, n)
            n += 1

    def _take_before_bar_1(self, timeout: float) -> tuple[float, list[int]] | None:
        """``_take`` while waiting for the first note: a control moved meanwhile acts and is
        said at once, not when the first note has set the grid."""
        deadline = self.now() + timeout
        if self.cfg.status and time.monotonic() - self._waiting_drawn >= WAITING_DRAW_S:
            self._waiting_drawn = time.monotonic()      # the area is there from the start
            draw_status(self, None)
        while True:
            got = self._take(max(deadline - self.now(), 0.0))
            if got is None or self.controls is None or self.controls.name_of(got[1]) is None:
                return got
            change = self.controls.read(got[1])
            if change is not None and change.control == "count-in":
                if self.cfg.bpm is not None:
                    raise CountInPressed
                self.log("count-in: it needs a tempo to click at; give --bpm a number (bar 1 is your first note)")
                continue
            self.controls.apply(change, self, 0)

    def _at_once(self, message: list[int], n: int) -> bool:
        """Panic and mute act as they arrive, not when the step's window closes (up to a 16th
        later): whether ``message`` was one of their buttons, and is done with."""
        if self.controls is None or self.controls.name_of(message) not in AT_ONCE:
            return False
        self.controls.apply(self.controls.read(message), self, n)
        return True

    def _plan(self, events) -> None:
        """The performer's events, kept until ``_hand_over`` times them; a stop drops what its
        answer still planned and releases what sounds."""
        tag = self.performer.answers
        for event in events:
            if event.kind == "stop":
                due = self.grid.time_of(event.step) - self.cfg.latency_ms / 1000.0
                self._planned = [p for p in self._planned if not (p[2] == tag and p[0] >= event.step)]
                self.scheduler.cancel(tag, after=due)
                self.scheduler.release(max(due, self.now()))
            elif event.kind == "on":
                self._planned.append((event.step, midi.note_on(self.cfg.channel, event.pitch, event.velocity), tag))
            else:
                self._planned.append((event.step, midi.note_off(self.cfg.channel, event.pitch), tag))

    def _hand_over(self, n: int) -> None:
        """Give the scheduler the planned messages it may need before the next step's window
        closes. On a fixed grid that is all of them. Under MIDI clock only those due within
        ``LOOKAHEAD_S`` of that moment: each is timed on the latest ticks, so an answer planned a
        bar ahead still lands on the source's bar line when its tempo drifts or its ticks came
        in late while the answer was planned."""
        if not self._planned:
            return
        latency = self.cfg.latency_ms / 1000.0
        horizon = self.grid.time_of(n + 1.5) + LOOKAHEAD_S if self.follower is not None else math.inf
        kept = []
        for step, message, tag in self._planned:
            due = self.grid.time_of(step) - latency
            if due <= horizon:
                self.scheduler.at(due, message, tag)
            else:
                kept.append((step, message, tag))
        self._planned = kept

    def _clock_start(self) -> tuple[list, int]:
        """--sync clock or link: wait for the clock to run (Start, or Song Position Pointer and
        Continue); the tick after Start is beat 1 of bar 1."""
        pending = self.transport.wait_until_running([])
        if self.stopping.is_set():
            return pending, 0
        self.grid = self.follower
        self.bpm = self.follower.bpm
        self.log(self.transport.started(self.cfg.beats_per_bar))
        return pending, self.transport.step_now()

    def _clock_moved(self, pending: list) -> tuple[list, int] | None:
        """--sync clock or link, after each step: None while the clock runs on. When the source
        stopped, went quiet, started again or moved: silence at once, wait until it runs again,
        and go on from the step it is at then with a fresh call (a Start is the song from the
        top, a move is elsewhere in it). Returns the messages heard meanwhile that belong to the
        music after it, and that step."""
        moved = self.transport.moved(pending)
        if moved is None:
            return None
        self.scheduler.cancel(self.performer.answers)
        self.scheduler.release()
        self._planned = []
        self.performer.restart()
        pending, line = self.transport.resumed(pending, moved)
        if self.stopping.is_set():
            return [], 0
        n = self.transport.step_now()
        self.bpm = self.follower.bpm
        self.log(f"{line}; at bar {n // self.performer.steps_per_bar + 1}, {self.bpm:.1f} bpm")
        return pending, n

    def _count_in(self) -> list:
        """--count-in N: N bars of clicks from now; the bar after them is bar 1."""
        bars, spbar = self.cfg.count_in, self.performer.steps_per_bar
        start = self.now() + 0.2
        self._new_grid(start + bars * spbar * 60.0 / (self.cfg.bpm * self.engine.steps_per_beat), self.cfg.bpm)
        self.pulse.count_in(self.grid)
        self.log(f"count-in: {bars} bar{'s' * (bars != 1)} at {self.cfg.bpm:g} bpm, then bar 1")
        pending = []
        while not self.stopping.is_set() and self.now() < self.grid.time_of(-0.5):
            got = self._take(max(min(self.grid.time_of(-0.5) - self.now(), 0.05), 0.0))
            if got is not None:
                pending.append(got)
        return pending

    def _take(self, timeout: float) -> tuple[float, list[int]] | None:
        """The next message heard, waiting at most ``timeout`` seconds; MIDI clock on the way is
        fed to the follower (what its transport did is kept for ``_clock_moved``)."""
        deadline = self.now() + timeout
        while True:
            try:
                t, message = self.timeline.get(max(deadline - self.now(), 0.0))
            except queue.Empty:
                return None
            if not midi.well_formed(message):
                continue                                  # a broken message holds nothing down
            if midi.is_system(message):
                if self.transport is not None:
                    self.transport.feed(message, t)
                continue
            if self.recorder is not None:
                self.recorder.add("heard", t, message)
            return t, message

    def _new_grid(self, origin: float, bpm: float) -> None:
        self.grid = Grid(origin=origin, bpm=bpm, steps_per_beat=self.engine.steps_per_beat,
                         beats_per_bar=self.cfg.beats_per_bar)
        self.bpm = bpm
        if self.recorder is not None:
            self.recorder.grid(origin, bpm)

    def _place(self, t: float, message: list[int]) -> None:
        step = self.grid.nearest_step(t)
        if step < 0:                                      # during a count-in: warming up, not the call
            if is_note_on(message):
                return
            step = 0
        if is_note_on(message):
            self._onsets.append((step, t))
        if self.controls is not None and self.controls.name_of(message) is not None:
            self.controls.apply(self.controls.read(message), self, step)
            return
        self.performer.hear(step, message, self.cfg.end_cc)

    def hush(self, step: int) -> None:
        """End at once what livecomp plays: the answer's plans, then every sounding note and
        the channels' sound (a control asked); the performer drops it after ``step``."""
        self._planned = []
        self.scheduler.cancel(self.performer.answers)
        self.scheduler.hush()
        self.performer.drop(step)
