"""Settings that stay: `listen`'s options from the config file and its presets, the command line
winning, and bad files refused in one sentence."""

from __future__ import annotations

import os
import sys

import pytest
from typer.testing import CliRunner

from livecomp.cli import app

runner = CliRunner()


def listen(tmp_path, config: str | None, *args: str):
    env = {"LIVECOMP_CONFIG": str(tmp_path / "config.toml")}
    if config is not None:
        (tmp_path / "config.toml").write_text(config)
    return runner.invoke(app, ["listen", *args], env=env)


PORTS = '[listen]\nin = "Keystation"\nout = "FLUID"\n'


def test_the_config_files_settings_are_listens_options_and_the_command_line_wins(tmp_path):
    result = listen(tmp_path, PORTS + 'bpm = "999"\n')              # in and out come from the file too
    assert result.exit_code == 1 and "--bpm must be between 20 and 400, not 999" in result.output
    result = listen(tmp_path, PORTS + 'bpm = "999"\n', "--bpm", "100", "--meter", "5/3")
    assert result.exit_code == 1 and "5/3" in result.output and "--bpm" not in result.output


def test_a_preset_is_laid_over_the_listen_table(tmp_path):
    config = PORTS + 'meter = "3/4"\n\n[presets.slow]\nbpm = 10\n'
    result = listen(tmp_path, config, "--preset", "slow")
    assert result.exit_code == 1 and "--bpm must be between 20 and 400, not 10" in result.output


@pytest.mark.parametrize("config, args, words", [
    (PORTS + "[presets.slow]\nbpm = 60\n", ["--preset", "fast"], "there is no preset 'fast' in"),
    (None, ["--preset", "fast"], "the config file"),
    ('[listen]\nin = "Keystation\n', [], "is not valid TOML"),
    (PORTS + "colour = 3\n", [], "sets 'colour', which is not an option of listen"),
    (PORTS + "channel = 17\n", [], "channel = 17 in"),
    (PORTS + "end_cc = 200\n", [], "end_cc = 200 in"),
    ('[listn]\nin = "x"\n', [], "holds [listn]"),
    ('listen = 3\n', [], "[listen] in the config file"),
], ids=["no-such-preset", "preset-without-a-file", "malformed", "unknown-setting", "channel-out-of-range",
        "controller-out-of-range", "unknown-table", "not-a-table"])
def test_a_bad_config_file_is_one_sentence_and_exit_2(tmp_path, config, args, words):
    result = listen(tmp_path, config, *args)
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_without_a_config_file_the_ports_are_asked_for(tmp_path):
    result = listen(tmp_path, None)
    assert result.exit_code == 2 and "--in" in result.output


def test_ports_marks_the_ports_the_config_file_names(tmp_path, jack_relaxed):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    from jack_server import jack_virtual_port

    from livecomp.ports import load_rtmidi

    os.environ.update({k: jack_relaxed[k] for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")})
    rtmidi = load_rtmidi()
    keys = jack_virtual_port(rtmidi.MidiOut, "Keystation-49", "keys")
    synth = jack_virtual_port(rtmidi.MidiIn, "FLUID-Synth", "sound")
    try:
        (tmp_path / "config.toml").write_text(PORTS)
        result = runner.invoke(app, ["ports", "--api", "jack"], env={"LIVECOMP_CONFIG": str(tmp_path / "config.toml")})
    finally:
        keys.delete()
        synth.delete()
    assert result.exit_code == 0, result.output
    marked = [line for line in result.output.splitlines() if "(config file)" in line]
    assert len(marked) == 2 and "Keystation-49:keys" in marked[0] and "--in" in marked[0], result.output
    assert "FLUID-Synth:sound" in marked[1] and "--out" in marked[1], result.output
