"""livecomp's own JACK MIDI client, timed to the frame: the C of ``_jackmidi.c`` through ctypes.

python-rtmidi writes every message at the start of a JACK period and stamps what it reads when
its callback runs, so each message is off its time by up to a period: 21 ms at the 1024 frames
PipeWire's JACK runs at by default. Here an output message is handed over ``lead_s`` before it is
due, with its time, and written at its own frame inside its period; an input message is given the
time of its own frame. Both are on ``time.perf_counter``, placed on JACK's clock (microseconds)
as the client opens.

``FrameClient`` speaks the part of rtmidi's ``MidiIn`` / ``MidiOut`` that ``ports.Port`` uses, so
a ``JackPort`` keeps its ways (reopening, the wake-up guard) on either. ``available()`` says
whether the C part was built (pip builds it where a C compiler is found; elsewhere livecomp
uses python-rtmidi, and says what JACK's periods add).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import threading
import time

from .jack import load_system_jack
from .ports import PortError

MAX_BYTES = 20              # as _jackmidi.c: longer messages (SysEx) are not livecomp's
LEAD_MARGIN_S = 0.004       # handed over this long before the period it falls in begins
_P = ctypes.c_void_p


@functools.cache
def _library():
    spec = importlib.util.find_spec("livecomp._jackmidi")
    if spec is None or spec.origin is None or load_system_jack() is None:
        return None
    lib = ctypes.CDLL(spec.origin)
    u32, u64, out32, out64 = ctypes.c_uint32, ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint64)
    signatures = {
        "lcj_open": (_P, [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]),
        "lcj_close": (None, [_P]),
        "lcj_client_name": (ctypes.c_char_p, [_P]),
        "lcj_port_name": (ctypes.c_char_p, [_P]),
        "lcj_connect": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_char_p]),
        "lcj_now": (u64, []),
        "lcj_period": (u32, [_P]),
        "lcj_rate": (u32, [_P]),
        "lcj_latency": (None, [_P, out32, out32]),
        "lcj_send": (ctypes.c_int, [_P, u64, ctypes.c_char_p, ctypes.c_int]),
        "lcj_drop": (None, [_P]),
        "lcj_read": (ctypes.c_int, [_P, ctypes.c_char_p, out64, ctypes.c_int]),
        "lcj_stats": (None, [_P, out64, out64, out64, out64]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    return lib


def available() -> bool:
    """Whether livecomp's own JACK client was built (and the machine has a libjack), and is
    not turned off (``LIVECOMP_JACK_CLIENT=rtmidi``: JACK through python-rtmidi, as where it
    was not built)."""
    if os.environ.get("LIVECOMP_JACK_CLIENT", "") == "rtmidi":
        return False
    try:
        return _library() is not None
    except OSError:
        return False


def jack_offset() -> float:
    """``perf_counter`` less JACK's clock, in seconds, from the closest of a few readings of both
    (JACK2 and PipeWire read the monotonic clock, as ``perf_counter`` does: about 0)."""
    lib = _library()
    best = None
    for _ in range(5):
        before = time.perf_counter()
        jack = lib.lcj_now() * 1e-6
        after = time.perf_counter()
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) / 2 - jack)
    return best[1]


class FrameClient:
    """One JACK client of livecomp's own with one MIDI port, input or output. Made by
    ``JackPort`` in place of an rtmidi client: ``get_ports``, ``open_port``, ``open_virtual_port``,
    ``send_message``, ``close_port``, ``delete``; an input is read with ``read``."""

    def __init__(self, client: str, direction: str, ports):
        """``ports(outputs)``: the JACK MIDI ports' full names (a patchbay's ``ports``)."""
        if not available():
            raise PortError("livecomp's JACK client was not built.")
        self._lib = _library()
        self.client_name, self.direction, self._ports = client, direction, ports
        self._handle = None
        self._lock = threading.Lock()            # one sender at a time; closing waits for it
        self._buffer = ctypes.create_string_buffer(MAX_BYTES)
        self._usecs = ctypes.c_uint64()
        self.offset = 0.0

    # -- rtmidi's calls -----------------------------------------------------------------------

    def get_ports(self) -> list[str]:
        return self._ports(outputs=self.direction == "input")

    def open_virtual_port(self, name: str) -> None:
        self._open(name)

    def open_port(self, index: int, name: str) -> None:
        other = self.get_ports()[index]
        self._open(name)
        own = self._lib.lcj_port_name(self._handle).decode()
        pair = (other, own) if self.direction == "input" else (own, other)
        if self._lib.lcj_connect(self._handle, pair[0].encode(), pair[1].encode()) != 0:
            raise PortError(f"JACK would not connect {pair[0]} to {pair[1]}.")

    def send_message(self, message: list[int], at: float | None = None) -> None:
        """Hand ``message`` over, due at ``at`` (``perf_counter`` seconds; None: at once)."""
        data = bytes(message)
        usecs = 0 if at is None else max(1, round((at - self.offset) * 1e6))
        with self._lock:
            if self._handle is not None and len(data) <= MAX_BYTES:
                self._lib.lcj_send(self._handle, usecs, data, len(data))

    def drop(self) -> None:
        """What was handed over and has not left is dropped (a panic), but for note-offs, which
        leave at once (their note-ons may have left)."""
        with self._lock:
            if self._handle is not None:
                self._lib.lcj_drop(self._handle)

    def read(self, timeout_s: float) -> tuple[list[int], float] | None:
        """The next message heard and the time of its frame, waiting at most ``timeout_s`` (one
        reader thread). The wait is in C, without the interpreter lock."""
        with self._lock:                         # closing waits for the read
            if self._handle is None:
                return None
            size = self._lib.lcj_read(self._handle, self._buffer, ctypes.byref(self._usecs),
                                      max(1, round(timeout_s * 1e3)))
        if size <= 0:
            return None
        return list(self._buffer.raw[:size]), self._usecs.value * 1e-6 + self.offset

    def close_port(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            self._lib.lcj_close(handle)

    def delete(self) -> None:
        self.close_port()

    def cancel_callback(self) -> None:
        pass

    # -- what JACK adds -----------------------------------------------------------------------

    def _open(self, port: str) -> None:
        error = ctypes.create_string_buffer(256)
        handle = self._lib.lcj_open(load_system_jack().encode(), self.client_name.encode(), port.encode(),
                                    int(self.direction == "output"), error, len(error))
        if not handle:
            raise PortError(f"{error.value.decode(errors='replace')}.")
        self._handle = handle
        self.offset = jack_offset()

    @property
    def name(self) -> str:
        """The client's name in JACK (``livecomp-out``, or ``livecomp-out-01`` where that was taken)."""
        return self._lib.lcj_client_name(self._handle).decode()

    def period_s(self) -> float:
        rate = self._lib.lcj_rate(self._handle)
        return self._lib.lcj_period(self._handle) / rate if rate else 0.0

    @property
    def lead_s(self) -> float:
        """How long before its time a message must be handed over: the period it falls in is
        written as that period begins, up to one period before the message's frame."""
        return self.period_s() + LEAD_MARGIN_S

    def latency_s(self) -> float:
        """The port's latency to the world (playback for an output, capture for an input), the
        longest JACK gives, in seconds."""
        low, high = ctypes.c_uint32(), ctypes.c_uint32()
        self._lib.lcj_latency(self._handle, ctypes.byref(low), ctypes.byref(high))
        rate = self._lib.lcj_rate(self._handle)
        return high.value / rate if rate else 0.0

    def stats(self) -> dict[str, int]:
        """Messages written (read), late (written at a period's start after their frame had
        passed) and by how many frames at most, dropped (too long, or no room)."""
        values = [ctypes.c_uint64() for _ in range(4)]
        if self._handle is not None:
            self._lib.lcj_stats(self._handle, *(ctypes.byref(v) for v in values))
        return dict(zip(("written", "late", "max_late_frames", "dropped"), (v.value for v in values)))
