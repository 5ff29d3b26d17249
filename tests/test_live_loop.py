"""The live loop itself (``Live``) on simulated time (``Rehearsal``): what a DAW's transport does
to it, a count-in, a tempo change, exactly and deterministically, without ports or threads.

Each scenario is a list of timed messages as an input port would deliver them; the loop runs
on them as it does live, and what its scheduler sent is checked against the source's grid to
the microsecond. The same scenarios on real JACK ports are in ``test_live.py``."""

from __future__ import annotations

import pytest

from livecomp.io import midi
from livecomp.model.engine import Engine
from livecomp.model.folder import shipped_models
from livecomp.perform.loop import Live, LiveConfig
from livecomp.perform.performer import PerformerConfig
from livecomp.timing.pulse import CLICK_NOTES
from livecomp.timing.timeline import Rehearsal

from conftest import still_sounding

TICKS = 24                                   # per beat
ARPEGGIO = [(2 * i, p) for i, p in enumerate([60, 64, 67, 72, 67, 64, 60, 55])]   # a bar of quavers


@pytest.fixture(scope="module")
def engine() -> Engine:
    if "basic" not in shipped_models():
        pytest.skip("needs the shipped basic model")
    return Engine(shipped_models()["basic"], provider="cpu")


class Song:
    """A clock source's messages, built in order: ticks at a tempo, calls on its steps."""

    def __init__(self, t: float = 1.0):
        self.messages: list[tuple[float, list[int]]] = []
        self.t = t                           # the time of the next tick
        self.position = 0                    # the source's count of the next tick
        self.tick = 60 / 120 / TICKS
        self.lines: dict[int, float] = {}    # the source's step -> its time, for every step it ticked
        self.songs: list[dict[int, float]] = [self.lines]   # the lines of each Start's song

    def send(self, message: list[int], late: float = 0.0) -> "Song":
        self.messages.append((self.t - self.tick / 2 + late, message))   # between two ticks
        return self

    def start(self) -> "Song":
        self.position = 0
        if self.lines:
            self.lines = {}
            self.songs.append(self.lines)
        return self.send([midi.START])

    def ticks(self, n: int, bpm: float | None = None, call_at: int | None = None) -> "Song":
        """``n`` ticks; ``call_at``: the arpeggio from this step of the source's count."""
        if bpm is not None:
            self.tick = 60 / bpm / TICKS
        first = self.position
        for i in range(n):
            if (self.position + i) % 6 == 0:
                self.lines[(self.position + i) // 6] = self.t + i * self.tick
        if call_at is not None:
            for s, pitch in ARPEGGIO:
                on = self.t + ((call_at + s) * 6 - first) * self.tick
                self.messages += [(on, midi.note_on(1, pitch, 90)), (on + 6 * self.tick, midi.note_off(1, pitch))]
        self.messages += [(self.t + i * self.tick, [midi.CLOCK]) for i in range(n)]
        self.t += n * self.tick
        self.position += n
        return self

    def wait(self, seconds: float) -> "Song":
        self.t += seconds
        return self


def rehearse(engine, messages, until: float, bars: int = 1, **live):
    """The live loop following ``messages`` until ``until`` seconds: (notes it sent as
    (time, message), what it logged, the loop)."""
    rehearsal = Rehearsal(messages)
    said: list[str] = []
    loop = Live(engine, PerformerConfig(seed=1, bars=bars, silence_beats=1, candidates=1),
                LiveConfig(status=False, realtime=False, **{"sync": "clock", **live}), send=lambda m: None,
                log=said.append, timeline=rehearsal)
    rehearsal.call_at(until, loop.stopping.set)
    loop.run()
    return loop.scheduler.sent, said, loop


def onsets(sent) -> list[tuple[float, int]]:
    return [(t, m[1]) for t, m in sent if midi.is_note_on(m) and m[0] & 0x0F == 0]


def on_lines(notes, lines: dict[int, float], first: int, last: int) -> list[int]:
    """The source's steps (``lines``: step -> time) the notes sent between its steps ``first``
    and ``last`` fall on; a note off every line fails."""
    step_at = {round(t, 9): step for step, t in lines.items()}
    end = lines.get(last, max(lines.values()) + 1e-6)
    times = [t for t, _ in notes if lines[first] - 1e-9 <= t < end - 1e-9]
    steps = [step_at.get(round(t, 9)) for t in times]
    assert None not in steps, times
    return steps


def test_start_again_while_running_and_after_stop_answers_on_each_songs_bar_lines(engine):
    """Song 1 from Start; Start again in bar 3, in the middle of its answer (the song from the
    top: the answer stops, nothing hangs); Stop; a second later Start at another tempo."""
    song = Song().start().ticks(2 * 96 + 24, call_at=0)                   # to beat 2 of bar 3
    song.start().ticks(4 * 96, call_at=0).send([midi.STOP]).wait(1.0)
    song.start().ticks(4 * 96, bpm=100, call_at=0)
    sent, said, _ = rehearse(engine, song.messages, song.t)
    notes = onsets(sent)
    for lines, cut in zip(song.songs, (36, 64, 64)):
        steps = on_lines(notes, lines, 0, cut)
        assert steps and 32 <= steps[0] < 48, (steps, said)            # each song's own bar 3
    assert [line for line in said if line.startswith("answer")] == [f"answer {i}: bar 3" for i in (1, 2, 3)]
    assert not still_sounding(sent)
    assert sum(line.startswith("MIDI clock: start;") for line in said) == 1, said
    assert any(line.startswith("MIDI clock: stop, start;") for line in said), said


def test_stop_then_continue_goes_on_from_the_same_place(engine):
    """Stop in bar 2 (the planned answer is dropped), Continue a second later: the count goes on
    from where it stopped, and a call in bar 4 is answered on bar 6 of the continued song."""
    song = Song().start().ticks(96 + 48, call_at=0).send([midi.STOP]).wait(1.0)
    song.send([midi.CONTINUE]).ticks(5 * 96, call_at=48)
    sent, said, _ = rehearse(engine, song.messages, song.t)
    notes = onsets(sent)
    assert notes
    assert 80 <= on_lines(notes, song.lines, 0, 104)[0] < 96                       # bar 6 of the song
    assert any(line.startswith("MIDI clock: stop, continue; at bar 2") for line in said), said
    assert not still_sounding(sent)


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_song_position_pointer_moves_the_bar_lines(engine, running):
    """The DAW jumps to bar 9 (Song Position Pointer, 128 16ths), stopped or while running; a call
    in bar 9 is answered on bar 11 of the song's count."""
    song = Song().start().ticks(96 + 24)
    if not running:
        song.send([midi.STOP]).wait(0.5)
    song.send(midi.song_position(128))
    song.position = 128 * 6
    if not running:
        song.send([midi.CONTINUE])
    song.ticks(4 * 96, call_at=128)
    sent, said, _ = rehearse(engine, song.messages, song.t)
    steps = on_lines(onsets(sent), song.lines, 128, 192)
    assert steps and 160 <= steps[0] < 176, steps                                       # bar 11
    assert any("at bar 9" in line for line in said), said
    assert not still_sounding(sent)


def test_a_note_that_comes_with_starts_first_tick_is_beat_1(engine):
    """The call's first note arrives with the first tick (a DAW sends both in one period): it is
    heard on step 0, and the one-bar call is answered on bar 3 exactly."""
    song = Song().start()
    song.messages.append((song.t, midi.note_on(1, 48, 90)))
    song.messages.append((song.t + 0.1, midi.note_off(1, 48)))
    song.ticks(4 * 96, call_at=None)
    song.messages += [(song.lines[s], midi.note_on(1, p, 90)) for s, p in ARPEGGIO[1:]]
    song.messages += [(song.lines[s + 1], midi.note_off(1, p)) for s, p in ARPEGGIO[1:]]
    heard = []
    rehearsal = Rehearsal(song.messages)
    loop = Live(engine, PerformerConfig(seed=1, bars=1, silence_beats=1, candidates=1),
                LiveConfig(status=False, realtime=False, sync="clock"), send=lambda m: None, log=lambda s: None,
                timeline=rehearsal)
    hear = loop.performer.hear
    loop.performer.hear = lambda step, m, cc=None: (heard.append((step, m)), hear(step, m, cc))
    rehearsal.call_at(song.t, loop.stopping.set)
    loop.run()
    assert heard[0] == (0, midi.note_on(1, 48, 90)), heard[:3]
    assert 32 <= on_lines(onsets(loop.scheduler.sent), song.lines, 0, 64)[0] < 48


def test_a_tempo_change_mid_song_is_followed_to_the_bar_line(engine):
    """120 bpm for two bars, then 90: a call in bar 3 is answered on bar 5 at the new tempo."""
    song = Song().start().ticks(2 * 96).ticks(4 * 96, bpm=90, call_at=32)
    sent, said, loop = rehearse(engine, song.messages, song.t)
    steps = on_lines(onsets(sent), song.lines, 32, 96)
    assert steps and 64 <= steps[0] < 80, steps
    assert loop.follower.bpm == pytest.approx(90)
    assert loop.follower.lost == 0


def test_a_count_in_sets_bar_1_and_its_clicks_fall_on_the_beats(engine):
    """--count-in 1 at 100 bpm: four clicks a beat apart, beat 1 accented; a call played from bar
    1 (a note a little early among them) is answered on bar 3 of that grid."""
    beat = 60 / 100
    bar1 = 0.2 + 4 * beat                                  # the count-in starts 0.2 s after the loop
    call = [(bar1 + s * beat / 4 - (0.01 if i == 0 else 0), p) for i, (s, p) in enumerate(ARPEGGIO)]
    messages = [(t, midi.note_on(0, p, 90)) for t, p in call] + [(t + beat / 4, midi.note_off(0, p)) for t, p in call]
    messages.append((0.2 + 1.5 * beat, midi.note_on(0, 40, 90)))          # during the count-in: not the call
    messages.append((0.2 + 1.7 * beat, midi.note_off(0, 40)))
    sent, said, loop = rehearse(engine, messages, bar1 + 4 * 4 * beat, sync="internal", bpm=100.0, count_in=1,
                                metronome=True)
    clicks = [(t, m[1]) for t, m in sent if midi.is_note_on(m) and m[0] & 0x0F == 9]
    assert [n for _, n in clicks[:8]] == ([CLICK_NOTES[0]] + [CLICK_NOTES[1]] * 3) * 2
    assert [t for t, _ in clicks[:5]] == pytest.approx([0.2 + i * beat for i in range(5)], abs=1e-9)
    answer = [t for t, p in onsets(sent)]
    assert answer and bar1 + 8 * beat - 1e-9 <= answer[0] < bar1 + 12 * beat            # in bar 3
    assert all(abs((t - bar1) / (beat / 4) - round((t - bar1) / (beat / 4))) < 1e-6 for t in answer)
    assert loop.performer.planned[0] == (32, 48)


def test_bpm_auto_takes_the_tempo_and_phase_from_the_first_phrase(engine):
    """--bpm auto: a phrase at 84 bpm sets the grid; the answer starts on a bar line of it."""
    beat = 60 / 84
    call = [(1.0 + s * beat / 4, p) for s, p in ARPEGGIO + [(16 + s, p) for s, p in ARPEGGIO]]
    messages = [(t, midi.note_on(0, p, 90)) for t, p in call] + [(t + beat / 4, midi.note_off(0, p)) for t, p in call]
    sent, said, loop = rehearse(engine, messages, 1.0 + 20 * beat, sync="internal", bpm=None)
    assert loop.grid.bpm == pytest.approx(84, abs=0.5)
    answer = [t for t, _ in onsets(sent)]
    assert answer
    steps = [(t - loop.grid.origin) / loop.grid.step_seconds for t in answer]
    assert all(abs(k - round(k)) < 1e-6 for k in steps), steps                    # on its 16th lines
    start, end = loop.performer.planned[0]
    assert start % 16 == 0 and start <= steps[0] < end, (start, steps, said)     # from a bar line


@pytest.mark.parametrize("config, fields", [
    (PerformerConfig, {"align": "bars"}), (PerformerConfig, {"barge_in": "ignore"}),
    (PerformerConfig, {"temperature": float("nan")}), (PerformerConfig, {"candidates": 0}),
    (PerformerConfig, {"bars": 0}), (PerformerConfig, {"silence_beats": -1.0}),
    (LiveConfig, {"channel": 16}), (LiveConfig, {"sync": "midi"}), (LiveConfig, {"bpm": 0.0}),
    (LiveConfig, {"count_in": 1, "bpm": None}), (LiveConfig, {"end_cc": 128}),
], ids=lambda v: str(v) if isinstance(v, dict) else v.__name__)
def test_a_setting_no_performance_can_have_is_refused_when_the_config_is_made(config, fields):
    with pytest.raises(ValueError, match=next(iter(fields))):
        config(**fields)


def test_a_loop_held_up_for_a_second_still_hears_the_call_on_its_own_steps(engine):
    """The process stalls for a second just after the first note (another thread held the
    interpreter): when the loop runs again, the steps whose windows closed meanwhile get the
    messages stamped in them, so the call ends where it ended and is answered on bar 3, not
    taken for a call that lasted until the loop caught up."""
    step = 60 / 240 / 4
    call = [(1.0 + s * step, p) for s, p in ARPEGGIO]
    messages = [(t, midi.note_on(0, p, 90)) for t, p in call] + [(t + step, midi.note_off(0, p)) for t, p in call]
    rehearsal = Rehearsal(messages)
    loop = Live(engine, PerformerConfig(seed=1, bars=1, silence_beats=1, candidates=1),
                LiveConfig(bpm=240.0, status=False, realtime=False), send=lambda m: None, log=lambda s: None,
                timeline=rehearsal)
    heard = []
    hear = loop.performer.hear
    loop.performer.hear = lambda n, m, cc=None: (heard.append((n, m[1])), hear(n, m, cc))
    rehearsal.call_at(1.01, lambda: rehearsal.to(3.3))                  # held up past bar 2
    rehearsal.call_at(1.0 + 64 * step, loop.stopping.set)
    loop.run()
    assert [n for n, _ in heard] == sorted(n for n, _ in heard) and heard[-1] == (15, 55), heard
    assert loop.performer.planned[0] == (32, 48)


@pytest.mark.parametrize("junk", [[0xB0, 64, 200], [0x99, 36, 100]], ids=["sustain-at-200", "drum-note-held"])
def test_a_broken_pedal_or_a_held_drum_note_does_not_silence_livecomp(engine, junk):
    """A sustain message with a data byte over 127 is no pedal, and a drum note (channel 10,
    left out of every roll) holds no call open: the arpeggio is still answered on bar 3."""
    step = 60 / 240 / 4
    call = [(1.0 + s * step, p) for s, p in ARPEGGIO]
    messages = [(0.99, junk)] + [(t, midi.note_on(0, p, 90)) for t, p in call] + \
        [(t + step, midi.note_off(0, p)) for t, p in call]
    rehearsal = Rehearsal(messages)
    loop = Live(engine, PerformerConfig(seed=1, bars=1, silence_beats=1, candidates=1),
                LiveConfig(bpm=240.0, status=False, realtime=False, origin=1.0), send=lambda m: None,
                log=lambda s: None, timeline=rehearsal)
    rehearsal.call_at(1.0 + 64 * step, loop.stopping.set)
    loop.run()
    assert loop.performer.planned and loop.performer.planned[0] == (32, 48), loop.performer.planned


def test_a_loop_the_machine_held_back_says_so_once_in_a_line(engine):
    """The process stalls for 60 ms while waiting for a window to close (another program had
    the CPU), 19 ms before it closes: one line says it woke 41 ms late, and when, so the
    musician knows whom to blame; no line when nothing held it."""
    def session(stall: bool) -> list[str]:
        step = 60 / 240 / 4
        rehearsal = Rehearsal([(1.0, midi.note_on(0, 60, 90)), (1.1, midi.note_off(0, 60))])
        said: list[str] = []
        loop = Live(engine, PerformerConfig(seed=1, candidates=1), LiveConfig(bpm=240.0, status=False,
                                                                            realtime=False),
                    send=lambda m: None, log=said.append, timeline=rehearsal)
        if stall:
            rehearsal.call_at(1.0 + 8.2 * step, lambda: rehearsal.to(1.0 + 8.2 * step + 0.060))
        rehearsal.call_at(1.0 + 32 * step, loop.stopping.set)
        loop.run()
        return [line for line in said if "held livecomp" in line]

    assert session(False) == []
    held = session(True)
    assert len(held) == 1 and "the machine held livecomp for 41 ms" in held[0] and "other programs' load" in held[0]
