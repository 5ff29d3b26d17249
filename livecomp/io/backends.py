"""Opening a port of the backend its name and the MIDI API choose, as mido's backends are chosen
by name: ``loopback`` (in memory, ``loopback:NAME``), ``jack`` (livecomp's own JACK client,
``jackport``) or ``rtmidi`` (python-rtmidi on the other APIs, ``rtmidiport``)."""

from __future__ import annotations

from .loopback import LoopbackPort
from .ports import MidiPort
from .rtmidiport import Port


def backend_of(spec: str, api: str) -> str:
    """The backend that opens the port ``spec`` on ``api``."""
    if spec.startswith("loopback:"):
        return "loopback"
    return "jack" if api == "jack" else "rtmidi"


def open_port(spec: str, direction: str, api: str, **options) -> MidiPort:
    """The port ``spec`` names (see ``ports``), opened: a ``JackPort`` on JACK, a
    ``LoopbackPort`` for ``loopback:NAME``, else a ``Port``. ``options`` as ``Port``'s."""
    backend = backend_of(spec, api)
    if backend == "loopback":
        return LoopbackPort(spec, direction, **options)
    if backend == "jack":
        from .jackport import JackPort
        return JackPort(spec, direction, api, **options)
    return Port(spec, direction, api, **options)
