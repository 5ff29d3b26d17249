"""The Boulanger-Lewandowski piano-roll benchmarks (JSB Chorales at quarter-note steps,
Nottingham at eighth-note steps) and JSB Chorales at 16th-note steps, with their published
splits, shipped in ``livecomp_train/benchmarks/``; or any file of the same JSON form
(``{"train": [...], "valid": [...], "test": [...]}``, each sequence a list of steps, each step a
list of sounding MIDI pitches).

Benchmark rolls have no attacks of their own (a pitch list cannot say whether a key was struck
again): a key that turns on is struck, a key that stays on is held.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from livecomp.music.roll import HELD, LOW_KEY, N_KEYS, OFF, STRUCK, PianoRoll

from .corpus import SPLITS, Corpus, CorpusError


@dataclass(frozen=True)
class Benchmark:
    file: str
    steps_per_beat: int
    description: str


BENCHMARKS = {
    "jsb": Benchmark("jsb_chorales.json.gz", 1, "JSB Chorales, quarter-note steps (Boulanger-Lewandowski 2012 splits)"),
    "nottingham": Benchmark("nottingham.json.gz", 2, "Nottingham folk tunes, eighth-note steps (same splits)"),
    "jsb16": Benchmark("jsb_chorales_16th.json.gz", 4, "JSB Chorales, 16th-note steps (Coconet re-quantisation)"),
}


def rolls_from_pitch_lists(sequences: list, steps_per_beat: int) -> list[PianoRoll]:
    """Benchmark sequences (lists of steps, each a list of MIDI pitches) -> rolls.

    A key that turns on is ``STRUCK``, a key that stays on ``HELD``.

    Raises:
        CorpusError: a sequence that is not a list of lists, or a pitch that is not a whole
        number in 21..108.
    """
    rolls = []
    if not isinstance(sequences, list):
        raise CorpusError(f"a split must be a list of sequences, not {type(sequences).__name__}.")
    for n, seq in enumerate(sequences):
        if not isinstance(seq, list) or not all(isinstance(step, list) for step in seq):
            raise CorpusError(f"sequence {n} is not a list of steps, each a list of MIDI pitches.")
        on = np.zeros((len(seq), N_KEYS), bool)
        for t, step in enumerate(seq):
            for pitch in step:
                if isinstance(pitch, bool) or not isinstance(pitch, (int, float)) or not math.isfinite(pitch) \
                        or pitch != int(pitch):
                    raise CorpusError(f"sequence {n}, step {t}: {pitch!r} is not a MIDI pitch (a whole number).")
                key = int(pitch) - LOW_KEY
                if not 0 <= key < N_KEYS:
                    raise CorpusError(f"sequence {n}, step {t}: pitch {pitch} is outside the piano range 21..108.")
                on[t, key] = True
        frames = np.where(on, HELD, OFF).astype(np.uint8)
        prev = np.vstack([np.zeros((1, N_KEYS), bool), on[:-1]])
        frames[on & ~prev] = STRUCK
        rolls.append(PianoRoll(frames, steps_per_beat))
    return rolls


def benchmark_path(name: str) -> Path:
    """Path of a shipped benchmark file."""
    return Path(str(resources.files("livecomp_train") / "benchmarks" / BENCHMARKS[name].file))


def load_benchmark(source: str | Path, steps_per_beat: int | None = None) -> Corpus:
    """A benchmark by name (``jsb``, ``nottingham``, ``jsb16``) or a JSON(.gz) file of that form.

    ``steps_per_beat`` is known for named benchmarks; for a file it defaults to 4.

    Raises:
        CorpusError: unknown name, unreadable file, or a file without a train split.
    """
    if str(source) in BENCHMARKS:
        name = str(source)
        path, spb = benchmark_path(name), BENCHMARKS[name].steps_per_beat
    else:
        path, name, spb = Path(source), Path(source).name, steps_per_beat or 4
    try:
        raw = path.read_bytes()
        data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except FileNotFoundError:
        raise CorpusError(f"{path} does not exist.") from None
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise CorpusError(f"{path} is not a piano-roll JSON file ({exc}).") from None
    except RecursionError:
        raise CorpusError(f"{path} nests its lists deeper than a piano roll does (train, sequence, step, "
                          "pitch).") from None
    if not isinstance(data, dict) or not data.get("train"):
        raise CorpusError(f"{path} has no 'train' split: expected "
                          f"{{\"train\": [...], \"valid\": [...], \"test\": [...]}}.")
    splits = {}
    for split in SPLITS:
        try:
            splits[split] = rolls_from_pitch_lists(data.get(split, []), spb)
        except CorpusError as exc:
            raise CorpusError(f"{path}, split {split!r}: {exc}") from None
    names = {s: [f"{name}:{s}:{i}" for i in range(len(splits[s]))] for s in SPLITS}
    return Corpus(name, spb, splits, names=names)
