"""JACK specifics that python-rtmidi does not cover: which libjack it talks through, a patchbay
(ports, connections) that takes no part in JACK's cycles, and whether this process holds its
clients' wake-ups (see ``jack_wakeup_mapped``), and the header of livecomp's own JACK client
(``client_header``: _jackmidi.h, which the C and its binding ``jackclient`` both read).

``load_system_jack()`` must run before python-rtmidi is first imported (``ports.load_rtmidi``
calls it, and is the one place livecomp imports rtmidi), so that rtmidi's calls bind to the
machine's libjack.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
import sys
import threading
from pathlib import Path

CLIENT = "livecomp"
HEADER = Path(__file__).resolve().parent.parent / "_jackmidi.h"


@functools.cache
def client_header() -> tuple[dict[str, int | bytes], dict[str, tuple[str, list[str]]]]:
    """livecomp's JACK client as _jackmidi.h declares it, the one description of it: its
    constants (``LCJ_MAX_BYTES`` as "MAX_BYTES": a number or bytes) and its functions (name ->
    (return type, argument types), e.g. "lcj_read" -> ("int", ["lcj_t *", "unsigned char *", ...]))."""
    text = HEADER.read_text()
    constants = {name: value[1:-1].encode() if value.startswith('"') else int(value)
                 for name, value in re.findall(r'^#define LCJ_(\w+)\s+("[^"]*"|\d+)', text, re.M)}
    functions = {}
    for line in text.splitlines():                      # one declaration a line
        found = re.match(r"([A-Za-z_][\w ]*?[ *]+)(lcj_\w+)\((.*)\);$", line)
        if found:
            returns, name, args = found.groups()
            functions[name] = (returns.strip(), [re.sub(r"\s*\b\w+$", "", arg.strip()) for arg in args.split(",")])
    return constants, functions


MIDI_TYPE: bytes = client_header()[0]["MIDI_TYPE"]         # JACK's type of a MIDI port


class JackError(RuntimeError):
    """No libjack, or no JACK server to reach."""


@functools.cache
def load_system_jack() -> str | None:
    """Make python-rtmidi talk to JACK through the machine's own libjack.

    python-rtmidi's Linux wheels carry a libjack of their own (1.9.22 in 1.5.8), but a JACK
    client should use the library its server came with: client and server share memory laid
    out by their release, and on a PipeWire machine JACK is reachable only through PipeWire's
    libjack. Loading the system library first, with its symbols global, makes it the one
    rtmidi's calls bind to. Returns the library used, or None where the machine has none (and
    so no JACK server either)."""
    if not sys.platform.startswith("linux"):
        return None
    # by its name first: the loader then looks in LD_LIBRARY_PATH, where pw-jack (or a user)
    # puts PipeWire's libjack, which find_library does not search
    for name in ("libjack.so.0", ctypes.util.find_library("jack")):
        if name is None:
            continue
        try:
            library = ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        _quiet_jack(library)
        return name
    return None


def _silent() -> ctypes.c_void_p:
    """A C function that takes libjack's line and does nothing with it: libc's ``strlen`` reads
    it and returns, its result unused. Not a Python function: libjack calls it from its own
    threads (the process thread included), where a Python function would wait for the
    interpreter lock, while a thread of livecomp holding that lock inside a call into libjack
    (python-rtmidi keeps it through a client's close, which waits for libjack's threads) would
    wait for them in turn."""
    return ctypes.cast(ctypes.CDLL(None).strlen, ctypes.c_void_p)


def _quiet_jack(library) -> None:
    """libjack prints its own lines on stderr (five of them when no server runs) before
    livecomp can say what went wrong in one sentence: they are left unsaid."""
    silent = _silent()
    for setter in ("jack_set_error_function", "jack_set_info_function"):
        try:
            getattr(library, setter)(silent)
        except AttributeError:
            pass


def jack_wakeup_mapped(client: str, maps: str = "/proc/self/maps") -> bool | None:
    """Whether this process holds the wake-up of its JACK client ``client`` (or of the
    ``client-NN`` JACK named it when the name was taken).

    JACK2 on Linux wakes a client's process thread through a futex in a small shared file,
    ``/dev/shm/jack_sem.<uid>_<server>_<client>``. libjack keeps one table of those per
    process, shared by all the process's clients and updated by each of them as the server
    tells it of clients coming and going. When other programs open and close clients while
    this process opens one (a patchbay, ``jack_connect``), that table can end up holding a
    closed client's file in our client's place: the server then wakes a futex no thread of
    ours sleeps on, our client runs only when another client of this process happens to wake
    it, and what arrives for it is lost. Returns False then, True when the file is mapped and
    is the one in /dev/shm now, and None where clients are not woken through such files
    (not JACK2: PipeWire's JACK, macOS, Windows), so nothing can be told."""
    wanted = re.compile(rf"/jack_sem\.\d+_.*_{re.escape(client)}(-\d+)?$")
    seen_any = False
    try:
        with open(maps) as lines:
            for line in lines:
                if "/jack_sem." not in line:
                    continue
                seen_any = True
                fields = line.split(maxsplit=5)
                if len(fields) < 6:
                    continue
                path = fields[5].strip()
                if not wanted.search(path):
                    continue
                try:
                    if os.stat(path).st_ino == int(fields[4]):
                        return True
                except (OSError, ValueError):
                    continue
    except OSError:
        return None
    return False if seen_any else None


def literal(text: str) -> str:
    """``text`` as a literal in a POSIX extended regular expression (what jack_get_ports takes)."""
    return re.sub(r"([.\[\]{}()\\*+?^$|])", r"\\\1", text)


class JackPatchbay:
    """The libjack calls python-rtmidi does not offer (listing ports without a client that
    takes part in every cycle, a port's connections, connecting two ports), through one JACK
    client per process that is never activated. ``JackPatchbay.shared()`` hands it out;
    ``release()`` closes it when its last user is done."""

    _lock = threading.Lock()
    _shared: "JackPatchbay | None" = None
    _users = 0

    def __init__(self):
        if load_system_jack() is None:
            raise JackError("no libjack on this machine")
        lib = ctypes.CDLL(load_system_jack())
        lib.jack_client_open.restype = ctypes.c_void_p
        lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
        lib.jack_port_by_name.restype = ctypes.c_void_p
        lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.jack_port_get_all_connections.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.jack_get_ports.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.jack_get_ports.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
        lib.jack_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.jack_free.argtypes = [ctypes.c_void_p]
        lib.jack_client_close.argtypes = [ctypes.c_void_p]
        lib.jack_get_buffer_size.argtypes = [ctypes.c_void_p]
        lib.jack_get_sample_rate.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._calls = threading.Lock()
        self._client = lib.jack_client_open(f"{CLIENT}-patchbay".encode(), 1, None)   # 1: JackNoStartServer
        if not self._client:
            raise JackError("cannot reach the JACK server")

    @classmethod
    def shared(cls) -> "JackPatchbay":
        with cls._lock:
            if cls._shared is None:
                cls._shared = JackPatchbay()
            cls._users += 1
            return cls._shared

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users -= 1
            if cls._users <= 0 and cls._shared is not None:
                cls._shared.close()
                cls._shared, cls._users = None, 0

    def _names(self, array) -> list[str]:
        if not array:
            return []
        found, i = [], 0
        while array[i] is not None:
            found.append(array[i].decode(errors="replace"))
            i += 1
        self._lib.jack_free(ctypes.cast(array, ctypes.c_void_p))
        return found

    def ports(self, outputs: bool, pattern: str | None = None) -> list[str]:
        """Full names of the MIDI output ports (``outputs``) or input ports, those matching the
        regular expression ``pattern`` if given."""
        flags = 0x2 if outputs else 0x1                     # JackPortIsOutput, JackPortIsInput
        with self._calls:
            return self._names(self._lib.jack_get_ports(self._client, pattern.encode() if pattern else None,
                                                        MIDI_TYPE, flags))

    def connections(self, port: str) -> list[str]:
        """Full names of the ports connected to ``port``."""
        with self._calls:
            handle = self._lib.jack_port_by_name(self._client, port.encode())
            if not handle:
                return []
            return self._names(self._lib.jack_port_get_all_connections(self._client, handle))

    def rate(self) -> int:
        """JACK's sample rate (frames per second)."""
        with self._calls:
            return self._lib.jack_get_sample_rate(self._client)

    def period_s(self) -> float:
        """Seconds of one JACK period (its buffer size at its sample rate)."""
        with self._calls:
            frames = self._lib.jack_get_buffer_size(self._client)
            rate = self._lib.jack_get_sample_rate(self._client)
        return frames / rate if rate > 0 else 0.0

    def connect(self, source: str, destination: str) -> bool:
        with self._calls:
            return self._lib.jack_connect(self._client, source.encode(), destination.encode()) in (0, 17)  # EEXIST

    def close(self) -> None:
        with self._calls:
            if self._client:
                self._lib.jack_client_close(self._client)
                self._client = None
        return None
