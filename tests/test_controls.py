"""Control from the keyboard: the controller map, what each control does to a running live loop
(on simulated time), and the config file's [controls] table refused in one sentence."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from livecomp.cli import app
from livecomp.io import midi
from livecomp.perform.controls import DEFAULTS, Controls, ControlsError, controls_from
from livecomp.perform.loop import Live, LiveConfig
from livecomp.perform.performer import PerformerConfig
from livecomp.timing.timeline import Rehearsal

from conftest import still_sounding
from fake_engine import EchoEngine

STEP = 60 / 240 / 4
ARPEGGIO = [(2 * i, p) for i, p in enumerate([60, 64, 67, 72, 67, 64, 60, 55])]


def test_the_default_map_and_a_config_tables_changes():
    assert controls_from(None) == {number: name for name, number in DEFAULTS.items()}
    mapped = controls_from({"temperature": 74, "mute": "off"})
    assert mapped[74] == "temperature" and "mute" not in mapped.values() and 16 not in mapped


@pytest.mark.parametrize("table, end_cc, words", [
    ({"tempo": 20}, None, "there is no control 'tempo'"),
    ({"temperature": 128}, None, "from 0 to 127"),
    ({"temperature": "loud"}, None, "from 0 to 127"),
    ({"temperature": 80}, None, "given to both"),
    ({"panic": 64}, None, "sustain pedal"),
    ({}, 16, "--end-cc"),
])
def test_a_controls_table_no_keyboard_can_use_is_one_sentence(table, end_cc, words):
    with pytest.raises(ControlsError, match=words):
        controls_from(table, end_cc)


def test_knobs_read_their_position_and_buttons_act_once_per_press():
    controls = Controls(controls_from(None))

    def read(number, value):
        return controls.read(midi.control(0, number, value))

    assert read(16, 0).value == 0.2 and read(16, 127).value == 2.0
    assert read(17, 0).value is None and read(17, 1).value == 1 and read(17, 127).value == 8
    assert read(18, 0).value == 0.5 and read(18, 127).value == 4.0
    assert read(81, 127).control == "mute"
    assert read(81, 100) is None                           # still held: not a second press
    assert read(81, 0) is None                             # let go
    assert read(81, 127).control == "mute"
    assert read(7, 127) is None                            # volume: not a control
    assert controls.read([0xC0, 2]).control == "program" and controls.read([0xC0, 2]).value == 2


def calls(*starts: float) -> list:
    """A bar of quavers at 240 bpm from each start time (seconds)."""
    messages = []
    for t0 in starts:
        for s, p in ARPEGGIO:
            messages += [(t0 + s * STEP, midi.note_on(0, p, 90)), (t0 + (s + 1) * STEP, midi.note_off(0, p))]
    return messages


class Named(EchoEngine):
    def __init__(self, name: str):
        self.name = name


MODELS = {name: Named(name) for name in ("echo", "echo2", "echo3")}


class Below(Named):
    """Echoes what it heard two octaves down: outside the musician's register, so duet mode,
    which leaves that register to the musician, plays it."""

    def bar(self, state, candidates=1, temperature=1.0, seed=None, steps=None):
        frames, logp, after = super().bar(state, candidates, temperature, seed, steps)
        return np.roll(frames, -24, axis=-1), logp, after


def rehearse(messages, until: float, mode: str = "call", engine=None):
    rehearsal = Rehearsal(messages)
    said: list[str] = []
    loop = Live(engine or MODELS["echo"], PerformerConfig(seed=1, bars=2, silence_beats=1, candidates=1, mode=mode),
                LiveConfig(bpm=240.0, status=False, realtime=False, controls=controls_from(None),
                           models=tuple(MODELS)),
                send=lambda m: None, log=said.append, timeline=rehearsal, loader=MODELS.__getitem__)
    rehearsal.call_at(until, loop.stopping.set)
    loop.run()
    return loop.scheduler.sent, said, loop


def ons(sent, start: float = 0.0, end: float = 1e9) -> list[float]:
    return [t for t, m in sent if midi.is_note_on(m) and m[0] & 0x0F == 0 and start <= t < end]


def test_a_knob_sets_what_the_next_answer_uses_and_says_so():
    messages = [(0.9, midi.control(0, 16, 127)), (0.95, midi.control(0, 17, 0))] + calls(1.0)
    _, said, loop = rehearse(messages, 1.0 + 80 * STEP)
    assert loop.performer.cfg.temperature == 2.0 and loop.performer.cfg.bars is None
    assert "temperature: 2" in said and "bars: as long as the call" in said


def test_a_knob_moved_before_the_first_note_is_said_and_applied_at_once():
    """Before the first note there is no grid yet: the change still acts and is said as the
    knob moves, not once a note has been played."""
    rehearsal = Rehearsal([(0.5, midi.control(0, 16, 127))])
    said: list[str] = []
    loop = Live(MODELS["echo"], PerformerConfig(seed=1), LiveConfig(bpm=240.0, status=False, realtime=False,
                                                                   controls=controls_from(None)),
                send=lambda m: None, log=said.append, timeline=rehearsal)
    rehearsal.call_at(0.6, lambda: said.append(f"at 0.6: temperature {loop.performer.cfg.temperature:g}"))
    rehearsal.call_at(1.0, loop.stopping.set)
    loop.run()
    assert said[:2] == ["temperature: 2", "at 0.6: temperature 2"], said


def test_the_count_in_button_starts_a_bar_of_clicks_and_bar_1_after_it():
    """Pressed before the first note (the musician is ready): a bar of clicks at --bpm from
    then, and bar 1 after it; a call played from there is answered on its bar lines. Pressed
    again once bar 1 is set, it says so and changes nothing."""
    bar = 16 * STEP
    press = 0.5
    start = press + 0.2 + bar                                            # the count-in's bar, then bar 1
    messages = [(press, midi.control(0, 86, 127)), (press + 0.05, midi.control(0, 86, 0))] + calls(start)
    messages += [(start + 3 * bar, midi.control(0, 86, 127)), (start + 3 * bar + 0.05, midi.control(0, 86, 0))]
    sent, said, loop = rehearse(messages, start + 5 * bar)
    assert "count-in: 1 bar at 240 bpm, then bar 1" in said, said
    assert loop.grid.time_of(0) == pytest.approx(start, abs=1e-6)
    assert ons(sent) and ons(sent)[0] == pytest.approx(start + 2 * bar, abs=1e-6), said   # answered on bar 3
    assert "count-in: bar 1 is set already; the button counts in before your first note" in said


def test_mute_listens_without_answering_until_pressed_again():
    """Muted, a call gets no answer; pressed again, the next call does, on its bar line."""
    bar = 16 * STEP
    messages = [(0.5, midi.control(0, 81, 127)), (0.6, midi.control(0, 81, 0))] + calls(1.0)
    messages += [(1.0 + 5 * bar, midi.control(0, 81, 127)), (1.0 + 5 * bar + 0.05, midi.control(0, 81, 0))]
    messages += calls(1.0 + 6 * bar)
    sent, said, _ = rehearse(messages, 1.0 + 12 * bar)
    assert not ons(sent, 0, 1.0 + 6 * bar), said                       # the muted call: no answer
    second = ons(sent, 1.0 + 6 * bar)
    assert second and second[0] == pytest.approx(1.0 + 8 * bar, abs=1e-9)   # bar 3 of the second call
    assert said.count("muted: listening, not answering") == 1 and "unmuted: answering again" in said


def test_panic_in_the_middle_of_an_answer_ends_every_note_at_once():
    bar = 16 * STEP
    press = 1.0 + 2 * bar + 5.5 * STEP                                  # in the answer's second beat
    messages = calls(1.0) + [(press, midi.control(0, 82, 127)), (press + 0.05, midi.control(0, 82, 0))]
    sent, said, loop = rehearse(messages, 1.0 + 6 * bar)
    before = [(t, m) for t, m in sent if t <= press + STEP]
    assert ons(sent, 1.0 + 2 * bar, press) and not ons(sent, press, 1.0 + 6 * bar)   # the rest is dropped
    assert not still_sounding(before), before[-6:]
    assert [m[1] for t, m in sent if midi.is_control(m) and press <= t <= press + STEP][:2] == [120, 123]
    first = min(t for t, m in sent if midi.is_control(m) and m[1] == 120 and t >= press)
    assert first - press < 0.001, first - press                        # as pressed, not at the step's end
    assert "panic: every note ended" in said and loop.performer.answers == 1


def test_duet_mode_says_each_time_it_joins_and_counts_as_the_status_does():
    """A call answered, then the mode button, then two phrases with 3 bars of rest between:
    the log's answer numbers run on as the performer counts them, and the status area's note
    count is of the latest one."""
    bar = 16 * STEP
    messages = calls(1.0) + [(1.0 + 5 * bar, midi.control(0, 80, 127)), (1.0 + 5 * bar + 0.05, midi.control(0, 80, 0))]
    messages += calls(1.0 + 6 * bar) + calls(1.0 + 10 * bar)
    _, said, loop = rehearse(messages, 1.0 + 14 * bar, engine=Below("echo"))
    told = [line for line in said if line.startswith("answer ")]
    assert [line.split(":")[0] for line in told] == ["answer 1", "answer 2", "answer 3"], said
    assert "playing along from bar 7" in told[1] and "playing along from bar 11" in told[2], told
    assert loop.performer.answers == 3 and 0 < loop.performer.answer_notes < 64


def test_the_mode_button_switches_to_playing_along():
    messages = [(0.5, midi.control(0, 80, 127)), (0.55, midi.control(0, 80, 0))] + calls(1.0)
    sent, said, loop = rehearse(messages, 1.0 + 16 * STEP)
    assert loop.performer.cfg.mode == "duet" and "mode: duet, playing along" in said


def test_a_bad_controls_table_in_the_config_file_ends_listen_in_one_sentence(tmp_path):
    (tmp_path / "config.toml").write_text('[listen]\nin = "a"\nout = "b"\n\n[controls]\ntempo = 20\n')
    result = CliRunner().invoke(app, ["listen"], env={"LIVECOMP_CONFIG": str(tmp_path / "config.toml")})
    assert result.exit_code == 2 and "there is no control 'tempo'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_model_chosen_on_the_keyboard_answers_once_it_has_loaded():
    """The next button during a call: the model loads (at once, on simulated time) and answers
    that call, having heard it; the button during an answer waits for the answer to end; a
    program change with no model says so; program 0 goes back to the first."""
    bar = 16 * STEP
    messages = calls(1.0) + [(1.0 + 4 * STEP, midi.control(0, 83, 127)), (1.0 + 5 * STEP, midi.control(0, 83, 0))]
    messages += [(1.0 + 2 * bar + 2 * STEP, midi.control(0, 83, 127)), (1.0 + 2 * bar + 3 * STEP, midi.control(0, 83,
                                                                                                               0))]
    messages += calls(1.0 + 6 * bar) + [(1.0 + 5 * bar, [0xC0, 9])]
    messages += [(1.0 + 9 * bar, [0xC0, 0])] + calls(1.0 + 12 * bar)
    _, said, loop = rehearse(messages, 1.0 + 18 * bar)
    assert said[1:4] == ["model: loading echo2; it answers once it has loaded",
                         "model: echo2 (echo) answers from now on", "answer 1: bars 3 to 4"], said
    assert said.index("model: echo3 (echo) answers from now on") > said.index("answer 1: bars 3 to 4")
    assert said.index("model: echo3 (echo) answers from now on") < said.index("answer 2: bars 9 to 10")
    assert "model: no model has program 9 (there are 3: 0 to 2)" in said
    assert "model: echo (echo) answers from now on" in said and loop.engine.name == "echo"
    assert "model: back to echo, loaded already" in said                # loaded once a session
    assert loop.performer.answers == 3


def test_a_model_loads_once_a_session():
    """Next, pressed between calls five times around three models: each loads once; going back
    to one played before is at once, with the engine it had (no second copy in memory)."""
    loads = []

    def loader(name):
        loads.append(name)
        return MODELS[name]

    bar = 16 * STEP
    messages = []
    for k in range(5):
        start = 1.0 + 5 * k * bar
        messages += calls(start) + [(start + 4 * bar, midi.control(0, 83, 127)),
                                    (start + 4 * bar + STEP, midi.control(0, 83, 0))]
    rehearsal = Rehearsal(messages)
    said: list[str] = []
    loop = Live(MODELS["echo"], PerformerConfig(seed=1, bars=2, silence_beats=1, candidates=1),
                LiveConfig(bpm=240.0, status=False, realtime=False, controls=controls_from(None),
                           models=tuple(MODELS)),
                send=lambda m: None, log=said.append, timeline=rehearsal, loader=loader)
    rehearsal.call_at(1.0 + 26 * bar, loop.stopping.set)
    loop.run()
    assert loads == ["echo2", "echo3"], (loads, said)
    assert said.count("model: back to echo, loaded already") == 1 and \
        said.count("model: back to echo2, loaded already") == 1, said
    assert loop.engine is MODELS["echo3"]


def test_learn_maps_each_control_by_moving_it_and_keeps_the_map_in_the_config_file(tmp_path):
    """`listen --learn` on the session's own input (ports in memory): each control asked for in
    turn takes the first new controller moved (a knob's later values and the pedal are passed
    over); one not moved keeps its mapping. The file keeps its other lines and gets [controls];
    the session then listens with the new map, and Ctrl-C ends it."""
    import os
    import signal
    import threading
    import time

    from livecomp.io.backends import open_port
    from livecomp.perform.settings import read_controls

    config = tmp_path / "config.toml"
    config.write_text('# my keyboard\n[listen]\nin = "loopback:learn-keys"\nout = "loopback:learn-synth"\n'
                      '\n[controls]\nmute = "off"\n')
    keys = open_port("loopback:learn-keys", "output", "jack")
    moves = [[0xB0, 70, 10], [0xB0, 70, 11], [0xB0, 64, 127], [0xB0, 71, 5], [0xB0, 72, 5], [0xB0, 73, 127],
             [0xB0, 74, 127], [0xB0, 75, 127]]                 # temperature, its knob again, the pedal, ...

    def player():
        time.sleep(1.0)                                         # the session opens, the engine loads
        for message in moves:
            keys.send(message)
            time.sleep(0.1)
        time.sleep(1.5)                                         # next waits 1 s and is kept
        for _ in range(2):                                      # previous: pressed twice, the second press
            keys.send([0xB0, 77, 127])                          # still learning's, not a model switch
            time.sleep(0.05)
        time.sleep(1.5)
        keys.send([0x90, 60, 90])                               # a note: the session acts on what it heard
        time.sleep(0.2)
        keys.send([0x80, 60, 0])
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    playing = threading.Thread(target=player)
    playing.start()
    result = CliRunner().invoke(app, ["listen", "--model", "basic", "--learn", "--learn-wait", "1"],
                                env={"LIVECOMP_CONFIG": str(config)})
    playing.join()
    assert result.exit_code == 0, result.output
    assert read_controls(config) == {"temperature": 70, "bars": 71, "silence": 72, "mode": 73, "mute": 74,
                                     "panic": 75, "previous": 77}
    assert config.read_text().startswith("# my keyboard\n[listen]")
    assert "learn: next kept" in result.output and "controls kept in" in result.output
    assert "model:" not in result.output, result.output
    assert "stopped: 0 answers" in result.output


def test_the_temperature_knobs_middle_is_the_default_temperature():
    from livecomp.perform.controls import temperature_of
    from livecomp.perform.performer import PerformerConfig

    assert temperature_of(64) == PerformerConfig().temperature == 1.0
    assert (temperature_of(0), temperature_of(127)) == (0.2, 2.0)
    values = [temperature_of(v) for v in range(128)]
    assert values == sorted(values)
