"""Scoring a checkpoint on whole sequences with torch: NLL per frame (nats) and frame accuracy,
as defined in ``livecomp.model.scoring`` (which scores exported models the same way). For EnDeCell the
most likely frame is written greedily key by key on its own choices."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from livecomp.model.scoring import Tally, batches

from .corpus import Corpus
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


@torch.no_grad()
def evaluate(model, sequences: list[np.ndarray], device="cpu", max_frames: int = 16384,
             accuracy: bool = True) -> Scores:
    """Score ``sequences`` (each (T, 88) key states in the model's form) from the zero state."""
    accuracy = accuracy and hasattr(model, "predict")
    was_training = model.training
    model.eval()
    tally = Tally(accuracy)
    for frames, mask in batches(sequences, max_frames):
        x = torch.from_numpy(frames).to(device)
        logits, _ = model(x)
        ll = frame_log_likelihood(logits, x).double().cpu().numpy()        # (B, T)
        tally.add(ll, mask, frames, model.predict(x).cpu().numpy() if accuracy else None)
    model.train(was_training)
    result = tally.result()
    return Scores(nll=result["nll"], nll_after_first=result["nll_after_first"],
                  accuracy=float("nan") if result["accuracy"] is None else result["accuracy"],
                  frames=result["frames"], sequences=result["sequences"])


@torch.no_grad()
def sample_png(model, corpus: Corpus, key_states: int, window: int, path: Path, device) -> None:
    """Draw a validation excerpt (blue) and four bars the model samples after it (orange)."""
    from livecomp.music.image import save_roll_png
    from livecomp.music.roll import PianoRoll

    source = max(corpus.splits["valid"], key=lambda r: r.n_steps)
    primer = source.to_states(key_states)[:window]
    x = torch.from_numpy(primer.astype(np.int64)).unsqueeze(0).to(device)
    _, state = model(x)
    steps = 4 * source.steps_per_bar()
    gen = torch.Generator(device="cpu").manual_seed(0)
    noise = torch.rand((1, steps, 88), generator=gen).to(device)
    frames, _, _ = model.sample(state, noise, 1.0)
    n = len(primer)
    first = PianoRoll(np.vstack([primer, np.zeros((steps, 88), np.uint8)]), source.steps_per_beat,
                      meters=source.meters[:1])
    second = PianoRoll(np.vstack([np.zeros((n, 88), np.uint8), frames[0].cpu().numpy().astype(np.uint8)]),
                       source.steps_per_beat)
    save_roll_png(path, first, second=second, names=("data", "model"))
