"""Checkpoints: plain state dicts with their JSON metadata, written atomically, loaded with
``torch.load(weights_only=True)``.

A run folder holds ``config.json`` (the run's settings), ``last.pt`` (everything needed to
resume: weights, optimizer, RNG states, position in the epoch), ``best.pt`` and ``best.json``
(the weights with the best validation NLL and a readable copy of their metadata), ``best.png``
(a sampled continuation of a validation excerpt) and ``log.jsonl`` (one line per validation).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from livecomp.files import atomic_write_bytes

from .models import build_model, config_from_dict

__all__ = ["CheckpointError", "save_checkpoint", "read_checkpoint", "load_model", "load_ensemble", "checkpoint_file"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, damaged, or of another architecture."""


def save_checkpoint(path: Path, tensors: dict, meta: dict) -> None:
    """Write tensors (state dicts, RNG state) and JSON metadata as one file, atomically."""
    buf = io.BytesIO()
    torch.save({**tensors, "meta": json.dumps(meta)}, buf)
    atomic_write_bytes(path, buf.getvalue())


def checkpoint_file(path: str | Path) -> Path:
    """A run folder means its best checkpoint; a file is taken as it is."""
    path = Path(path)
    return path / "best.pt" if path.is_dir() else path


def read_checkpoint(path: str | Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a checkpoint file or run folder.

    Raises:
        CheckpointError: missing, unreadable, or without livecomp metadata.
    """
    file = checkpoint_file(path)
    if not file.exists():
        if Path(path).is_dir() and (Path(path) / "model.json").is_file():
            raise CheckpointError(f"{path} is an exported model folder, not a training run: give the run folder (or "
                                  f"its .pt file) it was exported from.")
        raise CheckpointError(f"{file} does not exist.")
    try:
        blob = torch.load(file, map_location="cpu", weights_only=True)
        meta = json.loads(blob.pop("meta"))
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise CheckpointError(f"{file} is not a readable livecomp checkpoint ({type(exc).__name__}).") from None
    return blob, meta


def load_model(path: str | Path, architecture: str | None = None, mix_shifts: int | None = None):
    """Rebuild the model of a checkpoint from its metadata alone: (model in eval mode, metadata).
    ``mix_shifts`` (basic RNN): run its weights as the mixture of copies transposed by that many
    semitones either way (``BasicConfig.mix_shifts``) instead of as trained; the metadata says so.

    Raises:
        CheckpointError: as ``read_checkpoint``; of another architecture than ``architecture``;
            or weights that do not fit the architecture its metadata names.
    """
    tensors, meta = read_checkpoint(path)
    arch = meta["model"]["architecture"]
    if architecture is not None and arch != architecture:
        raise CheckpointError(f"{checkpoint_file(path)} holds a model of architecture {arch!r}, not the "
                              f"{architecture!r} model asked for.")
    if mix_shifts is not None:
        if arch != "basic":
            raise CheckpointError(f"{checkpoint_file(path)} holds a model of architecture {arch!r}: a mixture of "
                                  "transposed "
                                  "copies is a basic RNN's.")
        if mix_shifts < 0:
            raise CheckpointError(f"a mixture of copies transposed by {mix_shifts} semitones either way: give 0 or "
                                  "more.")
        meta = {**meta, "model": {**meta["model"], "mix_shifts": mix_shifts}}
    try:
        model = build_model(config_from_dict(meta["model"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{checkpoint_file(path)} describes a model that cannot be built ({exc})") from None
    try:
        model.load_state_dict(tensors["model"])
    except (RuntimeError, KeyError):
        raise CheckpointError(f"the weights in {checkpoint_file(path)} do not fit the {arch} model "
                              "its metadata describes.") from None
    return model.eval(), meta


def load_ensemble(paths: list[str | Path], architecture: str | None = None):
    """Several EnDeCell runs as one model (``models.ensemble.Ensemble``: each key's conditional
    the mean of theirs): (model in eval mode, the first run's metadata with ``ensemble``, the
    runs, added). One path is that run alone, as ``load_model`` gives it.

    Raises:
        CheckpointError: as ``load_model``; a run that is not EnDeCell, or runs that differ in
            key states, chunk, lookback, time layers or training data.
    """
    from .models.ensemble import Ensemble

    loaded = [load_model(path, architecture) for path in paths]
    if len(loaded) == 1:
        return loaded[0]
    for path, (_, meta) in zip(paths, loaded):
        if meta["model"]["architecture"] != "endecell":
            raise CheckpointError(f"{checkpoint_file(path)} holds a {meta['model']['architecture']!r} model: an "
                                  "ensemble averages EnDeCell runs.")
        if (meta["train"]["data"], meta.get("steps_per_beat", 4)) != \
                (loaded[0][1]["train"]["data"], loaded[0][1].get("steps_per_beat", 4)):
            raise CheckpointError(f"{checkpoint_file(path)} was trained on {meta['train']['data']}, "
                                  f"{checkpoint_file(paths[0])} on {loaded[0][1]['train']['data']}: an ensemble's runs "
                                  "learn from the same data on the same grid.")
    try:
        model = Ensemble([m for m, _ in loaded])
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    runs = [{"checkpoint": str(checkpoint_file(p)), "seed": m["train"].get("seed"), "epoch": m.get("epoch"),
             "seconds": m.get("wall_s") or m.get("trained_s")} for p, (_, m) in zip(paths, loaded)]
    meta = {**loaded[0][1], "ensemble": runs}
    return model.eval(), meta


def init_from(model, run: str) -> None:
    """Start a fresh run from another run's kept weights (its best.pt): a basic RNN from a basic
    RNN of the same sizes (to train on with a new schedule, or on other data); an EnDeCell from a
    pre-trained autoencoder's encoder and decoder, or from a whole EnDeCell of the same sizes. A
    lookback the other EnDeCell lacks starts unused (its decoder input weights zero), so the new
    model begins as the old one and learns to use it."""
    from .models import EnDeCell

    if not isinstance(model, EnDeCell):
        source, _ = load_model(run, model.cfg.architecture)
        theirs, own = source.state_dict(), model.state_dict()
        misfits = [k for k in own if k not in theirs or own[k].shape != theirs[k].shape]
        if misfits:
            raise CheckpointError(f"the model in {run} does not fit this one ({misfits[0]}): pass the same "
                                "--hidden, --layers, --neighbour-keys and --key-states.")
        model.load_state_dict(theirs)
        return
    try:
        source, _ = load_model(run, "autoencoder")
        pretrained = source.pretrained_state()
    except CheckpointError:
        source, _ = load_model(run, "endecell")
        pretrained = source.state_dict()
    own = model.state_dict()
    extra = "decoder.weight_ih_l0"
    if (model.cfg.lookback and extra in pretrained and own[extra].shape[0] == pretrained[extra].shape[0]
            and own[extra].shape[1] > pretrained[extra].shape[1]):
        grown = torch.zeros_like(own[extra])
        grown[:, :pretrained[extra].shape[1]] = pretrained[extra]             # the lookback columns come last
        pretrained = {**pretrained, extra: grown}
    per_key = model.cfg.chunk * model.cfg.key_states
    if model.link is not None and "head.weight" in pretrained and pretrained["head.weight"].shape[0] == per_key:
        from .models.joint import joint_head  # keys drawn alone -> the same draw as joint groups
        weight, bias = joint_head(pretrained["head.weight"], pretrained["head.bias"], model.cfg)
        pretrained = {**pretrained, "head.weight": weight, "head.bias": bias}
    misfits = [k for k, v in pretrained.items() if k not in own or own[k].shape != v.shape]
    if misfits:
        raise CheckpointError(f"the model in {run} does not fit this one ({misfits[0]}): pass the same "
                            "--chunk, --enc-hidden, --dec-hidden, --hidden, --key-states and --encoder-skip.")
    model.load_state_dict(pretrained, strict=False)
