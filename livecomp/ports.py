"""MIDI ports through python-rtmidi: listing, choosing by name, virtual ports, and reopening a
port that went away (a keyboard unplugged, a synth closed) without a restart.

A port is named by its full name, a unique part of it, its index in ``livecomp ports``, or
``virtual:NAME`` for a port livecomp creates for others to connect to (ALSA, JACK, CoreMIDI).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import math
import os
import re
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
        library = ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return None
    _quiet_jack(library)
    return name


_JACK_SILENT = ctypes.CFUNCTYPE(None, ctypes.c_char_p)(lambda text: None)   # lives as long as the process


def _quiet_jack(library) -> None:
    """libjack prints its own lines on stderr (five of them when no server runs) before
    livecomp can say what went wrong in one sentence: they are left unsaid."""
    for setter in ("jack_set_error_function", "jack_set_info_function"):
        try:
            getattr(library, setter)(_JACK_SILENT)
        except AttributeError:
            pass


SYSTEM_JACK = _use_the_system_jack_library()

import rtmidi  # noqa: E402  (after the system libjack is in place)

APIS = {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK,
        "coremidi": rtmidi.API_MACOSX_CORE, "winmm": rtmidi.API_WINDOWS_MM}
CLIENT = "livecomp"
POLL_S = 0.005              # JACK input: how often the queue is read (times come from JACK) ...
POLL_FIRST_S = 0.0005       # ... and while its first messages place JACK's clock on ours
FIRST = 20                  # ... that many (livecomp pings its own input with them at the start)
FIRST_S = 2.0               # ... for at most this long after the client opened
SETTLE_S = 0.1              # JACK: how long a new client waits before its wake-up is first checked
GUARD_S = 3.0               # ... how long after opening a client livecomp keeps checking it ...
GUARD_CHECK_S = 0.05        # ... and how often
GUARD_TRIES = 10            # ... and how many times it opens a new client before giving up
MIDI_TYPE = b"8 bit raw midi"
PING = [0xF0, 0x7D, 0x6C, 0x63]   # + 2 bytes of sequence number + 0xF7: SysEx (non-commercial id)
_ping_numbers = itertools.count()


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


OWN_OUTPUTS = (f"{CLIENT}-out", f"{CLIENT}-click")     # clients whose ports livecomp never listens to


def resolve(spec: str, names: list[str], direction: str) -> int:
    """The index of the port ``spec`` names among ``names`` (full name, unique part, or index).
    An input is never one of livecomp's own outputs: it would answer its own answers."""
    def own(i: int) -> bool:
        return direction == "input" and names[i].startswith(OWN_OUTPUTS)

    matches = [i for i, n in enumerate(names) if spec.lower() in n.lower() and not own(i)]
    found = None
    if spec in names:
        found = names.index(spec)
    elif spec.isdigit() and int(spec) < len(names):
        found = int(spec)
    elif len(matches) == 1:
        found = matches[0]
    if found is not None:
        if own(found):
            raise PortError(f"{names[found]!r} is livecomp's own output: listening to it, livecomp would answer "
                            f"its own answers.")
        return found
    listing = "; ".join(f"{i}: {n}" for i, n in enumerate(names)) or "none"
    what = "matches several" if matches else "matches no"
    raise PortError(f"{spec!r} {what} {direction} port (there are: {listing}).")


def _close(midi) -> None:
    if midi is not None:
        midi.close_port()
        midi.delete()
    return None


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


class JackPatchbay:
    """The libjack calls python-rtmidi does not offer (listing ports without a client that
    takes part in every cycle, a port's connections, connecting two ports), through one JACK
    client per process that is never activated. ``JackPatchbay.shared()`` hands it out;
    ``release()`` closes it when its last user is done."""

    _lock = threading.Lock()
    _shared: "JackPatchbay | None" = None
    _users = 0

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
            raise PortError("cannot reach the JACK server")

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


