"""MIDI ports through python-rtmidi: listing, choosing by name, virtual ports, and reopening a
port that went away (a keyboard unplugged, a synth closed) without a restart.

A port is named by its full name, a unique part of it, its index in ``livecomp ports``, or
``virtual:NAME`` for a port livecomp creates for others to connect to (ALSA, JACK, CoreMIDI).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import sys
import threading
import time
from typing import Callable


def _use_the_system_jack_library() -> str | None:
    """Make python-rtmidi talk to JACK through the machine's own libjack.

    python-rtmidi's Linux wheels carry a libjack of their own (1.9.22 in 1.5.8), but a JACK
    client should use the library its server came with: client and server share memory laid
    out by their release, and on a PipeWire machine JACK is reachable only through PipeWire's
    libjack. Loading the system library first, with its symbols global, makes it the one
    rtmidi's calls bind to. Returns the library used, or None where the machine has none (and
    so no JACK server either)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("jack")
    if name is None:
        return None
    try:
        ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return None
    return name


SYSTEM_JACK = _use_the_system_jack_library()

import rtmidi  # noqa: E402  (after the system libjack is in place)

APIS = {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK,
        "coremidi": rtmidi.API_MACOSX_CORE, "winmm": rtmidi.API_WINDOWS_MM}
CLIENT = "livecomp"
POLL_S = 0.005              # JACK input: how often the queue is read (times come from JACK) ...
POLL_FIRST_S = 0.0005       # ... and while its first messages place JACK's clock on ours
FIRST = 20
PING_S = 0.1                # JACK input: how often livecomp pings a new input client
PROBATION_S = 3.0           # ... and for how long
STALL_S = 0.6               # ... and how long without a ping before the client is replaced


class PortError(RuntimeError):
    """A port that cannot be found, chosen or opened."""


def default_api() -> str:
    """The platform's usual MIDI API: CoreMIDI, Windows MM, or on Linux ALSA (JACK where
    there is no ALSA sequencer)."""
    if sys.platform == "darwin":
        return "coremidi"
    if sys.platform.startswith("win"):
        return "winmm"
    return "alsa" if os.path.exists("/dev/snd/seq") else "jack"


def _api(name: str) -> int:
    if name not in APIS:
        raise PortError(f"--api must be one of {', '.join(APIS)}, not {name!r}.")
    if APIS[name] not in rtmidi.get_compiled_api():
        raise PortError(f"this python-rtmidi was built without {name} support.")
    return APIS[name]


def _client(kind: type, api: str, name: str, **options):
    try:
        return kind(_api(api), name=name, **options)
    except rtmidi.SystemError as exc:
        hint = " (is the JACK server running?)" if api == "jack" else ""
        raise PortError(f"cannot reach the {api} MIDI system{hint}: {str(exc).rstrip('.')}.") from None


def list_ports(api: str) -> tuple[list[str], list[str]]:
    """(input port names, output port names) of ``api``."""
    inputs = _client(rtmidi.MidiIn, api, f"{CLIENT}-list")
    outputs = _client(rtmidi.MidiOut, api, f"{CLIENT}-list")
    try:
        return inputs.get_ports(), outputs.get_ports()
    finally:
        inputs.delete()
        outputs.delete()


def resolve(spec: str, names: list[str], direction: str) -> int:
    """The index of the port ``spec`` names among ``names`` (full name, unique part, or index)."""
    if spec in names:
        return names.index(spec)
    if spec.isdigit() and int(spec) < len(names):
        return int(spec)
    matches = [i for i, n in enumerate(names) if spec.lower() in n.lower()]
    if len(matches) == 1:
        return matches[0]
    listing = "; ".join(f"{i}: {n}" for i, n in enumerate(names)) or "none"
    what = "matches several" if matches else "matches no"
    raise PortError(f"{spec!r} {what} {direction} port (there are: {listing}).")


def _close(midi) -> None:
    if midi is not None:
        midi.close_port()
        midi.delete()
    return None


class JackPatchbay:
    """The libjack calls python-rtmidi does not offer (a port's connections, connecting two
    ports), through a JACK client of our own that takes no part in the audio cycle."""

    def __init__(self):
        if SYSTEM_JACK is None:
            raise PortError("no libjack on this machine")
        lib = ctypes.CDLL(SYSTEM_JACK)
        lib.jack_client_open.restype = ctypes.c_void_p
        lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
        lib.jack_port_by_name.restype = ctypes.c_void_p
        lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.jack_port_get_all_connections.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.jack_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.jack_free.argtypes = [ctypes.c_void_p]
        lib.jack_client_close.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._client = lib.jack_client_open(f"{CLIENT}-patchbay".encode(), 1, None)   # 1: JackNoStartServer
        if not self._client:
            raise PortError("cannot reach the JACK server")

    def connections(self, port: str) -> list[str]:
        """Full names of the ports connected to ``port``."""
        handle = self._lib.jack_port_by_name(self._client, port.encode())
        if not handle:
            return []
        names = self._lib.jack_port_get_all_connections(self._client, handle)
        if not names:
            return []
        found, i = [], 0
        while names[i] is not None:
            found.append(names[i].decode())
            i += 1
        self._lib.jack_free(ctypes.cast(names, ctypes.c_void_p))
        return found

    def connect(self, source: str, destination: str) -> bool:
        return self._lib.jack_connect(self._client, source.encode(), destination.encode()) in (0, 17)  # 17: EEXIST

    def close(self) -> None:
        if self._client:
            self._lib.jack_client_close(self._client)
            self._client = None
        return None


