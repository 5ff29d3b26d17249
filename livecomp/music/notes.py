"""A MIDI file as its notes, in its own ticks, with its tempo and meter maps: what the piano
roll (``livecomp.music.roll``) quantises, and the one place that opens MIDI files for reading and
says in one sentence why one cannot be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mido

from ..io import midi

DRUM_CHANNEL = midi.DRUMS         # channel 10 in 1-based numbering
DEFAULT_TEMPO_US = 500_000        # microseconds per quarter note (120 bpm)


class MidiFileError(ValueError):
    """A file that cannot be read as music: not MIDI, damaged, or without notes."""


@dataclass(frozen=True)
class Note:
    """One note of a MIDI file, times in ticks of that file."""

    pitch: int
    start: int
    end: int
    velocity: int
    channel: int


@dataclass
class Score:
    """What a MIDI file holds, in its own ticks: notes, tempo map, meter map.

    ``tempos`` is a list of ``(tick, microseconds_per_beat)`` and ``meters`` of
    ``(tick, numerator, denominator)``, each starting at tick 0.
    """

    ticks_per_beat: int
    notes: list[Note]
    tempos: list[tuple[int, int]]
    meters: list[tuple[int, int, int]]
    drum_notes: int = 0
    unterminated_notes: int = 0
    ignored_meta: int = 0               # tempo 0, or a meter of 0 beats: no bar can follow them
    name: str = "<MIDI data>"


def read_midi(path: str | Path | mido.MidiFile, sustain: bool = False) -> Score:
    """Read a MIDI file (type 0, 1 or 2) into notes with tick times.

    All tracks and channels are merged except drums (channel 10), which are
    counted. A note-on with velocity 0 ends a note. Same-pitch notes on one
    channel are paired first-in first-out. With ``sustain``, a note released
    while the sustain pedal (CC64 >= 64) is down on its channel sounds until the
    pedal is lifted or the key is struck again.

    Raises:
        MidiFileError: the file is missing, empty, not MIDI, damaged, or has no notes.
    """
    if isinstance(path, mido.MidiFile):
        mid, path = path, Path(path.filename or "<MIDI data>")
    else:
        mid, path = open_midi(Path(path)), Path(path)
    if mid.ticks_per_beat < 0:
        raise MidiFileError(f"{path} uses SMPTE time division, which livecomp does not read.")
    if mid.ticks_per_beat == 0:
        raise MidiFileError(f"{path} says a beat has 0 ticks: its header is damaged.")

    events = []  # (tick, track, index, message): a stable order across tracks
    for track_no, track in enumerate(mid.tracks):
        tick = 0
        for index, msg in enumerate(track):
            tick += msg.time
            events.append((tick, track_no, index, msg))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    last_tick = events[-1][0] if events else 0

    tempos: dict[int, int] = {}
    meters: dict[int, tuple[int, int]] = {}
    notes: list[Note] = []
    sounding: dict[tuple[int, int], list[tuple[int, int]]] = {}   # (channel, pitch) -> [(start, velocity)]
    pedal_held: dict[tuple[int, int], list[tuple[int, int]]] = {}  # released under the pedal
    pedal_down: set[int] = set()
    drum_notes = ignored_meta = 0

    def finish(channel: int, pitch: int, start: int, velocity: int, end: int) -> None:
        notes.append(Note(pitch, start, end, velocity, channel))

    for tick, _, _, msg in events:
        kind = msg.type
        if kind in ("set_tempo", "time_signature") and not usable(msg):
            ignored_meta += 1
        elif kind == "set_tempo":
            tempos[tick] = msg.tempo
        elif kind == "time_signature":
            meters[tick] = (msg.numerator, msg.denominator)
        elif kind in ("note_on", "note_off"):
            key = (msg.channel, msg.note)
            if msg.channel == DRUM_CHANNEL:
                drum_notes += kind == "note_on" and msg.velocity > 0
                continue
            if kind == "note_on" and msg.velocity > 0:
                for start, vel in pedal_held.pop(key, []):
                    finish(*key, start, vel, tick)
                sounding.setdefault(key, []).append((tick, msg.velocity))
            elif sounding.get(key):
                start, vel = sounding[key].pop(0)
                if msg.channel in pedal_down:
                    pedal_held.setdefault(key, []).append((start, vel))
                else:
                    finish(*key, start, vel, tick)
        elif kind == "control_change" and msg.control == midi.SUSTAIN and sustain:
            if msg.value >= 64:
                pedal_down.add(msg.channel)
            else:
                pedal_down.discard(msg.channel)
                for key in [k for k in pedal_held if k[0] == msg.channel]:
                    for start, vel in pedal_held.pop(key):
                        finish(*key, start, vel, tick)

    unterminated = sum(len(held) for held in sounding.values())  # never released: end at the file's end
    for held_notes in (sounding, pedal_held):
        for key, held in held_notes.items():
            for start, vel in held:
                finish(*key, start, vel, max(last_tick, start))
    if not notes:
        raise MidiFileError(f"{path} has no notes" + (" outside the drum channel." if drum_notes else "."))
    notes.sort(key=lambda n: (n.start, n.pitch, n.end))
    return Score(
        ticks_per_beat=mid.ticks_per_beat,
        notes=notes,
        tempos=_map_from_zero(tempos, DEFAULT_TEMPO_US),
        meters=[(t, n, d) for t, (n, d) in _map_from_zero(meters, (4, 4))],
        drum_notes=drum_notes,
        unterminated_notes=unterminated,
        ignored_meta=ignored_meta,
        name=str(path),
    )


def usable(msg: mido.MetaMessage) -> bool:
    """Whether a tempo or time signature event is one music can have (not tempo 0, not a bar of
    0 beats or of a 128th-note beat and shorter): the readers ignore the others."""
    if msg.type == "set_tempo":
        return msg.tempo > 0
    return msg.numerator > 0 and 0 < msg.denominator <= 64


def open_midi(path: Path) -> mido.MidiFile:
    """The file at ``path``, or ``MidiFileError`` saying why it cannot be read."""
    try:
        if path.stat().st_size == 0:
            raise MidiFileError(f"{path} is empty.")
        return mido.MidiFile(path)
    except MidiFileError:
        raise
    except FileNotFoundError:
        raise MidiFileError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise MidiFileError(f"{path} is a folder, not a MIDI file.") from None
    except EOFError:
        raise MidiFileError(f"{path} is truncated: the file ends inside a MIDI track.") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise MidiFileError(f"{path} is not a readable MIDI file ({exc}).") from None


def _map_from_zero(changes: dict, default) -> list:
    """Sorted (tick, value) changes starting at tick 0, repeats of the same value dropped."""
    out = [(0, changes.get(0, default))]
    for tick in sorted(changes):
        if tick > 0 and changes[tick] != out[-1][1]:
            out.append((tick, changes[tick]))
    return out
