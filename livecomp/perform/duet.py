"""The offline twin of ``livecomp listen``: the live loop itself on a MIDI file, on simulated time
(``Rehearsal``: as fast as the model runs, the same output for the same seed).

The file's first tempo and time signature set the grid (step 0 at the file's start, so its bar
lines are the performance's); each message is placed on its nearest step, and step n is
decided when its window closes, by the code that does it live. After the file ends the clock
runs on until the last call has been answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import mido

from ..io.midi import is_note, is_note_on, track
from ..model.engine import Engine
from ..music.frames import Event
from ..music.notes import DEFAULT_TEMPO_US, MidiFileError, open_midi, usable
from ..music.roll import LOW_KEY, MAX_STEPS, N_KEYS
from ..timing.grid import Grid
from ..timing.timeline import Rehearsal
from .performer import PerformerConfig

OUTPUT_TICKS_PER_BEAT = 480


def read_performance(path: str | Path | mido.MidiFile) -> tuple[list[tuple[float, mido.Message]], int, tuple[int, int],
                                                                  list[tuple[float, mido.MetaMessage]], list[str]]:
    """A file (a path, or a file already in memory) as the performer hears it: (messages with
    their time in seconds, first tempo in us per beat, first meter, the time signatures with
    their times, what the user should be told: a later change of meter or tempo, which the grid
    does not follow). Tempo and meter events no music can have are ignored, as ``read_midi`` does.

    Raises:
        MidiFileError: the file cannot be read, or has no note on the piano to answer."""
    mid = path if isinstance(path, mido.MidiFile) else open_midi(Path(path))
    path = getattr(mid, "filename", None) or path
    if mid.ticks_per_beat < 0:
        raise MidiFileError(f"{path} uses SMPTE time division, which livecomp does not read.")
    if mid.ticks_per_beat == 0:
        raise MidiFileError(f"{path} says a beat has 0 ticks: its header is damaged.")
    events = []                                         # (tick, track, index, message): every type of file,
    for track_no, messages in enumerate(mid.tracks):    # in read_midi's order
        tick = 0
        for index, msg in enumerate(messages):
            tick += msg.time
            events.append((tick, track_no, index, msg))
    events.sort(key=lambda e: e[:3])
    last_tick = events[-1][0] if events else 0
    if last_tick > MAX_STEPS // 4 * mid.ticks_per_beat:
        raise MidiFileError(f"{path} lasts {last_tick / mid.ticks_per_beat:,.0f} beats, more than "
                            f"{MAX_STEPS // 4:,}: its timing is damaged.")
    tempo, meter = None, None
    timed, meters, now, at, us = [], [], 0.0, 0, DEFAULT_TEMPO_US
    later_meters, later_tempos = [], []
    for tick, _, _, msg in events:                      # ticks into seconds with the usable tempos only
        now += (tick - at) * us / 1e6 / mid.ticks_per_beat
        at = tick
        if msg.type in ("set_tempo", "time_signature") and not usable(msg):
            continue
        if msg.type == "set_tempo":
            us = msg.tempo
            if tempo is None:
                tempo = msg.tempo
            elif msg.tempo != tempo and now > 0:
                later_tempos.append(now)
        elif msg.type == "time_signature":
            if meter is None:
                meter = (msg.numerator, msg.denominator)
            elif (msg.numerator, msg.denominator) != meter and now > 0:
                later_meters.append((now, f"{msg.numerator}/{msg.denominator}"))
            meters.append((now, msg))
        elif not msg.is_meta and msg.type in ("note_on", "note_off", "control_change") and \
                getattr(msg, "channel", 0) != 9:
            timed.append((now, msg))
    onsets = [m for _, m in timed if m.type == "note_on" and m.velocity > 0]
    if not onsets:
        raise MidiFileError(f"{path} has no notes to answer.")
    if not any(LOW_KEY <= m.note < LOW_KEY + N_KEYS for m in onsets):
        raise MidiFileError(f"{path}: all {len(onsets)} of its notes lie outside the piano's range A0..C8.")
    meter = meter or (4, 4)
    told = []
    if later_meters:
        t, name = later_meters[0]
        told.append(f"the meter changes at {t:.1f} s (to {name}); livecomp's grid keeps the first, "
                    f"{meter[0]}/{meter[1]}, throughout")
    if later_tempos:
        told.append(f"the tempo changes at {later_tempos[0]:.1f} s; livecomp's grid keeps the first, "
                    f"{mido.tempo2bpm(tempo):g} bpm, throughout")
    return timed, tempo or DEFAULT_TEMPO_US, meter, meters, told


@dataclass
class Duet:
    """What ``duet`` returns: the MIDI file (tempo track, the musician's part, livecomp's part),
    the events livecomp played, the grid, and the (first step, step after the last) of each
    answer the performer planned."""

    midi: mido.MidiFile
    events: list[Event]
    grid: Grid
    answers: list[tuple[int, int]]
    told: list[str]                     # what the musician should know: a change of meter or tempo not followed
    answered_by: list[str] = field(default_factory=list)   # the model that answered each planned answer


def duet(engine: Engine, path: str | Path | mido.MidiFile, config: PerformerConfig, channel: int = 0,
         end_cc: int | None = None, progress: Callable[[float], None] | None = None) -> Duet:
    """Run the live loop on a file (a path or a file in memory) on simulated time: the same code
    as ``listen``, hearing the file's messages at their times; ``end_cc``, as ``listen``'s
    ``--end-cc``: a controller that ends a call at once (value >= 64). It ends once the file has
    and the last call is answered (``--mode duet``: as the file ends). ``progress`` is told the
    share of the file played, at each step."""
    from .loop import Live, LiveConfig

    if config.follow_style:
        engine.specialists()                       # loaded before the file plays, as listen has them by its first call
    timed, tempo, (num, den), meters, told = read_performance(path)
    beats = num * 4 / den
    if beats != int(beats):
        raise MidiFileError(f"{path} is in {num}/{den}, which is not a whole number of quarter-note beats.")
    rehearsal = Rehearsal([(t, msg.bytes()) for t, msg in timed])
    end_of_file = timed[-1][0]

    def over(n: int) -> bool:
        """Step n begins: has the performance ended? Then everything before n is played."""
        grid, performer = live.grid, live.performer
        if progress is not None:
            progress(min(grid.time_of(n) / end_of_file, 1.0) if end_of_file > 0 else 1.0)
        if grid.time_of(n) <= end_of_file:
            return False
        waited = n - grid.nearest_step(end_of_file)
        done = config.mode == "duet" or not performer.answering and (
            performer.call_start is None or waited > (config.silence_beats + 1) * grid.steps_per_beat)
        if done:
            rehearsal.to(grid.time_of(n))          # the way out ends what still sounds at step n
        return done

    live = Live(engine, config, LiveConfig(bpm=mido.tempo2bpm(tempo), beats_per_bar=int(beats), channel=channel,
                                           end_cc=end_cc, status=False, realtime=False, origin=0.0),
                send=lambda message: None, log=lambda line: None, timeline=rehearsal, until=over)
    live.run()
    grid = live.grid
    events = sorted((Event(grid.nearest_step(t), "on" if is_note_on(m) else "off", m[1], m[2] if is_note_on(m) else 0)
                     for t, m in live.scheduler.sent if is_note(m)),
                    key=lambda e: (e.step, e.kind == "on", e.pitch))
    return Duet(_two_tracks(timed, tempo, (num, den), meters, events, grid, channel), events, grid,
                live.performer.planned, told, live.performer.answered_by)


def _two_tracks(timed, tempo: int, meter: tuple[int, int], meters, events: list[Event], grid: Grid,
                channel: int) -> mido.MidiFile:
    """The duet as a file at the grid's one tempo: every message at its time in seconds, the
    file's meter changes kept where they fall (its tempo changes are in the times already)."""
    tpb = OUTPUT_TICKS_PER_BEAT
    ticks_per_second = tpb * grid.bpm / 60.0
    musician = [(int(round(t * ticks_per_second)), msg.copy(time=0)) for t, msg in timed]
    tick_of_step = tpb // grid.steps_per_beat
    answer = [(e.step * tick_of_step,
               mido.Message("note_on" if e.kind == "on" else "note_off", note=e.pitch,
                            velocity=e.velocity if e.kind == "on" else 0, channel=channel))
              for e in events]
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    head = [(0, mido.MetaMessage("set_tempo", tempo=tempo)),
            (0, mido.MetaMessage("time_signature", numerator=meter[0], denominator=meter[1]))]
    head += [(int(round(t * ticks_per_second)), msg.copy(time=0)) for t, msg in meters if t > 0]
    for name, part in (("tempo", head), ("musician", musician), ("livecomp", answer)):
        mid.tracks.append(track(sorted(part, key=lambda e: e[0]), name))
    return mid


def part(mid: mido.MidiFile, index: int) -> mido.MidiFile:
    """One part of a duet file (1: the musician, 2: livecomp) with the tempo track."""
    single = mido.MidiFile(type=1, ticks_per_beat=mid.ticks_per_beat)
    single.tracks += [mid.tracks[0], mid.tracks[index]]
    return single
