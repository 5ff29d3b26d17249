"""MIDI clock as a DAW sends it: the follower on synthetic tick times (exact), and the live loop
on a fake port through a transport restart (Start, Stop, Start again), a Stop then Continue and
a clock that goes quiet without Stop, as a DAW's user does all the time."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from livecomp.model.engine import Engine
from livecomp.model.folder import shipped_models
from livecomp.perform.performer import PerformerConfig
from livecomp.timing.grid import ClockFollower

from conftest import still_sounding, twice
from jack_server import wait_until

START, CONTINUE, STOP, TICK = [0xFA], [0xFB], [0xFC], [0xF8]


def feed_ticks(f: ClockFollower, t0: float, n: int, tick: float, first: int = 0) -> float:
    for i in range(first, first + n):
        f.feed(TICK, t0 + i * tick)
    return t0 + (first + n - 1) * tick


def test_start_puts_the_next_tick_on_beat_1_and_a_second_start_forgets_the_first_song():
    f = ClockFollower(4, 4)
    tick = 60 / 120 / 24
    assert f.feed(START, 0.0) == "start"
    feed_ticks(f, 1.0, 96, tick)
    assert f.time_of(0) == pytest.approx(1.0) and f.bpm == pytest.approx(120)
    assert f.feed(STOP, 3.0) == "stop" and not f.running
    assert f.feed(START, 4.0) == "start" and not f.ready        # nothing known of the new song yet
    feed_ticks(f, 4.5, 12, 60 / 100 / 24)                           # and at another tempo
    assert f.time_of(0) == pytest.approx(4.5) and f.bpm == pytest.approx(100)


def test_continue_and_song_position_keep_the_position_and_start_the_line_again():
    f = ClockFollower(4, 4)
    tick = 60 / 120 / 24
    f.feed(START, 0.0)
    last = feed_ticks(f, 0.0, 48, tick)                             # two beats
    f.feed(STOP, last + 0.01)
    assert f.feed(CONTINUE, 5.0) == "continue"
    feed_ticks(f, 5.0, 24, tick, first=0)
    # tick 48 (beat 3, step 8) is at 5.0 s: the pause is not inside the line
    assert f.time_of(8) == pytest.approx(5.0)
    f.feed(STOP, 6.0)
    assert f.feed([0xF2, 16, 0], 6.1) == "position"                 # bar 2 (16 sixteenths)
    f.feed(CONTINUE, 7.0)
    feed_ticks(f, 7.0, 24, tick)
    assert f.time_of(16) == pytest.approx(7.0)


def test_ticks_that_pause_without_stop_start_the_line_again_when_they_return():
    f = ClockFollower(4, 4)
    tick = 60 / 120 / 24
    f.feed(START, 0.0)
    last = feed_ticks(f, 0.0, 48, tick)
    assert not f.paused(last + tick) and f.paused(last + 14 * tick)
    feed_ticks(f, 3.0, 24, tick)                                    # ticks 48.. after a gap of a second
    assert f.time_of(8) == pytest.approx(3.0)                       # not a line through the gap
    assert f.bpm == pytest.approx(120)


@pytest.mark.parametrize("held_s", [0.02, 0.05, 0.1])
def test_ticks_held_back_and_sent_at_once_move_neither_the_tempo_nor_the_bar_lines(held_s):
    """A busy source (or machine) holds its ticks back, then sends what it owes at once: the
    line through the ticks must not tilt, or a bar line a bar ahead moves by tens of ms."""
    f = ClockFollower(4, 4)
    tick = 60 / 100 / 24
    f.feed(START, -0.01)
    for i in range(118):
        f.feed(TICK, max(i * tick, 110 * tick + held_s) if i >= 110 else i * tick)
    assert f.time_of(32) == pytest.approx(32 * 6 * tick, abs=1e-4)
    assert f.bpm == pytest.approx(100, rel=1e-4)


def test_ticks_lost_on_the_way_do_not_put_the_bar_lines_a_tick_late():
    """A MIDI system that overruns its period drops what arrived in it: a lost tick would put
    every later beat a tick late. Ticks that keep coming a whole period late are counted."""
    tick = 60 / 120 / 24
    rng = np.random.default_rng(0)
    f = ClockFollower(4, 4)
    f.feed(START, -0.01)
    for i in range(300):
        if i not in (150, 220, 221):                                # one lost, then two together
            f.feed(TICK, i * tick + abs(rng.normal(0, 0.0005)))     # JACK's stamps: a little late, never early
    assert f.lost == 3
    assert f.time_of(56) == pytest.approx(56 * 6 * tick, abs=1e-3)


@pytest.mark.parametrize("bpm", [100, 117, 140])
def test_a_tempo_change_is_followed_within_half_a_beat_and_not_taken_for_lost_ticks(bpm):
    """A DAW's tempo jumps from 120 bpm at tick 150: half a beat later the next step is placed
    at the new tempo (a line through two beats of ticks would be tens of ms off for a beat)."""
    tick, then = 60 / 120 / 24, 60 / bpm / 24
    times = [i * tick if i < 150 else 150 * tick + (i - 150) * then for i in range(300)]
    f = ClockFollower(4, 4)
    f.feed(START, -0.01)
    for i, t in enumerate(times):
        f.feed(TICK, t)
        if i == 150 + 12:
            assert f.time_of(28) == pytest.approx(times[168], abs=1e-3)   # the next step, tick 168
    assert f.lost == 0
    assert f.bpm == pytest.approx(bpm, rel=1e-3)
    assert f.time_of(50) == pytest.approx(times[-1] + then, abs=1e-4)   # tick 300


@pytest.fixture(scope="module")
def engine() -> Engine:
    if "basic" not in shipped_models():
        pytest.skip("needs the shipped basic model")
    return Engine(shipped_models()["basic"], provider="cpu")


ARPEGGIO = [(2 * i, p) for i, p in enumerate([60, 64, 67, 72, 67, 64, 60, 55])]   # a bar of quavers


def play(live, t0: float, bpm: float, ticks: int, held: dict[int, float] | None = None) -> None:
    """A DAW from the top at ``t0``: Start, ``ticks`` ticks of clock, a one-bar call in bar 1
    (on channel 2), each message handed to ``live`` at its time. ``held``: {tick: seconds} the
    source holds its ticks back from that tick on, then sends what it owes at once."""
    tick = 60 / bpm / 24
    step = tick * 6
    times = [t0 + i * tick for i in range(ticks)]
    for first, late in (held or {}).items():
        times[first:] = [max(t, times[first] + late) for t in times[first:]]
    events = [(t0 - 0.005, START)] + [(t, TICK) for t in times]
    events += [(t0 + s * step, [0x91, p, 90]) for s, p in ARPEGGIO]
    events += [(t0 + (s + 1) * step, [0x81, p, 0]) for s, p in ARPEGGIO]
    for when, message in sorted(events, key=lambda e: e[0]):
        wait_until(when)
        live.heard(message, when)


def following(engine, bars: int):
    """A live loop following MIDI clock on a fake port, running: (live, its thread, what it sent
    with the times, what it logged)."""
    from livecomp.perform.loop import Live, LiveConfig

    sent, said = [], []
    live = Live(engine, PerformerConfig(seed=1, bars=bars, silence_beats=1, candidates=1),
                LiveConfig(sync="clock", status=False), send=lambda m: sent.append((time.perf_counter(), m)),
                log=said.append)
    loop = threading.Thread(target=live.run)
    loop.start()
    return live, loop, sent, said


def song(live, t0: float, bpm: float, bars: int) -> None:
    """``bars`` bars from the top, then Stop."""
    play(live, t0, bpm, bars * 96)
    wait_until(t0 + bars * 96 * 60 / bpm / 24)
    live.heard(STOP, time.perf_counter())


def test_a_daw_restarted_twice_gets_answers_on_the_bar_lines_of_each_song(engine):
    """Start, 4 bars, Stop; a second Start (the song from the top) at another tempo; then Stop and
    Continue. Each song's call is answered on its own bar 3, nothing crashes, every note ends."""
    def attempt():
        live, loop, sent, said = following(engine, bars=1)
        starts = []
        for bpm in (240, 200):
            t0 = time.perf_counter() + 0.3
            starts.append((t0, bpm))
            song(live, t0, bpm, 4)
        time.sleep(0.2)
        live.stopping.set()
        loop.join(timeout=10)
        assert not loop.is_alive()
        ons = [(t, m) for t, m in sent if m[0] == 0x90 and m[2] > 0]
        for t0, bpm in starts:
            step = 60 / bpm / 4
            bar3 = [(t - t0) / step for t, _ in ons if 31.5 * step <= t - t0 < 48 * step]
            assert bar3, (bpm, said, [(t - t0) / step for t, _ in ons])
            assert all(abs(k - round(k)) * step < 0.003 for k in bar3), (bpm, bar3)   # on the song's own grid
        assert not still_sounding(sent)
        assert any(line.startswith("MIDI clock: stop, start;") for line in said), said   # one move, said once
        assert [line for line in said if line.startswith("answer ")] == ["answer 1: bar 3", "answer 2: bar 3"], said

    twice(attempt)


