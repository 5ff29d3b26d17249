"""A model's graphs written as ONNX: encode.onnx and advance.onnx from the torch modules of
``graphs``, bar.onnx as one beat's sampler (``sampler_graph``) run once a beat by an ONNX Loop
(``looped``), so that onnxruntime prepares it in a fraction of a second, and step.onnx; each
stamped with the architecture it was exported from.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch

from livecomp.files import atomic_write_bytes
from livecomp.model.engine import ARCHITECTURE_KEY
from livecomp.model.folder import sha256_file

from .checks import ExportError
from .graphs import Encode, advance_module, bar_module
from .models.common import N_KEYS

OPSET = 17
BEATS_PER_BAR = 4


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
