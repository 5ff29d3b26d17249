"""Style following: a model hands a call to the specialist that finds it more likely
(``PerformerConfig.follow_style``, model.json ``specialists``)."""

from __future__ import annotations

import numpy as np
import pytest
from test_form import two_bars

from livecomp.model.engine import Engine
from livecomp.model.folder import shipped_models
from livecomp.perform.duet import duet
from livecomp.perform.performer import Performer, PerformerConfig

from conftest import TUNES as NOTTINGHAM
from fake_engine import EchoEngine
from test_performer import run


class Styled(EchoEngine):
    """The echo engine with a likelihood of its own for every call, answering ``shift`` keys up."""

    def __init__(self, name: str, likelihood: float, shift: int = 0, specialists: tuple = ()):
        self.name, self.likelihood, self.shift, self.named = name, likelihood, shift, list(specialists)
        self.heard_calls = 0

    def loaded_specialists(self) -> list:
        return self.named

    def call_log_likelihood(self, frames: np.ndarray) -> float:
        self.heard_calls += 1
        return self.likelihood

    def bar(self, state, candidates=1, temperature=1.0, seed=None, steps=None):
        frames, logp, after = super().bar(state, candidates, temperature, seed, steps)
        return np.roll(frames, self.shift, axis=-1), logp, after


def answer_pitches(home: Styled, follow: bool = True, **margin) -> tuple[set[int], Performer]:
    performer = Performer(home, 16, 4, PerformerConfig(silence_beats=2, seed=3, candidates=2, repeat=False,
                                                       follow_style=follow, **margin))
    events = run(performer, 16 * 8, two_bars()).sorted()
    assert performer.answers == 1
    return {e.pitch for e in events if e.kind == "on"}, performer


def test_a_call_the_specialist_finds_more_likely_is_answered_by_it_from_the_calls_own_state():
    folkish = Styled("folkish", -5.0, shift=12)
    pitches, performer = answer_pitches(Styled("home", -10.0, specialists=(folkish,)))
    assert pitches == {74 + 12}                  # the specialist's answer: the last key heard, an octave up
    assert performer.engine is folkish and performer.answered_by == ["folkish"]
    assert performer.state.tensors["last"].any()  # its state heard the call


def test_a_specialist_answers_only_a_call_it_explains_clearly_better_by_the_margin_in_nats():
    """2 nats (7 times as likely) is under the default margin of 3; with no margin it is enough."""
    for margin, by in [({}, "home"), ({"style_margin": 0.0}, "nearly"), ({"style_margin": 1.9}, "nearly"),
                       ({"style_margin": 2.1}, "home")]:
        nearly = Styled("nearly", -8.0, shift=12)
        _, performer = answer_pitches(Styled("home", -10.0, specialists=(nearly,)), **margin)
        assert performer.answered_by == [by], margin


@pytest.mark.parametrize("specialist_likelihood, follow", [(-20.0, True), (-5.0, False), (-10.0, True),
                                                           (-8.0, True)])
def test_the_model_answers_itself_when_it_explains_the_call_as_well_or_style_following_is_off(
        specialist_likelihood, follow):
    specialist = Styled("other", specialist_likelihood, shift=12)
    home = Styled("home", -10.0, specialists=(specialist,))
    pitches, performer = answer_pitches(home, follow)
    assert pitches == {74} and performer.engine is home and performer.answered_by == ["home"]
    assert specialist.heard_calls == (1 if follow else 0)      # weighed once per call, or never


@pytest.mark.skipif(not {"piano", "folk"} <= set(shipped_models()), reason="needs the shipped piano and folk models")
def test_the_default_hands_real_folk_tunes_to_folk_and_keeps_a_classical_piece():
    """The shipped default with the shipped defaults, as `livecomp duet` plays: the openings of
    real Nottingham tunes (which the folk model finds more likely) are answered by `folk`, the
    shipped Schumann example by the default itself, and nothing is handed on without style following."""
    from livecomp.cli.common import EXAMPLE_PHRASE, example_path

    piano = Engine(shipped_models()["piano"], provider="cpu")
    assert [e.name for e in piano.specialists()] == ["folk"]
    by = []
    for tune in sorted(NOTTINGHAM.glob("*.mid"))[:4]:
        by += duet(piano, tune, PerformerConfig(seed=0)).answered_by
    assert by and by.count("folk") > len(by) / 2, by
    assert set(duet(piano, example_path(EXAMPLE_PHRASE), PerformerConfig(seed=0)).answered_by) == {"piano"}
    tune = sorted(NOTTINGHAM.glob("*.mid"))[0]
    assert set(duet(piano, tune, PerformerConfig(seed=0, follow_style=False)).answered_by) == {"piano"}


def test_the_status_area_and_the_answers_line_say_when_a_specialist_plays():
    from livecomp.perform.loop import Live, LiveConfig
    from livecomp.perform.view import status_lines, tell_answers

    folkish = Styled("folkish", -5.0, shift=12)
    home = Styled("home", -10.0, specialists=(folkish,))
    said: list[str] = []
    live = Live(home, PerformerConfig(silence_beats=2, seed=3, candidates=2), LiveConfig(bpm=120, status=True),
                send=lambda m: None, log=said.append)
    live.grid = None
    assert status_lines(live, 0)[0].endswith("model home")
    run(live.performer, 16 * 8, two_bars())
    assert status_lines(live, 37)[0].endswith("model home (its specialist folkish plays)")
    tell_answers(live)
    assert said == ["answer 1: bars 4 to 5 (by its specialist folkish)"]


@pytest.mark.skipif("basic" not in shipped_models(), reason="needs the shipped basic model")
def test_a_specialist_that_cannot_be_loaded_while_listen_listens_is_said_in_one_line(tmp_path):
    """listen loads the specialists in a thread of its own: one whose graph is damaged is said in
    one line, and the model answers every call itself."""
    import json
    import shutil

    from livecomp.cli.live import _load_specialists

    damaged, home = tmp_path / "damaged", tmp_path / "home"
    for folder in (damaged, home):
        shutil.copytree(shipped_models()["basic"], folder)
    (damaged / "bar.onnx").write_bytes(b"not a graph")
    info = json.loads((home / "model.json").read_text())
    (home / "model.json").write_text(json.dumps({**info, "name": "home", "specialists": [str(damaged)]}))
    engine = Engine(home, provider="cpu")
    assert engine.specialist_folders() == [damaged]                   # found at once: listen starts
    said: list[str] = []
    _load_specialists(engine, said.append)
    assert len(said) == 1 and said[0].startswith("style following is off: ") and "damaged" in said[0], said
    assert engine.loaded_specialists() == []
