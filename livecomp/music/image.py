"""Piano-roll pictures: draw a roll as RGB pixels and write them as PNG (no imaging library needed).

A saved picture reads on its own: each C is labelled on the left (C1 ... C8, C4 the middle C),
bars are numbered along the top, and a legend below says whose notes each colour is."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from .roll import HELD, LOW_KEY, N_KEYS, PianoRoll

__all__ = ["render_roll", "label", "write_png", "save_roll_png"]

BACKGROUND = (250, 250, 247)
BLACK_KEY_ROW = (236, 236, 232)
BAR_LINE = (170, 170, 170)
HELD_COLOUR = (96, 140, 214)
STRUCK_COLOUR = (20, 52, 140)
SECOND_PART = ((226, 140, 74), (160, 70, 10))  # held, struck colours of a second part (e.g. an answer)
TEXT = (90, 90, 90)
_BLACK_PITCH_CLASSES = {1, 3, 6, 8, 10}

# A 3x5 pixel font for the labels: each glyph five rows of three bits, drawn twice the size.
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", "A": "010101111101101", "B": "110101110101110",
    "C": "011100100100011", "D": "110101101101110", "E": "111100110100111", "I": "111010010010111",
    "L": "100100100100111", "M": "111111101101101", "N": "110101101101101", "O": "111101101101111",
    "P": "111101111100100", "R": "110101110101101", "S": "011100010001110", "U": "101101101101111",
    "T": "111010010010010", "V": "101101101101010", " ": "000000000000000",
}
_SCALE = 2
_ADVANCE = 4 * _SCALE                       # a glyph and its space
_TEXT_H = 5 * _SCALE
LEFT, TOP, BOTTOM = 26, 14, 16              # margins of a saved picture, in pixels


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


def _text(img: np.ndarray, x: int, y: int, text: str, colour=TEXT) -> None:
    """Draw ``text`` (the font's characters) with its top left corner at (x, y), clipped."""
    for i, char in enumerate(text.upper()):
        bits = np.array([b == "1" for b in _GLYPHS.get(char, _GLYPHS[" "])]).reshape(5, 3)
        glyph = np.kron(bits, np.ones((_SCALE, _SCALE), bool))
        gx = x + i * _ADVANCE
        y0, x0 = max(y, 0), max(gx, 0)
        y1, x1 = min(y + glyph.shape[0], img.shape[0]), min(gx + glyph.shape[1], img.shape[1])
        if y1 > y0 and x1 > x0:
            img[y0:y1, x0:x1][glyph[y0 - y:y1 - y, x0 - gx:x1 - gx]] = colour


def label(plot: np.ndarray, roll: PianoRoll, px_per_step: int, px_per_key: int,
          names: tuple[str, ...] = ()) -> np.ndarray:
    """``plot`` (as ``render_roll`` draws it) with margins: each C named on the left at its row,
    each bar numbered at its line along the top (every second, fourth, ... where bars are too
    narrow for their numbers), and below, a swatch and a name for each part drawn."""
    height, width, _ = plot.shape
    img = np.empty((TOP + height + BOTTOM, LEFT + width, 3), np.uint8)
    img[:] = BACKGROUND
    img[TOP:TOP + height, LEFT:] = plot
    for pitch in range(LOW_KEY, LOW_KEY + N_KEYS):
        if pitch % 12 == 0:
            row = TOP + (LOW_KEY + N_KEYS - 1 - pitch) * px_per_key + px_per_key // 2
            _text(img, 2, row - _TEXT_H // 2, f"C{pitch // 12 - 1}")
    bars = roll.bar_starts()
    widest = len(str(len(bars))) * _ADVANCE + 4
    gaps = [b - a for a, b in zip(bars, bars[1:])] or [roll.n_steps or 1]
    every = 1
    while every * min(gaps) * px_per_step < widest:
        every *= 2
    for number, bar in enumerate(bars, start=1):
        if (number - 1) % every == 0:
            _text(img, LEFT + bar * px_per_step + 2, 2, str(number))
    x = LEFT
    for name, colour in zip(names, (STRUCK_COLOUR, SECOND_PART[1])):
        img[TOP + height + 3:TOP + height + 3 + _TEXT_H, x:x + _TEXT_H] = colour
        _text(img, x + _TEXT_H + 4, TOP + height + 3, name)
        x += _TEXT_H + 4 + len(name) * _ADVANCE + 12
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


def save_roll_png(path: str | Path, roll: PianoRoll, second: PianoRoll | None = None,
                  names: tuple[str, ...] = ()) -> None:
    """Draw ``roll`` (and an optional ``second`` part), label it, and write it to ``path`` as PNG;
    ``names``: what each part is, for the legend (none drawn without them).

    A step is 16 pixels wide for one quarter note, so grids of any resolution draw at one scale
    (at least 1 pixel a step)."""
    px_per_step = max(1, 16 // roll.steps_per_beat)
    if second is not None and second.n_steps > roll.n_steps:     # bar lines and numbers under all of it
        padded = np.zeros((second.n_steps, roll.frames.shape[1]), np.uint8)
        padded[:roll.n_steps] = roll.frames
        roll = dataclasses.replace(roll, frames=padded)
    plot = render_roll(roll, px_per_step=px_per_step, second=second)
    write_png(path, label(plot, roll, px_per_step, 4, names))
