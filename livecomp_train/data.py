"""Corpora for training: MIDI folders and the piano-roll benchmarks (``benchmark_data``), cut into
training windows (``batches``).

A corpus (``corpus.Corpus``) is a set of named splits (``train``, ``valid``, ``test``), each a
list of ``PianoRoll``. Two sources, which ``load_corpus`` chooses by name and joins:

* a folder of MIDI files, searched recursively, converted in parallel and cached
  on disk by file content and conversion settings; damaged files are skipped and
  listed with the reason; files go to splits by a hash of their path in the
  folder, so adding files never moves old ones between splits;
* a benchmark by name, or a JSON file of that form (``benchmark_data``).
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from livecomp.files import atomic_write_bytes
from livecomp.music.notes import MidiFileError
from livecomp.music.roll import ConversionReport, PianoRoll, midi_to_roll

from .batches import epoch_order, make_windows, transpose_batch
from .benchmark_data import BENCHMARKS, load_benchmark, rolls_from_pitch_lists
from .corpus import SPLITS, Corpus, CorpusError

__all__ = [
    "BENCHMARKS", "Corpus", "CorpusError", "load_corpus", "load_midi_folder", "load_benchmark",
    "rolls_from_pitch_lists", "split_of", "make_windows", "transpose_batch", "epoch_order",
]

MIDI_SUFFIXES = {".mid", ".midi", ".smf", ".kar"}
CONVERTER_VERSION = 1          # bump when roll conversion changes, so old cache entries are ignored


# ---------------------------------------------------------------- MIDI folders

def default_cache_dir() -> Path:
    """Where converted rolls are cached: ``$LIVECOMP_CACHE`` or ``~/.cache/livecomp``."""
    base = os.environ.get("LIVECOMP_CACHE") or Path(os.environ.get("XDG_CACHE_HOME",
                                                                   Path.home() / ".cache")) / "livecomp"
    return Path(base) / "rolls"


def split_of(relative_path: str, valid: float = 0.1, test: float = 0.1) -> str:
    """The split a file belongs to, from a hash of its path inside the corpus folder."""
    h = int.from_bytes(hashlib.sha256(relative_path.encode()).digest()[:8], "big") / 2.0**64
    return "test" if h < test else "valid" if h < test + valid else "train"


def _cache_key(data: bytes, steps_per_beat: int, sustain: bool) -> str:
    settings = f"v{CONVERTER_VERSION}:spb={steps_per_beat}:sustain={int(sustain)}".encode()
    return hashlib.sha256(settings + b"\0" + data).hexdigest()


def _encode_roll(roll: PianoRoll) -> bytes:
    meta = json.dumps({"spb": roll.steps_per_beat, "tempos": roll.tempos, "meters": roll.meters,
                       "report": roll.report.as_dict(), "shape": roll.frames.shape}).encode()
    return len(meta).to_bytes(4, "big") + meta + zlib.compress(roll.frames.tobytes(), 1)


def _decode_roll(blob: bytes) -> PianoRoll:
    n = int.from_bytes(blob[:4], "big")
    meta = json.loads(blob[4:4 + n])
    frames = np.frombuffer(zlib.decompress(blob[4 + n:]), np.uint8).reshape(meta["shape"])
    return PianoRoll(frames.copy(), meta["spb"], [tuple(t) for t in meta["tempos"]],
                     [tuple(m) for m in meta["meters"]], ConversionReport(**meta["report"]))


def _convert(args: tuple[str, int, bool]) -> tuple[bytes | None, str | None]:
    """Worker: one MIDI file -> encoded roll, or the reason it cannot be read."""
    path, steps_per_beat, sustain = args
    try:
        return _encode_roll(midi_to_roll(path, steps_per_beat, sustain)), None
    except MidiFileError as exc:
        return None, str(exc)


def _midi_paths(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The MIDI files under ``folder`` (regular files, links to them included), and what looked
    like one but cannot be read as a file, with why: a dangling link, a FIFO or device, a
    subfolder that cannot be listed. Those are listed with the skipped files, never waited on."""
    paths, odd = [], []

    def unlisted(exc: OSError) -> None:
        odd.append((str(exc.filename), f"a folder that cannot be listed ({exc.strerror or exc})"))

    for root, _, files in os.walk(folder, onerror=unlisted, followlinks=True):    # as rglob did
        for name in files:
            path = Path(root) / name
            if path.suffix.lower() not in MIDI_SUFFIXES:
                continue
            if path.is_file():
                paths.append(path)
            elif path.is_symlink() and not path.exists():
                odd.append((str(path), "a link to nothing"))
            else:
                odd.append((str(path), "not a regular file (a FIFO or a device)"))
    return sorted(paths), sorted(odd)


