"""Which EnDeCell chunk size gives the best NLL per millisecond?

For each run kept in bench/chunks/ (the shipped EnDeCell's settings, only --chunk differs; the
same data, seed and epochs), prints its final validation NLL (from its log) next to the
latency of its bar graph on one thread: a model of the same shape is exported to a temporary
folder (latency depends on the shape only, not on the weights' values) and bar (1 candidate)
and advance (1 step) are timed over --calls calls.

    python bench/chunks.py [--calls 300]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from livecomp.model.engine import Engine  # noqa: E402
from livecomp_train.models import build_model, config_from_dict  # noqa: E402
from livecomp_train.onnx_graphs import export_graphs  # noqa: E402

from latency import percentiles  # noqa: E402

torch.set_num_threads(1)


def bar_latency(model_cfg: dict, steps_per_bar: int, calls: int) -> tuple[tuple[float, float], tuple[float, float]]:
    torch.manual_seed(0)
    model = build_model(config_from_dict(model_cfg)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = export_graphs(model, folder, steps_per_bar)
        info = {"format": 1, "name": "shape", "architecture": model_cfg["architecture"],
                "key_states": model_cfg["key_states"], "steps_per_beat": steps_per_bar // 4, "beats_per_bar": 4,
                "steps_per_bar": steps_per_bar, "bar_steps": steps_per_bar,
                "state": [{"name": n, "shape": list(s)} for n, s in model.state_shapes()], "files": files}
        (folder / "model.json").write_text(json.dumps(info))
        engine = Engine(folder, provider="cpu", threads=1)
        state = engine.initial_state()
        one = __import__("numpy").zeros((1, 1, 88), "int64")
        return (percentiles(lambda: engine.bar(state, 1, 1.0, 0), calls),
                percentiles(lambda: engine.advance(one, state), calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    rows = []
    for run in sorted((ROOT / "bench" / "chunks").iterdir(), key=lambda p: json.loads(
            (p / "config.json").read_text())["model"]["chunk"]):
        cfg = json.loads((run / "config.json").read_text())
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        spb = json.loads((run / "best.json").read_text())["steps_per_beat"]       # the corpus's grid
        (b50, b99), (a50, a99) = bar_latency(cfg["model"], spb * 4, args.calls)
        rows.append((cfg["model"]["chunk"], log[-1]["epoch"], log[-1]["valid_nll"], b50, b99, a50, a99))
    print(f"EnDeCell on {cfg['data']}, one thread; NLL = validation nats per frame after the same epochs")
    print(f"{'chunk':>5} {'decoder steps/bar':>18} {'epochs':>7} {'valid NLL':>10} {'bar p50/p99 ms':>16} "
          f"{'advance p50/p99 ms':>19}")
    for chunk, epochs, nll, b50, b99, a50, a99 in rows:
        steps = -(-88 // chunk) * 16
        print(f"{chunk:>5} {steps:>18} {epochs:>7} {nll:>10.4f} {b50:>8.2f} / {b99:<6.2f} {a50:>9.3f} / {a99:<6.3f}")


if __name__ == "__main__":
    main()
