"""Does sampling a bar hold the Python interpreter? A thread that sleeps 1 ms at a time runs beside
--bars bars of --candidates candidates of a model folder; if onnxruntime kept the interpreter
lock while it samples, the thread's gaps would grow to a whole bar (20 ms and more for the
piano model), and livecomp's sending thread would be held as long.

    python bench/interpreter_hold.py [MODEL ...] [--bars 40] [--candidates 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from livecomp.model.engine import Engine  # noqa: E402
from livecomp.model.folder import find_model  # noqa: E402


def gaps_beside_bars(folder, bars: int, candidates: int) -> np.ndarray:
    """The ticking thread's gaps (ms) while ``bars`` bars are sampled."""
    engine = Engine(folder, provider="cpu")
    state = engine.initial_state()
    gaps, stop = [], threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    thread = threading.Thread(target=tick)
    thread.start()
    for _ in range(bars):
        engine.bar(state, candidates, 1.0, 0)
    stop.set()
    thread.join()
    return np.array(gaps) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["piano"])
    parser.add_argument("--bars", type=int, default=40)
    parser.add_argument("--candidates", type=int, default=8)
    args = parser.parse_args()
    for name in args.models:
        g = gaps_beside_bars(find_model(name), args.bars, args.candidates)
        print(f"{name}: a 1 ms ticker beside {args.bars} bars of {args.candidates} candidates: gaps p50 "
              f"{np.median(g):.2f} ms, p99 {np.percentile(g, 99):.2f} ms, max {g.max():.2f} ms")


if __name__ == "__main__":
    main()
