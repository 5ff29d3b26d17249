"""The port interface: what livecomp asks of a MIDI port whatever its backend (``MidiPort``),
what every port does alike (``BasePort``), and choosing a port by name (``resolve``).

A port is named by its full name, a unique part of it, its index in ``livecomp ports``,
``virtual:NAME`` for a port livecomp creates for others to connect to (ALSA, JACK, CoreMIDI), or
``loopback:NAME`` for one in memory (tests). The backends: ``rtmidiport`` (python-rtmidi),
``jackport`` (JACK, livecomp's own client) and ``loopback``; ``backends`` opens a port of the
backend its name and the API choose.
"""

from __future__ import annotations

import time
from typing import Protocol

from .jack import CLIENT


class PortError(RuntimeError):
    """A port that cannot be found, chosen or opened."""

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
    listing = "; ".join(f"{i}: {n}" for i, n in enumerate(names) if not own(i)) or "none"
    what = f"matches several {direction} ports" if matches else f"matches no {direction} port"
    raise PortError(f"{spec!r} {what} (there are: {listing}).")

class MidiPort(Protocol):
    """What livecomp asks of a port, whatever its backend (``backends``): an input calls
    ``on_message(message, t)`` for each message heard, ``t`` on the port's time (``now``); an output
    sends a message now, or at ``at`` (on ``now``'s time) where it can place messages ahead
    (``lead_s`` > 0: that long before their time they are handed over, and ``drop`` takes back
    what has not left)."""

    connected_to: str | None
    lead_s: float

    def now(self) -> float: ...

    def send(self, message: list[int], at: float | None = None) -> None: ...

    def drop(self) -> None: ...

    def transport(self) -> str | None: ...

    def close(self, drain_s: float = 0.2) -> None: ...

    def __enter__(self) -> "MidiPort": ...

    def __exit__(self, *exc) -> None: ...


class BasePort:
    """What every port does alike: messages sent at once on ``time.perf_counter``, nothing
    handed over ahead to drop, nothing to say about the transport, and ``with`` closes it."""

    lead_s = 0.0                    # messages are sent at once (``JackPort`` may place them at their times)
    now = staticmethod(time.perf_counter)       # the time its messages are stamped and planned on
    connected_to: str | None = None

    def send(self, message: list[int], at: float | None = None) -> None:
        raise NotImplementedError

    def drop(self) -> None:
        """Drop what was handed over ahead of its time and has not left (none here)."""

    def transport(self) -> str | None:
        """What the MIDI system adds to the timing, in a sentence, where livecomp can tell."""
        return None

    def close(self, drain_s: float = 0.2) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sender_of(output) -> tuple:
    """(the function that sends, a scheduler's ``lead_s`` and ``drop``) for ``output``: a plain
    function, or a port, whose lead and drop come along where it places messages at their own
    times."""
    if not hasattr(output, "send"):
        return output, {}
    if output.lead_s:
        return output.send, {"lead_s": lambda: output.lead_s, "drop": output.drop}
    return output.send, {}
