"""MIDI ports through python-rtmidi: listing, choosing by name, virtual ports, and reopening a
port that went away (a keyboard unplugged, a synth closed) without a restart.

A port is named by its full name, a unique part of it, its index in ``livecomp ports``, or
``virtual:NAME`` for a port livecomp creates for others to connect to (ALSA, JACK, CoreMIDI).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable

import rtmidi

APIS = {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK,
        "coremidi": rtmidi.API_MACOSX_CORE, "winmm": rtmidi.API_WINDOWS_MM}
CLIENT = "livecomp"


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


def _client(kind: type, api: str, name: str):
    try:
        return kind(_api(api), name=name)
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


class Port:
    """One input or output port, kept open for the whole run and reopened when it comes back
    after going away. ``on_message(bytes, t)`` is called for each input message with its
    arrival time on ``time.perf_counter``."""

    def __init__(self, spec: str, direction: str, api: str, on_message: Callable | None = None,
                 on_change: Callable[[str], None] | None = None):
        self.spec, self.direction, self.api = spec, direction, api
        self.on_message = on_message
        self.on_change = on_change or (lambda text: None)
        self.virtual = spec.startswith("virtual:")
        self.name = spec[len("virtual:"):] if self.virtual else spec
        self._lock = threading.Lock()
        self._midi = None
        self.connected_to: str | None = None
        self._open(first=True)
        self._closing = threading.Event()
        self._watch = None
        if not self.virtual:
            self._watch = threading.Thread(target=self._watch_port, name=f"livecomp-{direction}-watch", daemon=True)
            self._watch.start()

    def _new_client(self):
        kind = rtmidi.MidiIn if self.direction == "input" else rtmidi.MidiOut
        midi = _client(kind, self.api, f"{CLIENT}-{'in' if self.direction == 'input' else 'out'}")
        if self.direction == "input":
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
        t = time.perf_counter()
        if self.on_message is not None:
            self.on_message(event[0], t)

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
                if self.direction == "input":
                    midi.cancel_callback()
                midi.close_port()
                midi.delete()
                self.on_change(f"{self.direction} port {self.connected_to!r} went away; waiting for it")
            elif present and self._midi is None:
                if self._open():
                    self.on_change(f"{self.direction} port {self.connected_to!r} is back")

    def _new_probe(self):
        kind = rtmidi.MidiIn if self.direction == "input" else rtmidi.MidiOut
        return _client(kind, self.api, f"{CLIENT}-probe")

    @property
    def available(self) -> bool:
        return self._midi is not None

    def send(self, message: list[int]) -> None:
        with self._lock:
            if self._midi is not None:
                self._midi.send_message(message)

    def close(self, drain_s: float = 0.05) -> None:
        """Close the port; an output first waits ``drain_s`` so the last messages (the note-offs
        of a panic) leave the MIDI system's buffers before the port goes."""
        self._closing.set()
        if self.direction == "output" and self._midi is not None:
            time.sleep(drain_s)
        with self._lock:
            midi, self._midi = self._midi, None
        if midi is not None:
            if self.direction == "input":
                # first stop the MIDI system's thread from calling into Python: closing waits for
                # that thread, which would be waiting for the interpreter lock this thread holds
                midi.cancel_callback()
            midi.close_port()
            midi.delete()
