"""A whole ``listen`` session in this process, on ports in memory (``loopback:``): the port
interface, and the session's threads, signals and way out, without a MIDI system."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from livecomp.io import midi
from livecomp.io.backends import open_port
from livecomp.io.loopback import LoopbackPort
from livecomp.model.engine import Engine
from livecomp.model.folder import shipped_models
from livecomp.perform.loop import LiveConfig
from livecomp.perform.performer import PerformerConfig
from livecomp.perform.session import Session

from conftest import still_sounding
from jack_server import wait_until


def test_a_loopback_port_delivers_at_once_and_closes_twice():
    heard = []
    with open_port("loopback:a", "input", "jack", on_message=lambda m, t: heard.append(m)) as inp:
        out = open_port("loopback:a", "output", "jack")
        assert isinstance(inp, LoopbackPort) and inp.connected_to == "loopback:a"
        out.send([0x90, 60, 90])
        open_port("loopback:b", "output", "jack").send([0x90, 61, 90])   # another name: not heard here
        assert heard == [[0x90, 60, 90]]
    out.send([0x80, 60, 0])                                              # the input closed: nobody hears
    assert heard == [[0x90, 60, 90]]
    inp.close()
    out.close()
    out.close()
    out.send([0x90, 62, 90])                                             # a closed output sends nothing
    assert out.sent == [[0x90, 60, 90], [0x80, 60, 0]]


@pytest.fixture(scope="module")
def engine() -> Engine:
    if "basic" not in shipped_models():
        pytest.skip("needs the shipped basic model")
    return Engine(shipped_models()["basic"], provider="cpu")


def test_ctrl_c_in_the_middle_of_an_answer_ends_every_note_and_says_how_it_went(engine):
    """A bar of quavers at 240 bpm into the session's input; once the answer sounds, SIGINT to
    this process (as Ctrl-C): the session stops, every note it started is ended, thru's too,
    and the answer's notes lay on the call's 16th grid."""
    received: list[tuple[float, list[int]]] = []
    synth = open_port("loopback:synth", "input", "jack", on_message=lambda m, t: received.append((t, m)))
    keys = open_port("loopback:keys", "output", "jack")
    lines: list[str] = []
    session = Session(engine, PerformerConfig(seed=0, bars=4, silence_beats=1),
                      LiveConfig(bpm=240, status=False, thru=True, thru_channel=3), "loopback:keys",
                      "loopback:synth", "jack", log=lines.append)
    step = 60 / 240 / 4
    first: list[float] = []

    def player():
        t0 = time.perf_counter() + 0.3
        first.append(t0)
        for i, pitch in enumerate([60, 64, 67, 72, 67, 64, 60, 55]):
            wait_until(t0 + 2 * i * step)
            keys.send(midi.note_on(0, pitch, 90))
            wait_until(t0 + (2 * i + 1) * step)
            keys.send(midi.note_off(0, pitch))
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline and not any(m[0] == 0x90 and m[2] for _, m in received
                                                         if m[0] & 0x0F == 0):
            time.sleep(0.01)
        time.sleep(3 * step)
        keys.send(midi.note_on(0, 48, 90))                 # a key held down as the musician stops
        os.kill(os.getpid(), signal.SIGINT)

    playing = threading.Thread(target=player)
    playing.start()
    session.run()
    playing.join()
    synth.close()
    summary = session.summary()
    assert summary.startswith("stopped: 1 answer,"), (summary, lines)
    answer = [t for t, m in received if m[0] == 0x90 and m[2] and m[0] & 0x0F == 0]
    assert answer
    steps = [(t - first[0]) / step for t in answer]
    assert all(abs(k - round(k)) * step < 0.005 for k in steps), steps
    assert 32 <= round(steps[0]) < 48, steps                       # bar 3: the bar after the silence
    assert not still_sounding(received), received[-12:]           # livecomp's and thru's, on every channel
    assert any(m[0] == 0x93 for _, m in received)                 # thru played the keys on channel 4
