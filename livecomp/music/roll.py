"""The piano roll: a score (``livecomp.music.notes``) <-> frames of key states on a beat grid.

A roll holds ``frames``, shape ``(steps, 88)``, one row per grid step of
``1/steps_per_beat`` quarter note, one column per piano key (MIDI 21..108).
Each cell is a key state: ``OFF`` (0), ``HELD`` (1, sounding since an earlier
step) or ``STRUCK`` (2, a new attack at this step). Rolls of the two-state
benchmark form (off/on) use only 0 and 1, where an off->on change is an attack.

Tempo and meter maps travel with the roll in steps, so bar lines and seconds
can be recovered and a roll written back to MIDI sounds as the source did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np

from ..io import midi
from .notes import DEFAULT_TEMPO_US, MidiFileError, Score, read_midi

__all__ = [
    "LOW_KEY", "HIGH_KEY", "N_KEYS", "OFF", "HELD", "STRUCK", "ConversionReport", "PianoRoll",
    "midi_to_roll", "roll_to_midi", "note_name", "onsets_of",
]

LOW_KEY = 21                      # A0, the lowest piano key
N_KEYS = 88
HIGH_KEY = LOW_KEY + N_KEYS - 1   # C8
OFF, HELD, STRUCK = 0, 1, 2
MAX_STEPS = 1 << 20               # a roll longer than this (36 hours of 16ths at 120 bpm) has damaged timing
TICK_TOLERANCE = 1                # a note within this many source ticks of a grid line sits on it
OUTPUT_TICKS_PER_BEAT = 480

_NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def onsets_of(frames: np.ndarray) -> np.ndarray:
    """Boolean ``(..., steps, 88)``: where a key starts sounding in frames of key states
    (struck, or off -> on; the first step's sounding keys are onsets)."""
    frames = np.asarray(frames)
    on = frames > OFF
    prev = np.zeros_like(on)
    prev[..., 1:, :] = on[..., :-1, :]
    return (frames == STRUCK) | (on & ~prev)


def note_name(pitch: int) -> str:
    """MIDI pitch number -> scientific pitch name (60 -> 'C4')."""
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


@dataclass
class ConversionReport:
    """What quantising a score onto the grid did to its notes (counts of notes).

    ``moved``: onset further than one source tick from the grid line it was put on.
    ``resized``: onset on the grid but end moved (the duration changed). ``merged``: struck the
    same key at the same step as another note (the
    roll keeps one attack). ``overlapped``: a note still sounding when the same key
    was struck again (it ends at the new attack). ``out_of_range``: outside
    MIDI 21..108, left out of the roll. ``drum_notes``: channel 10, left out.
    ``ignored_meta``: tempo or meter events no music can have (tempo 0, a meter of 0
    beats), ignored: the tempo or meter before them goes on.
    No note is dropped without being counted here.
    """

    notes: int = 0
    moved: int = 0
    resized: int = 0
    merged: int = 0
    overlapped: int = 0
    out_of_range: int = 0
    drum_notes: int = 0
    unterminated: int = 0
    ignored_meta: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class PianoRoll:
    """Frames of key states on a grid of ``steps_per_beat`` steps per quarter note.

    ``frames``: ``uint8`` array, shape ``(steps, 88)``. ``tempos``: list of
    ``(step, microseconds_per_beat)``; ``meters``: list of ``(step, numerator,
    denominator)``; both start at step 0.
    """

    frames: np.ndarray
    steps_per_beat: int = 4
    tempos: list[tuple[int, int]] = field(default_factory=lambda: [(0, DEFAULT_TEMPO_US)])
    meters: list[tuple[int, int, int]] = field(default_factory=lambda: [(0, 4, 4)])
    report: ConversionReport = field(default_factory=ConversionReport)

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.uint8)
        if self.frames.ndim != 2 or self.frames.shape[1] != N_KEYS:
            raise ValueError(f"frames must have shape (steps, {N_KEYS}), got {self.frames.shape}")
        if self.steps_per_beat < 1:
            raise ValueError(f"steps_per_beat must be >= 1, got {self.steps_per_beat}")

    @property
    def n_steps(self) -> int:
        return int(self.frames.shape[0])

    def steps_per_bar(self, step: int = 0) -> int:
        """Bar length in steps of the meter in force at ``step`` (rounded up when fractional)."""
        num, den = self.meter_at(step)
        return math.ceil(Fraction(num * 4 * self.steps_per_beat, den))

    def meter_at(self, step: int) -> tuple[int, int]:
        current = self.meters[0][1:]
        for s, num, den in self.meters:
            if s > step:
                break
            current = (num, den)
        return current

    def bar_starts(self) -> list[int]:
        """Step index of every bar line before the end of the roll (a meter change starts a bar)."""
        end = max(self.n_steps, 1)
        starts = np.zeros(0, np.int64)
        changes = self.meters + [(end, 0, 0)]
        for (step, num, den), (next_step, _, _) in zip(changes, changes[1:]):
            if num <= 0 or den <= 0 or step >= next_step:   # a bar of no length: none start there
                continue
            bar = Fraction(num * 4 * self.steps_per_beat, den)      # steps, exactly
            count = math.ceil((next_step - step) / bar)             # bar lines in [step, next_step)
            k = np.arange(count, dtype=np.int64)
            starts = np.concatenate([starts, step + (k * bar.numerator) // bar.denominator])
        starts = np.unique(starts)                                  # bars shorter than a step share it
        return [int(s) for s in starts if s < end]

    def first_bars(self, bars: int) -> "PianoRoll":
        """The roll cut after its first ``bars`` bars (the whole roll when it is shorter)."""
        starts = self.bar_starts()
        end = starts[bars] if bars < len(starts) else self.n_steps
        return PianoRoll(self.frames[:end].copy(), self.steps_per_beat,
                         [t for t in self.tempos if t[0] < max(end, 1)],
                         [m for m in self.meters if m[0] < max(end, 1)], self.report)

    def seconds(self) -> float:
        """Length of the roll in seconds, following the tempo map."""
        total, changes = 0.0, self.tempos + [(self.n_steps, 0)]
        for (step, us), (next_step, _) in zip(changes, changes[1:]):
            total += max(0, next_step - step) * us / 1e6 / self.steps_per_beat
        return total

    def onsets(self) -> np.ndarray:
        """Boolean ``(steps, 88)``: where a key starts sounding (struck, or off -> on)."""
        return onsets_of(self.frames)

    def to_states(self, key_states: int) -> np.ndarray:
        """Frames in the 2-state (off/on) or 3-state (off/held/struck) form."""
        if key_states == 2:
            return (self.frames > OFF).astype(np.uint8)
        if key_states == 3:
            out = np.where(self.frames > OFF, HELD, OFF).astype(np.uint8)
            out[self.onsets()] = STRUCK
            return out
        raise ValueError(f"key_states must be 2 or 3, got {key_states}")

    def summary(self) -> dict:
        """Plain facts about the roll: steps, bars, tempos, meters, key range, polyphony."""
        sounding = self.frames > OFF
        keys = np.flatnonzero(sounding.any(axis=0))
        return {
            "steps": self.n_steps,
            "steps_per_beat": self.steps_per_beat,
            "bars": len(self.bar_starts()),
            "seconds": round(self.seconds(), 3),
            "tempos_bpm": [(s, round(60e6 / us, 3)) for s, us in self.tempos],
            "meters": [(s, f"{n}/{d}") for s, n, d in self.meters],
            "key_range": (note_name(LOW_KEY + int(keys[0])), note_name(LOW_KEY + int(keys[-1])))
            if keys.size else None,
            "notes": int(self.onsets().sum()),
            "mean_polyphony": round(float(sounding.sum(axis=1).mean()), 3) if self.n_steps else 0.0,
            "conversion": self.report.as_dict(),
        }


def _to_step(tick: int, ticks_per_beat: int, steps_per_beat: int) -> int:
    """Nearest grid step to ``tick`` (halves round up), in exact integer arithmetic."""
    return (2 * tick * steps_per_beat + ticks_per_beat) // (2 * ticks_per_beat)


def midi_to_roll(source: str | Path | mido.MidiFile | Score, steps_per_beat: int = 4,
                 sustain: bool = False) -> PianoRoll:
    """Quantise a MIDI file (or a read ``Score``) onto the grid.

    Each note's onset and end go to the nearest step; a note shorter than one
    step still sounds for one step. What quantising did is in ``roll.report``.

    Raises:
        MidiFileError: as ``read_midi``.
    """
    score = source if isinstance(source, Score) else read_midi(source, sustain=sustain)
    tpb = score.ticks_per_beat
    report = ConversionReport(notes=len(score.notes), drum_notes=score.drum_notes,
                              unterminated=score.unterminated_notes, ignored_meta=score.ignored_meta)

    def off_grid(tick: int, step: int) -> bool:
        return abs(step * tpb - tick * steps_per_beat) > TICK_TOLERANCE * steps_per_beat

    placed = []
    for note in score.notes:
        if not LOW_KEY <= note.pitch <= HIGH_KEY:
            report.out_of_range += 1
            continue
        start = _to_step(note.start, tpb, steps_per_beat)
        end = _to_step(note.end, tpb, steps_per_beat)
        if off_grid(note.start, start):
            report.moved += 1
        elif off_grid(note.end, end):
            report.resized += 1
        placed.append((start, max(end, start + 1), note.pitch - LOW_KEY))
    if not placed:
        raise MidiFileError(f"{score.name}: all {report.out_of_range} of its notes lie outside the piano's "
                            f"range A0..C8.")
    placed.sort()

    n_steps = max((end for _, end, _ in placed), default=0)
    if n_steps > MAX_STEPS:
        raise MidiFileError(f"{score.name} lasts {n_steps * 1.0 / steps_per_beat:,.0f} beats on the grid, more than "
                            f"{MAX_STEPS // steps_per_beat:,}: its timing is damaged.")
    frames = np.zeros((n_steps, N_KEYS), np.uint8)
    last_start = np.full(N_KEYS, -1)
    hold_end = np.zeros(N_KEYS, np.int64)
    for start, end, key in placed:
        if start == last_start[key]:
            report.merged += 1
        else:
            if start < hold_end[key]:
                report.overlapped += 1
            frames[start, key] = STRUCK
            last_start[key] = start
        frames[start + 1:end, key] = HELD
        hold_end[key] = max(hold_end[key], end)

    def step_map(changes):
        out: dict[int, tuple] = {}
        for tick, *value in changes:
            out[_to_step(tick, tpb, steps_per_beat)] = tuple(value)
        return sorted(out.items())

    tempos = [(s, v[0]) for s, v in step_map(score.tempos)]
    meters = [(s, v[0], v[1]) for s, v in step_map(score.meters)]
    return PianoRoll(frames, steps_per_beat, tempos, meters, report)


def roll_to_midi(roll: PianoRoll, velocity: int = 80, channel: int = 0,
                 ticks_per_beat: int | None = None) -> mido.MidiFile:
    """Write a roll as a type 1 MIDI file: tempo and meter on track 0, notes on track 1.

    A note starts at each attack (``STRUCK``, or off -> on) and ends when the key
    goes off or is struck again. ``ticks_per_beat`` defaults to a multiple of both
    480 and ``steps_per_beat``, so every step falls on a whole tick.
    """
    spb = roll.steps_per_beat
    tpb = ticks_per_beat or math.lcm(OUTPUT_TICKS_PER_BEAT, spb)
    if tpb % spb:
        raise ValueError(f"ticks_per_beat {tpb} is not a multiple of steps_per_beat {spb}")
    tick_of = tpb // spb

    meta = [(s * tick_of, 0, mido.MetaMessage("set_tempo", tempo=us, time=0)) for s, us in roll.tempos]
    meta += [(s * tick_of, 0, mido.MetaMessage("time_signature", numerator=n, denominator=d, time=0))
             for s, n, d in roll.meters]

    on = roll.frames > OFF
    starts = roll.onsets()
    padded = np.vstack([np.zeros((1, N_KEYS), bool), on, np.zeros((1, N_KEYS), bool)])
    was_on = padded[:-1]                                   # (steps + 1, 88): sounding at step t - 1
    now_on = padded[1:]
    starts_ext = np.vstack([starts, np.zeros((1, N_KEYS), bool)])
    ends = was_on & (~now_on | starts_ext)                 # a note ends at step t
    note_events = []
    for step, key in zip(*np.nonzero(ends)):
        note_events.append((int(step) * tick_of, 0, mido.Message(
            "note_off", note=int(key) + LOW_KEY, velocity=0, channel=channel)))
    for step, key in zip(*np.nonzero(starts)):
        note_events.append((int(step) * tick_of, 1, mido.Message(
            "note_on", note=int(key) + LOW_KEY, velocity=velocity, channel=channel)))

    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    for events in (meta, note_events):
        events.sort(key=lambda e: (e[0], e[1], getattr(e[2], "note", 0)))
        mid.tracks.append(midi.track([(tick, msg) for tick, _, msg in events]))
    return mid
