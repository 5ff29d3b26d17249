"""Settings that stay: ``listen``'s options kept in a TOML file, with named presets.

The file is ``$LIVECOMP_CONFIG``, else ``config.toml`` in livecomp's folder of the platform's
user configuration (``$XDG_CONFIG_HOME/livecomp`` or ``~/.config/livecomp`` on Linux,
``~/Library/Application Support/livecomp`` on macOS, ``%APPDATA%\\livecomp`` on Windows). Its
``[listen]`` table holds options by their names on the command line (``in``, ``out``,
``model``, ``bpm``, ``channel``, ...); each ``[presets.NAME]`` table holds more, which
``--preset NAME`` lays over them, and ``[controls]`` maps the keyboard's controllers
(``livecomp.perform.controls``). An option given on the command line wins over both::

    [listen]
    in = "Keystation"
    out = "FLUID"
    model = "piano"

    [presets.folk]
    model = "folk"
    bpm = "104"
    meter = "6/8"
"""

from __future__ import annotations

import os
import re
import sys

try:
    import tomllib
except ImportError:                     # Python 3.10: the same parser, as the tomli package
    import tomli as tomllib
from pathlib import Path

from ..files import TextFileError, small_text


class SettingsError(ValueError):
    """A config file that cannot be read, or a preset it does not hold."""


def config_path() -> Path:
    if os.environ.get("LIVECOMP_CONFIG"):
        return Path(os.environ["LIVECOMP_CONFIG"])
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "livecomp" / "config.toml"


TABLES = ("listen", "presets", "controls")


MAX_BYTES = 1 << 20                                 # a config file is a page of settings, not a disk


def _text(path: Path) -> str | None:
    """The config file's text (None where there is none): a regular file of at most MAX_BYTES
    of UTF-8 (``files.small_text``)."""
    try:
        return small_text(path, "the config file", MAX_BYTES)
    except FileNotFoundError:
        return None
    except TextFileError as exc:
        raise SettingsError(str(exc)) from None


def _tables(path: Path) -> dict | None:
    """The config file's tables (None where there is no file), each checked to be a table."""
    text = _text(path)
    return None if text is None else _parsed(text, path)


def _parsed(text: str, path: Path) -> dict:
    """The tables of the config file ``path`` whose text is ``text``, each checked to be a table."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"the config file {path} is not valid TOML ({exc}).") from None
    unknown = sorted(set(document) - set(TABLES))
    if unknown:
        raise SettingsError(f"the config file {path} holds [{unknown[0]}]; it may hold [listen], [presets.NAME] "
                            f"and [controls].")
    for name, table in document.items():
        if not isinstance(table, dict):
            raise SettingsError(f"[{name}] in the config file {path} must be a table of settings.")
    return document


def read_controls(path: Path | None = None) -> dict:
    """The ``[controls]`` table of the config file (control -> controller number, or "off")."""
    return (_tables(path or config_path()) or {}).get("controls", {})


def read_settings(preset: str | None = None, path: Path | None = None) -> dict:
    """The ``[listen]`` settings of the config file with ``preset``'s laid over them (name ->
    value as written); {} where there is no file and no preset was asked for."""
    path = path or config_path()
    document = _tables(path)
    if document is None:
        if preset is not None:
            raise SettingsError(f"there is no preset {preset!r}: the config file {path} does not exist.")
        return {}
    tables = {"[listen]": document.get("listen", {}), "[presets]": document.get("presets", {})}
    settings = dict(tables["[listen]"])
    if preset is not None:
        presets = tables["[presets]"]
        if preset in presets and not isinstance(presets[preset], dict):
            raise SettingsError(f"the preset {preset!r} in {path} must be a table of settings ([presets.{preset}]), "
                                f"not {presets[preset]!r}.")
        if preset not in presets:
            have = ", ".join(sorted(k for k, v in presets.items() if isinstance(v, dict))) or "none"
            raise SettingsError(f"there is no preset {preset!r} in {path} (its presets: {have}).")
        settings.update(presets[preset])
    return settings


def controls_table(controls: dict[str, object]) -> str:
    """``controls`` as the lines of a ``[controls]`` table."""
    return "\n".join(["[controls]"] + [f"{name} = {value}" if isinstance(value, int) else f'{name} = "{value}"'
                                       for name, value in controls.items()])


def controls_problem(path: Path | None = None) -> str | None:
    """Why ``write_controls`` could not keep a map in the config file, or None: asked before
    ``--learn``'s round, so no musician learns a map that cannot be kept."""
    from ..files import output_problem

    path = path or config_path()
    try:
        current = dict(read_controls(path))
    except SettingsError as exc:
        return str(exc)
    try:
        _edited(path, {**current, "learned": 0})      # a control added where the table is
    except SettingsError:
        return (f"the config file {path} holds its controls in a form livecomp does not rewrite (an inline or "
                f"dotted table): write them as a [controls] table, one control a line.")
    return output_problem(_target(path), "the config file")


