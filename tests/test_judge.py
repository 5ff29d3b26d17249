"""bench/judge.py's parts: the ROC AUC, folds that never split a piece, the statistics of known
music, bench/listening.py's score and bench/texture.py's count of second top notes."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np

from livecomp.music.roll import HELD, LOW_KEY, N_KEYS, OFF, STRUCK

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


judge = _load("judge")
listening = _load("listening")
texture = _load("texture")


def test_roc_auc_is_the_share_of_positive_negative_pairs_ranked_right_ties_half():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(float)                  # many ties
    labels = rng.random(60) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()
    assert math.isclose(judge.roc_auc(scores, labels), pairs / (len(pos) * len(neg)))
    assert judge.roc_auc(np.r_[1.0, 2.0], np.r_[False, True]) == 1.0


def test_the_folds_hold_each_piece_once_and_together():
    pieces = np.repeat(np.arange(23), 3)
    folds = judge.folds_by_piece(pieces, 5, seed=1)
    assert sorted(np.concatenate(folds)) == list(range(len(pieces)))
    for fold in folds:
        others = np.setdiff1d(np.arange(len(pieces)), fold)
        assert not set(pieces[fold]) & set(pieces[others])


def scale_run(bars: int = 2) -> np.ndarray:
    """C major up in 16ths from C4, one bar repeated ``bars`` times, each note struck then held a step."""
    bar = np.zeros((16, 88), np.uint8)
    for i, pitch in enumerate([60, 62, 64, 65, 67, 69, 71, 72]):
        bar[2 * i, pitch - LOW_KEY] = STRUCK
        bar[2 * i + 1, pitch - LOW_KEY] = HELD
    return np.concatenate([bar] * bars)


def test_the_statistics_of_a_repeated_scale_are_those_of_the_definitions():
    s = judge.statistics(scale_run(), steps_per_bar=16, steps_per_beat=4)
    assert s["scale_consistency"] == 1.0
    assert math.isclose(s["pitch_class_entropy"], -(6 * (1 / 8) * math.log2(1 / 8) + (2 / 8) * math.log2(2 / 8)))
    assert s["groove_consistency"] == 1.0 and s["bar_repetition"] == 1.0
    assert s["polyphony"] == 1.0 and s["silent_steps"] == 0.0 and s["empty_beat_rate"] == 0.0
    assert s["pitch_range"] == 12 and s["onsets_per_bar"] == 8
    assert s["top_steps"] == 14 / 15 and s["top_leaps"] == 0.0             # the 12-semitone fall is neither


def test_each_feature_the_classifiers_see_has_its_name():
    frames = scale_run()
    assert len(judge.features(frames, frames, 16, 4)) == len(judge.FEATURES) == len(set(judge.FEATURES))


def test_a_chromatic_cluster_off_the_beat_is_told_by_its_statistics():
    frames = np.zeros((32, 88), np.uint8)
    frames[[3, 7, 19, 23], 60 - LOW_KEY:66 - LOW_KEY] = STRUCK           # 6 adjacent semitones, off the beat
    s = judge.statistics(frames, steps_per_bar=16, steps_per_beat=4)
    assert s["scale_consistency"] < 0.7 and s["polyphony"] == 6 and s["silent_steps"] == 28 / 32
    assert s["bar_repetition"] == 1.0 and s["bass_repeats"] == 1.0


def test_a_note_tied_across_the_cut_is_struck_again_in_the_real_bars_and_the_controls():
    """An answer cannot hold on a note the musician holds: the judged real bars (and the other
    piece's, and the copy) start with every key struck, and only their first step changes."""
    def piece() -> np.ndarray:
        frames = np.zeros((6 * 16 + 40, 88), np.uint8)
        for bar in range(8):
            frames[bar * 16:bar * 16 + 8, 60 - LOW_KEY] = [STRUCK] + [HELD] * 7                 # C4 each bar
            frames[bar * 16:bar * 16 + 16, 48 - LOW_KEY] = [STRUCK] + [HELD] * 15               # C3 held a bar
        frames[2 * 16 - 4:2 * 16 + 8, 52 - LOW_KEY] = [STRUCK] + [HELD] * 11                     # E3 over bar 3's
        frames[4 * 16 - 4:4 * 16 + 8, 55 - LOW_KEY] = [STRUCK] + [HELD] * 11                     # G3 over bar 5's
        return frames

    calls = []
    for key, fresh in ((0, True), (1, True), (2, False)):
        c = {"call": piece()[:64], "real": piece()[64:96], "bar": 16, "frames": piece(), "key": key}
        calls.append(dict(c, fresh=fresh, real=judge.struck_again(c["real"]) if fresh else c["real"]))
    g = 55 - LOW_KEY
    assert calls[0]["real"][0, g] == STRUCK and calls[2]["real"][0, g] == HELD
    assert (calls[0]["real"][1:] == calls[2]["real"][1:]).all() and calls[0]["real"][1:8, g].tolist() == [HELD] * 7
    rng = np.random.default_rng(0)
    starts = [judge.other_bars(calls, 0, rng)[0] for _ in range(16)]     # another piece's bars, from any bar line
    assert not any((s == HELD).any() for s in starts) and any((s == STRUCK).any() for s in starts)
    e = 52 - LOW_KEY                                                      # the call's last 2 bars, replayed
    assert judge.copy_bars(calls[0])[0, e] == STRUCK and judge.copy_bars(calls[2])[0, e] == HELD


def test_a_listener_who_tells_every_pair_is_unlikely_to_be_guessing(tmp_path):
    out = tmp_path / "pack"
    out.mkdir()
    listening.key_path(out).write_text('{"livecomp": {"01": "A", "02": "B", "03": "B", "04": "A"}}')
    (tmp_path / "said.txt").write_text("1 A\n2 b\n3 B\n4 A\n")
    assert listening.score(out, tmp_path / "said.txt") == (4, 4, 1 / 16)
    (tmp_path / "said.txt").write_text("1 B\n2 A\n")
    right, total, p = listening.score(out, tmp_path / "said.txt")
    assert (right, total, p) == (0, 2, 1.0)


def test_the_parts_split_each_step_into_its_top_key_and_what_sounds_under_it():
    """--parts: the melody holds each step's highest sounding key and nothing else; below_melody
    holds the rest; together they are the frames, and a key that comes to the top while held
    from before is struck there, where the melody starts it."""
    frames = np.zeros((4, N_KEYS), np.uint8)
    frames[0, [40, 44, 47, 60]] = STRUCK            # a chord under a melody note
    frames[1, [40, 44, 47]] = HELD                  # the melody rests: the chord's top comes up
    frames[1, 60] = OFF
    frames[2, [40, 44, 47]] = HELD
    frames[2, 62] = STRUCK
    top, rest = judge.melody(frames), judge.below_melody(frames)
    assert [np.flatnonzero(s).tolist() for s in top] == [[60], [47], [62], []]
    assert top[1, 47] == STRUCK and rest[1, 47] == OFF and rest[2, 47] == HELD
    assert rest[0].tolist() == np.where(np.isin(np.arange(N_KEYS), [40, 44, 47]), STRUCK, OFF).tolist()
    assert ((top > OFF) & (rest > OFF)).sum() == 0 and ((top > OFF) | (rest > OFF)).tolist() == (frames > OFF).tolist()


def test_a_second_note_struck_under_the_top_over_held_chords_is_counted_and_a_chord_struck_whole_is_not():
    frames = np.zeros((5, N_KEYS), np.uint8)
    frames[0, [40, 44, 47, 60]] = STRUCK            # chord and melody struck together: not alone
    frames[1, [40, 44, 47]] = HELD
    frames[1, [57, 60]] = [STRUCK, HELD]            # a second note struck under the held melody note
    frames[2, [40, 44, 47]] = HELD
    frames[2, [55, 59]] = STRUCK                    # two melody notes struck at once over the held chord
    frames[3, [40, 44, 47, 62]] = [HELD, STRUCK, STRUCK, STRUCK]  # the chord's upper keys struck again: not alone
    frames[4, 62] = STRUCK                          # one key alone: no second key
    assert texture.second_alone(frames) == 2 / 5
    assert texture.second_alone(frames[None]) == 2 / 5
    n, where = texture.second_where(frames)          # 57 under 60: keys 56-63 are one chunk, 56-59 and 60-63 its groups
    assert n == 2 and where.tolist() == [0.0, 0.5, 0.5]   # 55 under 59: 55 is in the chunk below
    frames[3, 44] = HELD                            # the chord's top key alone struck again under the melody
    assert texture.second_alone(frames) == 3 / 5


def test_a_bar_brought_back_from_the_call_breaks_a_run_copied_from_the_training_data():
    musicality = _load("musicality")
    rng = np.random.default_rng(1)
    bars = [np.zeros((16, N_KEYS), np.uint8) for _ in range(3)]
    for bar in bars:
        bar[rng.choice(16, 4, replace=False), rng.choice(N_KEYS, 4)] = STRUCK
    song = np.concatenate(bars)
    index = musicality.CopyIndex([song], [[0, 16, 32]], 16, 4)
    assert index.longest_copy(song) == 3
    call = musicality.CallStyle.of(np.concatenate([bars[1], np.zeros((16, N_KEYS), np.uint8)]), 16)
    assert index.longest_copy(song, call.bars) == 1            # bar 2 is the musician's: runs of 1 either side
