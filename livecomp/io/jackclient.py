"""livecomp's own JACK MIDI client, timed to the frame: the C of ``_jackmidi.c`` through ctypes,
its functions and constants as ``_jackmidi.h`` declares them.

python-rtmidi writes every message at the start of a JACK period and stamps what it reads when
its callback runs, so each message is off its time by up to a period: 21 ms at the 1024 frames
PipeWire's JACK runs at by default. Here an output message is handed over ``lead_s`` before it is
due, with its time, and written at its own frame inside its period; an input message is given the
frame it was heard at. Both are timed on ``FRAME_TIME``, JACK's frames as seconds.

``FrameClient`` speaks the part of rtmidi's ``MidiIn`` / ``MidiOut`` that ``rtmidiport.Port`` uses, so
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

from .jack import client_header, load_system_jack
from .ports import PortError

MAX_BYTES = client_header()[0]["MAX_BYTES"]     # longer messages (SysEx) are not livecomp's
LEAD_MARGIN_S = 0.040       # handed over this long before the period it falls in begins (4 ms let
                            # 7 of 299 messages come after their period at 64 frames on a busy VM;
                            # 10 ms let 7 of 2458 come up to 22 ms late beside the piano model's
                            # 30 ms bars with the other core busy: bench/timing.py --model piano)
_P = ctypes.c_void_p
# the C types _jackmidi.h uses, as ctypes passes them
_CTYPES = {"void": None, "int": ctypes.c_int, "uint32_t": ctypes.c_uint32, "lcj_t *": _P,
           "char *": ctypes.c_char_p, "const char *": ctypes.c_char_p, "unsigned char *": ctypes.c_char_p,
           "const unsigned char *": ctypes.c_char_p, "uint32_t *": ctypes.POINTER(ctypes.c_uint32),
           "uint64_t *": ctypes.POINTER(ctypes.c_uint64)}


@functools.cache
def _library():
    spec = importlib.util.find_spec("livecomp._jackmidi")
    if spec is None or spec.origin is None or load_system_jack() is None:
        return None
    lib = ctypes.CDLL(spec.origin)
    for name, (returns, arguments) in client_header()[1].items():       # as _jackmidi.h declares them
        function = getattr(lib, name)
        function.restype, function.argtypes = _CTYPES[returns], [_CTYPES[a] for a in arguments]
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


class FrameTime:
    """JACK's frame counter as seconds, the clock of a session on livecomp's JACK clients:
    ``seconds = start + (frame - start frame) / rate``, one map for what is heard (stamped with
    its frame) and what is sent (due at a frame). The distance between a note heard and one
    answered is then exact in frames whether or not JACK's frames keep pace with the machine's
    clock: on a sound card they do, to a few parts per million, but a dummy driver on a busy
    machine runs some 0.4% slow, and a map through the machine's clock put an answer 15 ms
    off its call's grid at 64-frame periods. ``now()`` is JACK's estimate of the frame now
    (through any open client; ahead from the last one when none is), never going back. One per
    process (``FRAME_TIME``): JACK's frames are the server's, and livecomp's clients share one."""

    WRAP = 1 << 32

    def __init__(self):
        self._lock = threading.Lock()
        self._clients: list = []                 # open handles; the first tells the frame now
        self.rate = 0
        self._start = self._start_frame = 0
        self._frame = 0                           # the latest frame seen, unwrapped
        self._seen_at = 0.0                       # perf_counter when it was seen
        self._last = 0.0                          # the latest now() given

    def attach(self, handle, rate: int) -> None:
        """A client opened. The first of a process sets the map, starting at the machine's
        clock. One that opens when none is open keeps the map where the server is the same one
        (a port that came back: a new map would move every later note off the beat by the
        machine clock's drift from JACK's frames), and sets it again where the server was
        started again or is another: its frames say nothing about the old one's. The time goes
        on from where it was."""
        with self._lock:
            if not self._clients:
                frame = _library().lcj_frame_now(handle)
                if self._same_server(frame, rate):      # a client back on the same server: its frames ran on,
                    self._frame = self._unwrap(frame)   # and the map stays, so the beat does not move
                    self._seen_at = time.perf_counter()
                else:
                    start = self._ahead() if self.rate else time.perf_counter()
                    self.rate = rate
                    self._frame = self._start_frame = frame
                    self._start = self._last = max(start, self._last)
                    self._seen_at = time.perf_counter()
            self._clients.append(handle)

    def _same_server(self, frame: int, rate: int) -> bool:
        """Whether a client opening now, at ``frame``, finds the server the map was made on: the
        same rate, and as many frames gone by since the last seen as the machine's clock says
        (within 5%, or 50 ms); a server started again counts from 0."""
        if not self.rate or rate != self.rate:
            return False
        gone = (self._unwrap(frame) - self._frame) / rate
        waited = time.perf_counter() - self._seen_at
        return gone >= 0 and abs(gone - waited) <= max(0.05 * waited, 0.05)

    def _ahead(self) -> float:
        """The time now from the latest frame seen and the machine's clock since (no client open)."""
        return self._start + (self._frame - self._start_frame) / self.rate + time.perf_counter() - self._seen_at

    def detach(self, handle) -> None:
        with self._lock:
            if handle in self._clients:
                self._clients.remove(handle)

    def _unwrap(self, frame: int) -> int:
        """A 32-bit frame as the whole count nearest the latest one seen."""
        step = (frame - self._frame) % self.WRAP
        return self._frame + (step - self.WRAP if step >= self.WRAP // 2 else step)

    def now(self) -> float:
        with self._lock:
            if not self.rate:                     # no client yet: the machine's clock, which the map starts from
                return time.perf_counter()
            if self._clients:
                self._frame = max(self._frame, self._unwrap(_library().lcj_frame_now(self._clients[0])))
                self._seen_at = time.perf_counter()
                t = self._start + (self._frame - self._start_frame) / self.rate
            else:
                t = self._ahead()
            self._last = max(self._last, t)
            return self._last

    def seconds(self, frame: int) -> float:
        """The time of a (32-bit) frame."""
        with self._lock:
            return self._start + (self._unwrap(frame) - self._start_frame) / self.rate

    def frame(self, seconds: float) -> int:
        """The (32-bit) frame of a time."""
        return (self._start_frame + round((seconds - self._start) * self.rate)) % self.WRAP


FRAME_TIME = FrameTime()


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
        self._final = {"written": 0, "late": 0, "max_late_frames": 0, "dropped": 0}    # a closed client's counts
        self._lock = threading.Lock()            # one sender at a time; closing waits for it
        self._buffer = ctypes.create_string_buffer(MAX_BYTES)
        self._frame = ctypes.c_uint32()

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
        """Hand ``message`` over, due at ``at`` (``FRAME_TIME`` seconds; None: at once)."""
        data = bytes(message)
        frame = 0 if at is None else FRAME_TIME.frame(at)
        with self._lock:
            if self._handle is not None and len(data) <= MAX_BYTES:
                self._lib.lcj_send(self._handle, int(at is None), frame, data, len(data))

    def drop(self) -> None:
        """What was handed over and has not left is dropped (a panic), but for note-offs, which
        leave at once (their note-ons may have left)."""
        with self._lock:
            if self._handle is not None:
                self._lib.lcj_drop(self._handle)

    def read(self, timeout_s: float) -> tuple[list[int], float] | None:
        """The next message heard and the time of its frame (``FRAME_TIME``), waiting at most
        ``timeout_s`` (one reader thread). The wait is in C, without the interpreter lock."""
        with self._lock:                         # closing waits for the read
            if self._handle is None:
                return None
            size = self._lib.lcj_read(self._handle, self._buffer, ctypes.byref(self._frame),
                                      max(1, round(timeout_s * 1e3)))
        if size <= 0:
            return None
        return list(self._buffer.raw[:size]), FRAME_TIME.seconds(self._frame.value)

    def close_port(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            FRAME_TIME.detach(handle)
            self._final = self._stats(handle)
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
        FRAME_TIME.attach(handle, self._lib.lcj_rate(handle))

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
        handle = self._handle
        return self._stats(handle) if handle is not None else dict(self._final)

    def _stats(self, handle) -> dict[str, int]:
        values = [ctypes.c_uint64() for _ in range(4)]
        self._lib.lcj_stats(handle, *(ctypes.byref(v) for v in values))
        return dict(zip(("written", "late", "max_late_frames", "dropped"), (v.value for v in values)))