class Port:
    """One input or output port, kept open for the whole run and reopened when it comes back
    after going away. ``on_message(bytes, t)`` is called for each input message with its
    arrival time on ``time.perf_counter``.

    A JACK input is read from rtmidi's queue by a thread of its own rather than through a
    callback: rtmidi calls back from JACK's process thread, which would then wait there for the
    interpreter lock, and a JACK client that overruns its period loses what arrived in it. Its
    arrival times are JACK's own (rtmidi gives the monotonic microseconds between messages),
    placed on ``perf_counter`` by the earliest any message was read after its arrival.
    """

    def __init__(self, spec: str, direction: str, api: str, on_message: Callable | None = None,
                 on_change: Callable[[str], None] | None = None):
        self.spec, self.direction, self.api = spec, direction, api
        self.on_message = on_message
        self.on_change = on_change or (lambda text: None)
        self.virtual = spec.startswith("virtual:")
        self.name = spec[len("virtual:"):] if self.virtual else spec
        self._lock = threading.Lock()
        self._midi = None
        self._last_ping = time.perf_counter()
        self.connected_to: str | None = None
        self._open(first=True)
        self._closing = threading.Event()
        self._watch = None
        if not self.virtual:
            self._watch = threading.Thread(target=self._watch_port, name=f"livecomp-{direction}-watch", daemon=True)
            self._watch.start()
        self._heart = self._reader = None
        if api == "jack" and direction == "input":
            self._reader = threading.Thread(target=self._read, name="livecomp-input", daemon=True)
            self._reader.start()
            self._heart = threading.Thread(target=self._heartbeat, name="livecomp-input-heartbeat", daemon=True)
            self._heart.start()

    def _new_client(self):
        if self.direction == "output":
            return _client(rtmidi.MidiOut, self.api, f"{CLIENT}-out")
        if self.api == "jack":
            # nothing ignored: rtmidi's time differences skip over the messages it drops
            midi = _client(rtmidi.MidiIn, self.api, f"{CLIENT}-in", queue_size_limit=8192)
            midi.ignore_types(sysex=False, timing=False, active_sense=False)
        else:
            midi = _client(rtmidi.MidiIn, self.api, f"{CLIENT}-in")
            midi.ignore_types(sysex=True, timing=False, active_sense=True)
            midi.set_callback(self._callback)
        return midi

    def _open(self, first: bool = False) -> bool:
        midi = self._new_client()
        if self.virtual:
            midi.open_virtual_port(self.name)
            self.connected_to = self.name
        else:
            names = midi.get_ports()
            try:
                index = resolve(self.spec, names, self.direction)
            except PortError:
                midi.delete()
                if first:
                    raise
                return False
            midi.open_port(index, name=self.direction)
            self.connected_to = names[index]
        with self._lock:
            self._midi = midi
        return True

    def _callback(self, event, data=None) -> None:
        self._deliver(event[0], time.perf_counter())

    def _deliver(self, message: list[int], t: float) -> None:
        if message == [0xFE]:                    # Active Sensing: the input is alive, nothing to play
            self._last_ping = t
        elif message and message[0] != 0xF0 and self.on_message is not None:     # SysEx is not for us
            self.on_message(message, t)

    def _read(self) -> None:
        """JACK input: read rtmidi's queue and time each message on JACK's clock.

        JACK's clock and ``perf_counter`` are both the monotonic clock, so they differ by a
        constant: the smallest gap yet seen between a message's JACK time and the moment it was
        read. The first ``FIRST`` messages of a client (the heartbeat's pings, before anyone
        plays) are read every ``POLL_FIRST_S`` so that gap is small from the start; after them
        every ``POLL_S`` (a message read later is still timed by JACK)."""
        midi, clock, offset, seen = None, 0.0, math.inf, 0
        while not self._closing.is_set():
            with self._lock:
                if self._midi is not midi:              # a new client: its clock starts again
                    midi, clock, offset, seen = self._midi, 0.0, math.inf, 0
                got = midi.get_message() if midi is not None else None
            if got is None:
                time.sleep(POLL_FIRST_S if seen < FIRST else POLL_S)
                continue
            message, delta = got
            clock += delta
            offset = min(offset, time.perf_counter() - clock)
            seen += 1
            self._deliver(message, clock + offset)

    def _watch_port(self) -> None:
        """Poll the port list; when our port is gone, close and wait for it to come back."""
        probe = self._new_probe()
        while not self._closing.wait(0.5):
            try:
                present = self.connected_to in probe.get_ports()
            except Exception:
                present = False
            if present and self._midi is not None:
                continue
            if not present and self._midi is not None:
                with self._lock:
                    midi, self._midi = self._midi, None
                self._dispose(midi)
                self.on_change(f"{self.direction} port {self.connected_to!r} went away; waiting for it")
            elif present and self._midi is None:
                if self._open():
                    self.on_change(f"{self.direction} port {self.connected_to!r} is back")

    def _heartbeat(self) -> None:
        """JACK input only: replace an input client that JACK does not run.

        Now and then (one start in ten on a busy 2-core machine with 0.33 ms periods) JACK never
        wakes a new client after its first cycles: the server logs it "not finished" every
        period, its thread waits for a wake-up that never comes, and every message sent to it
        is lost while it looks open. So for the first ``PROBATION_S`` of each input client
        livecomp pings it with Active Sensing every ``PING_S`` through a client of its own; when
        no ping has come back for ``STALL_S`` the input client is closed, a new one opened, and
        the port's connections restored. A client that passes is left alone: the pinging client
        would cost a wake-up every JACK period for the whole session."""
        ping, target, jack, passed, began = None, None, None, None, 0.0
        try:
            while not self._closing.wait(PING_S):
                midi = self._midi
                if midi is None or midi is passed:      # gone (the watcher waits for it), or proven
                    ping = _close(ping)
                    if jack is not None:
                        jack = jack.close()
                    continue
                now = time.perf_counter()
                if ping is None:
                    jack = jack or JackPatchbay()
                    ping, target = self._open_ping()
                    self._last_ping = began = now
                    continue
                ping.send_message([0xFE])
                if now - self._last_ping > STALL_S:
                    sources = [s for s in jack.connections(target) if not s.startswith(f"{CLIENT}-ping")]
                    ping = _close(ping)
                    self._replace(target, sources, jack)
                elif now - began > PROBATION_S:
                    passed = midi
        except PortError:
            pass                                        # no way to ping: run without the heartbeat
        finally:
            _close(ping)
            if jack is not None:
                jack.close()

    def _open_ping(self):
        """A client of our own connected to our input port, and that port's full name."""
        port = self.name if self.virtual else self.direction
        ping = _client(rtmidi.MidiOut, "jack", f"{CLIENT}-ping")
        ours = [(i, n) for i, n in enumerate(ping.get_ports())
                if n.startswith(f"{CLIENT}-in") and n.endswith(f":{port}")]
        if len(ours) != 1:                              # two livecomps with one port name
            ping.delete()
            raise PortError("cannot tell our input port apart")
        ping.open_port(ours[0][0], name="ping")
        return ping, ours[0][1]

    def _replace(self, target: str, sources: list[str], jack: "JackPatchbay") -> None:
        with self._lock:
            midi, self._midi = self._midi, None
        if midi is not None:
            self._dispose(midi)
        if self._open():
            for source in sources:
                jack.connect(source, target)
            self.on_change(f"JACK stopped running the input client; opened a new one "
                           f"({len(sources)} connection{'s' * (len(sources) != 1)} restored)")

    def _new_probe(self):
        kind = rtmidi.MidiIn if self.direction == "input" else rtmidi.MidiOut
        return _client(kind, self.api, f"{CLIENT}-probe")

    def send(self, message: list[int]) -> None:
        with self._lock:
            if self._midi is not None:
                self._midi.send_message(message)

    def close(self, drain_s: float = 0.05) -> None:
        """Close the port; an output first waits ``drain_s`` so the last messages (the note-offs
        of a panic) leave the MIDI system's buffers before the port goes."""
        self._closing.set()
        if self._heart is not None:
            self._heart.join(timeout=2.0)
        if self.direction == "output" and self._midi is not None:
            time.sleep(drain_s)
        with self._lock:
            midi, self._midi = self._midi, None
        if midi is not None:
            self._dispose(midi)

    def _dispose(self, midi) -> None:
        """Close and free a client that is no longer ``self._midi``."""
        if self.direction == "input" and self.api != "jack":
            # first stop the MIDI system's thread from calling into Python: closing waits for
            # that thread, which would be waiting for the interpreter lock this thread holds
            midi.cancel_callback()
        midi.close_port()
        midi.delete()
