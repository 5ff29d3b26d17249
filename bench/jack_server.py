"""A JACK server of a benchmark's own (dummy driver, 48 kHz), started and stopped by PID, and the
clients that benchmarks and tests open beside livecomp's own ports (a keyboard, a synth)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from livecomp.io.jack import JackError, JackPatchbay, jack_wakeup_mapped  # noqa: E402
from livecomp.io.jackport import SETTLE_S  # noqa: E402
from livecomp.io.ports import PortError, load_rtmidi  # noqa: E402

rtmidi = load_rtmidi()                     # through the system libjack, as livecomp uses it


def start(tag: str, frames: int) -> tuple[subprocess.Popen, dict, JackPatchbay]:
    """Start ``jackd`` with ``frames`` per period and point this process's JACK clients at it.
    Returns the server (terminate it when done), the environment that points other processes
    at it, and a patchbay client on it; exits with a sentence when it does not answer in 10 s."""
    name = f"livecomp-{tag}-{os.getpid()}"
    env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    jackd = subprocess.Popen(["jackd", "-n", name, "-d", "dummy", "-r", "48000", "-p", str(frames)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            return jackd, env, JackPatchbay()
        except JackError:
            if jackd.poll() is not None or time.monotonic() > deadline:
                jackd.terminate()
                sys.exit("the JACK server did not start")
            time.sleep(0.1)


def jack_client(make: Callable, name: str, tries: int = 5):
    """A JACK client made by ``make()`` (and named ``name``), made again while this process does
    not hold its wake-up (``jack_wakeup_mapped``). For programs beside livecomp's own ports
    that open clients of their own: a test's keyboard and synth, a benchmark."""
    for _ in range(tries):
        client = make()
        time.sleep(SETTLE_S)
        if jack_wakeup_mapped(name) is not False:
            return client
        client.delete()
    raise PortError(f"JACK would not wake the client {name!r} in {tries} tries.")


def jack_virtual_port(kind: type, client: str, port: str, **options):
    """A JACK client ``client`` of ``kind`` (rtmidi.MidiIn or MidiOut, made with ``options``)
    with one virtual port ``port``, checked by ``jack_client``."""
    def make():
        midi = kind(rtmidi.API_UNIX_JACK, name=client, **options)
        midi.open_virtual_port(port)
        return midi
    return jack_client(make, client)
