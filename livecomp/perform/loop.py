"""The step loop, for ``livecomp listen`` on real ports and ``livecomp duet`` on a file alike.

The input port's callback only timestamps messages and queues them. The step loop wakes when
each step's window closes (half a step after its grid line), places the queued messages on
their nearest steps, lets the performer fold the step into the model's state and decide, and
hands what it plans to the scheduler, which sends each message at its grid time minus
``latency_ms``. Time, the queue and the scheduler come from a clock: the wall clock live,
simulated time offline (``scheduler.Rehearsal``). Every way out (Ctrl-C, SIGTERM, an error, a
lost port) releases every note livecomp started and sends All Notes Off on its channels;
``--record`` is written then.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..io import midi
from ..timing.grid import ClockFollower, Grid
from .controls import Controls
from ..timing.downbeat import bar_1
from ..model.engine import Engine
from ..timing.link import LinkFollower
from ..io.midi import Recorder, is_note_on
from .performer import Performer, PerformerConfig
from ..timing.pulse import Pulse
from ..timing.scheduler import SEND_PRIORITY, WallTimeline
from .switch import ModelSwitch
from .thru import Thru
from .view import AREA, draw_status, tell_answers


HELD_S = 0.030                   # the step loop woke this much after its window closed: the machine held it
WAITING_DRAW_S = 0.5             # before bar 1 the status area is drawn this often
HELD_EVERY_S = 5.0               # at most one line about it this often
AT_ONCE = ("panic", "mute")      # buttons that end what livecomp plays act as they are pressed


class CountInPressed(Exception):
    """The count-in button, pressed before bar 1: the wait for the first note gives way to it."""


@dataclass
class LiveConfig:
    bpm: float | None = 120.0           # None: estimated from the first phrase (--bpm auto)
    beats_per_bar: int = 4
    channel: int = 0                    # livecomp's output channel (0-15)
    latency_ms: float = 0.0             # send this much earlier than the grid (a synth's delay)
    end_cc: int | None = None           # a controller that ends a call at once
    record: Path | None = None
    status: bool = True                 # a status area on a terminal (view.py)
    sync: str = "internal"              # "clock": follow MIDI clock from the input port; "link": an Ableton Link session
    send_clock: bool = False            # send MIDI clock (and Start) on the output port
    metronome: bool = False             # a click on every beat, accented on beat 1
    count_in: int = 0                   # bars of clicks before bar 1 (fixed --bpm): they set the phase
    click_channel: int = 9              # 0-15; 9 is General MIDI's drum channel
    realtime: bool = True               # the sending thread at real-time priority where the system allows
    thru: bool = False                  # the musician's notes and pedal pass to the output as they arrive ...
    thru_channel: int | None = None     # ... on this channel (0-15), or on the one they came on
    origin: float | None = None         # beat 1 of bar 1 is known (a file's start offline): no waiting for it
    controls: dict[int, str] | None = None   # controller number -> control (``controls.controls_from``)
    models: tuple[str, ...] = ()        # what the keyboard may switch to (``switch.ModelSwitch``)

    def __post_init__(self):
        """A setting no session can have is refused in one sentence (``ValueError``)."""
        if self.bpm is not None and not (isinstance(self.bpm, (int, float)) and 0 < self.bpm < math.inf):
            raise ValueError(f"bpm must be a positive number (or None: from the first phrase), not {self.bpm!r}")
        if self.sync not in ("internal", "clock", "link"):
            raise ValueError(f"sync must be internal, clock or link, not {self.sync!r}")
        ranges = {"beats_per_bar": (1, 64), "channel": (0, 15), "click_channel": (0, 15), "thru_channel": (0, 15),
                  "end_cc": (0, 127), "count_in": (0, 64)}
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and low <= value <= high):
                raise ValueError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
        if not (isinstance(self.latency_ms, (int, float)) and 0 <= self.latency_ms <= 500):
            raise ValueError(f"latency_ms must be from 0 to 500, not {self.latency_ms!r}")
        fixed = self.bpm is not None and self.sync == "internal"
        if self.count_in and not fixed:
            raise ValueError("count_in needs a fixed bpm (with auto or MIDI clock the tempo is not known beforehand)")
        if self.origin is not None and not fixed:
            raise ValueError("origin (a known beat 1 of bar 1) needs a fixed bpm")
        if any(not 0 <= number <= 127 for number in self.controls or {}):
            raise ValueError(f"controls must be controller numbers 0-127, not {sorted(self.controls)}")


LOOKAHEAD_S = 0.25                      # MIDI clock: planned notes are timed this long before they are due
PAUSE_GRACE_S = 0.05                    # MIDI clock: how long a seeming pause waits for ticks still on the way


def _output(output) -> tuple:
    """(the function that sends, a scheduler's ``lead_s`` and ``drop``) for ``output``: a plain
    function, or a port, whose lead and drop come along where it places messages at their own
    times."""
    if not hasattr(output, "send"):
        return output, {}
    if output.lead_s:
        return output.send, {"lead_s": lambda: output.lead_s, "drop": output.drop}
    return output.send, {}


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
        self.recorder = self._recorder(log) if cfg.record is not None else None    # only on request
        self.recorded: Path | None = None                                  # where the recording went
        self.timeline = timeline or WallTimeline()
        self.now = self.timeline.now
        self.until = until
        self._send_port, placing = _output(send)
        if self.recorder is not None and "drop" in placing:
            placing["drop"] = self._dropping(placing["drop"])
        priority = SEND_PRIORITY if cfg.realtime else None
        self.scheduler = self.timeline.scheduler(self._send, priority=priority, **placing)
        self.grid: Grid | ClockFollower | None = None
        self.bpm: float | None = cfg.bpm
        self.follower = ClockFollower(engine.steps_per_beat, cfg.beats_per_bar) if cfg.sync == "clock" else \
            LinkFollower(self.now, engine.steps_per_beat, cfg.beats_per_bar, cfg.bpm or 120.0) if cfg.sync == "link" \
            else None
        self.stopping = threading.Event()
        self.log = log
        self.clicks = self.scheduler
        if click_send is not None:
            click, placing = _output(click_send)
            self.clicks = self.timeline.scheduler(click, priority=priority, **placing)
        self._onsets: deque = deque(maxlen=12)        # (step, seconds) of recent notes: --bpm auto follows them
        self._transport: list[str] = []               # what the clock's transport did since the last step
        self._planned: list[tuple[int, list[int], int]] = []   # (step, message, answer) not yet scheduled
        self._worst_hold, self._held_said = 0.0, -math.inf   # the machine holding the loop back (_held)
        self._waiting_drawn = -math.inf               # the status area drawn before bar 1
        self.told = 0                                 # answers logged so far (view.tell_answers)
        self.told_joins = 0                           # of them, times duet mode joined the musician
        self.thru = Thru(self._send_port, cfg.thru_channel) if cfg.thru else None
        self.pulse = Pulse(self.scheduler, self.clicks, engine.steps_per_beat, self.performer.steps_per_bar, cfg)
        self.controls = Controls(cfg.controls) if cfg.controls else None
        self.models = ModelSwitch(list(cfg.models), engine.name, loader, self.timeline.background, engine.steps_per_beat)
        self.models.keep(engine.name, engine)

    # -- ports --------------------------------------------------------------------------------

    def _recorder(self, log) -> Recorder:
        """The take, journalled beside the file asked for as it is played (a journal left by a
        session that died is recovered first); kept in memory only where no journal can be opened."""
        journal = midi.journal_of(Path(self.cfg.record))
        if journal.exists():
            midi.recover(journal, log)
        try:
            return Recorder(journal)
        except OSError as exc:
            log(f"cannot keep a journal of the recording in {journal} ({exc.strerror or exc}); "
                f"the take is kept in memory until the end")
            return Recorder()

    def _dropping(self, drop):
        """The port's ``drop`` (what was handed over ahead of its time and has not left is
        taken back: panic, mute, the way out), telling the recording that those never sounded."""
        def dropped() -> None:
            drop()
            self.recorder.taken_back(self.now())
        return dropped

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
                self._held(self.now() - closes)
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

    def _held(self, late: float) -> None:
        """The step loop woke ``late`` seconds after its window closed: where that is more than
        HELD_S, the machine (other programs' load) held livecomp back, and what it sends may be
        late for that; said in one line as it happens (at most one every HELD_EVERY_S, with the
        longest hold since), so the musician knows whom to blame."""
        if late > self._worst_hold:
            self._worst_hold = late
        if self._worst_hold > HELD_S and time.monotonic() - self._held_said >= HELD_EVERY_S:
            self.log(f"the machine held livecomp for {self._worst_hold * 1e3:.0f} ms at {time.strftime('%H:%M:%S')} "
                     f"(other programs' load): what it played then may be late by as much")
            self._held_said, self._worst_hold = time.monotonic(), 0.0

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
        """--sync clock: wait for the clock to run (Start, or Song Position Pointer and Continue);
        the tick after Start is beat 1 of bar 1."""
        pending = self._until_the_clock_runs([])
        if self.grid is None and not self.stopping.is_set():
            self.grid = self.follower
        self._transport = []                                       # the Start waited for is not a restart
        if self.grid is None:
            return pending, 0
        self.bpm = self.follower.bpm
        if isinstance(self.follower, LinkFollower):
            f = self.follower
            peers = f"{f.peers} peer{'s' * (f.peers != 1)}" if f.peers else "no peer yet"
            self.log(f"following Ableton Link at {f.bpm:.1f} bpm ({peers}); bar lines on the session's "
                     f"{self.cfg.beats_per_bar}-beat phase")
            f.check()                                                # transitions from here on
        else:
            self.log(f"following MIDI clock at {self.follower.bpm:.1f} bpm; beat 1 of bar 1 at its Start")
        return pending, self._clock_step()

    def _until_the_clock_runs(self, pending: list) -> list:
        """Wait (feeding the follower) until the clock runs with two ticks to go by; the notes
        heard meanwhile are added to ``pending``."""
        f = self.follower
        while not self.stopping.is_set() and not (f.running and f.ready and not f.paused(self.now())):
            got = self._take(0.02)
            if got is not None:
                pending.append(got)
        return pending

    def _clock_step(self) -> int:
        """The step the clock is in now (its window may have closed already: it is decided at once)."""
        return max(math.floor(self.follower.step_at(self.now())), 0)

    def _clock_moved(self, pending: list) -> tuple[list, int] | None:
        """--sync clock, after each step: None while the clock runs on. When the source stopped,
        went quiet without Stop (a cable pulled), started again or moved (Song Position Pointer):
        silence at once, wait until it runs again, and go on from the step it is at then with a
        fresh call (a Start is the song from the top, a move is elsewhere in it). Returns the
        messages heard meanwhile that belong to the music after it, and that step."""
        f = self.follower
        if isinstance(f, LinkFollower):
            self._transport += f.check()
        grace = self.now() + PAUSE_GRACE_S
        while not self._transport and f.running and f.paused(self.now()) and (left := grace - self.now()) > 0:
            got = self._take(left)                  # a late reader's ticks, not a pulled cable
            if got is not None:
                pending.append(got)
        moved, self._transport = self._transport, []
        if not moved and f.running and not f.paused(self.now()):
            return None
        self.scheduler.cancel(self.performer.answers)
        self.scheduler.release()
        self._planned = []
        self.performer.restart()
        pending = self._until_the_clock_runs(pending)
        if isinstance(f, LinkFollower):
            self._transport += f.check()                      # the start that ended the wait sets bar 1
        moved, self._transport = moved + self._transport, []   # a Stop's wait ends with the Start: one move
        if self.stopping.is_set():
            return [], 0
        since = f.resumed_at - f.step_seconds / 2             # a note with the first tick counts
        n = self._clock_step()
        self.bpm = f.bpm
        what = ", ".join(dict.fromkeys(moved)) or "paused"
        source = "Ableton Link" if isinstance(f, LinkFollower) else "MIDI clock"
        self.log(f"{source}: {what}; at bar {n // self.performer.steps_per_bar + 1}, {f.bpm:.1f} bpm")
        return [(t, m) for t, m in pending if t >= since], n

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
                moved = self.follower.feed(message, t) if self.follower is not None else None
                if moved is not None:
                    self._transport.append(moved)
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