def test_an_answer_lands_on_the_bar_line_when_the_ticks_came_in_late_while_it_was_planned(engine):
    """The source holds its ticks back for 100 ms twice: just before the answer is planned (a
    beat after the call) and just before it is due. The answer is timed on the ticks, not the
    bursts, and lands on the source's grid."""
    bpm = 100
    step = 60 / bpm / 4

    def attempt():
        live, loop, sent, said = following(engine, bars=1)
        t0 = time.perf_counter() + 0.3
        play(live, t0, bpm, 48 * 6, held={100: 0.1, 180: 0.1})
        live.stopping.set()
        loop.join(timeout=10)
        assert not loop.is_alive()
        ons = [(t - t0) / step for t, m in sent if m[0] & 0xF0 == 0x90 and m[2]]
        assert ons and 32 <= round(ons[0]) < 48, (ons, said)              # in bar 3, the bar after the silence
        assert all(abs(k - round(k)) * step < 0.003 for k in ons), ons   # on the source's grid

    twice(attempt)


def test_a_clock_that_goes_quiet_without_stop_silences_the_answer_and_resumes_with_the_ticks(engine):
    """The cable is pulled in the middle of an answer: within a few steps nothing more is sent and
    every note has ended; when the ticks come back livecomp follows them again."""
    bpm = 240
    tick = 60 / bpm / 24
    step = tick * 6
    live, loop, sent, said = following(engine, bars=4)
    t0 = time.perf_counter() + 0.3
    play(live, t0, bpm, 40 * 6)                                        # to step 40: in the answer
    quiet = t0 + (40 * 6 - 1) * tick                                   # the last tick before the gap
    back = quiet + 1.0
    for i in range(40 * 6, 72 * 6):                                   # the ticks return, where they were
        when = back + (i - 40 * 6) * tick
        wait_until(when)
        live.heard(TICK, when)
    live.stopping.set()
    loop.join(timeout=10)
    assert not loop.is_alive()
    during = [(t - quiet) / step for t, m in sent if quiet + 3 * step < t < back and m[0] & 0xF0 == 0x90 and m[2]]
    assert not during, during                                          # silent while the clock is away
    assert not still_sounding([(t, m) for t, m in sent if t < back])  # and nothing left hanging
    assert any("MIDI clock: paused" in line for line in said), said


