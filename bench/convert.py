"""Time converting the Nottingham MIDI folder to piano rolls: cold (parsing every file) and from cache.

    python bench/convert.py [FOLDER] [--steps-per-beat 4]

Prints one line per run and what quantisation did to the notes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livecomp_train.data import load_midi_folder  # noqa: E402

DEFAULT_FOLDER = Path(__file__).resolve().parent.parent.parent / "shared" / "midi" / "nottingham"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=DEFAULT_FOLDER, type=Path)
    parser.add_argument("--steps-per-beat", type=int, default=4)
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores; folder: {args.folder}; {args.steps_per_beat} steps per beat")
    for workers in (1, os.cpu_count() or 1):
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            corpus = load_midi_folder(args.folder, args.steps_per_beat, cache_dir=Path(cache),
                                      workers=workers, progress=False)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            load_midi_folder(args.folder, args.steps_per_beat, cache_dir=Path(cache), progress=False)
            warm = time.perf_counter() - t0
        files = sum(len(v) for v in corpus.splits.values()) + len(corpus.skipped)
        print(f"{files} files, {workers} worker(s): cold {cold:.2f} s ({files / cold:.0f} files/s), "
              f"from cache {warm:.2f} s ({files / warm:.0f} files/s)")
    r = corpus.report()
    print(f"notes {r.notes}: {r.moved} onsets moved, {r.resized} durations changed, {r.merged} merged, "
          f"{r.overlapped} cut by a re-strike, {r.out_of_range} out of range; skipped files: {len(corpus.skipped)}")


if __name__ == "__main__":
    main()
