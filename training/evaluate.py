"""Scoring a model on whole sequences: NLL per frame (nats) and frame accuracy.

NLL per frame is the mean, over every predicted frame of every sequence, of the negative
log-likelihood of that frame summed over the 88 keys (88 ln 2 = 61.00 for a coin flip). The
first frame of each sequence is predicted from the zero state ("nothing heard yet"); the
``nll`` figure counts it, ``nll_after_first`` leaves it out, since some papers score only
frames that have a history.

Frame accuracy (Bay et al. 2009) is TP / (TP + FP + FN), counts summed over all frames, where
the prediction of each frame is the model's most likely frame given the true history (for
EnDeCell written greedily key by key on its own choices) and a key counts as on when its
state is not off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .models.common import frame_log_likelihood


@dataclass
class Scores:
    nll: float                 # nats per frame, every frame
    nll_after_first: float     # nats per frame, first frame of each sequence left out
    accuracy: float            # TP / (TP + FP + FN)
    frames: int
    sequences: int

    def as_dict(self) -> dict:
        return asdict(self)


def _batches(lengths: list[int], max_frames: int):
    """Indices of sequences grouped by similar length, at most ``max_frames`` padded frames each."""
    order = np.argsort(lengths)[::-1]
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * lengths[batch[0]] > max_frames:
            yield batch
            batch = []
        batch.append(int(i))
    if batch:
        yield batch


@torch.no_grad()
def evaluate(model, sequences: list[np.ndarray], device="cpu", max_frames: int = 16384,
             accuracy: bool = True) -> Scores:
    """Score ``sequences`` (each (T, 88) key states in the model's form) from the zero state."""
    accuracy = accuracy and hasattr(model, "predict")
    was_training = model.training
    model.eval()
    lengths = [len(s) for s in sequences]
    nll_sum = first_sum = 0.0
    tp = fp = fn = 0
    for idx in _batches(lengths, max_frames):
        T = lengths[idx[0]]
        frames = np.zeros((len(idx), T, 88), np.int64)
        mask = np.zeros((len(idx), T), bool)
        for row, i in enumerate(idx):
            frames[row, :lengths[i]] = sequences[i]
            mask[row, :lengths[i]] = True
        x = torch.from_numpy(frames).to(device)
        m = torch.from_numpy(mask).to(device)
        logits, _ = model(x)
        ll = frame_log_likelihood(logits, x)                       # (B, T)
        nll_sum += -ll[m].double().sum().item()
        first_sum += -ll[:, 0].double().sum().item()
        if accuracy:
            pred = model.predict(x) > 0
            true = x > 0
            mm = m.unsqueeze(-1)
            tp += (pred & true & mm).sum().item()
            fp += (pred & ~true & mm).sum().item()
            fn += (~pred & true & mm).sum().item()
    model.train(was_training)
    n, k = sum(lengths), len(sequences)
    return Scores(
        nll=nll_sum / n,
        nll_after_first=(nll_sum - first_sum) / max(n - k, 1),
        accuracy=tp / max(tp + fp + fn, 1) if accuracy else float("nan"),
        frames=n,
        sequences=k,
    )
