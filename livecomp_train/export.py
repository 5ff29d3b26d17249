"""Export a checkpoint as a model folder: model.json, encode.onnx, advance.onnx, bar.onnx and
step.onnx.

The folder follows the exported-model contract (docs/model-format.md), with ``advance.onnx``: encode
without the logits, the graph a listener runs every step (see docs/models.md), and
``step.onnx``: bar.onnx's sampler for one step, which ``--mode duet`` runs every step.
bar.onnx is one beat's sampler run once a beat by an ONNX Loop (``onnx_graphs.looped``), so that
onnxruntime prepares it in a fraction of a second.

The folder is built in a temporary sibling and moved into place only after it has checked
itself with onnxruntime against torch:

- the log-likelihood of the training corpus's validation split agrees within
  ``NLL_TOLERANCE`` nats per frame;
- for the same noise, bar.onnx returns exactly the frames of the torch sampler (noise that
  lands within ``TIE_MARGIN`` of a CDF boundary, where float rounding decides the draw, is
  redrawn for the check);
- step.onnx writes the first step bar.onnx writes for the same noise, and leaves the state
  encode.onnx leaves after it;
- model.json carries the training facts and the held-out scores, computed through onnxruntime.

A failed check raises ``ExportError`` and leaves no folder behind.

Re-exported over an older export of a model, the new model.json keeps what was measured or chosen
for that model rather than made by the export (``KEPT``): the floors and the repeat gate, which
``bench/musicality.py`` measures on the training data (kept where the run learnt from the same
data on the same grid), and the specialists. The card's figures (``musicality``) are not kept:
they describe the answers of the weights replaced.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from pathlib import Path

from livecomp import __version__
from livecomp.files import atomic_write_bytes
from livecomp.model.engine import Engine, score
from livecomp.model.folder import FORMAT, ModelError

from .checkpoint import load_ensemble, load_model
from .checks import ExportError, check_sampler, check_step
from .data import load_corpus
from .evaluate import evaluate
from .models.common import N_KEYS
from .onnx_graphs import BEATS_PER_BAR, export_graphs

NLL_TOLERANCE = 1e-4
# model.json's parts an export does not make, kept from the older export it replaces: measured on
# the training data (kept where the new run learnt from the same data, on the same grid), or chosen
KEPT = {"fit_floors": "data", "repeat_gate": "data", "specialists": "chosen"}


def export(checkpoint: str | Path, out: str | Path, name: str | None = None, progress=print,
           corpus_licence: str | None = None, data: str | None = None, mix_shifts: int | None = None,
           ensemble: list[str | Path] = (), candidates: int | None = None) -> dict:
    """Export ``checkpoint`` (run folder or .pt file) to the model folder ``out``; returns model.json.
    ``corpus_licence`` names the training data's licence on the model's card; ``data`` is where
    the training corpus is now, when the run was trained with a relative path elsewhere;
    ``mix_shifts`` exports a basic RNN's weights as that mixture of transposed copies;
    ``ensemble`` names further EnDeCell runs whose conditionals are averaged with the
    checkpoint's key by key (``models.ensemble``); ``candidates``: the candidate bars live
    playing samples per answer bar by default with this model (model.json ``candidates``; none
    written: the runtime's default)."""
    out = Path(out)
    # before the work, so a refusal costs nothing; an older export there is read for what it keeps
    older = json.loads((out / "model.json").read_text()) if check_out(out) else None
    if ensemble:
        if mix_shifts is not None:
            raise ExportError("--mix-shifts is a basic RNN's and an ensemble averages EnDeCell runs: give one of them.")
        model, meta = load_ensemble([checkpoint, *ensemble])
    else:
        model, meta = load_model(checkpoint, mix_shifts=mix_shifts)
    if meta["model"]["architecture"] not in ("basic", "endecell"):
        raise ExportError(f"{checkpoint} holds a {meta['model']['architecture']} model; export takes basic or "
                          "endecell.")
    spb = int(meta.get("steps_per_beat", 4))
    steps_per_bar = spb * BEATS_PER_BAR
    key_states = int(meta["model"]["key_states"])
    train_cfg = dict(meta["train"])
    if data is not None:
        train_cfg["data"] = data
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        parameters = sum(p.numel() for p in model.parameters())
        progress(f"exporting {meta['model']['architecture']} ({parameters:,} parameters) to ONNX")
        files = export_graphs(model, tmp, steps_per_bar, meta["model"]["architecture"])
        model.eval()
        info = {
            "format": FORMAT,
            "name": name or out.name,
            "architecture": meta["model"]["architecture"],
            "key_states": key_states,
            "low_key": 21,
            "n_keys": N_KEYS,
            "steps_per_beat": spb,
            "beats_per_bar": BEATS_PER_BAR,
            "steps_per_bar": steps_per_bar,
            "bar_steps": steps_per_bar,
            "state": [{"name": n, "shape": list(s)} for n, s in model.state_shapes()],
            "files": files,
            "parameters": parameters,
        }
        if candidates is not None:
            info["candidates"] = int(candidates)
        if meta["model"].get("mix_shifts"):
            info["mix_shifts"] = int(meta["model"]["mix_shifts"])    # frames are drawn from transposed copies
        if meta.get("ensemble"):
            info["ensemble"] = len(meta["ensemble"])                  # runs whose conditionals are averaged
        if older is not None:
            info.update(_kept(older, info, str(train_cfg["data"]), progress))
        (tmp / "model.json").write_text(json.dumps(info, indent=2))
        engine = Engine(tmp, provider="cpu")

        progress(f"checking onnxruntime against torch on {train_cfg['data']} (validation split)")
        corpus = load_corpus(train_cfg["data"], spb, progress=False)
        if corpus.steps_per_beat != spb:
            raise ExportError(f"{train_cfg['data']} is on a grid of {corpus.steps_per_beat} step(s) per beat and "
                              f"{checkpoint} on {spb}: give --data the corpus it learnt from, on its own grid.")
        valid = corpus.sequences("valid", key_states)
        torch_scores = evaluate(model, valid, accuracy=False)
        onnx_valid = score(engine, valid)
        gap = abs(onnx_valid["nll"] - torch_scores.nll)
        if gap > NLL_TOLERANCE:
            raise ExportError(f"encode.onnx and torch disagree on the validation NLL by {gap:.2e} nats per frame "
                              f"(torch {torch_scores.nll:.6f}, onnxruntime {onnx_valid['nll']:.6f}).")
        primers = [s[:spb * 8] for s in valid[:4]]
        bars = check_sampler(model, engine, primers)
        steps = check_step(engine, primers)
        test = corpus.sequences("test", key_states)
        held_out = score(engine, test) if test else None
        metrics = {}
        if held_out:
            metrics[str(train_cfg["data"])] = {"split": "test", "nll": round(held_out["nll"], 4),
                                               "nll_after_first": round(held_out["nll_after_first"], 4),
                                               "acc": None if held_out["accuracy"] is None
                                               else round(held_out["accuracy"], 4),
                                               "frames": held_out["frames"]}
        info.update({
            "training": {"corpus": str(train_cfg["data"]), "corpus_licence": corpus_licence or "not given",
                         "frames": corpus.frames("train"),
                         "epochs": meta.get("epoch"),
                         "seconds": round(meta.get("wall_s") or meta.get("trained_s") or 0, 1),
                         "seed": train_cfg.get("seed"), "valid_nll": round(torch_scores.nll, 4),
                         **({"ensemble": meta["ensemble"]} if meta.get("ensemble") else {}),
                         "model": meta["model"]},
            "metrics": metrics,
            "checks": {"valid_nll_torch": round(torch_scores.nll, 6), "valid_nll_onnx": round(onnx_valid["nll"], 6),
                       "bars_equal_to_torch": bars, "steps_equal_to_bar": steps},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "livecomp_version": __version__,
        })
        atomic_write_bytes(tmp / "model.json", (json.dumps(info, indent=2) + "\n").encode())
        Engine(tmp, provider="cpu")                     # the final folder loads as the runtime will load it
        own = check_out(out)                            # nothing else appeared there meanwhile
        _replace_folder(tmp, out, own)
    except ModelError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(f"the exported graphs do not load: {exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def check_out(out: Path) -> set[str]:
    """An export writes a new folder or replaces an older export of a model (a folder whose
    model.json has this format and names its graphs); an empty folder is taken too. Anything
    else there (a file, a run folder, a folder of the user's own) is refused: nothing a user
    made is deleted. Returns the older export's own files (model.json and its graphs): any
    other file the user put beside them is carried into the new export."""
    if not out.exists() and not out.is_symlink():
        return set()
    if out.is_symlink():
        raise ExportError(f"--out {out} is a link; give the model folder's own path (or a new folder's).")
    if not out.is_dir():
        raise ExportError(f"--out {out} is a file, not a model folder; give a new folder's path.")
    try:
        entries = list(out.iterdir())
    except OSError as exc:
        raise ExportError(f"cannot read --out {out} ({exc.strerror or exc}).") from None
    if not entries:
        return set()
    own = _export_files(out)
    if own is None:
        raise ExportError(f"--out {out} already holds files that are not an exported model; export replaces only "
                          f"an older export (a folder with its model.json): give a new folder's path.")
    return own


def _same_data(a: str, b: str) -> bool:
    return a == b or Path(a).resolve() == Path(b).resolve()


def _kept(older: dict, info: dict, data: str, progress) -> dict:
    """The parts of an older export's model.json (``KEPT``) the new one keeps, each said in a line,
    and why any other is not: measured on other data or another grid, or no longer valid."""
    from livecomp.model.folder import check_values

    older_data = str((older.get("training") or {}).get("corpus", ""))
    same = _same_data(older_data, data) and older.get("steps_per_beat") == info["steps_per_beat"]
    kept, dropped = {}, []
    for key, kind in KEPT.items():
        if key not in older:
            continue
        if kind == "data" and not same:
            dropped.append(f"{key} (measured on {older_data or 'unnamed data'} at {older.get('steps_per_beat')} "
                           f"steps a beat)")
            continue
        try:                                            # the checks model.json gets on load
            check_values({**info, key: older[key]}, "the older export's model.json")
        except ModelError:
            dropped.append(f"{key} (not valid there)")
            continue
        kept[key] = older[key]
    if kept:
        progress(f"kept from the export this replaces: {', '.join(kept)}")
    if dropped:
        progress(f"not kept from the export this replaces: {'; '.join(dropped)}; measure them again with "
                 f"bench/musicality.py (--floors --write-floors, --gate --write-gate)")
    if "musicality" in older:
        progress("the card's figures of the export this replaces describe the weights replaced: measure them "
                 "again with bench/musicality.py --write-cards")
    return kept


def _export_files(folder: Path) -> set[str] | None:
    """The files an export wrote in ``folder`` (model.json and the graphs it lists), or None
    where its model.json is not an export's: a format number, an architecture livecomp runs,
    and graphs named by plain file names that are there."""
    try:
        info = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("format") != FORMAT or info.get("architecture") not in ("basic",
                                                                                                      "endecell"):
        return None
    files = info.get("files")
    if not isinstance(files, dict) or not files:
        return None
    names = {"model.json"}
    for entry in files.values():
        name = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(name, str) or Path(name).name != name or not (folder / name).is_file():
            return None
        names.add(name)
    return names


def _replace_folder(tmp: Path, out: Path, own: set[str] = frozenset()) -> None:
    """Move the finished folder into place. The user's own files in an older export there (any
    but ``own``, its model.json and graphs) move into the new one first; one whose name the new
    export writes is refused. The older export is removed only after."""
    if out.exists():
        extra = [entry for entry in out.iterdir() if entry.name not in own]
        clash = [entry.name for entry in extra if (tmp / entry.name).exists()]
        if clash:
            raise ExportError(f"--out {out} holds {', '.join(sorted(clash))} of your own, a name the export writes: "
                              f"move it away or give a new folder's path.")
        moved = []
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        try:
            for entry in extra:
                entry.rename(tmp / entry.name)
                moved.append(entry.name)
            out.rename(old)
        except BaseException:
            for name in moved:                          # back where they were: the export fails, nothing is lost
                (tmp / name).rename(out / name)
            raise
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)
