"""Latency of the shipped models on one CPU thread: onnxruntime against torch eager, and the floor.

For each model in livecomp/exported/ (and its checkpoint in bench/checkpoints/shipped-<name>):

- advance 1 step (what a listener runs every step: the state, no scores), encode 1 step and
  encode a 64-step phrase (state and scores), bar of one model bar with 1, 8 and 16 candidates
  and the model's own count (model.json ``candidates``: what `listen` samples for each answer bar,
  marked "default"), and one step sampled for that count of candidates (what `--mode duet` runs
  every step; step.onnx, and without it): p50 and p99 over --calls calls,
  for onnxruntime and for the same work in torch eager, and the ratio;
- an int8 variant (onnxruntime dynamic quantisation of every weight): its advance and bar
  latency and the validation NLL it keeps next to the float model's;
- multiply-adds and weight bytes read per bar (counted from bar.onnx: every matrix product,
  GRU and LSTM node, each weight counted every time a node reads it), next to this machine's
  single-core multiply-add rate (a large float32 matrix product) and read bandwidth (a
  matrix-vector product over a matrix as large as the model's weights, and over 512 MB, i.e.
  from DRAM); the floor is
  whichever of compute and bandwidth binds.

- start-up: how long a new `livecomp listen --model NAME` (on in-memory ports) takes from its
  launch to "listening", the first time and then the median of --starts more, and how long a
  running session takes to load the model (a switch by program change to a model not yet loaded);

    python bench/latency.py [--calls 1000] [--models piano basic FOLDER] [--starts 5]

A FOLDER of one's own is timed against the run kept in bench/checkpoints/<its name>.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from onnx import numpy_helper, shape_inference  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livecomp.model.engine import Engine, score  # noqa: E402
from livecomp.model.folder import sha256_file, shipped_models  # noqa: E402
from livecomp_train.checkpoint import load_model  # noqa: E402
from livecomp_train.data import load_corpus  # noqa: E402

torch.set_num_threads(1)


def percentiles(fn, calls: int) -> tuple[float, float]:
    for _ in range(max(10, calls // 50)):
        fn()
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def bar_cost(path: Path) -> tuple[int, int, int]:
    """(multiply-adds, weight bytes read, weight bytes stored) of one call of a graph at batch 1.

    Every matrix product counts its second operand as weights read (the bar graph scales the
    output weights by the temperature once per call, so not every weight is a stored constant);
    each GRU/LSTM node reads its input and recurrent weights once per sequence step."""
    model = onnx.load(str(path))
    for value in model.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.Clear()
                dim.dim_value = 1
    model = shape_inference.infer_shapes(model, data_prop=True)
    # bar.onnx loops over a beat (onnx_graphs.looped): its Loop's body counts once per turn
    graphs = [(model.graph, 1)]
    for node in model.graph.node:
        if node.op_type == "Loop":
            trips = next(w for w in model.graph.initializer if w.name == node.input[0])
            graphs.append((next(a.g for a in node.attribute if a.name == "body"), int(numpy_helper.to_array(trips))))
    shapes, weights = {}, {}
    for graph, _ in graphs:
        shapes |= {v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim]   # unknown (batch) dims: 1
                   for v in list(graph.value_info) + list(graph.input) + list(graph.output)}
        weights |= {w.name: numpy_helper.to_array(w) for w in graph.initializer}
        for node in graph.node:                                 # constants the exporter left as nodes
            if node.op_type == "Constant" and node.attribute and node.attribute[0].t.dims:
                weights[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    for name, w in weights.items():
        shapes[name] = list(w.shape)
    macs = read = 0
    for graph, times in graphs:
        for node in graph.node:
            ins = [shapes.get(n, []) for n in node.input]
            if node.op_type in ("MatMul", "Gemm") and len(ins) >= 2 and ins[0] and ins[1]:
                a, b = ins[0], ins[1]
                macs += times * int(np.prod(a[:-1])) * a[-1] * b[-1]
                read += times * int(np.prod(b)) * 4
            elif node.op_type in ("GRU", "LSTM") and ins[0] and ins[1] and ins[2]:
                seq, batch = ins[0][0], ins[0][1]
                gates_hidden, inputs, hidden = ins[1][1], ins[1][2], ins[2][2]
                macs += times * seq * batch * gates_hidden * (inputs + hidden)
                read += times * seq * gates_hidden * (inputs + hidden) * 4
    stored = sum(w.nbytes for w in weights.values() if w.dtype == np.float32)
    return macs, read, stored


def machine_rates(weight_bytes: int) -> dict:
    """Single-core float32 multiply-add rate and read bandwidth (bytes/s)."""
    a = np.random.rand(1024, 1024).astype(np.float32)
    b = np.random.rand(1024, 1024).astype(np.float32)
    a @ b
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 1.0:
        a @ b
        n += 1
    mac_rate = n * 1024 ** 3 / (time.perf_counter() - start)

    def bandwidth(nbytes: int) -> float:
        """Bytes/s read by a matrix-vector product over a matrix of nbytes (the access pattern
        of a batch-1 recurrent step), repeated so the matrix stays wherever it fits."""
        rows = max(nbytes // 4096, 1)
        matrix = np.random.rand(rows, 1024).astype(np.float32)
        vector = np.ones(1024, np.float32)
        matrix @ vector
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < 1.0:
            matrix @ vector
            n += 1
        return n * matrix.nbytes / (time.perf_counter() - start)

    return {"mac_rate": mac_rate, "bw_weights": bandwidth(weight_bytes), "bw_dram": bandwidth(512 << 20)}


def counts(engine) -> dict:
    """Candidate counts timed for a bar, by row name: 1, 8, 16 and the model's own (default)."""
    out = {}
    for k in sorted({1, 8, 16, engine.candidates}):
        out[f"bar, {k} candidate{'s' * (k != 1)}" + (" (default)" if k == engine.candidates else "")] = k
    return out


