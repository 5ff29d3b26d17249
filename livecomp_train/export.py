"""Export a checkpoint as a model folder: model.json, encode.onnx, advance.onnx, bar.onnx and
step.onnx.

The folder follows the exported-model contract (docs/model-format.md), with ``advance.onnx``: encode
without the logits, the graph a listener runs every step (see docs/models.md), and
``step.onnx``: bar.onnx's sampler for one step, which ``--mode duet`` runs every step.
bar.onnx is one beat's sampler run once a beat by an ONNX Loop (``looped``), so that
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
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from livecomp import __version__
from livecomp.files import atomic_write_bytes
from livecomp.model.engine import ARCHITECTURE_KEY, Engine, score, tempered_log_prob
from livecomp.model.folder import FORMAT, ModelError, sha256_file

from .checkpoint import load_ensemble, load_model
from .data import load_corpus
from .evaluate import evaluate
from .graphs import Encode, advance_module, bar_module
from .models.common import N_KEYS

OPSET = 17
NLL_TOLERANCE = 1e-4
TIE_MARGIN = 2e-6
BEATS_PER_BAR = 4


class ExportError(ValueError):
    """An export that did not verify, or could not be written."""


def _onnx_bytes(module: torch.nn.Module, args: tuple, inputs: list[str], outputs: list[str], dynamic: dict) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    return buf.getvalue()


def _stamped(blob: bytes, architecture: str | None) -> bytes:
    """The graph with the architecture it was exported from in its metadata, which the runtime
    checks against model.json's label (``Engine``)."""
    if architecture is None:
        return blob
    import onnx

    graph = onnx.load_from_string(blob)
    onnx.helper.set_model_props(graph, {ARCHITECTURE_KEY: architecture})
    return graph.SerializeToString()


