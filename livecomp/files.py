"""Writing files so that a reader never sees half of one: temporary file, fsync, rename."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import mido

__all__ = ["atomic_write_bytes", "save_midi"]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())               # as open() would create it, not mkstemp's 0600
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
