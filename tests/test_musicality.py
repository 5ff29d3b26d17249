"""What livecomp plays continues the call: the measures of bench/musicality.py, the choice among
candidate bars, the state an answer starts from, and a C-major call answered in C major by the
shipped default model with the options a musician gets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livecomp.model.engine import Engine
from livecomp.model.folder import find_model, shipped_models
from livecomp.music.frames import played_frames
from livecomp.music.musicality import FIT_FLOORS, CallStyle, echo, floors_from_json, floors_to_json, measures
from livecomp.music.roll import HELD, LOW_KEY, N_KEYS, STRUCK, PianoRoll, onsets_of, roll_to_midi
from livecomp.perform.duet import duet
from livecomp.perform.performer import Performer, PerformerConfig

C_MAJOR = {0, 2, 4, 5, 7, 9, 11}


def phrase(notes: list[tuple[int, int, int]], steps: int) -> np.ndarray:
    """Frames (steps, 88) of (start step, length in steps, MIDI pitch) notes."""
    frames = np.zeros((steps, N_KEYS), np.uint8)
    for start, length, pitch in notes:
        frames[start:start + length, pitch - LOW_KEY] = HELD
        frames[start, pitch - LOW_KEY] = STRUCK
    return frames


ARPEGGIO = [(4 * i, 4, p) for i, p in enumerate([60, 64, 67, 72])]      # C4 E4 G4 C5 in quarter notes


def test_a_continuation_equal_to_its_call_scores_full_agreement():
    call = phrase(ARPEGGIO, 16)
    m = measures(call, call, 16)
    assert m["key"] == pytest.approx(1) and m["rhythm"] == pytest.approx(1)
    assert m["density"] == pytest.approx(1) and m["register"] == 0 and m["silent"] == 0
    assert m["echo"] == 1


def test_a_transposed_repeat_is_an_echo_and_a_new_bar_is_not():
    call = phrase(ARPEGGIO, 16)
    up_a_fifth = phrase([(s, n, p + 7) for s, n, p in ARPEGGIO], 16)
    other = phrase([(0, 8, 62), (8, 8, 65)], 16)
    assert echo(up_a_fifth, call, 16) == 1
    assert echo(other, call, 16) == 0
    assert echo(np.zeros((16, N_KEYS), np.uint8), np.zeros((16, N_KEYS), np.uint8), 16) == 0   # silence is no echo


def test_silence_and_density_are_counted_per_bar():
    call = phrase(ARPEGGIO, 16)
    answer = phrase([(0, 2, 60), (2, 2, 62), (4, 2, 64), (6, 2, 65), (8, 2, 67), (10, 2, 69), (12, 2, 71), (14, 2,
                                                                                                            72)], 32)
    m = measures(call, answer, 16)
    assert m["silent"] == 0.5                    # the second bar has no onset
    assert m["density"] == pytest.approx(1.0)    # 8 onsets over 2 bars against 4 in 1
    assert m["key"] == pytest.approx(0.5)        # C E G C against the whole scale


def test_the_call_style_prefers_a_bar_in_the_calls_key_and_never_an_echo():
    call = phrase(ARPEGGIO * 1 + [(16 + s, n, p) for s, n, p in ARPEGGIO], 32)
    style = CallStyle.of(call, 16)
    in_key = phrase([(0, 4, 67), (4, 4, 64), (8, 4, 60), (12, 4, 64)], 16)
    out_of_key = phrase([(0, 4, 66), (4, 4, 63), (8, 4, 61), (12, 4, 70)], 16)
    repeat = phrase([(s, n, p + 2) for s, n, p in ARPEGGIO], 16)
    candidates = np.stack([out_of_key, in_key, repeat])
    fit = style.fit(candidates)
    assert fit[1] > fit[0] and fit[2] == -np.inf
    # equal likelihoods: agreement decides; the echo loses even when it is far more likely
    assert style.choose(candidates, np.array([0.0, 0.0, 50.0]), floors=False) == 1
    assert style.choose(candidates, np.array([0.0, -1.0, 0.0]), weight=0, floors=False) == 0   # likelihood alone
    assert style.choose(candidates, np.array([0.0, 0.0, 50.0])) == 1            # the floors refuse both too
    assert style.choose(np.stack([repeat, in_key]), np.zeros(2)) == 1           # the echo, though sampled first


def test_an_answer_bar_is_the_first_sampled_that_goes_no_further_from_the_call_than_real_music():
    """Rejection sampling: of the candidates in the order sampled, the first within every floor,
    not the one that agrees best; where none is, the best of those that miss the fewest."""
    call = phrase(ARPEGGIO * 1 + [(16 + s, n, p) for s, n, p in ARPEGGIO], 32)
    style = CallStyle.of(call, 16)
    out_of_key = phrase([(0, 4, 66), (4, 4, 63), (8, 4, 61), (12, 4, 70)], 16)
    in_key = phrase([(0, 4, 67), (4, 4, 64), (8, 4, 60), (12, 4, 64)], 16)
    closer = phrase([(0, 4, 64), (4, 4, 67), (8, 4, 72), (12, 4, 67)], 16)
    candidates = np.stack([out_of_key, in_key, closer])
    assert list(style.misses(candidates)) == [2, 0, 0] and style.fit(candidates)[2] > style.fit(candidates)[1]
    assert style.choose(candidates, np.zeros(3)) == 1
    assert style.choose(candidates, np.zeros(3), floors=False) == 2
    sparse = phrase([(0, 16, 60)], 16)                                           # too few notes, too low
    quavers = phrase([(2 * i, 2, p) for i, p in enumerate([60, 64, 67, 72, 71, 67, 62, 59])], 16)   # off the rhythm
    assert list(style.misses(np.stack([sparse, quavers]))) == [4, 3]                # groove counts too
    assert style.choose(np.stack([sparse, quavers, sparse]), np.zeros(3)) == 1


def test_groove_is_the_rhythm_of_the_bar_before_carried_on():
    """The groove term compares a candidate bar's onset positions with the bar just before it:
    the call's last bar with an onset for the answer's first bar (not the call as a whole), the
    answer's own last bar after that; a bar that keeps the figuration is within its floor, one
    that drops it is not."""
    steady = [(4 * i, 4, p) for i, p in enumerate([60, 64, 67, 72])]                     # quarter notes
    quavers = [(16 + 2 * i, 2, p) for i, p in enumerate([60, 64, 67, 72, 67, 64, 60, 55])]   # then quavers
    style = CallStyle.of(phrase(steady + quavers, 32), 16)
    assert style.last_bar.tolist() == [1, 0] * 8
    again = phrase([(2 * i, 2, p) for i, p in enumerate([64, 67, 72, 76, 72, 67, 64, 60])], 16)
    held = phrase([(0, 8, 64), (8, 8, 67)], 16)
    terms = style.terms(np.stack([again, held]))
    assert terms["groove"].tolist() == [1.0, 0.25] and terms["rhythm"][0] < 1.0
    assert style.misses(again[None])[0] == 0 and style.misses(held[None])[0] > 0
    after_held = style.terms(np.stack([again, held]), held)["groove"]                  # the answer's bar before
    assert after_held.tolist() == [0.25, 1.0]


def test_a_models_own_floors_screen_its_answers_and_keep_in_its_model_json():
    """Floors kept in model.json (fit_floors) read back as FIT_FLOORS reads, and a call style
    given them screens by them: a candidate within the default floors misses floors set higher."""
    assert floors_from_json(json.loads(json.dumps(floors_to_json(FIT_FLOORS)))) == FIT_FLOORS
    call = phrase(ARPEGGIO * 1 + [(16 + s, n, p) for s, n, p in ARPEGGIO], 32)
    in_key = phrase([(0, 4, 67), (4, 4, 64), (8, 4, 60), (12, 4, 64)], 16)[None]
    strict = {bars: tuple((u, dict(f, key=0.99)) for u, f in rows) for bars, rows in FIT_FLOORS.items()}
    assert CallStyle.of(call, 16).misses(in_key)[0] == 0 and CallStyle.of(call, 16, 0, strict).misses(in_key)[0] == 1
    with pytest.raises(ValueError, match="null"):
        floors_from_json({"1": [[0.9, FIT_FLOORS[1][0][1]]], "2": [[None, FIT_FLOORS[2][0][1]]]})


def test_the_floors_follow_how_far_the_call_itself_keeps_to_its_key():
    """A bar with 3 of its 8 notes off the key is as far as real music goes after a call that is
    chromatic itself, and further than it goes after one that keeps to its key."""
    diatonic = CallStyle.of(phrase(ARPEGGIO * 1 + [(16 + s, n, p) for s, n, p in ARPEGGIO], 32), 16)
    chromatic = CallStyle.of(phrase([(2 * i, 2, p) for i, p in enumerate(
        [60, 61, 62, 63, 64, 65, 66, 67, 60, 64, 67, 72, 67, 64, 60, 55])], 32), 16)
    some_off = phrase([(2 * i, 2, p) for i, p in enumerate([60, 64, 66, 72, 70, 67, 63, 59])], 16)[None]
    assert diatonic.own_scale == 1.0 and chromatic.own_scale < 0.9
    assert diatonic.terms(some_off)["scale"][0] == chromatic.terms(some_off)["scale"][0] == 0.625
    assert chromatic.misses(some_off)[0] == 0 and diatonic.misses(some_off)[0] > 0


def test_with_the_fit_choice_agreement_alone_chooses_and_likelihood_only_breaks_ties():
    call = phrase(ARPEGGIO * 1 + [(16 + s, n, p) for s, n, p in ARPEGGIO], 32)
    style = CallStyle.of(call, 16)
    in_key = phrase([(0, 4, 67), (4, 4, 64), (8, 4, 60), (12, 4, 64)], 16)
    sparse = phrase([(0, 16, 60)], 16)                                    # one long note: far likelier, fits worse
    candidates = np.stack([sparse, in_key, in_key])
    assert style.fit(candidates)[1] > style.fit(candidates)[0]
    assert style.choose(candidates, np.array([0.0, -500.0, -400.0]), floors=False) == 2   # the likelier equal fit
    assert style.choose(candidates, np.array([0.0, -500.0, -400.0]), weight=1.0, floors=False) == 0


def test_a_step_to_play_along_is_in_key_clear_of_clusters_and_on_a_beat_sounds():
    """choose_step: the first candidate in the call's key without a cluster; on a beat of an
    accompaniment (sound=True) the first of those that sounds a key of its own."""
    style = CallStyle.of(phrase(ARPEGGIO, 16), 16)
    silent, c3, f_sharp, d4 = (np.zeros(N_KEYS, np.int64) for _ in range(4))
    c3[48 - LOW_KEY] = STRUCK
    f_sharp[54 - LOW_KEY] = STRUCK
    d4[62 - LOW_KEY] = STRUCK
    sounding = np.zeros(N_KEYS, bool)
    sounding[[60 - LOW_KEY, 61 - LOW_KEY]] = True                      # C4 and C#4 held by the musician
    candidates = np.stack([f_sharp, silent, d4, c3])
    assert style.choose_step(candidates, sounding) == 1                 # F# is out of key: the silence
    assert style.choose_step(candidates, sounding, sound=True) == 3     # D4 makes C C# D: C3 sounds
    assert style.choose_step(np.stack([f_sharp, silent]), sounding, sound=True) == 1   # the key comes first


@pytest.fixture(scope="module")
def basic():
    if "basic" not in shipped_models():
        pytest.skip("needs the shipped basic model")
    return Engine(shipped_models()["basic"], provider="cpu")


def play(performer: Performer, notes: list[tuple[int, int, int]], steps: int):
    """Play notes (start step, length in steps, pitch) into a performer, then silence; yields
    after each of ``steps`` steps."""
    for n in range(steps):
        for start, length, pitch in notes:
            if start + length == n:
                performer.note_off(n, pitch)
        for start, _, pitch in notes:
            if start == n:
                performer.note_on(n, pitch, 80)
        performer.step(n)
        yield n


def run_call(engine: Engine, notes: list[tuple[int, int, int]], config: PerformerConfig) -> Performer:
    """Play notes into a performer, then silence until it has planned an answer."""
    performer = Performer(engine, 16, 4, config)
    for _ in play(performer, notes, 200):
        if performer.answer is not None:
            break
    return performer


def test_an_answer_starts_from_the_call_not_from_the_silence_that_ended_it(basic):
    call = phrase(ARPEGGIO, 16)
    heard = run_call(basic, ARPEGGIO, PerformerConfig(seed=0))
    after_call = basic.advance(call[None].astype(np.int64))                 # the bar line after the call
    assert heard.answer.start == 32                                         # 2 beats of silence, then the next bar
    for name, value in heard.answer.state_before.tensors.items():
        np.testing.assert_allclose(value, after_call.tensors[name], atol=1e-6)
    waited = run_call(basic, ARPEGGIO, PerformerConfig(seed=0, answer_from="heard"))
    after_wait = basic.advance(np.concatenate([call, np.zeros((16, N_KEYS), np.uint8)])[None].astype(np.int64))
    for name, value in waited.answer.state_before.tensors.items():
        np.testing.assert_allclose(value, after_wait.tensors[name], atol=1e-6)


@pytest.mark.skipif(not shipped_models(), reason="no shipped models in livecomp/exported/")
def test_a_c_major_arpeggio_is_answered_in_c_major_by_the_default_model():
    """The shipped default model and the options `livecomp duet` and `listen` give a musician."""
    engine = Engine(find_model(None), provider="cpu")
    call = roll_to_midi(PianoRoll(phrase(ARPEGGIO, 16), 4))
    classes = []
    for seed in range(8):
        result = duet(engine, call, PerformerConfig(seed=seed))
        assert len(result.answers) == 1
        answer = played_frames(result.events, *result.answers[0])
        keys = np.nonzero(onsets_of(answer))[1] + LOW_KEY
        assert keys.size, f"seed {seed}: a silent answer"
        classes += (keys % 12).tolist()
    in_key = np.mean([c in C_MAJOR for c in classes])
    assert in_key >= 0.8, f"{in_key:.2f} of {len(classes)} answer onsets on C major's pitch classes"


def test_a_call_that_goes_on_after_its_pause_is_answered_as_one_call(basic):
    """Playing again before the planned answer starts drops it; the answer then fits the whole call."""
    notes = ARPEGGIO + [(26, 4, 65), (30, 2, 69)]           # 2.5 beats after the arpeggio: the call goes on
    performer = Performer(basic, 16, 4, PerformerConfig(seed=0))
    planned = {}
    for _ in play(performer, notes, 64):
        if performer.answer is not None:
            planned.setdefault(performer.answer.start, performer.answer)
    assert sorted(planned) == [32, 48]                      # the first plan was dropped at step 26
    answer = planned[48]
    assert performer.answers == 2 and answer.call_start == 0
    assert answer.end - answer.start == 2 * 16              # as long as the whole call
    assert answer.style.pitch_classes[[5, 9]].sum() == 2    # F and A are in its style
