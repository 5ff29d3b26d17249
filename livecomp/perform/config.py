"""The settings of a performance (``PerformerConfig``: when to answer, how long, how it is chosen)
and of a session (``LiveConfig``: tempo, sync, channels, what else is played and kept), each
checked as it is made: a setting no performance or session can have is refused in one sentence
(``ValueError``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..music.musicality import FIT_WEIGHT_NATS

# A specialist answers a call only where it finds the call this many nats more likely than the
# model does: a likelihood ratio of e^3 = 20, which Kass and Raftery (1995) call strong evidence.
# Below it the call is too short or too plain to tell a style by: a one-bar C major arpeggio is
# 0.8 nats more likely under `folk` than under the default, a tune's opening (its upbeat and 3
# bars, tests/test_live.py) 10.6 nats.
STYLE_MARGIN_NATS = 3.0


@dataclass
class PerformerConfig:
    silence_beats: float = 2.0         # silence that ends a call
    min_call_beats: float = 1.0        # shorter calls are not answered
    max_call_bars: int = 8             # a call this long is answered even without silence
    phrase_bars: tuple[int, ...] = (4, 8)  # calls this long end on their bar line (once one is answered: its length)
    bars: int | None = None            # answer length; None: as long as the call (at most max_call_bars)
    align: str = "bar"                 # the answer starts on the next "bar" or "beat" line
    temperature: float = 1.0
    candidates: int | None = None      # bars sampled at once for each answer bar (None: the model's own count)
    choice: str = "floors"             # "floors": the first candidate within FIT_FLOORS of the call;
                                       # "fit": the one that agrees with the call best
    fit_weight: float = FIT_WEIGHT_NATS  # nats per unit of agreement with the call (inf: agreement alone;
                                         # 0: the most likely bar), among those left
    answer_from: str = "call"          # "call": the state at the first line after the call's last sound
                                       # "heard": everything heard, the silence that ended the call included
    repeat: bool = True                # an answer bar may bring back the call's bar at its place in the phrase
    follow_style: bool = True          # a call the model's specialists find more likely is answered by the best of them
    style_margin: float = STYLE_MARGIN_NATS  # by this many nats more likely than the model finds it
    seed: int | None = None
    barge_in: str = "stop"             # "stop" | "continue"
    sustain: bool = True
    mode: str = "call"                 # "call": call and response; "duet": play along step by step

    def __post_init__(self):
        """A setting no performance can have is refused in one sentence (``ValueError``)."""
        choices = {"align": ("bar", "beat"), "answer_from": ("call", "heard"), "barge_in": ("stop", "continue"),
                   "mode": ("call", "duet"), "choice": ("floors", "fit")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be {' or '.join(allowed)}, not {getattr(self, name)!r}")
        positive = {"silence_beats": self.silence_beats, "temperature": self.temperature}
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value!r}")
        for name in ("min_call_beats", "fit_weight", "style_margin"):
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not math.isnan(value)
            if not (number and value >= 0 and (math.isfinite(value) or name != "min_call_beats")):
                raise ValueError(f"{name} must be a number of 0 or more, not {value!r}")
        if not (isinstance(self.phrase_bars, tuple) and all(isinstance(b, int) and b >= 1 for b in self.phrase_bars)):
            raise ValueError(f"phrase_bars must be whole numbers of bars, 1 or more, not {self.phrase_bars!r}")
        for name in ("max_call_bars", "bars", "candidates"):
            value = getattr(self, name)
            if not (value is None and name != "max_call_bars") and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be a whole number of 1 or more, not {value!r}")


@dataclass
class LiveConfig:
    bpm: float | None = 120.0           # None: estimated from the first phrase (--bpm auto)
    beats_per_bar: int = 4
    channel: int = 0                    # livecomp's output channel (0-15)
    latency_ms: float = 0.0             # send this much earlier than the grid (a synth's delay)
    end_cc: int | None = None           # a controller that ends a call at once
    record: Path | None = None
    status: bool = True                 # a status area on a terminal (view.py)
    sync: str = "internal"              # "clock": follow MIDI clock from the input port; "link": an Ableton
                                        # Link session
    send_clock: bool = False            # send MIDI clock (and Start) on the output port
    metronome: bool = False             # a click on every beat, accented on beat 1
    count_in: int = 0                   # bars of clicks before bar 1 (fixed --bpm): they set the phase
    click_channel: int = 9              # 0-15; 9 is General MIDI's drum channel
    realtime: bool = True               # the sending thread at real-time priority where the system allows
    thru: bool = False                  # the musician's notes and pedal pass to the output as they arrive ...
    thru_channel: int | None = None     # ... on this channel (0-15), or on the one they came on
    origin: float | None = None         # beat 1 of bar 1 is known (a file's start offline): no waiting for it
    controls: dict[int, str] | None = None   # controller number -> control (``controls.controls_from``)
    models: tuple[str, ...] = ()        # what the keyboard may switch to (``switch.ModelSwitch``)

    def __post_init__(self):
        """A setting no session can have is refused in one sentence (``ValueError``)."""
        if self.bpm is not None and not (isinstance(self.bpm, (int, float)) and 0 < self.bpm < math.inf):
            raise ValueError(f"bpm must be a positive number (or None: from the first phrase), not {self.bpm!r}")
        if self.sync not in ("internal", "clock", "link"):
            raise ValueError(f"sync must be internal, clock or link, not {self.sync!r}")
        ranges = {"beats_per_bar": (1, 64), "channel": (0, 15), "click_channel": (0, 15), "thru_channel": (0, 15),
                  "end_cc": (0, 127), "count_in": (0, 64)}
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and low <= value <= high):
                raise ValueError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
        if not (isinstance(self.latency_ms, (int, float)) and 0 <= self.latency_ms <= 500):
            raise ValueError(f"latency_ms must be from 0 to 500, not {self.latency_ms!r}")
        fixed = self.bpm is not None and self.sync == "internal"
        if self.count_in and not fixed:
            raise ValueError("count_in needs a fixed bpm (with auto or MIDI clock the tempo is not known beforehand)")
        if self.origin is not None and not fixed:
            raise ValueError("origin (a known beat 1 of bar 1) needs a fixed bpm")
        if any(not 0 <= number <= 127 for number in self.controls or {}):
            raise ValueError(f"controls must be controller numbers 0-127, not {sorted(self.controls)}")
