"""MIDI <-> piano roll: the representation every other part of livecomp stands on."""

from __future__ import annotations

import io
from fractions import Fraction

import mido
import numpy as np
import pytest

from livecomp.music.notes import MidiFileError, read_midi
from livecomp.music.roll import HELD, LOW_KEY, OFF, STRUCK, PianoRoll, midi_to_roll, roll_to_midi

from conftest import NOTTINGHAM, bad_midi_files, make_midi, note


def reread(mid: mido.MidiFile) -> mido.MidiFile:
    buf = io.BytesIO()
    mid.save(file=buf)
    buf.seek(0)
    return mido.MidiFile(file=buf)


def heard_notes(score) -> list[tuple[int, Fraction, Fraction]]:
    """Notes as one keyboard sounds them, in beats: exact duplicates are one note, and a
    note still sounding when its key is struck again ends at that attack."""
    by_pitch: dict[int, list[tuple[Fraction, Fraction]]] = {}
    for n in sorted(set((n.pitch, n.start, n.end) for n in score.notes)):
        by_pitch.setdefault(n[0], []).append((Fraction(n[1], score.ticks_per_beat),
                                              Fraction(n[2], score.ticks_per_beat)))
    out = []
    for pitch, spans in by_pitch.items():
        for (start, end), nxt in zip(spans, spans[1:] + [None]):
            out.append((pitch, start, min(end, nxt[0]) if nxt and nxt[0] > start else end))
    return sorted(out)


@pytest.fixture(scope="module")
def scores(midi_files):
    return {f: read_midi(f) for f in midi_files}


def test_every_shared_file_round_trips_note_for_note_at_24_steps_per_beat(scores):
    assert len(scores) == 1039
    differing, cut, duplicates = 0, 0, 0
    for path, score in scores.items():
        roll = midi_to_roll(score, steps_per_beat=24)
        back = read_midi(reread(roll_to_midi(roll)))
        want, got = heard_notes(score), heard_notes(back)
        # One tick of the source file is the most a note can sit off the 24-step grid
        # (triplets at 1024 ticks per beat are written at 341 or 342 ticks).
        tolerance = Fraction(1, score.ticks_per_beat)
        if len(want) != len(got):
            differing += abs(len(want) - len(got))
        for (p1, s1, e1), (p2, s2, e2) in zip(want, got):
            if p1 != p2 or abs(s1 - s2) > tolerance or abs(e1 - e2) > tolerance:
                differing += 1
        cut += roll.report.overlapped
        duplicates += roll.report.merged
        assert roll.report.moved == 0 and roll.report.resized == 0, path
    assert differing == 0
    # What a keyboard cannot hold is counted, not hidden: 27 notes overlap a re-strike of
    # their own key (26 in the Joplin sample), 4 are exact duplicates.
    assert (cut, duplicates) == (27, 4)


def test_no_note_is_dropped_silently_at_16th_notes(scores):
    files_moved, moved = 0, 0
    for path, score in scores.items():
        roll = midi_to_roll(score, steps_per_beat=4)
        r = roll.report
        assert roll.onsets().sum() + r.merged + r.out_of_range == r.notes, path
        if path.parent == NOTTINGHAM:
            files_moved += r.moved > 0
            moved += r.moved
    # Nottingham's triplets cannot sit on a 16th grid: every moved onset is counted.
    assert files_moved == 139
    assert moved == 1764


def test_repeated_notes_of_one_pitch_stay_separate(tmp_path):
    events = [e for i in range(4) for e in note(60, i * 480, (i + 1) * 480)]
    roll = midi_to_roll(make_midi(tmp_path / "repeat.mid", events), steps_per_beat=4)
    column = roll.frames[:, 60 - LOW_KEY]
    assert list(column) == [STRUCK, HELD, HELD, HELD] * 4
    back = read_midi(reread(roll_to_midi(roll)))
    assert [(n.start, n.end) for n in back.notes] == [(i * 480, (i + 1) * 480) for i in range(4)]


def test_type_0_and_any_ticks_per_beat_give_the_same_roll():
    src = mido.MidiFile(NOTTINGHAM / "ashover1.mid")
    type0 = mido.MidiFile(type=0, ticks_per_beat=src.ticks_per_beat)
    type0.tracks.append(mido.merge_tracks(src.tracks))
    rescaled = mido.MidiFile(type=1, ticks_per_beat=src.ticks_per_beat * 3)
    for track in src.tracks:
        rescaled.tracks.append(mido.MidiTrack(m.copy(time=m.time * 3) for m in track))
    want = midi_to_roll(src, 4).frames
    assert np.array_equal(midi_to_roll(type0, 4).frames, want)
    assert np.array_equal(midi_to_roll(rescaled, 4).frames, want)