def link_alone():
    """The Link module, where no other Link session is on this machine's network: another (a
    DAW, another run of the suite) would share tempo and phase with the test's own peers."""
    link = pytest.importorskip("link", reason="--sync link needs LinkPython-extern (the test extra installs it)")
    probe = link.Link(120.0)
    probe.enabled = True
    time.sleep(1.0)
    others = probe.numPeers()
    probe.enabled = False
    if others:
        pytest.skip(f"another Ableton Link session ({others} peer{'s' * (others != 1)}) is on this network")
    return link


def link_peer(bpm: float):
    """A Link peer of the test's own (a DAW, say), with start/stop sync, once it has met another."""
    link = link_alone()
    peer = link.Link(float(bpm))
    peer.startStopSyncEnabled = True
    peer.enabled = True
    return peer


def wait_for_peers(link, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while link.numPeers() < 1:
        assert time.monotonic() < deadline, "the two Link peers did not find each other on this machine"
        time.sleep(0.02)


def test_a_link_sessions_bar_lines_tempo_and_transport_are_the_grids():
    """livecomp's grid on an Ableton Link session: every bar line of the grid is one of the
    session's (phase 0 at the bar), a tempo set by another peer moves the grid within a step's
    time, and a peer's start and stop are told."""
    from livecomp.timing.link import LinkFollower

    peer = link_peer(100)
    follower = LinkFollower(time.perf_counter, 4, 4, 100.0)
    try:
        wait_for_peers(follower.link)
        clock = peer.clock()

        def phases(bars: int = 4) -> list[float]:
            """The peer's phase (beats into its bar) at the grid's next bar lines."""
            state = peer.captureAppSessionState()
            first = math.ceil(follower.step_at(time.perf_counter()) / 16) * 16
            out = []
            for k in range(bars):
                t = follower.time_of(first + 16 * k)
                micros = round((t - follower._offset()) * 1e6)        # the clocks read together
                out.append(min(state.phaseAtTime(micros, 4.0), 4.0 - state.phaseAtTime(micros, 4.0)))
            return out

        assert max(phases()) * 60 / 100 < 0.001                      # within 1 ms of the session's bar lines
        state = peer.captureAppSessionState()
        state.setTempo(137.0, clock.micros())
        peer.commitAppSessionState(state)
        deadline = time.monotonic() + 2
        while abs(follower.bpm - 137.0) > 0.01 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert abs(follower.bpm - 137.0) < 0.01
        assert max(phases()) * 60 / 137 < 0.001
        assert follower.running and follower.check() == []           # nobody has played: it runs freely
        state = peer.captureAppSessionState()
        state.setIsPlayingAndRequestBeatAtTime(True, clock.micros(), 0.0, 4.0)
        peer.commitAppSessionState(state)
        time.sleep(0.3)
        assert follower.check() == ["start"] and follower.running
        assert 0 <= follower.step_at(time.perf_counter()) < 16       # bar 1 from the start
        state = peer.captureAppSessionState()
        state.setIsPlaying(False, clock.micros())
        peer.commitAppSessionState(state)
        time.sleep(0.3)
        assert follower.check() == ["stop"] and not follower.running
    finally:
        follower.close()
        peer.enabled = False


def test_a_link_peer_that_starts_and_stops_the_session_gets_answers_on_its_bar_lines(engine):
    """`--sync link` with a DAW-like peer at 200 bpm using start/stop: it starts the session, a
    one-bar call from the start is answered on the session's bar 3; it stops during the answer
    (every note ends at once, nothing more is sent) and starts again, and the next call is
    answered on bar 3 of the new start."""
    from livecomp.perform.loop import Live, LiveConfig

    peer = link_peer(200)
    clock = peer.clock()
    sent, said = [], []
    live = Live(engine, PerformerConfig(seed=1, bars=4, silence_beats=1, candidates=1),
                LiveConfig(sync="link", bpm=200, status=False),
                send=lambda m: sent.append((time.perf_counter(), m)), log=said.append)
    loop = threading.Thread(target=live.run)
    loop.start()
    step = 60 / 200 / 4
    try:
        wait_for_peers(peer)

        def start() -> float:
            """The peer starts the session on its next bar line: that moment on the test's clock."""
            state = peer.captureAppSessionState()
            now_micros = clock.micros()
            at = state.timeAtBeat(math.ceil(state.beatAtTime(now_micros + 200_000, 4.0) / 4) * 4, 4.0)
            state.setIsPlaying(True, at)
            peer.commitAppSessionState(state)
            return time.perf_counter() + (at - now_micros) / 1e6

        def call(t0: float) -> None:
            for s, p in ARPEGGIO:
                wait_until(t0 + s * step)
                live.heard([0x91, p, 90], time.perf_counter())
                wait_until(t0 + (s + 1) * step)
                live.heard([0x81, p, 0], time.perf_counter())

        starts = []
        for _ in range(2):
            t0 = start()
            starts.append(t0)
            call(t0)
            wait_until(t0 + 40 * step)                   # into the answer (bar 3 from step 32)
            state = peer.captureAppSessionState()
            state.setIsPlaying(False, clock.micros())
            peer.commitAppSessionState(state)
            stopped = time.perf_counter()
            time.sleep(0.4)
            assert not [m for t, m in sent if t > stopped + 0.15 and m[0] & 0xF0 == 0x90 and m[2]], said
        live.stopping.set()
        loop.join(timeout=10)
        assert not loop.is_alive()
    finally:
        live.stopping.set()
        peer.enabled = False
    ons = [(t, m) for t, m in sent if m[0] & 0xF0 == 0x90 and m[2] > 0]
    for t0 in starts:
        bar3 = [(t - t0) / step for t, _ in ons if 31.5 * step <= t - t0 < 40 * step]
        assert bar3, (said, [(t - t0) / step for t, _ in ons])
        assert all(abs(k - round(k)) * step < 0.003 for k in bar3), (bar3, said)   # on the session's grid
        assert round(bar3[0]) < 36, (bar3, said)                                # from its bar 3
    assert not still_sounding(sent)
    assert any(line.startswith("Ableton Link: stop, start;") for line in said), said


def test_the_transport_says_a_stop_and_a_start_and_a_wait_cut_short_ends_quietly():
    """timing.transport: a clock that runs on is no move; a Stop is one, read at once; the wait
    for the clock to run again, ended by the session stopping after a Start but before any tick,
    gives nothing back (the clock has no ticks to say where it is)."""
    import threading

    from livecomp.timing.transport import Transport

    f, clock = ClockFollower(4, 4), {"t": 0.0}
    stopping = threading.Event()
    transport = Transport(f, lambda timeout: clock.__setitem__("t", clock["t"] + timeout), stopping,
                          lambda: clock["t"])
    tick = 60 / 120 / 24
    transport.feed(START, 0.0)
    clock["t"] = feed_ticks(f, 0.01, 96, tick)
    assert transport.started(4).startswith("following MIDI clock at 120.0 bpm") and transport.step_now() == 15
    assert transport.moved([]) is None
    transport.feed(STOP, clock["t"])
    assert transport.moved([]) == ["stop"]
    transport.feed(START, clock["t"] + 1.0)                   # the song from the top, no tick yet
    stopping.set()
    assert transport.resumed([], ["stop"]) == ([], "")