def write_controls(controls: dict[str, object], path: Path | None = None) -> Path:
    """Keep ``controls`` (control -> controller number or "off") as the config file's
    ``[controls]`` table: the file's other lines stay as they are, and in its ``[controls]``
    table each value is changed in its own line (comments stay) and new ones are added after
    the last. A link is written through (the link stays) and the file keeps its mode; the write
    is atomic. Where the file holds controls in a form this cannot edit line by line (an inline
    or dotted table, a header inside a string), or the result would not read back as the same
    settings with the new map, nothing is written: a SettingsError gives the lines to add."""
    from ..files import atomic_write_bytes

    path = path or config_path()
    target, text = _edited(path, controls)
    atomic_write_bytes(target, text.encode("utf-8"))
    return path


def _edited(path: Path, controls: dict[str, object]) -> tuple[Path, str]:
    """The file to write and its new text, checked to read back as the file's settings with
    ``controls`` as its [controls]."""
    target = _target(path)
    text = _text(target) or ""
    document = _parsed(text, path)                  # a file that is not TOML is not written over
    edited = _edit_controls(text, controls, "controls" in document)
    try:
        same = edited is not None and tomllib.loads(edited) == {**document, "controls": dict(controls)}
    except tomllib.TOMLDecodeError:
        same = False
    if not same:
        raise SettingsError(f"the config file {path} holds its controls in a form livecomp does not rewrite; put "
                            f"these lines in place of them yourself:\n{controls_table(controls)}")
    return target, edited


def _target(path: Path) -> Path:
    """The file a config path names, through any links (so that writing keeps the link)."""
    return path.resolve() if path.is_symlink() else path


_HEADER = re.compile(r"^\s*\[\s*controls\s*\]\s*(#.*)?$")
_ENTRY = re.compile(r"^(\s*)([A-Za-z0-9_-]+)(\s*=\s*)(\d+|\"[^\"#]*\"|'[^'#]*')(\s*(#.*)?)$")


def _edit_controls(text: str, controls: dict[str, object], has_table: bool) -> str | None:
    """``text`` with its ``[controls]`` table set to ``controls`` line by line, or with one
    added at the end where it has none; None where its header is not one line of its own."""
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if _HEADER.match(line)] if has_table else []
    rendered = {name: (str(value) if isinstance(value, int) else f'"{value}"') for name, value in controls.items()}
    if not has_table:
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join(lines + ([""] if lines else []) + controls_table(controls).splitlines()) + "\n"
    if len(headers) != 1:
        return None
    start = headers[0] + 1
    end = next((i for i in range(start, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    done, last = set(), headers[0]
    for i in range(start, end):
        entry = _ENTRY.match(lines[i])
        if entry and entry.group(2) in rendered:
            indent, name, equals, _, comment = entry.group(1, 2, 3, 4, 5)
            lines[i] = f"{indent}{name}{equals}{rendered[name]}{comment}"
            done.add(name)
        if lines[i].strip():
            last = i
    added = [f"{name} = {value}" for name, value in rendered.items() if name not in done]
    lines[last + 1:last + 1] = added
    return "\n".join(lines) + "\n"
