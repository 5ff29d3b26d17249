"""Control from the keyboard while playing: controllers mapped to livecomp's settings.

Knobs and sliders set a value from their position (0-127); buttons act when pressed (a value of
64 or more after one below). The defaults are General MIDI's general-purpose controllers, which
no sound uses: sliders 16-18 and buttons 80-83, and 85, which MIDI 1.0 leaves undefined
(Magenta's MIDI interface names no numbers of its own). A program change chooses a model by its
number in ``livecomp models``' order. A config file's ``[controls]`` table maps the controls
elsewhere, or turns one off::

    [controls]
    temperature = 74      # a knob's controller number
    mute = "off"

Every change is said in one line by the live loop, which applies it between two steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..io import midi

KNOBS = {                                   # name -> (what it sets, how a position 0-127 reads)
    "temperature": "sampling temperature, 0.2 (safe) to 2.0 (wild), 1.0 at the middle",
    "bars": "answer length: 0 as long as the call, else 1 to 8 bars",
    "silence": "beats of silence that end a call, 0.5 to 4",
}
BUTTONS = {
    "mode": "switch between call and response and duet",
    "mute": "listen without answering, or answer again",
    "panic": "end every note livecomp plays, at once",
    "next": "the next model, once it has loaded",
    "previous": "the previous model, once it has loaded",
    "count-in": "before your first note: a bar of clicks (or --count-in's), then bar 1",
}
def temperature_of(value: int) -> float:
    """The temperature knob's position (0-127) as a temperature: 0.2 at the bottom, 1.0 (the
    default) at the middle, 64, and 2.0 at the top, in even steps on each side."""
    low, middle, high = 0.2, 1.0, 2.0
    t = low + (middle - low) * value / 64 if value <= 64 else middle + (high - middle) * (value - 64) / 63
    return round(t, 2)


DEFAULTS = {"temperature": 16, "bars": 17, "silence": 18, "mode": 80, "mute": 81, "panic": 82, "next": 83,
            "previous": 85, "count-in": 86}


class ControlsError(ValueError):
    """A controls table no keyboard can use."""


def controls_from(table: dict | None, end_cc: int | None = None) -> dict[int, str]:
    """Controller number -> control name: the defaults with ``table``'s changes (name -> number,
    or "off"). Refused in one sentence: an unknown name, a number outside 0-127, one controller
    for two controls, a control on the sustain pedal (64) or on ``--end-cc``."""
    names = dict(DEFAULTS)
    for name, number in (table or {}).items():
        if name not in names:
            raise ControlsError(f"there is no control {name!r}; the controls are {', '.join(names)}.")
        if number == "off":
            names[name] = None
            continue
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 127:
            raise ControlsError(f"the control {name} needs a controller number from 0 to 127 (or \"off\"), "
                                f"not {number!r}.")
        names[name] = number
    by_number: dict[int, str] = {}
    for name, number in names.items():
        if number is None:
            continue
        if number in by_number:
            raise ControlsError(f"controller {number} is given to both {by_number[number]} and {name}.")
        if number == 64 or number == end_cc:
            what = "the sustain pedal" if number == 64 else "--end-cc"
            raise ControlsError(f"the control {name} cannot use controller {number}: it is {what}.")
        by_number[number] = name
    return by_number


@dataclass
class Change:
    """What a control asks for: ``setting`` and its new ``value`` (None for a button's action)."""

    control: str
    setting: str
    value: object = None


class Controls:
    """Turns controller messages into changes, remembering each button's last value."""

    def __init__(self, by_number: dict[int, str]):
        self.by_number = by_number
        self._down: dict[int, bool] = {}

    def name_of(self, message: list[int]) -> str | None:
        """The control ``message`` moves ("program" for a program change), or None where it is
        no control of this map: a note, the pedal, an unmapped controller."""
        if midi.is_program(message):
            return "program"
        return self.by_number.get(message[1]) if midi.is_control(message) else None

    def read(self, message: list[int]) -> Change | None:
        """The change a controller's new value (or a program change) asks for; None when it is
        not a control, or is a button let go (or pressed again without being let go)."""
        if midi.is_program(message):
            return Change("program", "model", message[1])
        number, value = message[1], message[2]
        name = self.by_number.get(number)
        if name is None:
            return None
        if name in BUTTONS:
            pressed, was = value >= 64, self._down.get(number, False)
            self._down[number] = pressed
            return Change(name, name) if pressed and not was else None
        if name == "temperature":
            return Change(name, "temperature", temperature_of(value))
        if name == "bars":
            return Change(name, "bars", None if value == 0 else 1 + round(7 * (value - 1) / 126))
        return Change(name, "silence_beats", round((0.5 + 3.5 * value / 127) * 4) / 4)

    def apply(self, change: Change | None, live, step: int) -> None:
        """Do ``change`` to the running ``live`` loop, between two steps, and say it in one line.
        A knob sets the performer's setting for what it plans next; a button first ends at once
        what livecomp plays."""
        if change is None:
            return
        performer = live.performer
        if change.control in KNOBS:
            setattr(performer.cfg, change.setting, change.value)
            live.log(f"{change.control}: " + ("as long as the call" if change.value is None else f"{change.value:g}"))
            return
        if change.control == "program":
            live.models.choose(change.value, live.log, wrap=False)
            return
        if change.control in ("next", "previous"):
            live.models.choose(live.models.current + (1 if change.control == "next" else -1), live.log)
            return
        if change.control == "count-in":                 # before bar 1 the live loop takes it itself
            live.log("count-in: bar 1 is set already; the button counts in before your first note")
            return
        live.hush(step)
        if change.control == "mute":
            performer.muted = not performer.muted
            live.log("muted: listening, not answering" if performer.muted else "unmuted: answering again")
        elif change.control == "mode":
            performer.cfg.mode = "duet" if performer.cfg.mode == "call" else "call"
            live.log("mode: " + ("duet, playing along" if performer.cfg.mode == "duet" else "call and response"))
        else:
            live.log("panic: every note ended")


def learn(take: Callable[[float], list[int] | None], ask: Callable[[str], None], wait_s: float = 10.0) -> dict[str,
                                                                                                               int]:
    """``listen --learn``: ask for each control in turn and take the first controller moved
    within ``wait_s`` seconds that no control took before it (a knob sends many values as it
    turns) and that is not the sustain pedal; a control not moved keeps its mapping. ``take``
    gives the next message heard (None when its wait ran out). Returns control -> number."""
    learned: dict[str, int] = {}
    for name, what in {**KNOBS, **BUTTONS}.items():
        ask(f"learn: move the control for {name} ({what}), or wait {wait_s:g} s to keep it as it is")
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            message = take(left)
            if message is None:
                break
            if midi.is_control(message) and message[1] != 64 and message[1] not in learned.values():
                learned[name] = message[1]
                break
        ask(f"learn: {name} is controller {learned[name]}" if name in learned else f"learn: {name} kept")
    return learned