def test_tempo_and_meter_changes_set_bar_lines_and_seconds(tmp_path):
    events = [(0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
              (0, mido.MetaMessage("set_tempo", tempo=500_000)),          # 120 bpm
              (4 * 480, mido.MetaMessage("time_signature", numerator=3, denominator=4)),
              (4 * 480, mido.MetaMessage("set_tempo", tempo=1_000_000)),  # 60 bpm
              (10 * 480, mido.MetaMessage("time_signature", numerator=6, denominator=8))]
    events += note(60, 0, 13 * 480)
    roll = midi_to_roll(make_midi(tmp_path / "maps.mid", events), steps_per_beat=4)
    assert roll.meters == [(0, 4, 4), (16, 3, 4), (40, 6, 8)]
    assert roll.bar_starts() == [0, 16, 28, 40]
    assert roll.steps_per_bar(40) == 12
    assert roll.seconds() == pytest.approx(4 * 0.5 + 9 * 1.0)
    back = midi_to_roll(reread(roll_to_midi(roll)), steps_per_beat=4)
    assert (back.tempos, back.meters) == (roll.tempos, roll.meters)


def test_tracks_and_channels_merge_and_drums_are_left_out(tmp_path):
    events = note(60, 0, 480, channel=0) + note(64, 0, 480, channel=3) + note(36, 0, 240, channel=9)
    roll = midi_to_roll(make_midi(tmp_path / "mixed.mid", events), steps_per_beat=4)
    assert sorted(np.flatnonzero(roll.frames[0]) + LOW_KEY) == [60, 64]
    assert roll.report.drum_notes == 1


def test_note_on_with_velocity_zero_ends_a_note(tmp_path):
    events = [(0, mido.Message("note_on", note=60, velocity=90)),
              (480, mido.Message("note_on", note=60, velocity=0))]
    roll = midi_to_roll(make_midi(tmp_path / "vel0.mid", events + note(62, 0, 960)), steps_per_beat=4)
    assert roll.frames[:, 60 - LOW_KEY].tolist() == [STRUCK, HELD, HELD, HELD] + [OFF] * 4


def test_sustain_pedal_holds_released_keys_until_it_lifts(tmp_path):
    events = [(0, mido.Message("control_change", control=64, value=127)),
              (960, mido.Message("control_change", control=64, value=0))]
    events += note(60, 0, 240) + note(64, 480, 600)
    path = make_midi(tmp_path / "pedal.mid", events)
    pedalled = midi_to_roll(path, steps_per_beat=4, sustain=True)
    dry = midi_to_roll(path, steps_per_beat=4, sustain=False)
    assert (pedalled.frames[:, 60 - LOW_KEY] > OFF).sum() == 8   # until the pedal lifts at beat 2
    assert (dry.frames[:, 60 - LOW_KEY] > OFF).sum() == 2


def test_notes_outside_the_piano_are_counted_not_kept(tmp_path):
    events = note(12, 0, 480) + note(120, 0, 480) + note(60, 0, 480)
    roll = midi_to_roll(make_midi(tmp_path / "range.mid", events), steps_per_beat=4)
    assert roll.report.out_of_range == 2
    assert roll.onsets().sum() == 1


def test_two_state_and_three_state_forms_agree_on_what_sounds():
    roll = midi_to_roll(NOTTINGHAM / "jigs311.mid", steps_per_beat=4)
    two, three = roll.to_states(2), roll.to_states(3)
    assert set(np.unique(two)) <= {0, 1} and set(np.unique(three)) <= {0, 1, 2}
    assert np.array_equal(two, (three > OFF).astype(np.uint8))
    rebuilt = PianoRoll(two, 4)
    assert np.array_equal(rebuilt.onsets(), (two == 1) & np.vstack([np.zeros((1, 88), bool), two[:-1] == 0]))


@pytest.mark.parametrize("kind", ["truncated", "text", "empty", "no_notes"])
def test_bad_files_raise_one_clear_error(tmp_path, kind):
    path = bad_midi_files(tmp_path)[kind]
    with pytest.raises(MidiFileError) as err:
        midi_to_roll(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message


def test_a_saved_picture_names_its_octaves_numbers_its_bars_and_tells_the_parts_apart(tmp_path):
    """Middle C's label sits at middle C's row, bar numbers at their bar lines, and the legend
    shows each part's colour beside its name."""
    from PIL import Image

    from livecomp.music.image import BOTTOM, LEFT, SECOND_PART, STRUCK_COLOUR, TEXT, TOP, save_roll_png

    frames = np.zeros((64, 88), np.uint8)
    frames[0, 60 - LOW_KEY] = STRUCK
    answer = np.zeros((64, 88), np.uint8)
    answer[32, 72 - LOW_KEY] = STRUCK
    save_roll_png(tmp_path / "p.png", PianoRoll(frames, 4), second=PianoRoll(answer, 4),
                  names=("musician", "livecomp"))
    img = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    assert img.shape == (TOP + 88 * 4 + BOTTOM, LEFT + 64 * 4, 3)
    text = (img == TEXT).all(-1)
    c4_row = TOP + (108 - 60) * 4 + 2                                       # middle C's row, from the top
    assert text[c4_row - 4:c4_row + 5, :LEFT].any() and not text[c4_row + 8:c4_row + 16, :LEFT].any()
    for bar in range(4):                                                    # "1" to "4" at their lines
        x = LEFT + bar * 16 * 4
        assert text[:TOP, x:x + 12].any()
    legend = img[TOP + 88 * 4:]
    assert (legend == STRUCK_COLOUR).all(-1).any() and (legend == SECOND_PART[1]).all(-1).any()
    assert (legend == TEXT).all(-1).sum() > 100                             # the two names


def test_a_picture_of_two_parts_draws_bar_lines_under_the_longer(monkeypatch):
    """`duet --png`: livecomp's part runs past the musician's; its bars get their lines too."""
    import numpy as np

    import livecomp.music.image as image
    from livecomp.music.roll import PianoRoll

    drawn = {}
    monkeypatch.setattr(image, "write_png", lambda path, img: drawn.setdefault("img", img))
    short = PianoRoll(np.zeros((32, 88), np.uint8))                     # 2 bars of 4/4 16ths
    long = PianoRoll(np.zeros((64, 88), np.uint8))                      # 4 bars
    image.save_roll_png("x.png", short, second=long)
    img = drawn["img"]
    for bar in (2, 3):                                                  # the lines of bars 3 and 4
        column = img[:, image.LEFT + bar * 16 * 4]
        assert (column == image.BAR_LINE).all(-1).any(), bar