class Port:
    """One input or output port, kept open for the whole run and reopened when it comes back
    after going away. ``on_message(bytes, t)`` is called for each input message with its
    arrival time on ``time.perf_counter``. ``client`` names the MIDI system's client (default
    ``livecomp-in`` or ``livecomp-out``).

    A JACK input is read from rtmidi's queue by a thread of its own rather than through a
    callback: rtmidi calls back from JACK's process thread, which would then wait there for the
    interpreter lock, and a JACK client that overruns its period loses what arrived in it. Its
    arrival times are JACK's own (rtmidi gives the monotonic microseconds between messages),
    placed on ``perf_counter`` by pings of its own at the start, before anyone plays (see
    ``_read``).

    A JACK port is handed out only once this process holds its client's wake-up
    (``jack_wakeup_mapped``), and for ``GUARD_S`` after each client opens a thread keeps
    checking; a client JACK would not wake is replaced by a new one with the port's
    connections.
    """

    def __init__(self, spec: str, direction: str, api: str, on_message: Callable | None = None,
                 on_change: Callable[[str], None] | None = None, client: str | None = None):
        self.spec, self.direction, self.api = spec, direction, api
        self.on_message = on_message
        self.on_change = on_change or (lambda text: None)
        self.client = client or f"{CLIENT}-{'in' if direction == 'input' else 'out'}"
        self.virtual = spec.startswith("virtual:")
        self.name = spec[len("virtual:"):] if self.virtual else spec
        self.port_name = self.name if self.virtual else direction      # our own port, in the MIDI system
        self._lock = threading.Lock()                   # guards self._midi
        self._swap = threading.Lock()                   # one thread at a time replaces or reopens the client
        self._midi = None
        self._opened_at = time.perf_counter()
        self.connected_to: str | None = None
        self._patchbay = None
        if api == "jack":
            try:
                self._patchbay = JackPatchbay.shared()
            except PortError:
                self._patchbay = None                   # ports still work; no guard, no restored connections
        self._closing = threading.Event()
        self._pings: dict[int, float] = {}              # ping number -> when it was sent
        self._threads: list[threading.Thread] = []
        try:
            self._open(first=True)
            if self._patchbay is not None:
                self._settle()
        except BaseException:
            self.close(drain_s=0.0)
            raise
        if not self.virtual:
            self._start(self._watch_port, "watch")
        if api == "jack" and direction == "input":
            self._start(self._read, "read")
        if self._patchbay is not None:
            self._start(self._guard, "guard")

    def _start(self, target: Callable, what: str) -> None:
        thread = threading.Thread(target=target, name=f"livecomp-{self.direction}-{what}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _new_client(self):
        if self.direction == "output":
            return _client(rtmidi.MidiOut, self.api, self.client)
        if self.api == "jack":
            # nothing ignored: rtmidi's time differences skip over the messages it drops
            midi = _client(rtmidi.MidiIn, self.api, self.client, queue_size_limit=8192)
            midi.ignore_types(sysex=False, timing=False, active_sense=False)
        else:
            midi = _client(rtmidi.MidiIn, self.api, self.client)
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
            self._opened_at = time.perf_counter()
        return True

    def _callback(self, event, data=None) -> None:
        self._deliver(event[0], time.perf_counter())

    def _deliver(self, message: list[int], t: float) -> None:
        # Active Sensing says the input is alive, SysEx is not for us: neither is played
        if message and message[0] not in (0xF0, 0xFE) and self.on_message is not None:
            self.on_message(message, t)

    def _read(self) -> None:
        """JACK input: read rtmidi's queue and time each message on JACK's clock.

        JACK's clock and ``perf_counter`` are both the monotonic clock, but rtmidi gives only
        the time between messages, so their sum is placed on ours by a constant found from two
        sides. A message was stamped no later than it was read: the smallest gap yet seen
        between a message's sum and the moment it was read is one bound. A ping of our own was
        stamped no earlier than it was sent, and, in a cycle on time, within one JACK period
        after: the latest send less its sum, plus a period, is the other. The first ``FIRST``
        messages of a client (the guard's pings, before anyone plays) are read every
        ``POLL_FIRST_S``, after them every ``POLL_S`` (a message read later is still timed by
        JACK). Read alone, a busy interpreter (another thread holding its lock for a few ms)
        would place every note of the session that much late."""
        period = self._patchbay.period_s() if self._patchbay is not None else 0.0
        midi, clock, read, sent, seen, opened = None, 0.0, math.inf, -math.inf, 0, 0.0
        while not self._closing.is_set():
            with self._lock:
                if self._midi is not midi:              # a new client: its clock starts again
                    midi, clock, read, sent, seen, opened = self._midi, 0.0, math.inf, -math.inf, 0, self._opened_at
                got = midi.get_message() if midi is not None else None
            if got is None:
                fast = seen < FIRST and time.perf_counter() - opened < FIRST_S
                time.sleep(POLL_FIRST_S if fast else POLL_S)
                continue
            message, delta = got
            clock += delta
            read = min(read, time.perf_counter() - clock)
            if len(message) == len(PING) + 3 and message[:len(PING)] == PING:
                when = self._pings.pop(message[-3] << 7 | message[-2], None)
                if when is not None:
                    sent = max(sent, when - clock)
            seen += 1
            self._deliver(message, clock + (min(read, sent + period) if sent > -math.inf else read))

    def _present(self, probe) -> bool:
        try:
            if self._patchbay is not None:
                return self.connected_to in self._patchbay.ports(outputs=self.direction == "input")
            return self.connected_to in probe.get_ports()
        except Exception:
            return False

    def _watch_port(self) -> None:
        """Poll the port list; when our port is gone, close and wait for it to come back."""
        probe = None if self._patchbay is not None else self._new_probe()
        try:
            while not self._closing.wait(0.5):
                present = self._present(probe)
                with self._swap:
                    if not present and self._midi is not None:
                        with self._lock:
                            midi, self._midi = self._midi, None
                        self._dispose(midi)
                        self.on_change(f"{self.direction} port {self.connected_to!r} went away; waiting for it")
                    elif present and self._midi is None and not self._closing.is_set():
                        if self._open():
                            self.on_change(f"{self.direction} port {self.connected_to!r} is back")
        finally:
            if probe is not None:
                probe.delete()

    def _own_port(self) -> str | None:
        """Our port's full JACK name, when it can be told apart from another livecomp's."""
        pattern = f"^{literal(self.client)}(-[0-9]+)?:{literal(self.port_name)}$"
        found = self._patchbay.ports(outputs=self.direction == "output", pattern=pattern)
        return found[0] if len(found) == 1 else None

    def _settle(self) -> None:
        """Wait ``SETTLE_S`` for this process to hear of the clients that came and went while
        ours opened, then make sure it holds our client's wake-up, replacing the client until
        it does (at most ``GUARD_TRIES`` times)."""
        for _ in range(GUARD_TRIES):
            time.sleep(SETTLE_S)
            if jack_wakeup_mapped(self.client) is not False:
                return
            self._replace()

    def _guard(self) -> None:
        """JACK only: for ``GUARD_S`` after each client opens, check every ``GUARD_CHECK_S`` that
        this process holds its wake-up; two misses in a row and the client is replaced (up to
        ``GUARD_TRIES`` times). An input client first gets ``FIRST`` pings of our own, which
        place JACK's clock on ours before anyone plays."""
        misses, tries, pinged = 0, 0, None
        while not self._closing.wait(GUARD_CHECK_S):
            midi, opened = self._midi, self._opened_at
            if midi is None or time.perf_counter() - opened > GUARD_S:
                misses = 0
                self._closing.wait(0.5)
                continue
            if self.direction == "input" and pinged is not midi:
                pinged = midi
                self._ping()
            if jack_wakeup_mapped(self.client) is not False:
                misses = 0
                continue
            misses += 1
            if misses >= 2 and tries < GUARD_TRIES:
                tries += 1
                misses = 0
                self._replace()

    def _ping(self) -> None:
        """Send ``FIRST`` numbered pings (SysEx, never played) to our own input, 5 ms apart,
        from a short-lived client of our own, each send's time kept for ``_read``."""
        target = self._own_port()
        if target is None:
            return
        try:
            ping = _client(rtmidi.MidiOut, "jack", f"{CLIENT}-ping")
        except PortError:
            return
        try:
            names = ping.get_ports()
            if target not in names:
                return
            ping.open_port(names.index(target), name="ping")
            for _ in range(FIRST):
                if self._closing.wait(0.005):
                    break
                number = next(_ping_numbers) & 0x3FFF
                self._pings[number] = time.perf_counter()
                ping.send_message(PING + [number >> 7, number & 0x7F, 0xF7])
            self._closing.wait(0.02)                    # the last ones leave before the client goes
        finally:
            _close(ping)

    def _replace(self) -> None:
        """Open a new client in place of ours, with our port's connections."""
        with self._swap:
            if self._midi is not None and not self._closing.is_set():
                self._replace_client()

    def _replace_client(self) -> None:
        target = self._own_port()
        others = self._patchbay.connections(target) if target is not None else []
        with self._lock:
            midi, self._midi = self._midi, None
        if midi is not None:
            self._dispose(midi)
        if not self._open():
            return
        target = self._own_port()
        restored = 0
        for other in others if target is not None else []:
            pair = (other, target) if self.direction == "input" else (target, other)
            restored += self._patchbay.connect(*pair)
        self.on_change(f"JACK would not wake the {self.direction} client; opened a new one "
                       f"({restored} connection{'s' * (restored != 1)} restored)")

    def _new_probe(self):
        kind = rtmidi.MidiIn if self.direction == "input" else rtmidi.MidiOut
        return _client(kind, self.api, f"{CLIENT}-probe")

    def send(self, message: list[int]) -> None:
        with self._lock:
            if self._midi is not None:
                self._midi.send_message(message)

    def close(self, drain_s: float = 0.2) -> None:
        """Close the port; an output first waits ``drain_s`` so the last messages (the note-offs
        of a panic) leave the MIDI system's buffers before the port goes. Safe to call twice."""
        self._closing.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2.0)
        self._threads = []
        if self.direction == "output" and self._midi is not None:
            time.sleep(drain_s)
        with self._lock:
            midi, self._midi = self._midi, None
        if midi is not None:
            self._dispose(midi)
        self._release_patchbay()

    def _release_patchbay(self) -> None:
        if self._patchbay is not None:
            self._patchbay = None
            JackPatchbay.release()

    def _dispose(self, midi) -> None:
        """Close and free a client that is no longer ``self._midi``."""
        if self.direction == "input" and self.api != "jack":
            # first stop the MIDI system's thread from calling into Python: closing waits for
            # that thread, which would be waiting for the interpreter lock this thread holds
            midi.cancel_callback()
        midi.close_port()
        midi.delete()
