"""livecomp's own JACK client (``jackclient``, C in ``_jackmidi.c``): its clock's arithmetic, and
messages through a real JACK server from one of its clients to another, in frames."""

from __future__ import annotations

import time

import pytest

from livecomp.io import jackclient
from livecomp.io.jack import JackPatchbay
from livecomp.io.jackclient import FRAME_TIME, FrameClient, FrameTime

needs_client = pytest.mark.skipif(not jackclient.available(),
                                  reason="livecomp's JACK client was not built (no C compiler at install)")


def test_the_header_describes_every_function_the_client_exports():
    """_jackmidi.h is the one description of the C client: every function _jackmidi.c exports is
    declared there (the compiler holds the definitions to the declarations), and the binding
    knows each C type the header uses."""
    import re

    from livecomp.io.jack import HEADER, client_header

    constants, functions = client_header()
    source = (HEADER.parent / "_jackmidi.c").read_text()
    exported = {re.search(r"\b(lcj_\w+)\(", part).group(1)          # the name each exported definition starts with
                for part in source.split('__attribute__((visibility("default")))')[1:]}
    assert exported and exported == set(functions)
    assert {t for r, args in functions.values() for t in [r, *args]} <= set(jackclient._CTYPES)
    assert jackclient.MAX_BYTES == constants["MAX_BYTES"] == 20 and constants["MIDI_TYPE"] == b"8 bit raw midi"


def test_the_frame_clock_counts_on_across_the_32_bit_wrap():
    clock = FrameTime()
    clock.rate, clock._start, clock._start_frame = 48000, 100.0, FrameTime.WRAP - 4800   # 0.1 s before the wrap
    clock._frame = clock._start_frame
    assert clock.seconds(FrameTime.WRAP - 4800) == 100.0
    assert clock.seconds(4800) == pytest.approx(100.2)                  # past the wrap: on, not back 24 hours
    clock._frame = FrameTime.WRAP + 48000                               # later, the latest frame seen
    assert clock.seconds(96000) == pytest.approx(102.1)                 # 4800 + 96000 frames on
    assert clock.frame(100.2) == 4800 and clock.frame(100.0) == FrameTime.WRAP - 4800
    assert clock.frame(clock.seconds(123456)) == 123456


def test_a_client_back_on_the_same_server_keeps_the_frame_map(monkeypatch):
    """The keyboard's port went away and came back with no livecomp client open between: the
    server's frames ran on (0.4% slower than the machine's clock, as a dummy driver's do), and
    the frame of every later note keeps its time, so the beat stays where it was. A server
    started again (its frames from 0) gets a new map."""
    import time

    frames = {"now": 1_000_000}

    class Library:
        def lcj_frame_now(self, handle):
            return frames["now"]

    monkeypatch.setattr(jackclient, "_library", Library)
    clock = FrameTime()
    clock.attach("keys", 48000)
    bar_line = clock.frame(clock.now() + 2.0)                 # a beat in the session
    before = clock.seconds(bar_line)
    clock.detach("keys")
    started = time.perf_counter()
    time.sleep(0.3)
    frames["now"] += round((time.perf_counter() - started) * 48000 * 0.996)
    clock.attach("keys again", 48000)
    assert clock.seconds(bar_line) == before and clock.frame(before) == bar_line
    clock.detach("keys again")
    frames["now"] = 4800                                      # the server started again
    clock.attach("another server", 48000)
    assert clock.seconds(4800) >= before - 2.0 + 0.29          # the time goes on, from the new frames


@pytest.fixture
def pair(jack_relaxed):
    """An output and an input client of livecomp's kind, connected, on the suite's 256-frame server."""
    import os
    os.environ.update({k: jack_relaxed[k] for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")})
    patchbay = JackPatchbay()
    out = FrameClient("lcj-test-out", "output", patchbay.ports)
    inp = FrameClient("lcj-test-in", "input", patchbay.ports)
    out.open_virtual_port("out")
    inp.open_virtual_port("in")
    assert patchbay.connect(f"{out.name}:out", f"{inp.name}:in")
    time.sleep(0.2)
    yield out, inp
    for client in (inp, out):
        client.delete()
    patchbay.close()


def heard(inp: FrameClient, seconds: float, expect: int | None = None) -> list[tuple[int, list[int]]]:
    """(frame, message) of what ``inp`` hears in ``seconds``, or until ``expect`` messages have
    come (for at most 5 s: on a busy machine JACK's server thread can be held for periods on end;
    where a message comes is told by its frame, not by when it was read)."""
    got, end = [], time.monotonic() + (5.0 if expect else seconds)
    while time.monotonic() < end and (expect is None or len(got) < expect):
        message = inp.read(0.02)
        if message is not None:
            got.append((round(message[1] * FRAME_TIME.rate), message[0]))
    return got


@needs_client
def test_messages_handed_over_out_of_order_leave_in_time_order_each_at_its_frame(pair):
    out, inp = pair
    t = FRAME_TIME.now() + out.lead_s + 0.05
    out.send_message([0x90, 62, 90], t + 0.1)
    out.send_message([0x90, 61, 90], t + 0.05)
    out.send_message([0x90, 60, 90], t)
    out.send_message([0xB0, 7, 100])                            # at once: the next period
    got = heard(inp, 0.5, expect=4)
    assert [m for _, m in got] == [[0xB0, 7, 100], [0x90, 60, 90], [0x90, 61, 90], [0x90, 62, 90]]
    frames = [f for f, _ in got[1:]]
    assert [b - a for a, b in zip(frames, frames[1:])] == [2400, 2400]     # 50 ms at 48 kHz, to the frame
    assert abs(frames[0] - round(t * FRAME_TIME.rate)) <= 1
    assert out.stats()["late"] == 0 and out.stats()["written"] == 4


@needs_client
def test_a_drop_takes_back_what_has_not_left_but_its_note_offs_leave_at_once(pair):
    out, inp = pair
    t = FRAME_TIME.now() + out.lead_s
    out.send_message([0x90, 60, 90], t + 0.3)
    out.send_message([0xB0, 1, 64], t + 0.3)
    out.send_message([0x80, 59, 0], t + 0.4)                    # a note-off: of a note that may have left
    out.drop()
    out.send_message([0xB0, 123, 0])                            # the panic's All Notes Off, after the drop
    got = [m for _, m in heard(inp, 0.7)]
    assert got == [[0x80, 59, 0], [0xB0, 123, 0]]


@needs_client
def test_a_message_too_long_for_livecomp_is_counted_and_passed_over(pair):
    out, inp = pair
    out.send_message([0xF0] + [1] * 30 + [0xF7])                # not handed over: too long to be livecomp's
    out.send_message([0x90, 60, 90])
    assert [m for _, m in heard(inp, 0.3)] == [[0x90, 60, 90]]


@needs_client
def test_the_clock_goes_on_when_the_next_client_opens_on_another_server(jack, jack_relaxed):
    """Frames of another server (or of the server started again) say nothing about the last
    one's: a client that opens when none is open sets the map again, from the time reached."""
    import os
    last = FRAME_TIME.now()
    for env in (jack_relaxed, jack, jack_relaxed):
        os.environ.update({k: env[k] for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")})
        client = FrameClient("lcj-test-clock", "input", lambda outputs: [])
        client.open_virtual_port("in")
        start = FRAME_TIME.now()
        time.sleep(0.2)
        went = FRAME_TIME.now() - start
        client.delete()
        assert start >= last and 0.15 < went < 0.3, (last, start, went)
        last = FRAME_TIME.now()
