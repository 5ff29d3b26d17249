"""A JACK server of a benchmark's own (dummy driver, 48 kHz), started and stopped by PID."""

from __future__ import annotations

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from livecomp.ports import JackPatchbay, PortError  # noqa: E402  (the system libjack)


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
        except PortError:
            if jackd.poll() is not None or time.monotonic() > deadline:
                jackd.terminate()
                sys.exit("the JACK server did not start")
            time.sleep(0.1)

