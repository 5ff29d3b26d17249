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
    assert result.exit_code == 2 and f"bpm = '999' in {tmp_path / 'config.toml'}: --bpm must be between 20 " \
        "and 400, not 999" in result.output
    result = listen(tmp_path, PORTS + 'bpm = "999"\n', "--bpm", "100", "--meter", "5/3")
    assert result.exit_code == 1 and "5/3" in result.output and "--bpm" not in result.output


def test_a_preset_is_laid_over_the_listen_table(tmp_path):
    config = PORTS + 'meter = "3/4"\n\n[presets.slow]\nbpm = 10\n'
    result = listen(tmp_path, config, "--preset", "slow")
    assert result.exit_code == 2 and "--bpm must be between 20 and 400, not 10" in result.output


@pytest.mark.parametrize("config, args, words", [
    (PORTS + "[presets.slow]\nbpm = 60\n", ["--preset", "fast"], "there is no preset 'fast' in"),
    (None, ["--preset", "fast"], "the config file"),
    ('[listen]\nin = "Keystation\n', [], "is not valid TOML"),
    (PORTS + "colour = 3\n", [], "sets 'colour', which is not an option of listen"),
    (PORTS + "channel = 17\n", [], "channel = 17 in"),
    (PORTS + "end_cc = 200\n", [], "end_cc = 200 in"),
    ('[listn]\nin = "x"\n', [], "holds [listn]"),
    ('listen = 3\n', [], "[listen] in the config file"),
    (PORTS + 'bpm = "nan"\n', [], "bpm = 'nan' in"),
    (PORTS + 'meter = "99/4"\n', [], "meter = '99/4' in"),
    (PORTS + 'model = "nosuch"\n', [], "model = 'nosuch' in"),
    (PORTS + "[presets]\nfolk = 3\n", ["--preset", "folk"], "must be a table of settings ([presets.folk]), not 3"),
], ids=["no-such-preset", "preset-without-a-file", "malformed", "unknown-setting", "channel-out-of-range",
        "controller-out-of-range", "unknown-table", "not-a-table", "bpm-nan", "meter-99", "no-such-model",
        "preset-not-a-table"])
def test_a_bad_config_file_is_one_sentence_and_exit_2(tmp_path, config, args, words):
    result = listen(tmp_path, config, *args)
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_without_a_config_file_the_ports_are_asked_for(tmp_path):
    result = listen(tmp_path, None)
    assert result.exit_code == 2 and "--in" in result.output


def test_ports_marks_the_ports_the_config_file_names(tmp_path, jack_relaxed):
    from livecomp.io.rtmidiport import load_rtmidi

    from jack_server import jack_virtual_port

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
    assert "jack inputs, where livecomp hears you: keyboards" in result.output           # said plainly
    assert "jack outputs, where livecomp plays: synths" in result.output


@pytest.mark.parametrize("make, words", [
    (lambda path: os.mkfifo(path), "is not a regular file"),
    (lambda path: path.write_text("# " + "x" * (2 << 20) + "\n"), "is larger than 1 MiB"),
    (lambda path: path.mkdir(), "is not a regular file"),
], ids=["fifo", "huge", "folder"])
def test_a_config_file_that_is_not_a_page_of_settings_is_refused_without_reading_it_all(tmp_path, make, words):
    """A FIFO would block the read for ever and /dev/zero would fill the memory: refused at once."""
    import subprocess

    config = tmp_path / "config.toml"
    make(config)
    result = subprocess.run([sys.executable, "-m", "livecomp.cli", "listen"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "LIVECOMP_CONFIG": str(config)})
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and str(config) in result.stderr and "Traceback" not in result.stderr


def test_a_config_file_with_a_byte_order_mark_is_read(tmp_path):
    (tmp_path / "config.toml").write_text("\ufeff" + PORTS + 'bpm = "999"\n', encoding="utf-8")
    result = runner.invoke(app, ["listen"], env={"LIVECOMP_CONFIG": str(tmp_path / "config.toml")})
    assert result.exit_code == 2 and "--bpm must be between 20 and 400, not 999" in result.output


