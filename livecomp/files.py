"""Writing files so that a reader never sees half of one (temporary file, fsync, rename), and
reading the small text files a user writes (a config file, a recipe) without hanging or
drowning on the wrong kind of file."""

from __future__ import annotations

import io
import math
import os
import tempfile
from pathlib import Path

import mido

__all__ = ["atomic_write_bytes", "finite", "output_problem", "same_file", "save_midi", "small_text", "TextFileError"]


def finite(value):
    """``value`` with every NaN or infinite float replaced by None, so that ``json.dumps`` writes
    strict JSON (which has no NaN) that every parser reads."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never a half-written file.
    An OSError names ``path``, never the temporary file."""
    path = Path(path)
    try:
        _write(path, data)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


def output_problem(path: str | Path, flag: str, replace: bool = True) -> str | None:
    """One sentence saying why ``path`` cannot be written as the output file of ``flag``, or
    None when it can: checked before a command does its work, so no work is lost to a typo.
    ``replace=False``: an existing file is a problem too (a recording is never overwritten)."""
    path = Path(path)
    if path.is_dir():
        return f"{flag} {path} is a folder; give a file's path."
    if path.exists() and not replace:
        return f"{flag} {path} already exists; give a new name (nothing is written over it)."
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent                          # the folders to make are made in the first that exists
    if not folder.is_dir():
        return f"{flag} {path}: {folder} is a file, not a folder."
    try:
        fd, probe = tempfile.mkstemp(prefix=".livecomp-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"{flag} {path}: cannot write in {folder} ({exc.strerror or exc})."
    return None


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: the same file where both exist (links included), the
    same resolved path where either is yet to be written."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        try:                                            # a file replaced keeps its mode
            mode = path.stat().st_mode & 0o7777
        except OSError:                                 # a new one as open() would create it, not mkstemp's 0600
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_midi(path: str | Path, mid: mido.MidiFile) -> None:
    """Write a MIDI file atomically."""
    buf = io.BytesIO()
    mid.save(file=buf)
    atomic_write_bytes(path, buf.getvalue())


class TextFileError(ValueError):
    """A small text file that cannot be read, in one sentence."""


def small_text(path: str | Path, what: str, max_bytes: int) -> str:
    """The text of ``what`` ("the config file", "the recipe") at ``path``: a regular file of at
    most ``max_bytes`` of UTF-8, a byte-order mark allowed. A FIFO or a device is refused, not
    read for ever; a missing file raises FileNotFoundError, for the caller to say what that means.

    Raises:
        TextFileError: not a regular file, too large, unreadable, or not UTF-8.
    """
    path = Path(path)
    try:
        if not path.exists():
            raise FileNotFoundError(path)
        if not path.is_file():
            raise TextFileError(f"{what} {path} is not a regular file; give a TOML file's path.")
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise TextFileError(f"cannot read {what} {path} ({exc.strerror or exc}).") from None
    if len(raw) > max_bytes:
        size = f"{max_bytes >> 20} MiB" if max_bytes >= 1 << 20 else f"{max_bytes >> 10} KiB"
        raise TextFileError(f"{what} {path} is larger than {size}; it holds a few settings.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TextFileError(f"cannot read {what} {path} (not UTF-8 text: {exc.reason} at byte {exc.start}).") from None
