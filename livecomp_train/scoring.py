"""What `livecomp eval` computes: a checkpoint (torch, ``evaluate``) or an exported model folder
(onnxruntime, ``livecomp.model.engine.score``) scored on a split of a corpus, NLL per frame and
frame accuracy. Scoring a folder needs no torch, so a runtime install can score its models."""

from __future__ import annotations

from pathlib import Path

from .data import load_corpus


class EvalError(ValueError):
    """A corpus, split or model that cannot be scored together, said in one sentence."""


SPLITS = ("train", "valid", "test")


def same_grid(corpus, data, steps_per_beat: int, key_states: int, what) -> str | None:
    """A model is scored only on data of its own grid (``EvalError`` otherwise). Returns a note
    for a 3-state model scored on pitch lists, whose attacks are inferred, else None."""
    if corpus.steps_per_beat != steps_per_beat:
        raise EvalError(f"{data} is on a grid of {corpus.steps_per_beat} step(s) per beat and {what} on "
                        f"{steps_per_beat}: score it on data of its own grid (a MIDI folder is converted to it).")
    if key_states == 3 and not all(Path(part).is_dir() for part in str(data).split(",") if part):
        return (f"{data} holds pitch lists, which carry no attacks: a key that stays down is read as held, so the "
                f"struck/held split of this 3-state model is scored on inferred attacks.")
    return None


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise EvalError(f"--split must be train, valid or test, not {split!r}.")


def _sequences(corpus, data, split: str, key_states: int) -> list:
    sequences = corpus.sequences(split, key_states)
    if not sequences:
        raise EvalError(f"{data} has no {split} split.")
    return sequences


def score_checkpoint(checkpoint: Path, data: str | None, split: str, architecture: str | None, device: str,
                     mix_shifts: int | None = None, ensemble: list[Path] = ()) -> tuple[dict, str | None]:
    """(scores, note) of a checkpoint (a run folder or .pt), with ``ensemble`` runs averaged in
    or its weights as a mixture of ``mix_shifts`` transposed copies, on ``data`` (default: its
    training data). Raises ``EvalError``, ``CheckpointError``, ``CorpusError`` or ``TrainingError``."""
    from .checkpoint import load_ensemble, load_model
    from .evaluate import evaluate
    from .train import pick_device

    _check_split(split)
    if ensemble and mix_shifts is not None:
        raise EvalError("--mix-shifts is a basic RNN's and --with averages EnDeCell runs: give one of them.")
    if ensemble:
        net, meta = load_ensemble([checkpoint, *ensemble], architecture)
    else:
        net, meta = load_model(checkpoint, architecture, mix_shifts)
    dev = pick_device(device)
    data = data or meta["train"]["data"]
    spb, key_states = meta.get("steps_per_beat", 4), meta["model"]["key_states"]
    corpus = load_corpus(data, spb, progress=False)
    note = same_grid(corpus, data, spb, key_states, checkpoint)
    scores = evaluate(net.to(dev), _sequences(corpus, data, split, key_states), dev).as_dict()
    return ({"checkpoint": str(checkpoint), "architecture": meta["model"]["architecture"], "data": data,
             "split": split, **({"runs": len(meta["ensemble"])} if meta.get("ensemble") else {}), **scores}, note)


def score_folder(engine, data: str | None, split: str, architecture: str | None) -> tuple[dict, str | None]:
    """(scores, note) of an exported model loaded as ``engine`` (``livecomp.model.engine.Engine``)
    on ``data`` (default: the corpus its model.json names). Raises ``EvalError``, ``CorpusError``
    or ``ModelError``."""
    from livecomp.model.engine import score

    _check_split(split)
    if architecture is not None and engine.architecture != architecture:
        raise EvalError(f"{engine.folder} holds a model of architecture {engine.architecture!r}, not the "
                        f"{architecture!r} model asked for.")
    data = data or engine.info.get("training", {}).get("corpus")
    if not data:
        raise EvalError(f"{engine.folder}/model.json names no training corpus: pass --data.")
    corpus = load_corpus(data, engine.steps_per_beat, progress=False)
    note = same_grid(corpus, data, engine.steps_per_beat, engine.key_states, engine.folder)
    scores = score(engine, _sequences(corpus, data, split, engine.key_states))
    return ({"model": str(engine.folder), "architecture": engine.architecture, "data": data, "split": split,
             "provider": engine.provider_used, **scores}, note)
