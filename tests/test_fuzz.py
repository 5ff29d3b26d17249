"""The MIDI reader on a few hundred random files, valid and damaged, from a fixed seed: each one
is read into a roll or refused with MidiFileError (one sentence naming the file); nothing else
is raised and nothing hangs. The files are built with mido, then some are damaged byte by byte."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import mido
import pytest

from livecomp.music.notes import MidiFileError
from livecomp.music.roll import midi_to_roll
from livecomp.perform.duet import read_performance

FILES = 300
SECONDS_PER_FILE = 10          # a hang, not a slow read: the largest file here has a few hundred events


def random_midi(rng: random.Random) -> mido.MidiFile:
    """A MIDI file as odd as the format allows: any tempo (0 too), any meter (0 beats too),
    notes anywhere in 0..127 (drums too), hanging notes, empty tracks, any type and division."""
    mid = mido.MidiFile(type=rng.choice([0, 1, 1, 2]), ticks_per_beat=rng.choice([1, 24, 96, 480, 960, 32767]))
    for _ in range(1 if mid.type == 0 else rng.randint(0, 4)):
        track = mido.MidiTrack()
        for _ in range(rng.randint(0, 120)):
            dt = rng.choice([0, 0, 1, rng.randint(0, 2000), rng.randint(0, 10 ** 6)])
            kind = rng.random()
            if kind < 0.05:
                track.append(mido.MetaMessage("set_tempo", tempo=rng.choice([0, 1, 500000, 2 ** 24 - 1]), time=dt))
            elif kind < 0.1:
                track.append(mido.MetaMessage("time_signature", numerator=rng.choice([0, 1, 3, 4, 7, 255]),
                                              denominator=rng.choice([1, 2, 4, 8, 64]), time=dt))
            elif kind < 0.15:
                track.append(mido.Message("control_change", channel=rng.randrange(16), control=64,
                                          value=rng.choice([0, 127]), time=dt))
            else:
                on = rng.random() < 0.55
                track.append(mido.Message("note_on" if on else "note_off", channel=rng.randrange(16),
                                          note=rng.randrange(128), velocity=rng.randrange(128), time=dt))
        mid.tracks.append(track)
    return mid


def damage(data: bytes, rng: random.Random) -> bytes:
    """Flip, cut, repeat or insert bytes: what a bad disk, a partial download or a bug writes."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not data:
            break
        i = rng.randrange(len(data))
        what = rng.random()
        if what < 0.4:
            data[i] = rng.randrange(256)
        elif what < 0.6:
            del data[i:]
        elif what < 0.8:
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            data[i:i] = data[i:i + rng.randint(1, 16)]
    return bytes(data)


def _timeout(signum, frame):
    raise TimeoutError("the MIDI reader hung")


def test_random_and_damaged_midi_files_are_read_or_refused_in_one_sentence(tmp_path: Path):
    rng = random.Random(20261130)
    read = refused = 0
    previous = signal.signal(signal.SIGALRM, _timeout)
    try:
        for n in range(FILES):
            path = tmp_path / f"fuzz-{n}.mid"
            random_midi(rng).save(path)
            if n % 2:
                path.write_bytes(damage(path.read_bytes(), rng))
            signal.alarm(SECONDS_PER_FILE)
            try:
                roll = midi_to_roll(path)
                roll.summary()
                roll.bar_starts()
                read += 1
                read_performance(path)                  # duet's reader takes what roll's does
            except MidiFileError as exc:
                message = str(exc)
                assert str(path) in message and "\n" not in message, message
                refused += 1
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert read > FILES // 5 and refused > FILES // 5, (read, refused)      # both paths were exercised


@pytest.mark.parametrize("numerator,tempo", [(0, 500000), (4, 0), (0, 0)])
def test_a_meter_of_no_beats_or_a_tempo_of_zero_is_ignored_and_counted(tmp_path: Path, numerator, tempo):
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    mid.tracks.append(mido.MidiTrack([
        mido.MetaMessage("time_signature", numerator=numerator, denominator=4),
        mido.MetaMessage("set_tempo", tempo=tempo),
        mido.Message("note_on", note=60, velocity=90), mido.Message("note_off", note=60, time=480 * 8)]))
    mid.save(tmp_path / "odd.mid")
    roll = midi_to_roll(tmp_path / "odd.mid")
    assert roll.report.ignored_meta == (numerator == 0) + (tempo == 0)
    assert roll.meter_at(0)[0] > 0 and roll.tempos[0][1] > 0
    assert len(roll.bar_starts()) == 2                                 # 8 beats of 4/4


def junk(rng: random.Random) -> list[int]:
    """What a broken cable, a cheap interface or a confused program sends: data bytes over 127,
    messages cut short or too long, lone data bytes, SysEx, active sensing, drum notes."""
    status = rng.choice([0x80, 0x90, 0xB0, 0xC0, 0xD0, 0xE0]) | rng.randrange(16)
    return rng.choice([
        [status, rng.randrange(128, 256), rng.randrange(256)],
        [status, rng.randrange(128), rng.randrange(128, 256)],
        [status], [status, rng.randrange(128)] if status < 0xC0 or status >= 0xE0 else [status],
        [rng.randrange(128) for _ in range(rng.randint(0, 3))],
        [0xF0, *(rng.randrange(128) for _ in range(rng.randint(0, 40))), 0xF7],
        [0xFE], [0xF4], [0xFF],
        [0x99, rng.randrange(128), rng.randrange(1, 128)],
    ])


def test_junk_on_the_input_holds_no_call_open_and_raises_nothing():
    """Thirty sessions of the live loop on simulated time, each a bar's arpeggio with 200 junk
    messages strewn through it and after it: each call is answered on bar 3, as without them."""
    from livecomp.io import midi
    from livecomp.model.engine import Engine
    from livecomp.model.folder import shipped_models
    from livecomp.perform.loop import Live, LiveConfig
    from livecomp.perform.performer import PerformerConfig
    from livecomp.timing.timeline import Rehearsal

    if "basic" not in shipped_models():
        pytest.skip("needs the shipped basic model")
    engine = Engine(shipped_models()["basic"], provider="cpu")
    rng = random.Random(20261206)
    step = 60 / 240 / 4
    for trial in range(30):
        call = [(1.0 + 2 * i * step, p) for i, p in enumerate([60, 64, 67, 72, 67, 64, 60, 55])]
        messages = [(t, midi.note_on(0, p, 90)) for t, p in call] + [(t + step, midi.note_off(0, p)) for t, p in call]
        messages += [(1.0 + rng.uniform(-0.1, 48 * step), junk(rng)) for _ in range(200)]
        rehearsal = Rehearsal(sorted(messages, key=lambda m: m[0]))
        loop = Live(engine, PerformerConfig(seed=trial, bars=1, silence_beats=1, candidates=1),
                    LiveConfig(bpm=240.0, status=False, realtime=False, origin=1.0), send=lambda m: None,
                    log=lambda s: None, timeline=rehearsal)
        rehearsal.call_at(1.0 + 64 * step, loop.stopping.set)
        loop.run()
        assert loop.performer.planned[:1] == [(32, 48)], (trial, loop.performer.planned)