def load_midi_folder(folder: str | Path, steps_per_beat: int = 4, sustain: bool = False,
                     cache_dir: Path | None = None, workers: int | None = None,
                     progress: bool = True, valid: float = 0.1, test: float = 0.1) -> Corpus:
    """Every MIDI file under ``folder`` as rolls, split by path hash (see ``split_of``).

    Conversions are cached in ``cache_dir`` (default ``default_cache_dir()``) keyed by
    file content and settings, failures included, so a second load reads no MIDI.

    Raises:
        CorpusError: the folder does not exist, holds no MIDI file, or no readable one.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"{folder} is not a folder.")
    paths, odd = _midi_paths(folder)
    if not paths:
        raise CorpusError(f"{folder} holds no MIDI files (.mid, .midi)"
                          + (f"; {len(odd)} could not be read ({odd[0][0]}: {odd[0][1]})." if odd else "."))
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)

    results: list[tuple[bytes | None, str | None] | None] = [None] * len(paths)
    keys: list[str | None] = []
    for i, p in enumerate(paths):
        try:
            keys.append(_cache_key(p.read_bytes(), steps_per_beat, sustain))
        except OSError as exc:                         # unreadable (permissions, I/O): skipped and listed
            keys.append(None)
            results[i] = (None, f"cannot be read ({exc.strerror or exc})")
    missing = []
    for i, key in enumerate(keys):
        if key is None:
            continue
        entry = cache / key[:2] / key
        if entry.with_suffix(".roll").exists():
            results[i] = (entry.with_suffix(".roll").read_bytes(), None)
        elif entry.with_suffix(".err").exists():
            results[i] = (None, entry.with_suffix(".err").read_text())
        else:
            missing.append(i)

    if missing:
        from tqdm import tqdm
        jobs = [(str(paths[i]), steps_per_beat, sustain) for i in missing]
        n_workers = workers or os.cpu_count() or 1
        bar = tqdm(total=len(jobs), desc=f"converting {folder.name}", unit="file", disable=not progress)
        if n_workers > 1 and len(jobs) > 8:
            with ProcessPoolExecutor(n_workers) as pool:
                converted = pool.map(_convert, jobs, chunksize=16)
                for i, result in zip(missing, converted):
                    results[i] = result
                    bar.update()
        else:
            for i, job in zip(missing, jobs):
                results[i] = _convert(job)
                bar.update()
        bar.close()
        for i in missing:
            blob, err = results[i]
            entry = cache / keys[i][:2] / keys[i]
            if blob is not None:
                atomic_write_bytes(entry.with_suffix(".roll"), blob)
            else:
                atomic_write_bytes(entry.with_suffix(".err"), err.encode())

    splits: dict[str, list[PianoRoll]] = {s: [] for s in SPLITS}
    names: dict[str, list[str]] = {s: [] for s in SPLITS}
    skipped = list(odd)
    for path, (blob, err) in zip(paths, results):
        if blob is None:
            skipped.append((str(path), err))
            continue
        rel = path.relative_to(folder).as_posix()
        split = split_of(rel, valid, test)
        splits[split].append(_decode_roll(blob))
        names[split].append(rel)
    if not any(splits.values()):
        raise CorpusError(f"none of the {len(paths)} MIDI files in {folder} could be read.")
    corpus = Corpus(folder.name, steps_per_beat, splits, skipped, names)
    corpus.upbeats = _apply_upbeats(corpus, folder)
    return corpus


def _apply_upbeats(corpus: Corpus, folder: Path) -> int:
    """Put the bar lines of files that start with an upbeat where the score has them.

    A folder may hold ``index.csv`` with the columns ``file`` and ``upbeat_quarters`` (as the
    Mutopia folder does: LilyPond writes a piece's upbeat from tick 0, so the bar lines its
    time signature implies sit early by the upbeat). Each such roll gets a short first bar of
    the upbeat's length, and its first meter starts after it. Returns how many rolls moved.
    """
    index = folder / "index.csv"
    if not index.is_file():
        return 0
    import csv

    with open(index, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "upbeat_quarters" not in rows[0] or "file" not in rows[0]:
        return 0
    upbeat = {}
    for row in rows:
        try:
            upbeat[row["file"]] = float(row["upbeat_quarters"])
        except (TypeError, ValueError):
            continue                                   # blank: several movements, unknown
    moved = 0
    for split, rolls in corpus.splits.items():
        for roll, name in zip(rolls, corpus.names[split]):
            steps = upbeat.get(name, 0.0) * corpus.steps_per_beat
            later = [m for m in roll.meters[1:] if m[0] > 0]
            if steps <= 0 or steps != int(steps) or (later and later[0][0] <= steps) or steps >= roll.n_steps:
                continue
            steps = int(steps)
            _, num, den = roll.meters[0]
            roll.meters = [(0, steps, 4 * corpus.steps_per_beat), (steps, num, den)] + later
            moved += 1
    return moved


def load_corpus(data: str, steps_per_beat: int = 4, **kwargs) -> Corpus:
    """``--data``: a benchmark name, a folder of MIDI files, or a piano-roll JSON file; or
    several of those joined by commas (``../midi/piano-midi-de,../midi/mutopia``), merged split
    by split (each source keeps its own split of its files; names gain the source's name).

    Raises:
        CorpusError: none of those.
    """
    if "," in data and not Path(data).exists():
        parts = [load_corpus(part, steps_per_beat, **kwargs) for part in data.split(",") if part]
        if len({c.steps_per_beat for c in parts}) > 1:
            raise CorpusError(f"--data {data!r} mixes grids "
                              f"({', '.join(f'{c.name}: {c.steps_per_beat} steps per beat' for c in parts)}).")
        return Corpus("+".join(c.name for c in parts), parts[0].steps_per_beat,
                      {s: [r for c in parts for r in c.splits[s]] for s in SPLITS},
                      [item for c in parts for item in c.skipped],
                      {s: [f"{c.name}/{n}" for c in parts for n in c.names.get(s, [])] for s in SPLITS},
                      sum(c.upbeats for c in parts))
    if data in BENCHMARKS:
        return load_benchmark(data)
    path = Path(data)
    if path.is_dir():
        return load_midi_folder(path, steps_per_beat, **kwargs)
    if path.is_file():
        if path.suffix.lower() in (".mid", ".midi", ".kar"):
            raise CorpusError(f"--data {data!r} is one MIDI file; --data takes a folder of MIDI files (this one's, "
                              f"{path.parent}, say) or a piano-roll JSON file.")
        return load_benchmark(path, steps_per_beat)
    names = ", ".join(BENCHMARKS)
    where = f" (from {Path.cwd()}; a relative path is read from the folder livecomp runs in)" \
        if not path.is_absolute() else ""
    raise CorpusError(f"--data {data!r} is neither a benchmark ({names}) nor an existing folder or file{where}.")
