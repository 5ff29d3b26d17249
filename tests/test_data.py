"""Corpora: the published benchmark splits, MIDI folders with a cache, training windows."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import livecomp_train.data as data
from livecomp.music.roll import PianoRoll
from livecomp_train.benchmark_data import benchmark_path
from livecomp_train.data import (
    CorpusError,
    epoch_order,
    load_benchmark,
    load_corpus,
    load_midi_folder,
    make_windows,
    transpose_batch,
)

from conftest import NOTTINGHAM, SHARED, TUNES, bad_midi_files


@pytest.mark.parametrize("name, sizes, test_frames", [
    ("jsb", (229, 76, 77), 4725),
    ("nottingham", (694, 173, 170), 44463),
])
def test_benchmarks_have_the_published_sizes(name, sizes, test_frames):
    corpus = load_benchmark(name)
    assert tuple(len(corpus.splits[s]) for s in ("train", "valid", "test")) == sizes
    assert corpus.frames("test") == test_frames


@pytest.mark.parametrize("name, shared", [
    ("jsb", "benchmarks/jsb_chorales.json.gz"),
    ("nottingham", "benchmarks/nottingham.json.gz"),
    ("jsb16", "jsb_chorales_16th.json.gz"),
])
def test_shipped_benchmarks_are_the_published_files(name, shared):
    assert benchmark_path(name).read_bytes() == (SHARED / "data" / shared).read_bytes()


def test_a_benchmark_key_that_turns_on_is_struck_and_one_that_stays_on_is_held():
    roll = data.rolls_from_pitch_lists([[[60], [60], [], [60, 64]]], steps_per_beat=1)[0]
    assert roll.frames[:, 60 - 21].tolist() == [2, 1, 0, 2]
    assert roll.frames[:, 64 - 21].tolist() == [0, 0, 0, 2]


def test_midi_folder_loads_every_file_into_stable_splits(tmp_path):
    corpus = load_midi_folder(NOTTINGHAM, cache_dir=tmp_path / "cache", progress=False)
    assert sum(len(v) for v in corpus.splits.values()) == 1034
    assert corpus.skipped == []
    assert 0.05 < len(corpus.splits["test"]) / 1034 < 0.15
    assert all(data.split_of(name) == "test" for name in corpus.names["test"])


def test_second_load_comes_from_the_cache_without_reading_midi(tmp_path, monkeypatch):
    folder = tmp_path / "midi"
    folder.mkdir()
    for f in sorted(TUNES.glob("reels*.mid"))[:20]:
        shutil.copy(f, folder / f.name)
    first = load_midi_folder(folder, cache_dir=tmp_path / "cache", progress=False)

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted a file that was in the cache")

    monkeypatch.setattr(data, "_convert", no_conversion)
    second = load_midi_folder(folder, cache_dir=tmp_path / "cache", progress=False, workers=1)
    for split in first.splits:
        assert [r.frames.tobytes() for r in first.splits[split]] == [r.frames.tobytes() for r in second.splits[split]]
    with pytest.raises(AssertionError, match="converted"):   # other settings, other cache entries
        load_midi_folder(folder, steps_per_beat=2, cache_dir=tmp_path / "cache", progress=False, workers=1)


def test_corrupt_files_are_skipped_listed_and_the_rest_loads(tmp_path):
    folder = tmp_path / "midi"
    bad = bad_midi_files(folder / "bad")
    for f in sorted(NOTTINGHAM.glob("jigs1*.mid"))[:12]:
        shutil.copy(f, folder / f.name)
    corpus = load_midi_folder(folder, cache_dir=tmp_path / "cache", progress=False, workers=2)
    assert sum(len(v) for v in corpus.splits.values()) == 12
    assert sorted(p for p, _ in corpus.skipped) == sorted(str(p) for p in bad.values())
    assert all(reason for _, reason in corpus.skipped)


def test_an_unreadable_file_is_skipped_and_listed_not_the_end_of_the_run(tmp_path, monkeypatch):
    """Permission denied on one file (root reads everything, so the refusal is simulated)."""
    folder = tmp_path / "midi"
    folder.mkdir()
    for f in sorted(TUNES.glob("jigs1*.mid"))[:4]:
        shutil.copy(f, folder / f.name)
    locked = sorted(folder.glob("*.mid"))[0]
    read_bytes = type(locked).read_bytes

    def guarded(path):
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(type(locked), "read_bytes", guarded)
    corpus = load_midi_folder(folder, cache_dir=tmp_path / "cache", progress=False, workers=1)
    assert sum(len(v) for v in corpus.splits.values()) == 3
    assert corpus.skipped == [(str(locked), "cannot be read (Permission denied)")]


def test_a_dangling_link_a_fifo_and_an_unlistable_folder_are_listed_not_waited_on(tmp_path, monkeypatch):
    """A FIFO named .mid would block a read for ever; a link to nothing and a subfolder that
    cannot be listed (simulated: root lists everything) are named too, and the rest loads."""
    import os

    folder = tmp_path / "midi"
    (folder / "locked").mkdir(parents=True)
    for f in sorted(TUNES.glob("jigs1*.mid"))[:3]:
        shutil.copy(f, folder / f.name)
    (folder / "gone.mid").symlink_to(tmp_path / "nowhere.mid")
    os.mkfifo(folder / "pipe.mid")
    walk = os.walk

    def guarded(top, onerror=None, **kwargs):
        for root, dirs, files in walk(top, onerror=onerror, **kwargs):
            if "locked" in dirs:
                dirs.remove("locked")
                onerror(PermissionError(13, "Permission denied", os.path.join(root, "locked")))
            yield root, dirs, files

    monkeypatch.setattr(os, "walk", guarded)
    corpus = load_midi_folder(folder, cache_dir=tmp_path / "cache", progress=False, workers=1)
    assert sum(len(v) for v in corpus.splits.values()) == 3
    assert dict(corpus.skipped) == {str(folder / "gone.mid"): "a link to nothing",
                                    str(folder / "locked"): "a folder that cannot be listed (Permission denied)",
                                    str(folder / "pipe.mid"): "not a regular file (a FIFO or a device)"}


def test_empty_folder_and_folder_of_only_bad_files_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="holds no MIDI files"):
        load_midi_folder(tmp_path / "empty", cache_dir=tmp_path / "cache", progress=False)
    bad_midi_files(tmp_path / "bad")
    with pytest.raises(CorpusError, match="none of the 4 MIDI files"):
        load_midi_folder(tmp_path / "bad", cache_dir=tmp_path / "cache", progress=False)


def test_unknown_data_name_is_refused_with_the_known_names():
    with pytest.raises(CorpusError, match="jsb, nottingham, jsb16"):
        load_corpus("bach")


def test_windows_start_on_bar_lines():
    steps = np.arange(100)
    frames = np.zeros((100, 88), np.uint8)
    frames[steps, steps % 88] = 1                      # each step marks its own index
    roll = PianoRoll(frames, steps_per_beat=4, meters=[(0, 3, 4)])   # bars of 12 steps
    windows, lengths, starts = make_windows([roll], length=24)
    assert [int(np.flatnonzero(w[0])[0]) for w in windows] == [0, 12, 24, 36, 48, 60, 72]
    assert starts.tolist() == [0, 12, 24, 36, 48, 60, 72]
    assert (lengths == 24).all()


def test_short_songs_become_one_padded_window():
    roll = PianoRoll(np.ones((10, 88), np.uint8), steps_per_beat=4)
    windows, lengths, _ = make_windows([roll], length=32)
    assert windows.shape == (1, 32, 88) and lengths.tolist() == [10]
    assert windows[0, 10:].sum() == 0


def test_transposition_keeps_every_note_on_the_piano():
    rng = np.random.default_rng(0)
    batch = np.zeros((64, 16, 88), np.uint8)
    batch[:32, :, 0] = 1                               # lowest key
    batch[32:, :, 87] = 1                              # highest key
    batch[:, 3, 40] = 2
    shifted = transpose_batch(batch, 6, rng)
    assert (shifted.sum(axis=(1, 2)) == batch.sum(axis=(1, 2))).all()
    assert (shifted[:32, :, 0:7].sum(axis=(1, 2)) > 0).all()      # moved up or stayed
    assert not np.array_equal(shifted, batch)


def test_epoch_order_mixes_songs_and_repeats_for_the_same_seed():
    assert np.array_equal(epoch_order(500, seed=3, epoch=7), epoch_order(500, seed=3, epoch=7))
    assert not np.array_equal(epoch_order(500, seed=3, epoch=7), epoch_order(500, seed=3, epoch=8))
