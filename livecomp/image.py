"""Piano-roll pictures: draw a roll as RGB pixels and write them as PNG (no imaging library needed)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from .files import atomic_write_bytes
from .roll import HELD, LOW_KEY, N_KEYS, PianoRoll

__all__ = ["render_roll", "write_png", "save_roll_png"]

BACKGROUND = (250, 250, 247)
BLACK_KEY_ROW = (236, 236, 232)
BAR_LINE = (170, 170, 170)
HELD_COLOUR = (96, 140, 214)
STRUCK_COLOUR = (20, 52, 140)
SECOND_PART = ((226, 140, 74), (160, 70, 10))  # held, struck colours of a second part (e.g. an answer)
_BLACK_PITCH_CLASSES = {1, 3, 6, 8, 10}


def render_roll(roll: PianoRoll, px_per_step: int = 4, px_per_key: int = 4,
                second: PianoRoll | None = None) -> np.ndarray:
    """RGB image, shape ``(88 * px_per_key, steps * px_per_step, 3)``, high keys at the top.

    Attacks are drawn darker than held steps; bar lines are one-pixel grey verticals behind the notes. An
    optional ``second`` roll (same grid) is drawn over the first in another colour.
    """
    n_steps = max(roll.n_steps, second.n_steps if second is not None else 0, 1)
    img = np.empty((N_KEYS, n_steps, 3), np.uint8)
    img[:] = BACKGROUND
    for key in range(N_KEYS):
        if (LOW_KEY + key) % 12 in _BLACK_PITCH_CLASSES:
            img[key] = BLACK_KEY_ROW
    layers = [(roll, HELD_COLOUR, STRUCK_COLOUR)]
    if second is not None:
        layers.append((second, *SECOND_PART))
    for part, held, struck in layers:
        frames = part.frames.T                             # (88, steps)
        on = np.zeros((N_KEYS, n_steps), bool)
        on[:, :frames.shape[1]] = frames >= HELD
        img[on] = held
        attack = np.zeros_like(on)
        attack[:, :frames.shape[1]] = part.onsets().T
        img[attack] = struck
    img = np.repeat(np.repeat(img[::-1], px_per_key, axis=0), px_per_step, axis=1)   # high keys on top
    for bar in roll.bar_starts():
        column = img[:, bar * px_per_step]
        empty = (column == BACKGROUND).all(-1) | (column == BLACK_KEY_ROW).all(-1)
        column[empty] = BAR_LINE
    return img


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an ``(height, width, 3)`` uint8 array as an 8-bit RGB PNG, atomically."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width, channels = rgb.shape
    if channels != 3:
        raise ValueError(f"expected 3 colour channels, got {channels}")

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = np.hstack([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)])  # filter 0 per row
    data = (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))
    atomic_write_bytes(path, data)


def save_roll_png(path: str | Path, roll: PianoRoll, second: PianoRoll | None = None) -> None:
    """Draw ``roll`` (and an optional ``second`` part) and write it to ``path`` as PNG.

    A step is 16 pixels wide for one quarter note, so grids of any resolution draw at one scale
    (at least 1 pixel a step)."""
    write_png(path, render_roll(roll, px_per_step=max(1, 16 // roll.steps_per_beat), second=second))
