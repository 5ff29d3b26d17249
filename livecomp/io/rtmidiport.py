"""MIDI ports through python-rtmidi: listing, opening by name, virtual ports, and reopening a
port that went away (a keyboard unplugged, a synth closed) without a restart. JACK's own ways
are in ``jackport``, which builds on ``Port``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
from typing import Callable

from . import midi
from .jack import CLIENT, load_system_jack
from .ports import BasePort, PortError, resolve

APIS = {"alsa": "API_LINUX_ALSA", "jack": "API_UNIX_JACK", "coremidi": "API_MACOSX_CORE", "winmm": "API_WINDOWS_MM"}
_rtmidi = None


def load_rtmidi():
    """python-rtmidi, imported on first use, after ``load_system_jack`` so that its JACK calls go
    through the machine's libjack rather than the copy in its wheel."""
    global _rtmidi
    if _rtmidi is None:
        load_system_jack()
        import rtmidi
        _rtmidi = rtmidi
    return _rtmidi


def default_api() -> str:
    """The platform's usual MIDI API: CoreMIDI, Windows MM, or on Linux ALSA (JACK where
    there is no ALSA sequencer)."""
    if sys.platform == "darwin":
        return "coremidi"
    if sys.platform.startswith("win"):
        return "winmm"
    return "alsa" if os.path.exists("/dev/snd/seq") else "jack"


def _api(name: str) -> int:
    rtmidi = load_rtmidi()
    if name not in APIS:
        raise PortError(f"--api must be one of {', '.join(APIS)}, not {name!r}.")
    if getattr(rtmidi, APIS[name]) not in rtmidi.get_compiled_api():
        raise PortError(f"this python-rtmidi was built without {name} support.")
    return getattr(rtmidi, APIS[name])


def _client(kind: str, api: str, name: str, **options):
    """A python-rtmidi client: ``kind`` "MidiIn" or "MidiOut". What alsa-lib writes to stderr
    when the sequencer cannot be reached ("ALSA lib seq_hw.c:...") is kept from the terminal and
    said in livecomp's one sentence instead."""
    rtmidi = load_rtmidi()
    with _stderr_caught() if api == "alsa" else contextlib.nullcontext(lambda: "") as said:
        try:
            return getattr(rtmidi, kind)(_api(api), name=name, **options)
        except rtmidi.SystemError as exc:
            failed = str(exc).rstrip(".")
        library = said().strip().splitlines()
    hint = {"jack": " (is the JACK server running?)",
            "alsa": " (no ALSA sequencer here: load the snd-seq module, or use --api jack)"
            if not os.path.exists("/dev/snd/seq") else ""}.get(api, "")
    raise PortError(f"cannot reach the {api} MIDI system{hint}: {failed}"
                    + (f" ({library[-1].strip()})" if library else "") + ".")


@contextlib.contextmanager
def _stderr_caught():
    """File descriptor 2 led into a temporary file for the block; yields what was written."""
    try:
        saved = os.dup(2)
    except OSError:                                     # no stderr to keep: nothing to catch
        yield lambda: ""
        return
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        os.dup2(caught.fileno(), 2)
        try:
            yield lambda: (caught.seek(0), caught.read().decode(errors="replace"))[1]
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def list_ports(api: str) -> tuple[list[str], list[str]]:
    """(input port names, output port names) of ``api``."""
    inputs = _client("MidiIn", api, f"{CLIENT}-list")
    outputs = _client("MidiOut", api, f"{CLIENT}-list")
    try:
        return inputs.get_ports(), outputs.get_ports()
    finally:
        inputs.delete()
        outputs.delete()

def _close(midi) -> None:
    if midi is not None:
        midi.close_port()
        midi.delete()
    return None

class Port(BasePort):
    """One input or output port through python-rtmidi, kept open for the whole run and reopened
    when it comes back after going away. ``on_message(bytes, t)`` is called for each input
    message with its arrival time on ``time.perf_counter``, from the MIDI system's thread.
    ``client`` names the MIDI system's client (default ``livecomp-in`` or ``livecomp-out``).
    ``send``, ``close`` (safe twice), and ``with`` closes it. A backend's port (``JackPort``)
    fills in the hooks: ``_prepare`` before the first client, ``_first_opened`` after it,
    ``_start_threads``, ``_listed`` (the port list the watcher reads), ``_dispose`` and
    ``_release``.
    """

    def __init__(self, spec: str, direction: str, api: str, on_message: Callable | None = None,
                 on_change: Callable[[str], None] | None = None, client: str | None = None,
                 immediate: bool = False):
        """``immediate``: an input whose messages are played through as they come (--thru), so
        a backend that reads a queue reads it more often (python-rtmidi calls back at once)."""
        self.spec, self.direction, self.api = spec, direction, api
        self.immediate = immediate
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
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._prepare()
        try:
            self._open(first=True)
            self._first_opened()
        except BaseException:
            self.close(drain_s=0.0)
            raise
        if not self.virtual:
            self._start(self._watch_port, "watch")
        self._start_threads()

    def _prepare(self) -> None:
        """Before the first client opens (``JackPort``: the patchbay, and the clock of JACK's frames)."""

    def _first_opened(self) -> None:
        """The first client is open (``JackPort`` makes sure JACK will wake it)."""

    def _start_threads(self) -> None:
        """Threads of the port's own beside the watcher (``JackPort``'s reader and guard)."""

    def _start(self, target: Callable, what: str) -> None:
        thread = threading.Thread(target=target, name=f"livecomp-{self.direction}-{what}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _new_client(self):
        if self.direction == "output":
            return _client("MidiOut", self.api, self.client)
        midi = _client("MidiIn", self.api, self.client)
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

    def _listed(self) -> tuple[Callable[[], list[str]], object]:
        """A function that lists the ports ours may be connected to, and a client to free after
        (``JackPort`` reads JACK's patchbay instead of a client of its own)."""
        probe = self._new_probe()
        return probe.get_ports, probe

    def _watch_port(self) -> None:
        """Poll the port list; when our port is gone, close and wait for it to come back."""
        listed, probe = self._listed()
        try:
            while not self._closing.wait(0.5):
                try:
                    present = self.connected_to in listed()
                except Exception:                       # the MIDI system went away for now: absent
                    present = False
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

    def _new_probe(self):
        return _client("MidiIn" if self.direction == "input" else "MidiOut", self.api, f"{CLIENT}-probe")

    def send(self, message: list[int], at: float | None = None) -> None:
        """Send ``message`` now (``at`` is for ports with a ``lead_s``: ``JackPort``)."""
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
        self._release()

    def _release(self) -> None:
        """After the last client has closed (``JackPort``: its share of the patchbay)."""

    def _dispose(self, midi) -> None:
        """Close and free a client that is no longer ``self._midi``."""
        if self.direction == "input":
            # first stop the MIDI system's thread from calling into Python: closing waits for
            # that thread, which would be waiting for the interpreter lock this thread holds
            midi.cancel_callback()
        midi.close_port()
        midi.delete()
