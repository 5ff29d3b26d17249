"""Settings that stay: ``listen``'s options kept in a TOML file, with named presets.

The file is ``$LIVECOMP_CONFIG``, else ``config.toml`` in livecomp's folder of the platform's
user configuration (``$XDG_CONFIG_HOME/livecomp`` or ``~/.config/livecomp`` on Linux,
``~/Library/Application Support/livecomp`` on macOS, ``%APPDATA%\\livecomp`` on Windows). Its
``[listen]`` table holds options by their names on the command line (``in``, ``out``,
``model``, ``bpm``, ``channel``, ...); each ``[presets.NAME]`` table holds more, which
``--preset NAME`` lays over them, and ``[controls]`` maps the keyboard's controllers
(``livecomp.controls``). An option given on the command line wins over both::

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
import sys
import tomllib
from pathlib import Path


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


def _tables(path: Path) -> dict | None:
    """The config file's tables (None where there is no file), each checked to be a table."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read the config file {path} ({getattr(exc, 'strerror', None) or exc}).") from None
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
        if preset not in presets or not isinstance(presets[preset], dict):
            have = ", ".join(sorted(presets)) or "none"
            raise SettingsError(f"there is no preset {preset!r} in {path} (its presets: {have}).")
        settings.update(presets[preset])
    return settings


def write_controls(controls: dict[str, object], path: Path | None = None) -> Path:
    """Keep ``controls`` (control -> controller number or "off") as the config file's
    ``[controls]`` table: the file's other lines, comments included, stay as they are; an older
    ``[controls]`` table is replaced. Written atomically. Returns the file."""
    from .files import atomic_write_bytes

    path = path or config_path()
    _tables(path)                                   # a file that is not TOML is not written over
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept, inside = [], False
    for line in lines:
        header = line.strip().startswith("[")
        if header:
            inside = line.strip().split("#")[0].strip() == "[controls]"
        if not inside:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    table = ["[controls]"] + [f"{name} = {value}" if isinstance(value, int) else f'{name} = "{value}"'
                              for name, value in controls.items()]
    text = "\n".join(kept + ([""] if kept else []) + table) + "\n"
    tomllib.loads(text)                             # what is written reads back
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
