"""The docs say only what livecomp does: every command line they show names a command that
exists, with options its --help lists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = ("roll", "train", "eval", "export", "generate", "listen", "duet", "ports", "models")


def command_lines() -> list[tuple[str, str, str]]:
    """(file, command, the rest of the line) for each `livecomp COMMAND ...` the docs show, in
    code spans and in code blocks."""
    found = []
    for path in DOCS:
        text = path.read_text()
        pieces = re.findall(r"```.*?```", text, flags=re.S) + re.findall(r"`[^`\n]+`", text)
        for piece in pieces:
            for line in piece.splitlines():
                line = line.split("#", 1)[0] if "```" in piece else line        # a block's comments
                for match in re.finditer(r"(?:^|[\s`/])livecomp (\w+)(.*?)(?=$|`|;| \| |&&)", line):
                    found.append((path.name, match[1], match[2]))
    return found


@pytest.fixture(scope="module")
def helps() -> dict[str, set[str]]:
    from typer.testing import CliRunner

    from livecomp.cli import app

    out = {}
    for command in COMMANDS:
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        out[command] = set(re.findall(r"--[a-z][a-z0-9-]*", result.output))
    return out


def test_every_command_line_in_the_docs_is_one_livecomp_takes(helps):
    lines = command_lines()
    assert len(lines) > 50                                         # the docs are read, not skipped
    wrong = []
    for name, command, rest in lines:
        if command not in COMMANDS:
            if command.isupper() or command in ("is", "and", "said", "runs", "hears", "answers", "plays", "keeps",
                                                 "talks", "learns"):
                continue                                           # a placeholder, or prose: "livecomp is ..."
            wrong.append(f"{name}: livecomp {command}{rest}: no such command")
            continue
        for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest):
            if option not in helps[command]:
                wrong.append(f"{name}: livecomp {command}{rest}: {option} is not an option of {command}")
    assert not wrong, "\n".join(wrong)
