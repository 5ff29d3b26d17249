"""The command line as a user meets it: help, `livecomp roll`, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from livecomp.cli import app, example_path
from livecomp.music.roll import midi_to_roll

from conftest import ROOT, bad_midi_files

runner = CliRunner()


def livecomp(*args: str) -> subprocess.CompletedProcess:
    """Run the installed console script, as a user would."""
    return subprocess.run([sys.executable, "-m", "livecomp.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command():
    result = livecomp("--help")
    assert result.returncode == 0
    for command in ("train", "export", "eval", "generate", "listen", "ports", "roll", "models", "duet"):
        assert command in result.stdout


def test_roll_on_the_shipped_example_writes_midi_and_png(tmp_path):
    result = livecomp("roll", "--png", str(tmp_path / "r.png"), "--midi-out", str(tmp_path / "r.mid"))
    assert result.returncode == 0, result.stderr
    assert "38 bars" in result.stdout and "4/4" in result.stdout
    from livecomp.music.image import BOTTOM, LEFT, TOP
    with Image.open(tmp_path / "r.png") as img:
        assert img.size == (LEFT + 598 * 4, TOP + 88 * 4 + BOTTOM)     # the roll, and its labels around it
    assert (midi_to_roll(tmp_path / "r.mid").frames == midi_to_roll(example_path()).frames).all()


def test_roll_json_reports_the_summary(tmp_path):
    result = runner.invoke(app, ["roll", "--json", "--steps-per-beat", "12"])
    assert result.exit_code == 0
    assert '"steps_per_beat": 12' in result.stdout


@pytest.mark.parametrize("kind, words", [
    ("truncated", "truncated"), ("text", "not a readable MIDI file"), ("empty", "empty"), ("no_notes", "no notes"),
])
def test_bad_files_get_one_sentence_and_a_non_zero_exit(tmp_path, kind, words):
    result = livecomp("roll", str(bad_midi_files(tmp_path)[kind]))
    assert result.returncode == 1
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_the_runtime_never_imports_torch(tmp_path):
    out = str(tmp_path / "g.mid")
    model = str(ROOT / "bench" / "models" / "basic-jsb")
    code = ("import sys, livecomp.cli, livecomp.music.roll, livecomp.music.image, livecomp.files, "
            "livecomp.model.engine; "
            "from typer.testing import CliRunner; "
            "run = lambda *a: CliRunner().invoke(livecomp.cli.app, list(a)); "
            "assert run('roll').exit_code == 0; "
            f"r = run('generate', '--model', {model!r}, '--bars', '2', '--out', {out!r}); assert r.exit_code == 0, "
            "r.output; "
            f"r = run('eval', {model!r}, '--data', 'jsb'); assert r.exit_code == 0, r.output; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_models_lists_each_shipped_model_with_its_data_licence_size_and_figures():
    result = livecomp("models", str(ROOT / "bench" / "models" / "basic-jsb"))
    assert result.returncode == 0, result.stderr
    blocks = {block.split(":")[0]: block for block in result.stdout.strip().split("\n\n")}
    assert {"piano", "pop", "folk", "basic"} <= set(blocks)
    assert "[program 2, the default]" in blocks["piano"].splitlines()[0]      # basic 0, folk 1, piano 2, pop 3
    assert "[program 3]" in blocks["pop"].splitlines()[0] and "a program change chooses a model" in result.stdout
    assert "answers choose among 8 candidate bars" in blocks["piano"]
    for name in ("piano", "pop", "folk", "basic"):
        block = blocks[name]
        assert " parameters " in block and "learnt from " in block and " frames; " in block and "test NLL" in block
        assert "../shared" not in block                             # the collections, not the trainer's folders
        assert "nottingham     key 0." in block                     # the answers' figures on each corpus
    assert "CC BY-SA 3.0 DE" in blocks["piano"] and "GPL-3.0" in blocks["folk"]
    assert "learnt from piano-midi-de + mutopia + pop909 + nottingham (2,034,756 frames; " in blocks["piano"]
    assert "basic-jsb" in result.stdout                              # a folder given beside them
    bad = livecomp("models", str(ROOT / "tests"))
    assert bad.returncode == 1 and "has no model.json" in bad.stderr and "Traceback" not in bad.stderr


def test_help_keeps_the_config_files_table_names():
    """Help is plain text: "[listen]" is the config file's table, not markup to drop."""
    from typer.testing import CliRunner

    from livecomp.cli import app

    result = CliRunner().invoke(app, ["listen", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "[listen] and [presets.NAME]" in " ".join(result.output.split()), result.output


def test_listen_help_names_every_control_with_its_controller():
    """Every control a keyboard has, with the controller it answers by default, and the program
    change: a musician learns the keyboard from --help."""
    from typer.testing import CliRunner

    from livecomp.cli import app
    from livecomp.perform.controls import BUTTONS, DEFAULTS, KNOBS

    result = CliRunner().invoke(app, ["listen", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert set(DEFAULTS) == set(KNOBS) | set(BUTTONS)
    for name, number in DEFAULTS.items():
        assert f"{number} {name}" in text, (name, text)
    assert "a program change N chooses model N" in text
