"""Scoring a model on whole sequences, the same way for a checkpoint (torch, ``training``) and an
exported model (onnxruntime, ``engine.score``): NLL per frame (nats) and frame accuracy.

NLL per frame is the mean, over every predicted frame of every sequence, of the negative
log-likelihood of that frame summed over the 88 keys (88 ln 2 = 61.00 for a coin flip). The
first frame of each sequence is predicted from the zero state ("nothing heard yet"); the
``nll`` figure counts it, ``nll_after_first`` leaves it out, since some papers score only
frames that have a history.

Frame accuracy (Bay et al. 2009) is TP / (TP + FP + FN), counts summed over all frames, where
the prediction of each frame is the model's most likely frame given the true history and a key
counts as on when its state is not off.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..music.roll import N_KEYS


def batches(sequences: list[np.ndarray], max_frames: int = 16384) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The sequences in batches of similar length, at most ``max_frames`` padded frames each:
    (frames (B, T, 88) int64, mask (B, T) of the frames that are real)."""
    lengths = [len(s) for s in sequences]
    order = np.argsort(lengths)[::-1]

    def padded(idx: list[int]):
        T = lengths[idx[0]]
        frames = np.zeros((len(idx), T, N_KEYS), np.int64)
        mask = np.zeros((len(idx), T), bool)
        for row, i in enumerate(idx):
            frames[row, :lengths[i]] = sequences[i]
            mask[row, :lengths[i]] = True
        return frames, mask

    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * lengths[batch[0]] > max_frames:
            yield padded(batch)
            batch = []
        batch.append(int(i))
    if batch:
        yield padded(batch)


class Tally:
    """Sums over batches, then the scores (``result``)."""

    def __init__(self, accuracy: bool = True):
        self.accuracy = accuracy
        self.nll = self.first = 0.0
        self.tp = self.fp = self.fn = 0
        self.frames = self.sequences = 0

    def add(self, ll: np.ndarray, mask: np.ndarray, frames: np.ndarray, predicted: np.ndarray | None = None) -> None:
        """One batch: ``ll`` (B, T) log-likelihood of each frame, ``mask`` (B, T), the true
        ``frames`` (B, T, 88) and, for accuracy, the most likely frames (B, T, 88)."""
        ll = np.asarray(ll, np.float64)
        self.nll -= float(ll[mask].sum())
        self.first -= float(ll[:, 0].sum())
        self.frames += int(mask.sum())
        self.sequences += len(mask)
        if self.accuracy and predicted is not None:
            pred, true, m = predicted > 0, frames > 0, mask[..., None]
            self.tp += int((pred & true & m).sum())
            self.fp += int((pred & ~true & m).sum())
            self.fn += int((~pred & true & m).sum())

    def result(self) -> dict:
        n, k = self.frames, self.sequences
        return {"nll": self.nll / n, "nll_after_first": (self.nll - self.first) / max(n - k, 1),
                "accuracy": self.tp / max(self.tp + self.fp + self.fn, 1) if self.accuracy else None,
                "frames": n, "sequences": k}
