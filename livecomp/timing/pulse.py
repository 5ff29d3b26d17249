"""What livecomp sends for others to keep time by: a click on every beat (``--metronome``, and
``--count-in``'s bars before bar 1) and MIDI clock for a DAW or drum machine to follow
(``--send-clock``). Everything is scheduled half a step ahead, on the grid the step loop keeps."""

from __future__ import annotations

from ..io import midi

CLOCK_OUT, CLICKS = -2, -3             # scheduler tags of what is not an answer
CLICK_NOTES = (76, 77)                  # General MIDI Hi / Low Wood Block: beat 1, other beats


class Pulse:
    def __init__(self, scheduler, clicks, steps_per_beat: int, steps_per_bar: int, cfg):
        """``scheduler`` sends the clock, ``clicks`` the clicks (another port with --click-out);
        ``cfg``: the session's ``LiveConfig``."""
        self.scheduler, self.clicks = scheduler, clicks
        self.steps_per_beat, self.steps_per_bar = steps_per_beat, steps_per_bar
        self.cfg = cfg

    def step(self, grid, step: int) -> None:
        """The pulse of ``step``, about to come: its clock ticks and its click, as asked for."""
        if self.cfg.send_clock:
            self.ticks(grid, step)
        if self.cfg.metronome:
            self.click(grid, step)

    def ticks(self, grid, step: int) -> None:
        """MIDI clock for ``step``: its ticks at 24 per beat. After a count-in, followers had
        ticks through it and Start just before bar 1 (``count_in``). Otherwise the grid starts
        with the musician's first note, so step 0 is past by the time the clock can start: before
        step 1, Song Position Pointer (in 16ths) and Continue start followers there instead."""
        ticks = 24 // self.steps_per_beat
        tick = grid.step_seconds / ticks
        due = grid.time_of(step)
        if step == 1 and not self.cfg.count_in:
            sixteenths = 4 // self.steps_per_beat if self.steps_per_beat <= 4 else 0
            self.scheduler.at(due - 0.002, midi.song_position(sixteenths), tag=CLOCK_OUT)
            self.scheduler.at(due - 0.001, [midi.CONTINUE], tag=CLOCK_OUT)
        for i in range(ticks):
            self.scheduler.at(due + i * tick, [midi.CLOCK], tag=CLOCK_OUT)

    def click(self, grid, step: int) -> None:
        """A click for ``step`` if a beat starts there, accented on beat 1."""
        if step % self.steps_per_beat:
            return
        note = CLICK_NOTES[0] if step % self.steps_per_bar == 0 else CLICK_NOTES[1]
        due = grid.time_of(step) - self.cfg.latency_ms / 1000.0
        channel = self.cfg.click_channel
        self.clicks.at(due, midi.note_on(channel, note, 100 if note == CLICK_NOTES[0] else 70), tag=CLICKS)
        self.clicks.at(due + grid.step_seconds, midi.note_off(channel, note), tag=CLICKS)

    def count_in(self, grid) -> None:
        """``--count-in``'s bars of clicks before bar 1 (and with --metronome bar 1's own, as the
        step loop clicks from step 1); with --send-clock, ticks through them to set a follower's
        tempo, and Start just before bar 1."""
        first = -self.cfg.count_in * self.steps_per_bar
        for step in range(first, 1 if self.cfg.metronome else 0, self.steps_per_beat):
            self.click(grid, step)
        if self.cfg.send_clock:
            for step in range(first, 1):
                self.ticks(grid, step)
            self.scheduler.at(grid.time_of(0) - 0.001, [midi.START], tag=CLOCK_OUT)
