"""Form: an answer bar that brings back the call's bar at its place in the phrase (livecomp/music/form.py)."""

from __future__ import annotations

import numpy as np
import pytest

from livecomp.model.engine import Engine
from livecomp.model.folder import shipped_models
from livecomp.music.form import FEATURES, RepeatGate, Repeats, fit_gate, phrase_bars, repeat_features, same_bar
from livecomp.music.roll import HELD, LOW_KEY, STRUCK, midi_to_roll
from livecomp.perform.performer import Performer, PerformerConfig

from conftest import TUNES as NOTTINGHAM
from fake_engine import EchoEngine
from test_performer import run

ALWAYS = RepeatGate((0.0,) * len(FEATURES), (1.0,) * len(FEATURES), (0.0,) * len(FEATURES), 30.0)
NEVER = RepeatGate((0.0,) * len(FEATURES), (1.0,) * len(FEATURES), (0.0,) * len(FEATURES), -30.0)
BAR_1, BAR_2 = (60, 64, 67, 72), (62, 65, 69, 74)


def two_bars() -> dict[int, list]:
    """Crotchets: a C major arpeggio in bar 1, a D minor one in bar 2."""
    plays: dict[int, list] = {}
    for bar, pitches in enumerate((BAR_1, BAR_2)):
        for beat, pitch in enumerate(pitches):
            step = 16 * bar + 4 * beat
            plays.setdefault(step, []).append(("on", pitch, 70))
            plays.setdefault(step + 2, []).append(("off", pitch))
    return plays


def answered(gate: RepeatGate | None, repeat: bool = True) -> list[tuple[int, int]]:
    """(step in the answer, pitch) of each note the answer to ``two_bars`` strikes."""
    engine = EchoEngine()
    engine.repeat_gate = gate
    performer = Performer(engine, 16, 4, PerformerConfig(silence_beats=2, seed=3, candidates=2, repeat=repeat))
    events = run(performer, 16 * 8, two_bars()).sorted()
    assert performer.answers == 1
    start = 48                                    # the bar line after the call's 2 beats of silence
    return sorted((e.step - start, e.pitch) for e in events if e.kind == "on")


def test_an_answer_brings_back_each_bar_of_the_call_at_its_place_when_the_gate_says_so():
    call = sorted((16 * bar + 4 * beat, p) for bar, ps in enumerate((BAR_1, BAR_2)) for beat, p in enumerate(ps))
    assert answered(ALWAYS) == call
    echo = answered(NEVER)                        # the engine's own: the last key heard on every beat
    assert echo == answered(ALWAYS, repeat=False) == answered(None)
    assert echo and {p for _, p in echo} == {BAR_2[-1]}


def test_a_bar_brought_back_strikes_a_key_held_into_it_unless_the_answer_sounds_it_already():
    bars = [np.zeros((16, 88), np.int64) for _ in range(2)]
    key = 64 - LOW_KEY
    bars[0][0, key], bars[0][1:, key] = STRUCK, HELD          # a note tied into bar 2
    bars[1][:4, key] = HELD
    call = np.concatenate(bars)
    rng = np.random.default_rng(0)
    repeats = Repeats(call, 16, 4, 0, 1.0, ALWAYS)
    assert repeats.draw(0, rng)[0, key] == STRUCK
    assert repeats.draw(1, rng, before=bars[0])[0, key] == HELD             # the tie goes on
    assert Repeats(call, 16, 4, 0, 1.0, ALWAYS).draw(1, rng)[0, key] == STRUCK   # struck afresh
    assert Repeats(call, 16, 4, 0, 1.0, NEVER).draw(0, rng) is None


def test_a_silent_bar_of_the_call_is_never_brought_back():
    call = np.zeros((32, 88), np.int64)
    call[16, 40] = STRUCK
    repeats = Repeats(call, 16, 4, 0, 1.0, ALWAYS)
    assert repeats.probability(0) == 0.0 and repeats.probability(1) > 0.99