LEARNED = {"temperature": 20, "bars": 21}


@pytest.mark.parametrize("text, expected", [
    ('# mine\n[listen]\nin = "x"\n\n[controls]\n# my knobs\ntemperature = 16  # the big one\nmute = "off"\n\n'
     '[presets.folk]\nmodel = "folk"\n',
     '# mine\n[listen]\nin = "x"\n\n[controls]\n# my knobs\ntemperature = 20  # the big one\nmute = "off"\n'
     'bars = 21\n\n[presets.folk]\nmodel = "folk"\n'),
    ('[ controls ]  # spaced\ntemperature = 16\n', '[ controls ]  # spaced\ntemperature = 20\nbars = 21\n'),
    ('[listen]\nin = """\n[controls]\n"""\n',
     '[listen]\nin = """\n[controls]\n"""\n\n[controls]\ntemperature = 20\nbars = 21\n'),
    ('controls = {temperature = 16}\n', None),
    ('controls.temperature = 16\n', None),
], ids=["comments-kept", "spaced-header", "header-in-a-string", "inline-table", "dotted-keys"])
def test_learned_controls_are_written_line_by_line_or_not_at_all(tmp_path, text, expected):
    """Every TOML form of a [controls] table: edited in its own lines, comments kept, or, where
    that cannot be done, the file left as it was and the lines to write given."""
    from livecomp.perform.settings import SettingsError, controls_problem, read_controls, write_controls

    config = tmp_path / "config.toml"
    config.write_text(text)
    if expected is None:
        assert "inline or dotted" in controls_problem(config)
        with pytest.raises(SettingsError, match="temperature = 20"):
            write_controls({**read_controls(config), **LEARNED}, config)
        assert config.read_text() == text
    else:
        assert controls_problem(config) is None
        write_controls({**read_controls(config), **LEARNED}, config)
        assert config.read_text() == expected


def test_learned_controls_are_written_through_a_link_and_keep_the_files_mode(tmp_path):
    from livecomp.perform.settings import read_controls, write_controls

    real = tmp_path / "dotfiles" / "livecomp.toml"
    real.parent.mkdir()
    real.write_text('[listen]\nin = "x"\n')
    real.chmod(0o640)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    write_controls(LEARNED, link)
    assert link.is_symlink() and read_controls(real) == LEARNED
    assert real.stat().st_mode & 0o777 == 0o640


def test_learn_with_a_config_file_that_cannot_be_written_stops_before_the_round(tmp_path):
    """Found before the musician moves a control, not after the whole round."""
    (tmp_path / "file.txt").write_text("a file of the user's own\n")
    result = runner.invoke(app, ["listen", "--in", "x", "--out", "y", "--learn"],
                           env={"LIVECOMP_CONFIG": str(tmp_path / "file.txt" / "config.toml")})
    assert result.exit_code == 1, result.output
    assert "--learn keeps the map in the config file, which cannot be written" in result.output
    assert "is a file, not a folder" in result.output and "learn: move" not in result.output


def test_settings_read_with_tomli_where_python_has_no_tomllib(tmp_path, monkeypatch):
    """Python 3.10 has no tomllib; the tomli package (a dependency there) is the same parser."""
    import importlib

    import tomllib

    import livecomp.perform.settings

    monkeypatch.setitem(sys.modules, "tomllib", None)           # as on 3.10: no such module
    monkeypatch.setitem(sys.modules, "tomli", tomllib)          # the backport, under its own name
    try:
        settings = importlib.reload(livecomp.perform.settings)
        assert settings.tomllib is tomllib
        (tmp_path / "config.toml").write_text(PORTS)
        assert settings.read_settings(path=tmp_path / "config.toml") == {"in": "Keystation", "out": "FLUID"}
    finally:
        monkeypatch.undo()
        importlib.reload(livecomp.perform.settings)
