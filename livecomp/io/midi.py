"""MIDI as livecomp speaks it: named status bytes and controllers, the few messages it builds,
and MIDI tracks made from timed messages (a recording, a duet, a piano roll written out).

Messages travel as lists of raw bytes, as python-rtmidi gives and takes them.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import mido

from ..files import save_midi

NOTE_OFF, NOTE_ON, CONTROL, PROGRAM = 0x80, 0x90, 0xB0, 0xC0      # channel messages (| channel)
SYSEX, SONG_POSITION, SYSEX_END = 0xF0, 0xF2, 0xF7               # system messages
CLOCK, START, CONTINUE, STOP, ACTIVE_SENSING = 0xF8, 0xFA, 0xFB, 0xFC, 0xFE
SUSTAIN, ALL_SOUND_OFF, ALL_NOTES_OFF = 64, 120, 123              # controllers
DRUMS = 9                                                          # General MIDI's drum channel (10)


def kind(message: list[int]) -> int:
    """The status without its channel (NOTE_ON, CONTROL, ...); system messages are >= SYSEX."""
    return message[0] & 0xF0 if message else 0


def channel(message: list[int]) -> int:
    """The channel (0-15) of a channel message."""
    return message[0] & 0x0F


def is_system(message: list[int]) -> bool:
    return bool(message) and message[0] >= SYSEX


def well_formed(message: list[int]) -> bool:
    """Whether a message is one MIDI can carry: a system message, or a channel message of its
    length whose data bytes are below 128 (``B0 40 C8``, a pedal "at 200", is not)."""
    if not message or not 0x80 <= message[0] <= 0xFF:
        return False
    if is_system(message):
        return True
    size = 2 if kind(message) in (PROGRAM, 0xD0) else 3
    return len(message) == size and all(0 <= b < 0x80 for b in message[1:])


def is_note_on(message: list[int]) -> bool:
    """A note-on with a velocity (velocity 0 is a note-off)."""
    return kind(message) == NOTE_ON and len(message) > 2 and message[2] > 0


def is_note(message: list[int]) -> bool:
    """A note-on or note-off (of either spelling)."""
    return kind(message) in (NOTE_ON, NOTE_OFF) and len(message) > 2


def is_control(message: list[int], number: int | None = None) -> bool:
    return kind(message) == CONTROL and len(message) > 2 and (number is None or message[1] == number)


def is_program(message: list[int]) -> bool:
    """A program change (a patch chosen on the keyboard)."""
    return kind(message) == PROGRAM and len(message) > 1


def note_on(channel: int, pitch: int, velocity: int) -> list[int]:
    return [NOTE_ON | channel, pitch, velocity]


def note_off(channel: int, pitch: int) -> list[int]:
    return [NOTE_OFF | channel, pitch, 0]


def control(channel: int, number: int, value: int) -> list[int]:
    return [CONTROL | channel, number, value]


def silence(channel: int) -> list[list[int]]:
    """What ends everything on a channel once each started note has had its note-off: All Sound
    Off, All Notes Off, and the sustain pedal up."""
    return [control(channel, ALL_SOUND_OFF, 0), control(channel, ALL_NOTES_OFF, 0), control(channel, SUSTAIN, 0)]


def song_position(sixteenths: int) -> list[int]:
    return [SONG_POSITION, sixteenths & 0x7F, sixteenths >> 7]


def track(timed: list[tuple[int, mido.Message | mido.MetaMessage]], name: str | None = None) -> mido.MidiTrack:
    """A track from (absolute tick, message) pairs, in the order given where ticks tie (sort
    them first if their order matters)."""
    out = mido.MidiTrack([mido.MetaMessage("track_name", name=name)] if name is not None else [])
    now = 0
    for tick, message in timed:
        tick = max(tick, now)
        out.append(message.copy(time=tick - now))
        now = tick
    return out


def ended(timed: list[tuple[float, list[int]]], end: float) -> list[tuple[float, list[int]]]:
    """Timed raw messages with a note-off at ``end`` for each note still sounding after them
    (as many as were struck and not ended, per channel and pitch) and the sustain pedal raised
    on each channel that left it down: a take cut off mid-chord is still a performance."""
    sounding: dict[tuple[int, int], int] = {}
    pedal: set[int] = set()
    for _, raw in timed:
        if len(raw) < 3 or any(not 0 <= b < 128 for b in raw[1:3]):
            continue                                            # not a note a file can hold: left out there too
        if is_note(raw):
            key = (channel(raw), raw[1])
            if is_note_on(raw):
                sounding[key] = sounding.get(key, 0) + 1
            elif sounding.get(key):
                sounding[key] -= 1
        elif is_control(raw, SUSTAIN):
            (pedal.add if raw[2] >= 64 else pedal.discard)(channel(raw))
        elif is_control(raw, ALL_NOTES_OFF) or is_control(raw, ALL_SOUND_OFF):
            for key in [k for k in sounding if k[0] == channel(raw)]:
                del sounding[key]
    closing = [(end, note_off(c, p)) for (c, p), n in sorted(sounding.items()) for _ in range(n)]
    closing += [(end, control(c, SUSTAIN, 0)) for c in sorted(pedal)]
    return list(timed) + closing


JOURNAL_SUFFIX = ".part"           # beside a recording while it is taken: what a session that died leaves
JOURNAL_EVERY_S = 0.5              # how often the messages kept are appended to it


def journal_of(path: Path) -> Path:
    """The journal a recording to ``path`` is taken into until the session stops."""
    return path.with_name(path.name + JOURNAL_SUFFIX)


class Recorder:
    """What was heard and what was played, with their times: written as a two-part MIDI file
    (``--record``). Clock and system messages are not kept.

    With a ``journal`` file the take goes to disk as it is played: every ``JOURNAL_EVERY_S`` a
    thread appends the messages kept since (one line each: part, seconds, hex bytes; a "g" line
    whenever the grid's origin or tempo is set, an "x" line where what was handed to the port
    ahead of its time was taken back), so memory stays flat however long the night,
    and a session killed mid-take leaves the journal, which ``recover`` turns into a MIDI file.
    ``save`` reads it back, and removes it only once the MIDI file is written."""

    def __init__(self, journal: Path | None = None):
        self.heard: list[tuple[float, list[int]]] = []
        self.played: list[tuple[float, list[int]]] = []
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self.journal = journal
        self._file = None
        self._stop = threading.Event()
        self._thread = None
        if journal is not None:
            self._file = open(journal, "x", encoding="ascii")          # a journal left there is recovered first
            self._thread = threading.Thread(target=self._writer, name="livecomp-journal", daemon=True)
            self._thread.start()

    @classmethod
    def beside(cls, take: Path, log) -> "Recorder":
        """A recording for the take ``take``, journalled beside it as it is played (a journal a
        session that died left there is recovered first, ``recover``); kept in memory only where
        no journal can be opened (said with ``log``)."""
        journal = journal_of(take)
        if journal.exists():
            recover(journal, log)
        try:
            return cls(journal)
        except OSError as exc:
            log(f"cannot keep a journal of the recording in {journal} ({exc.strerror or exc}); "
                f"the take is kept in memory until the end")
            return cls()

    def dropping(self, drop, now):
        """A port's ``drop`` (what was handed over ahead of its time and has not left is taken
        back: panic, mute, the way out) that also tells the recording those never sounded."""
        def dropped() -> None:
            drop()
            self.taken_back(now())
        return dropped

    def add(self, part: str, t: float, message: list[int]) -> None:
        if not message or is_system(message):
            return
        with self._lock:
            if self._file is not None:
                self._lines.append(f"{part[0]} {t:.6f} {bytes(message).hex()}\n")
            else:
                (self.heard if part == "heard" else self.played).append((t, list(message)))

    def grid(self, origin: float | None, bpm: float) -> None:
        """The grid bar 1 starts on (seconds) and its tempo: kept in the journal, for the bar
        lines of a take recovered from it (``save`` is told them)."""
        with self._lock:
            if self._file is not None:
                self._lines.append(f"g {origin if origin is not None else 'none'} {bpm:.6f}\n")

    def taken_back(self, t: float) -> None:
        """What was played after ``t`` was handed to a port ahead of its time and taken back
        before it left (a panic, the way out): it never sounded, so the take leaves it out."""
        with self._lock:
            if self._file is not None:
                self._lines.append(f"x {t:.6f}\n")
            else:
                self.played = [(when, m) for when, m in self.played if when <= t]

    def _writer(self) -> None:
        while not self._stop.wait(JOURNAL_EVERY_S):
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines and self._file is not None:
            try:
                self._file.write("".join(lines))
                self._file.flush()
            except (OSError, ValueError):        # the disk filled: keep them in memory for save
                with self._lock:
                    self._lines[:0] = lines

    def _close_journal(self) -> None:
        """Stop the writer and bring everything kept into memory: the journal, then what was
        not written to it."""
        if self._file is None:
            return
        self._stop.set()
        self._thread.join()
        self._flush()
        with self._lock:
            file, self._file = self._file, None
            pending, self._lines = self._lines, []
        file.close()
        try:
            heard, played, _ = read_journal(self.journal, pending)
        except OSError:                          # the journal went: what was not yet written is all there is
            heard, played, _ = read_journal_lines(pending)
            self.journal = None
        with self._lock:
            self.heard[:0], self.played[:0] = heard, played

    def save(self, path: Path, bpm: float, origin: float | None, end: float | None = None) -> None:
        """Write both parts; a note still held (or a pedal still down) when the session stopped
        ends at ``end`` (default: the last message kept), so every note of the take ends. The
        journal, if any, goes once the file is written."""
        self._close_journal()
        tpb = 480
        with self._lock:
            parts = (("musician", list(self.heard)), ("livecomp", list(self.played)))
        times = [t for _, p in parts for t, _ in p]
        zero = origin if origin is not None else min(times, default=0.0)
        end = max(times + ([end] if end is not None else []), default=0.0)
        mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
        mid.tracks.append(track([(0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))], "tempo"))
        for name, part in parts:
            timed = []
            for t, raw in ended(sorted(part, key=lambda e: e[0]), end):
                try:
                    timed.append((max(int(round((t - zero) * tpb * bpm / 60.0)), 0), mido.Message.from_bytes(raw)))
                except ValueError:
                    continue
            mid.tracks.append(track(timed, name))
        save_midi(path, mid)
        if self.journal is not None:
            self.journal.unlink(missing_ok=True)

    def save_somewhere(self, wanted: Path, bpm: float, origin: float | None,
                       log: Callable[[str], None], end: float | None = None) -> Path | None:
        """Write the recording to ``wanted``; where that fails (the disk filled, the folder went),
        to the temporary folder or the home folder instead, and ``log`` says where. Returns the
        file written, None only when no place would take it."""
        stamp = f"livecomp-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.mid"
        first_error = None
        for path in (wanted, Path(tempfile.gettempdir()) / stamp, Path.home() / stamp):
            try:
                self.save(path, bpm, origin, end)
            except OSError as exc:
                first_error = first_error or exc
                continue
            if path != wanted:
                log(f"cannot write the recording to {wanted} ({first_error.strerror or first_error}); "
                    f"it is kept in {path}")
            return path
        kept = f"it stays in {self.journal}" if self.journal is not None and self.journal.exists() else "it is lost"
        log(f"cannot write the recording to {wanted} ({first_error.strerror or first_error}), nor to the "
            f"temporary or home folder: {kept}")
        return None


def read_journal(path: Path, more: list[str] = ()) -> tuple[list, list, tuple[float | None, float]]:
    """A recording's journal (``Recorder``): (heard, played, (origin, bpm) last set). A line cut
    short or damaged (the session killed while writing it) is skipped."""
    with open(path, encoding="ascii", errors="replace") as f:
        return read_journal_lines(list(f) + list(more))


def read_journal_lines(lines: list[str]) -> tuple[list, list, tuple[float | None, float]]:
    """``read_journal`` of lines already read."""
    heard, played, grid_at = [], [], (None, 120.0)
    for line in lines:
        fields = line.split()
        try:
            if len(fields) == 3 and fields[0] in "hp" and line.endswith("\n"):
                (heard if fields[0] == "h" else played).append((float(fields[1]), list(bytes.fromhex(fields[2]))))
            elif len(fields) == 2 and fields[0] == "x" and line.endswith("\n"):
                t = float(fields[1])
                played = [(when, m) for when, m in played if when <= t]
            elif len(fields) == 3 and fields[0] == "g" and line.endswith("\n"):
                bpm = float(fields[2])
                if 0 < bpm < 10000:
                    grid_at = (None if fields[1] == "none" else float(fields[1]), bpm)
        except ValueError:
            continue
    return heard, played, grid_at


def recover(journal: Path, log: Callable[[str], None]) -> Path | None:
    """Turn the journal a session left when it died into a MIDI file beside it,
    ``<name>-recovered-<time>.mid``, and remove the journal; returns the file (None where the
    journal held nothing, or could not be turned into one: then it stays)."""
    try:
        heard, played, (origin, bpm) = read_journal(journal)
    except OSError as exc:
        log(f"cannot read {journal}, left by a session that stopped without saving ({exc.strerror or exc})")
        return None
    if not heard and not played:
        journal.unlink(missing_ok=True)
        return None
    stem = journal.name[:-len(JOURNAL_SUFFIX)]
    stem = stem[:-4] if stem.lower().endswith(".mid") else stem
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(journal.stat().st_mtime))
    out = journal.with_name(f"{stem}-recovered-{stamp}.mid")
    taken = Recorder()
    taken.heard, taken.played = heard, played
    try:
        taken.save(out, bpm, origin)
    except OSError as exc:
        log(f"cannot write {out} from {journal}, left by a session that stopped without saving "
            f"({exc.strerror or exc}); the journal stays")
        return None
    journal.unlink(missing_ok=True)
    log(f"a session that stopped without saving left {journal.name}: its recording is in {out}")
    return out
