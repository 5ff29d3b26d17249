"""A JACK server of a benchmark's or a test's own (dummy driver, 48 kHz), started and stopped by
PID, never by name, and the clients that benchmarks and tests open beside livecomp's own ports
(a keyboard, a synth). The one launcher of both: tests/conftest.py starts its servers here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from livecomp.io.jack import JackError, JackPatchbay, jack_wakeup_mapped  # noqa: E402
from livecomp.io.jackport import SETTLE_S  # noqa: E402
from livecomp.io.ports import PortError  # noqa: E402
from livecomp.io.rtmidiport import load_rtmidi  # noqa: E402

rtmidi = load_rtmidi()                     # through the system libjack, as livecomp uses it


class ServerError(RuntimeError):
    """No jackd here, or one that did not start."""


def launch(name: str, frames: int, log_path: str | None = None) -> tuple[subprocess.Popen, dict]:
    """Start ``jackd`` named ``name`` with ``frames`` per period (its output to ``log_path``, or
    nowhere) and wait until it answers (``jack_lsp``, at most 10 s). Returns the server, to
    terminate by its PID when done, and the environment that points clients at it."""
    exe = shutil.which("jackd")
    if exe is None:
        raise ServerError("jackd is not installed (make deps installs it: jackd2)")
    env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}
    with open(log_path or os.devnull, "w") as log:
        proc = subprocess.Popen([exe, "-n", name, "-d", "dummy", "-r", "48000", "-p", str(frames)], env=env,
                                stdout=log, stderr=log)

    def up() -> bool:
        try:
            return subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    deadline = time.monotonic() + 10
    while not up():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise ServerError("the JACK server did not start")
        time.sleep(0.1)
    return proc, env


def stop(proc: subprocess.Popen) -> None:
    """Stop a server ``launch`` started, by its PID."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start(tag: str, frames: int, log_path: str | None = None) -> tuple[subprocess.Popen, dict, JackPatchbay]:
    """A benchmark's server (``launch``; its output to ``log_path``, or nowhere), with this
    process's JACK clients pointed at it. Returns the server (terminate it when done), the
    environment that points other processes at it, and a patchbay client on it; exits with a
    sentence when there is none."""
    try:
        jackd, env = launch(f"livecomp-{tag}-{os.getpid()}", frames, log_path)
    except ServerError as exc:
        sys.exit(str(exc))
    os.environ.update(JACK_DEFAULT_SERVER=env["JACK_DEFAULT_SERVER"], JACK_NO_START_SERVER="1")
    deadline = time.monotonic() + 10
    while True:
        try:
            return jackd, env, JackPatchbay()
        except JackError:
            if jackd.poll() is not None or time.monotonic() > deadline:
                stop(jackd)
                sys.exit("the JACK server did not answer livecomp's patchbay")
            time.sleep(0.1)


def wait_until(when: float, spin_s: float = 0.002, now: Callable[[], float] = time.perf_counter) -> None:
    """Block until ``now() >= when``: sleep, then spin for the last ``spin_s`` seconds,
    letting other threads run while spinning. For a caller that sends from its own thread (a
    test's keyboard, a benchmark); livecomp's own sends go through its ``Scheduler``."""
    left = when - now()
    if left > spin_s:
        time.sleep(left - spin_s)
    while now() < when:
        time.sleep(0)


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


def frame_port(client: str, direction: str, port: str, ports: Callable):
    """A JACK client ``client`` of livecomp's own kind (``jackclient.FrameClient``: each message
    heard stamped with its frame, each one sent due at its frame) with one virtual port
    ``port``, "input" or "output", checked by ``jack_client``. ``ports``: a patchbay's."""
    from livecomp.io.jackclient import FrameClient

    def make():
        made = FrameClient(client, direction, ports)
        made.open_virtual_port(port)
        return made
    return jack_client(make, client)


def jack_virtual_port(kind: type, client: str, port: str, **options):
    """A JACK client ``client`` of ``kind`` (rtmidi.MidiIn or MidiOut, made with ``options``)
    with one virtual port ``port``, checked by ``jack_client``."""
    def make():
        midi = kind(rtmidi.API_UNIX_JACK, name=client, **options)
        midi.open_virtual_port(port)
        return midi
    return jack_client(make, client)