def export_graphs(model, folder: Path, bar_steps: int, architecture: str | None = None) -> dict:
    """Write encode.onnx, advance.onnx, bar.onnx and step.onnx of ``model`` into ``folder``, each
    stamped with ``architecture``; returns model.json's files."""
    names = [name for name, _ in model.state_shapes()]
    state = tuple(torch.zeros(2, *shape) for _, shape in model.state_shapes())
    batch = {0: "batch"}
    dynamic = {name: batch for name in names} | {f"{name}_out": batch for name in names}
    encode = _onnx_bytes(Encode(model), (torch.zeros(2, 3, N_KEYS, dtype=torch.long),) + state,
                         ["frames", *names], ["logits", *[f"{n}_out" for n in names]],
                         {"frames": {0: "batch", 1: "steps"}, "logits": {0: "batch", 1: "steps"}, **dynamic})
    advance = _onnx_bytes(advance_module(model), (torch.zeros(2, 3, N_KEYS, dtype=torch.long),) + state,
                          ["frames", *names], [f"{n}_out" for n in names],
                          {"frames": {0: "batch", 1: "steps"}, **dynamic})
    per = bar_steps // BEATS_PER_BAR if bar_steps % BEATS_PER_BAR == 0 else bar_steps
    bar = looped(sampler_graph(model, per), bar_steps // per)
    files = {}
    for role, blob in (("encode", encode), ("advance", advance), ("bar", bar), ("step", sampler_graph(model, 1))):
        path = folder / f"{role}.onnx"
        blob = _stamped(blob, architecture)
        atomic_write_bytes(path, blob)
        files[role] = {"path": path.name, "sha256": sha256_file(path), "bytes": len(blob)}
    return files


def sampler_graph(model, steps: int) -> bytes:
    """The bar sampler unrolled over ``steps`` steps: step.onnx (one step, what ``--mode duet``
    runs every step), and the beat that bar.onnx loops over."""
    names = [name for name, _ in model.state_shapes()]
    state = tuple(torch.zeros(2, *shape) for _, shape in model.state_shapes())
    batch = {0: "batch"}
    dynamic = {name: batch for name in names} | {f"{name}_out": batch for name in names}
    return _onnx_bytes(bar_module(model, steps), state + (torch.tensor(1.0), torch.rand(2, steps, N_KEYS)),
                       [*names, "temperature", "noise"], ["frames_out", "logp", *[f"{n}_out" for n in names]],
                       {"noise": batch, "frames_out": batch, "logp": batch, **dynamic})


def looped(body_blob: bytes, trips: int) -> bytes:
    """A sampler graph of S steps (``sampler_graph``) run ``trips`` times by one ONNX Loop node:
    the graph of S x trips steps, with the same inputs and outputs. Loop turn i reads noise
    steps [i S, (i + 1) S), passes the state on, adds up the log-probabilities and stacks the
    frames. The same bar unrolled step by step has ~6,600 nodes for the piano model, and
    onnxruntime's memory planner takes 3 to 5 s over them at every start; looped over the
    beat it takes ~0.3 s and samples the same frames (``check_sampler``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    body = onnx.load_from_string(body_blob)
    g = body.graph
    inputs, outputs = [i.name for i in g.input], [o.name for o in g.output]
    names = inputs[:-2]
    if inputs[-2:] != ["temperature", "noise"] or outputs != ["frames_out", "logp", *[f"{n}_out" for n in names]]:
        raise ExportError(f"a sampler graph takes state, temperature and noise (found {inputs} -> {outputs}).")
    steps = next(d.dim_value for d in g.input[-1].type.tensor_type.shape.dim[1:2])
    P = "turn/"                                     # the body's own names: none may shadow the outer graph's

    def inner(name: str) -> str:
        return name if name in ("", "temperature") else P + name     # temperature: read from the outer graph

    nodes = [helper.make_node("Unsqueeze", ["i", "axis0"], ["i1"]),
             helper.make_node("Mul", ["i1", "per"], ["first"]),
             helper.make_node("Add", ["first", "per"], ["end"]),
             helper.make_node("Slice", ["noise", "first", "end", "axis1"], [P + "noise"])]
    for node in g.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [inner(x) for x in node.input]
        copy.output[:] = [inner(x) for x in node.output]
        copy.name = P + node.name if node.name else ""
        nodes.append(copy)
    nodes += [helper.make_node("Identity", ["go_in"], ["go_out"]),
              helper.make_node("Add", ["logp_in", P + "logp"], ["logp_sum"])]

    def renamed(info, name: str):
        copy = onnx.ValueInfoProto()
        copy.CopyFrom(info)
        copy.name = name
        return copy

    ins, outs = {i.name: i for i in g.input}, {o.name: o for o in g.output}
    weights = []
    for t in g.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(t)
        copy.name = P + t.name
        weights.append(copy)
    turn = helper.make_graph(
        nodes, "turn",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("go_in", TensorProto.BOOL, []),
         *[renamed(ins[n], P + n) for n in names],
         helper.make_tensor_value_info("logp_in", TensorProto.FLOAT, ["batch"])],
        [helper.make_tensor_value_info("go_out", TensorProto.BOOL, []),
         *[renamed(outs[f"{n}_out"], P + f"{n}_out") for n in names],
         helper.make_tensor_value_info("logp_sum", TensorProto.FLOAT, ["batch"]),
         renamed(outs["frames_out"], P + "frames_out")],
        initializer=weights)
    constants = [numpy_helper.from_array(np.array(value, dtype), name) for name, value, dtype in (
        ("trips", trips, np.int64), ("go", True, np.bool_), ("per", [steps], np.int64), ("zero", 0, np.float32),
        ("axis0", [0], np.int64), ("axis1", [1], np.int64), ("axes12", [1, 2], np.int64),
        ("bar_shape", [-1, steps * trips, N_KEYS], np.int64))]
    outer = [helper.make_node("Mul", ["noise", "zero"], ["noise_zeros"]),
             helper.make_node("ReduceSum", ["noise_zeros", "axes12"], ["logp_0"], keepdims=0),
             helper.make_node("Loop", ["trips", "go", *names, "logp_0"],
                              [*[f"{n}_out" for n in names], "logp", "turn_frames"], body=turn),
             helper.make_node("Transpose", ["turn_frames"], ["batch_frames"], perm=[1, 0, 2, 3]),
             helper.make_node("Reshape", ["batch_frames", "bar_shape"], ["frames_out"])]
    graph_in = [renamed(i, i.name) for i in g.input]
    graph_in[-1].type.tensor_type.shape.dim[1].dim_value = steps * trips
    graph_out = [renamed(o, o.name) for o in g.output]
    graph_out[0].type.tensor_type.shape.dim[1].Clear()
    graph_out[0].type.tensor_type.shape.dim[1].dim_value = steps * trips
    model = helper.make_model(helper.make_graph(outer, "bar", graph_in, graph_out, initializer=constants),
                              opset_imports=list(body.opset_import), ir_version=body.ir_version)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def check_step(engine: Engine, primers: list[np.ndarray], candidates: int = 4, seed: int = 0) -> int:
    """step.onnx writes the first step bar.onnx writes for the same noise, with its
    log-probability, and the state after it is encode.onnx's; returns the steps compared."""
    rng = np.random.default_rng(seed)
    compared = 0
    for primer in primers:
        state, _ = engine.encode(primer[None])
        state = state.repeat(candidates)
        noise = rng.random((candidates, engine.bar_steps, N_KEYS), dtype=np.float32)
        bar_frames, _, _ = engine.bar_from_noise(state, noise, 1.0)
        frames, logp, after = engine.step_from_noise(state, noise[:, :1], 1.0)
        encoded, logits = engine.encode(frames, state)
        if not np.array_equal(frames, bar_frames[:, :1]):
            raise ExportError("step.onnx and bar.onnx wrote different first steps for the same noise.")
        if not np.allclose(logp, tempered_log_prob(logits, frames, 1.0), rtol=1e-4, atol=1e-3):
            raise ExportError("step.onnx gives another log-probability than encode.onnx for its step.")
        if not all(np.allclose(after.tensors[n], encoded.tensors[n], atol=1e-4) for n in after.tensors):
            raise ExportError("step.onnx leaves another state than encode.onnx after its step.")
        compared += candidates
    return compared


def _torch_state(engine_state, model) -> tuple[torch.Tensor, ...]:
    from .graphs import _torch_state as convert
    return convert(model, tuple(torch.from_numpy(engine_state.tensors[n]) for n, _ in model.state_shapes()))


def check_sampler(model, engine: Engine, primers: list[np.ndarray], temperature: float = 1.0,
                  candidates: int = 4, seed: int = 0) -> int:
    """Bars sampled by onnxruntime equal the torch sampler's for the same noise, after each
    primer; returns the number of bars compared. Raises ExportError on any difference."""
    rng = np.random.default_rng(seed)
    compared = 0
    for primer in primers:
        state, _ = engine.encode(primer[None])
        state = state.repeat(candidates)
        for _attempt in range(20):
            noise = rng.random((candidates, engine.bar_steps, N_KEYS), dtype=np.float32)
            with torch.no_grad():
                frames, logp, _ = model.sample(_torch_state(state, model), torch.from_numpy(noise),
                                               torch.tensor(temperature))
                if _near_tie(model, state, frames, noise, temperature):
                    continue
            onnx_frames, onnx_logp, _ = engine.bar_from_noise(state, noise, temperature)
            if not np.array_equal(onnx_frames, frames.numpy()):
                diff = int((onnx_frames != frames.numpy()).sum())
                raise ExportError(f"bar.onnx and the torch sampler wrote different frames for the same noise "
                                  f"({diff} key states differ).")
            if not np.allclose(onnx_logp, logp.numpy(), rtol=1e-4, atol=1e-3):
                raise ExportError("bar.onnx and the torch sampler give different log-probabilities for the same bar.")
            compared += candidates
            break
    return compared


def _near_tie(model, state, frames: torch.Tensor, noise: np.ndarray, temperature: float) -> bool:
    """Whether any draw of the bar had its noise within TIE_MARGIN of a CDF boundary (for a
    mixture of transposed copies, also of a boundary between copies)."""
    noise = torch.from_numpy(noise)
    n = len(getattr(model, "shifts", [0]))
    if n > 1:                                                      # the chosen copy's distributions
        logp, _ = model.copy_log_probs(frames, _torch_state(state, model))          # (B, n, T, 88, K)
        u = noise[..., 0] * n
        if (u - u.round()).abs().min() < TIE_MARGIN * n:
            return True
        copy, noise = model.choose_copy(noise)
        index = copy[:, None, :, None, None].expand(-1, 1, -1, N_KEYS, logp.shape[-1])
        logits = logp.gather(1, index).squeeze(1)
    elif getattr(model, "link", None) is not None:                 # joint keys: each group's lowest key's noise
        logits = model.group_scores(frames, _torch_state(state, model))             # (B, T, groups, K^n)
        g = model.cfg.joint_keys
        noise = torch.nn.functional.pad(noise, (0, logits.shape[2] * g - N_KEYS))[..., ::g]
    else:
        logits, _ = model(frames, _torch_state(state, model))      # the sampling distributions
    cdf = torch.softmax(logits / temperature, -1).cumsum(-1)[..., :-1]
    margin = (cdf - noise.unsqueeze(-1)).abs().min()
    return bool(margin < TIE_MARGIN)


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
    check_out(out)                                      # before the work: a refusal costs nothing
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
