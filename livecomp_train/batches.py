"""Training windows cut from a corpus's rolls, their transposition, and the order of an epoch."""

from __future__ import annotations

import numpy as np

from livecomp.music.roll import N_KEYS, PianoRoll


def make_windows(rolls: list[PianoRoll], length: int, hop_bars: int = 1,
                 key_states: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut rolls into windows of ``length`` steps that start on bar lines.

    A window starts on every ``hop_bars``-th bar line from which a full window
    fits; a roll shorter than ``length`` gives one window from its start,
    zero-padded. Returns ``windows`` (N, length, 88) uint8 in the ``key_states``
    form, ``lengths`` (N,) int64, the number of real steps in each, and ``starts``
    (N,) int64, the step of the song each window starts at.
    """
    windows, lengths, starts_out = [], [], []
    for roll in rolls:
        frames = roll.to_states(key_states)
        if roll.n_steps <= length:
            pad = np.zeros((length, N_KEYS), np.uint8)
            pad[:roll.n_steps] = frames
            windows.append(pad)
            lengths.append(roll.n_steps)
            starts_out.append(0)
            continue
        starts = [s for s in roll.bar_starts()[::hop_bars] if s + length <= roll.n_steps]
        for s in starts or [0]:
            windows.append(frames[s:s + length])
            lengths.append(length)
            starts_out.append(s)
    if not windows:
        return np.zeros((0, length, N_KEYS), np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.stack(windows), np.asarray(lengths, np.int64), np.asarray(starts_out, np.int64)


def transpose_batch(batch: np.ndarray, max_semitones: int, rng: np.random.Generator) -> np.ndarray:
    """Shift each window of ``batch`` (B, T, 88) by a random number of semitones in
    ``[-max_semitones, max_semitones]``, chosen among the shifts that keep every
    sounding key on the piano."""
    if max_semitones <= 0:
        return batch
    out = np.zeros_like(batch)
    active = batch.any(axis=1)                                   # (B, 88)
    for i in range(batch.shape[0]):
        keys = np.flatnonzero(active[i])
        low = -max_semitones if not keys.size else max(-max_semitones, -int(keys[0]))
        high = max_semitones if not keys.size else min(max_semitones, N_KEYS - 1 - int(keys[-1]))
        shift = int(rng.integers(low, high + 1))
        if shift >= 0:
            out[i, :, shift:] = batch[i, :, :N_KEYS - shift]
        else:
            out[i, :, :shift] = batch[i, :, -shift:]
    return out


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """A permutation of ``n`` windows for one epoch: windows of all songs mixed,
    the same for the same (seed, epoch), so a resumed run sees the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(n)