def test_the_features_see_the_calls_own_repeats_and_the_bar_before():
    a, b = np.zeros((16, 88), np.int64), np.zeros((16, 88), np.int64)
    a[0, 40], b[0, 43] = STRUCK, STRUCK
    f = dict(zip(FEATURES, repeat_features([a, b, a, b], 2, True, 4, 1.0)))
    assert f["third"] == 1 and f["after_copy"] == 1 and f["call_bars"] == 2.0
    assert f["bar_repeats"] == 1 and f["bar_repeats_2"] == 1 and f["call_repeats"] == 1.0
    f = dict(zip(FEATURES, repeat_features([a, b, b, a * 0], 0, True, 4, 1.0)))
    assert f["first"] == 1 and f["after_copy"] == 0 and f["bar_repeats"] == 0
    assert f["call_repeats"] == pytest.approx(2 / 3)


def test_the_gate_learns_which_features_bring_a_bar_back_and_keeps_them_through_json():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, len(FEATURES)))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(2.0 * x[:, 4] - 1.0)))).astype(np.float64)
    gate = fit_gate(x, y, np.ones(len(y)))
    assert int(np.argmax(np.abs(gate.weights))) == 4 and gate.weights[4] == pytest.approx(2.0, abs=0.25)
    p = np.array([gate.probability(row) for row in x])
    assert abs(p.mean() - y.mean()) < 0.01
    again = RepeatGate.from_json(gate.to_json())
    assert again.probability(x[0]) == pytest.approx(gate.probability(x[0]), abs=1e-5)


@pytest.mark.parametrize("table, says", [
    ({"features": ["first"], "mean": [0], "scale": [1], "weights": [0], "bias": 0}, "features"),
    ({**ALWAYS.to_json(), "scale": [0.0] * len(FEATURES)}, "scale"),
    ({**ALWAYS.to_json(), "weights": [1.0] * (len(FEATURES) - 1)}, "weights"),
    ({**ALWAYS.to_json(), "bias": "high"}, "bias"),
])
def test_a_damaged_gate_is_refused_in_one_sentence(table, says):
    with pytest.raises(ValueError, match=says):
        RepeatGate.from_json(table)


@pytest.mark.skipif("folk" not in shipped_models(), reason="needs the shipped folk model")
def test_the_shipped_folk_model_brings_back_some_bars_of_real_tunes_calls_and_only_with_its_gate():
    """The opening bars of 16 real tunes, answered as `duet` answers them with the shipped
    defaults: some answer bars are the call's bar at their place in the phrase (as some of the
    tunes' own next bars are), fewer than a bar in four, and none without the gate."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "bench" / "musicality.py"
    spec = importlib.util.spec_from_file_location("musicality", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    engine = Engine(shipped_models()["folk"], provider="cpu")
    brought_back = {True: 0, False: 0}
    real = bars = 0
    for i, tune in enumerate(sorted(NOTTINGHAM.glob("*.mid"))[:16]):
        for c in bench.calls_of(midi_to_roll(tune, 4), 4, (0,))[0]:
            first, bar = int(np.flatnonzero(c["call"].any(1))[0]), c["bar"]
            phrase = phrase_bars(c["call"][first:], bar, first)        # as the performer cuts it
            real += sum(same_bar(c["real"][j * bar:(j + 1) * bar], phrase[j]) for j in range(min(2, len(phrase))))
            for repeat in (True, False):
                answer = bench.answer(engine, c, PerformerConfig(seed=i, repeat=repeat))
                brought_back[repeat] += sum(same_bar(answer[j * bar:(j + 1) * bar], phrase[j])
                                            for j in range(min(len(answer) // bar, len(phrase))))
            bars += len(phrase)
    assert real > 0 and brought_back[False] == 0
    assert 1 <= brought_back[True] <= bars / 4, (brought_back, real, bars)