def torch_calls(model, engine: Engine):
    one = torch.zeros(1, 1, 88, dtype=torch.long)
    phrase = torch.zeros(1, 64, 88, dtype=torch.long)
    temp = torch.tensor(1.0)
    # (a lookback's history is batch-first, h and c are not: a state per count, not a repeat)
    states = {k: model.initial_state(k) for k in {1, engine.candidates, *counts(engine).values()}}
    noises = {k: torch.rand(k, engine.steps_per_bar, 88) for k in states}

    @torch.no_grad()
    def run(fn):
        return fn()

    K = engine.candidates
    return {
        "advance 1 step": lambda: run(lambda: model.advance(one, states[1])),
        "encode 1 step": lambda: run(lambda: model(one, states[1])),
        "encode 64 steps": lambda: run(lambda: model(phrase, states[1])),
        **{what: (lambda k=k: run(lambda: model.sample(states[k], noises[k], temp))) for what,
           k in counts(engine).items()},
        "duet step": lambda: run(lambda: model.sample(states[K], noises[K][:, :1], temp)),
    }


def onnx_calls(engine: Engine):
    state = engine.initial_state()
    one = np.zeros((1, 1, 88), np.int64)
    phrase = np.zeros((1, 64, 88), np.int64)
    return {
        "advance 1 step": lambda: engine.advance(one, state),
        "encode 1 step": lambda: engine.encode(one, state),
        "encode 64 steps": lambda: engine.encode(phrase, state),
        **{what: (lambda k=k: engine.bar(state, k, 1.0, 0)) for what, k in counts(engine).items()},
        "duet step": lambda: engine.bar(state, engine.candidates, 1.0, 0, steps=1),
    }


