"""MIDI ports through python-rtmidi: listing, choosing by name, virtual ports, and reopening a
port that went away (a keyboard unplugged, a synth closed) without a restart.

A port is named by its full name, a unique part of it, its index in ``livecomp ports``, or
``virtual:NAME`` for a port livecomp creates for others to connect to (ALSA, JACK, CoreMIDI).
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import threading
import time
from typing import Callable

from .jack import CLIENT, JackError, JackPatchbay, jack_wakeup_mapped, literal, load_system_jack


load_system_jack()                        # before rtmidi loads the copy in its wheel

import rtmidi  # noqa: E402

from . import midi  # noqa: E402

APIS = {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK,
        "coremidi": rtmidi.API_MACOSX_CORE, "winmm": rtmidi.API_WINDOWS_MM}
POLL_S = 0.005              # JACK input: how often the queue is read (times come from JACK) ...
POLL_FIRST_S = 0.0005       # ... and while its first messages place JACK's clock on ours
FIRST = 20                  # ... that many (livecomp pings its own input with them at the start)
FIRST_S = 2.0               # ... for at most this long after the client opened
SETTLE_S = 0.1              # JACK: how long a new client waits before its wake-up is first checked
GUARD_S = 3.0               # ... how long after opening a client livecomp keeps checking it ...
GUARD_CHECK_S = 0.05        # ... and how often
GUARD_TRIES = 10            # ... and how many times it opens a new client before giving up
PING = [midi.SYSEX, 0x7D, 0x6C, 0x63]   # + 2 bytes of sequence number + end: SysEx (non-commercial id)
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
                 on_change: Callable[[str], None] | None = None, client: str | None = None,
                 poll_s: float = POLL_S):
        self.spec, self.direction, self.api = spec, direction, api
        self.poll_s = poll_s                            # JACK input: how often its queue is read
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
            except JackError:
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
        if message and message[0] not in (midi.SYSEX, midi.ACTIVE_SENSING) and self.on_message is not None:
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
                time.sleep(POLL_FIRST_S if fast else self.poll_s)
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
                ping.send_message(PING + [number >> 7, number & 0x7F, midi.SYSEX_END])
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