def start_times(model: str, starts: int) -> tuple[float, float]:
    """Seconds from launching `livecomp listen` to its "listening" line: the first, and the median
    of ``starts`` more."""
    import signal
    import subprocess

    command = [str(Path(sys.executable).parent / "livecomp"), "listen", "--model", model,
               "--in", "loopback:keyboard", "--out", "loopback:synth"]
    times = []
    for _ in range(1 + starts):
        begun = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        for line in proc.stdout:
            if line.startswith("listening"):
                times.append(time.perf_counter() - begun)
                break
        else:
            raise SystemExit(f"livecomp listen --model {model} ended without listening: exit {proc.wait()}")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    return times[0], float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    models = shipped_models()
    names = args.models or list(models)
    print(f"one thread; {args.calls} calls per figure; times in ms (p50 / p99)")
    for name in names:
        if name not in models:                    # a model folder of one's own, its run kept in bench/checkpoints
            models[name] = Path(name)
        begun = time.perf_counter()
        engine = Engine(models[name], provider="cpu", threads=1)
        loaded = time.perf_counter() - begun
        kept = ROOT / "bench" / "checkpoints"
        run = kept / f"shipped-{name}"
        model, _ = load_model(run if run.is_dir() else kept / Path(name).name)
        macs, read, stored = bar_cost(models[name] / engine.info["files"]["bar"]["path"])
        rates = machine_rates(stored)
        print(f"\n{name} ({engine.architecture}, {engine.steps_per_bar}-step bar, {stored / 1e6:.2f} MB of weights, "
              f"onnxruntime {engine.provider_used})")
        first, then = start_times(str(models[name]), args.starts)
        print(f"start: `livecomp listen` launched to listening {first:.2f} s the first time, then {then:.2f} s "
              f"(median of {args.starts}); loading the model in a running session {loaded:.2f} s")
        print(f"{'call':<26}{'onnxruntime':>18}{'torch eager':>18}{'torch / ort (p50)':>20}")
        ort_times = {}
        for (what, ort_fn), torch_fn in zip(onnx_calls(engine).items(), torch_calls(model, engine).values()):
            calls = args.calls
            o50, o99 = percentiles(ort_fn, calls)
            t50, t99 = percentiles(torch_fn, calls)
            ort_times[what] = (o50, o99)
            print(f"{what:<26}{o50:>9.3f} / {o99:<7.3f}{t50:>9.3f} / {t99:<7.3f}{t50 / o50:>14.1f}x")
        step_graph, engine._step = engine._step, None          # a folder without step.onnx
        b50, b99 = percentiles(onnx_calls(engine)["duet step"], args.calls)
        engine._step = step_graph
        print(f"{'  without step.onnx':<26}{b50:>9.3f} / {b99:<7.3f}   (a bar and a re-encode: "
              f"{b50 / ort_times['duet step'][0]:.1f}x the step graph)")
        compute_floor = macs / rates["mac_rate"] * 1e3
        memory_floor = read / rates["bw_weights"] * 1e3
        floor = max(compute_floor, memory_floor)
        print(f"bar, 1 candidate: {macs / 1e6:.1f} M multiply-adds, {read / 1e6:.1f} MB of weights read")
        print(f"machine, one core: {rates['mac_rate'] / 1e9:.1f} G multiply-adds/s; read bandwidth "
              f"{rates['bw_weights'] / 1e9:.1f} GB/s over {stored / 1e6:.1f} MB, "
              f"{rates['bw_dram'] / 1e9:.1f} GB/s from DRAM")
        bar_1 = next(v for w, v in ort_times.items() if w.startswith('bar, 1 candidate'))
        print(f"floor: compute {compute_floor:.3f} ms, weights {memory_floor:.3f} ms -> {floor:.3f} ms; "
              f"bar p50 is {bar_1[0] / floor:.1f}x the floor")
        int8_variant(engine, models[name], args.calls, ort_times)


def quantize_int8(folder: str | Path, out: str | Path) -> dict:
    """An int8 variant of an exported folder: every matrix product and LSTM/GRU weight
    quantised dynamically by onnxruntime (weights int8, activations quantised per call).

    Its graphs no longer match torch bit for bit, so it is a measured variant (bench/latency.py
    quotes its latency and the NLL it keeps), not what ``livecomp export`` ships."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder, out = Path(folder), Path(out)
    info = json.loads((folder / "model.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    logging.getLogger().setLevel(logging.ERROR)                 # the quantiser suggests pre-processing
    for role, entry in info["files"].items():
        quantize_dynamic(str(folder / entry["path"]), str(out / entry["path"]), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm", "LSTM", "GRU"])
        entry.update(sha256=sha256_file(out / entry["path"]), bytes=(out / entry["path"]).stat().st_size)
    info["variant"] = "int8 (onnxruntime dynamic quantisation)"
    (out / "model.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def int8_variant(engine: Engine, folder: Path, calls: int, float_times: dict) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        quantize_int8(folder, Path(tmp) / folder.name)
        small = Engine(Path(tmp) / folder.name, provider="cpu", threads=1)
        fast = onnx_calls(small)
        corpus = load_corpus(engine.info["training"]["corpus"], engine.steps_per_beat, progress=False)
        valid = corpus.sequences("valid", engine.key_states)
        nll32, nll8 = score(engine, valid)["nll"], score(small, valid)["nll"]
        size = sum((Path(tmp) / folder.name / f["path"]).stat().st_size for f in small.info["files"].values())
        print(f"int8 variant ({size / 1e6:.1f} MB of graphs): validation NLL {nll8:.4f} (float {nll32:.4f})")
        for what in dict.fromkeys(["advance 1 step", *[w for w in fast if w.startswith("bar, 1 candidate")
                                                       or w.endswith("(default)")]]):
            p50, p99 = percentiles(fast[what], calls)
            print(f"  {what:<18}{p50:>9.3f} / {p99:<7.3f} (float {float_times[what][0]:.3f} / "
                  f"{float_times[what][1]:.3f})")


if __name__ == "__main__":
    main()
