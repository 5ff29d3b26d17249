"""Can a judge tell livecomp's answers from the composer's own next bars? A blind two-sample test
on pieces no shipped model trained on.

    python bench/judge.py [--models piano,pop,folk,basic] [--corpora own|piano,pop909,nottingham]
                          [--per-piece 4] [--seed 0] [--json F] [--png-dir D]
                          [--candidates K] [--temperature T] [--choice floors|fit] [--fit-weight W]
                          [--cut fresh|tied] [--tells N] [--parts]
                          [--split valid --statistics-only]     (to try a change on other pieces)
                          [--mode duet]                         (the play-along mode, under the melody)

For each piece of a corpus's test split, calls of 4 bars start at bars 1, 9, 17, ... (up to
``--per-piece`` calls; bench/musicality.py's ``calls_of``). Each call is played into the
performer as ``livecomp duet`` drives it (the code path of ``listen``, the CLI's default
options) and the first 2 bars of its answer are set against the real next 2 bars. A key the
piece holds across the call's last bar line is struck again at the start of the real 2 bars
(and of the controls'), as an answer's keys must be: livecomp cannot hold on a note the musician
holds, so a tied note would tell the real continuation by the cut, not by the music (``--cut
tied`` keeps the ties, the judge before).

The judge is a set of classifiers that see the call and one continuation and say whether the
continuation is the real one. Each is trained and scored in 5-fold cross-validation with the
folds cut by piece, so no classifier ever judges a piece it saw in its own training:

- ``stats-logistic``: logistic regression on ~30 musical statistics of the continuation and
  its relation to the call (``features``);
- ``stats-mlp``: a small two-layer network on the same statistics;
- ``frames-cnn``: a convolutional network over the raw key-state frames of call +
  continuation, trained with random transpositions.

It reports the cross-validated ROC AUC of each and the largest, which is the judge's score
(0.5: it cannot tell; 1.0: it always can). Controls show the judge's range: ``other``, another
test piece's real 2 bars against the real continuation, and ``copy``, the call's own last 2
bars replayed. Beside the judge, ``STATISTICS`` (MusPy's definitions where they exist) are
printed for livecomp, the real continuation and the controls, with the target: within 10% of
real, or within the spread between two halves of the real set where that spread is larger.

``--mode duet`` judges the play-along mode the same way: the musician plays the 4-bar call and
then only its top line (the melody: the highest key sounding at each step) for 2 bars, and
livecomp plays along throughout (``--mode duet``, hearing both parts). The continuation judged
is that melody with livecomp's part over it, against the real 2 bars: would a listener take
livecomp's accompaniment for the composer's.

``--parts`` asks where the frame classifier tells: it is trained and scored again on the top
line alone (``melody``) and on what sounds under it (``below_melody``), call and continuations
cut the same way, for livecomp and for the controls.

Nothing here chooses or tunes livecomp's candidates: the performer is run as shipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from livecomp.files import atomic_write_bytes  # noqa: E402
from livecomp.model.engine import Engine  # noqa: E402
from livecomp.model.folder import find_model, shipped_models  # noqa: E402
from livecomp.music.form import fresh as struck_again  # noqa: E402  (the first step strikes every key it holds)
from livecomp.music.musicality import overlap, pitch_class_profile, position_profile, scale_of, transposition_free  # noqa: E402
from livecomp.music.roll import LOW_KEY, N_KEYS, OFF, STRUCK, onsets_of  # noqa: E402
from livecomp.perform.performer import PerformerConfig  # noqa: E402

from musicality import REAL_BARS, answer, calls_of, style_options, style_said  # noqa: E402

PIANO = "../shared/midi/piano-midi-de,../shared/midi/mutopia"
CORPORA = {"piano": PIANO, "pop909": "../shared/midi/pop909", "nottingham": "../shared/midi/nottingham"}
DEFAULT_MODEL = "piano"
FOLDS = 5
OWN_COUNT = "each model's own"    # candidates: as many as model.json names, as listen plays
CALLS_EVERY_BARS = 8
AUC_TARGET = 0.65
STAT_TOLERANCE = 0.10

# The 12 diatonic scales (major, and the same notes as its relative natural minor).
_DIATONIC = np.array([np.isin(np.arange(12), (np.array([0, 2, 4, 5, 7, 9, 11]) + t) % 12) for t in range(12)])

# The statistics printed side by side with real, each of one continuation (frames, 2 bars).
STATISTICS = ("pitch_class_entropy", "scale_consistency", "groove_consistency", "polyphony", "empty_beat_rate",
              "silent_steps", "pitch_range", "onsets_per_bar", "top_leaps", "top_steps", "bass_repeats",
              "bar_repetition")


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / max(counts.sum(), 1e-12)
    return float(-(p * np.log2(p)).sum()) if p.size else 0.0


def _line(onsets: np.ndarray, top: bool) -> np.ndarray:
    """Pitches of the highest (``top``) or lowest onset at each step that has one."""
    steps, keys = np.nonzero(onsets)
    if not steps.size:
        return np.zeros(0, int)
    out = {}
    for s, k in zip(steps, keys):
        if s not in out or (k > out[s] if top else k < out[s]):
            out[s] = k
    return np.array([out[s] for s in sorted(out)]) + LOW_KEY


def statistics(frames: np.ndarray, steps_per_bar: int, steps_per_beat: int) -> dict:
    """The statistics of one continuation: frames (steps, 88) of key states, starting on a bar line.

    - pitch_class_entropy: bits, of the onsets' pitch-class histogram (MusPy).
    - scale_consistency: the largest share of onsets in one diatonic scale (MusPy uses every
      major and minor scale; the diatonic 12 cover the natural minors).
    - groove_consistency: 1 - mean Hamming distance of consecutive bars' onset-position
      vectors / steps per bar (MusPy).
    - polyphony: mean keys sounding over the steps where any sounds (MusPy).
    - empty_beat_rate: share of beats with no onset (MusPy counts notes starting in a beat).
    - silent_steps: share of steps where no key sounds.
    - pitch_range: highest - lowest sounding key, semitones (MusPy).
    - onsets_per_bar: notes struck per bar.
    - top_leaps / top_steps: share of the top line's intervals of 5-8 / 1-2 semitones.
    - bass_repeats: share of the bass line's intervals that repeat the note.
    - bar_repetition: share of consecutive bar pairs with the same onsets at some transposition.
    """
    frames = np.asarray(frames)
    steps = len(frames)
    bars = max(steps // steps_per_bar, 1)
    hits = onsets_of(frames)
    sounding = frames > OFF
    per_step = sounding.sum(1)
    classes = pitch_class_profile(frames)
    notes = hits.sum()
    positions = hits[:bars * steps_per_bar].reshape(bars, steps_per_bar, N_KEYS).any(2)
    groove = (1 - np.mean([np.mean(positions[b] != positions[b + 1]) for b in range(bars - 1)])) if bars > 1 else 1.0
    beats = steps // steps_per_beat
    beat_onsets = hits[:beats * steps_per_beat].reshape(beats, -1).any(1) if beats else np.zeros(1, bool)
    keys = np.flatnonzero(sounding.any(0))
    top = np.abs(np.diff(_line(hits, top=True)))
    bass = np.abs(np.diff(_line(hits, top=False)))
    bar_onsets = [transposition_free(hits[b * steps_per_bar:(b + 1) * steps_per_bar].astype(np.uint8))
                  for b in range(bars)]
    repeats = [a is not None and a == b for a, b in zip(bar_onsets, bar_onsets[1:])]
    return {
        "pitch_class_entropy": _entropy(classes),
        "scale_consistency": float((_DIATONIC @ classes).max() / notes) if notes else 0.0,
        "groove_consistency": float(groove),
        "polyphony": float(per_step[per_step > 0].mean()) if (per_step > 0).any() else 0.0,
        "empty_beat_rate": float(1 - beat_onsets.mean()),
        "silent_steps": float((per_step == 0).mean()) if steps else 1.0,
        "pitch_range": float(keys[-1] - keys[0]) if keys.size else 0.0,
        "onsets_per_bar": float(notes / bars),
        "top_leaps": float(((top >= 5) & (top <= 8)).mean()) if top.size else 0.0,
        "top_steps": float(((top >= 1) & (top <= 2)).mean()) if top.size else 0.0,
        "bass_repeats": float((bass == 0).mean()) if bass.size else 0.0,
        "bar_repetition": float(np.mean(repeats)) if repeats else 0.0,
    }


RELATIONS = ("key_overlap", "in_call_key", "rhythm_overlap", "density_ratio", "mean_key_shift", "spread_shift",
             "top_join", "bass_join", "pitch_class_correlation")
FEATURES = (*STATISTICS, *(f"call_tail.{k}" for k in STATISTICS), *(f"relation.{k}" for k in RELATIONS))


def features(call: np.ndarray, cont: np.ndarray, steps_per_bar: int, steps_per_beat: int) -> np.ndarray:
    """What the statistics classifiers see of one (call, continuation) pair: the continuation's
    ``statistics``, the same of the call's last 2 bars, and how the continuation relates to the
    call (key, scale, rhythm and register agreement, density, the join)."""
    tail = call[-len(cont):] if len(call) >= len(cont) else call
    own, before = statistics(cont, steps_per_bar, steps_per_beat), statistics(tail, steps_per_bar, steps_per_beat)
    call_hits, cont_hits = onsets_of(call), onsets_of(cont)
    call_classes, cont_classes = pitch_class_profile(call), pitch_class_profile(cont)
    scale = scale_of(call_classes)
    n_cont, n_call = cont_hits.sum(), call_hits.sum()
    call_keys, cont_keys = np.nonzero(call_hits)[1], np.nonzero(cont_hits)[1]
    call_top, cont_top = _line(call_hits, True), _line(cont_hits, True)
    call_low, cont_low = _line(call_hits, False), _line(cont_hits, False)
    relation = [
        overlap(call_classes, cont_classes),
        float(cont_classes[scale].sum() / n_cont) if n_cont else 0.0,
        overlap(position_profile(call, steps_per_bar), position_profile(cont, steps_per_bar)),   # both from bar lines
        np.log2((n_cont / max(len(cont), 1) + 1e-3) / (n_call / max(len(call), 1) + 1e-3)),
        (cont_keys.mean() - call_keys.mean()) / 12 if cont_keys.size and call_keys.size else 0.0,
        (cont_keys.std() - call_keys.std()) / 12 if cont_keys.size and call_keys.size else 0.0,
        abs(int(cont_top[0]) - int(call_top[-1])) / 12 if cont_top.size and call_top.size else 1.0,
        abs(int(cont_low[0]) - int(call_low[-1])) / 12 if cont_low.size and call_low.size else 1.0,
        float(np.corrcoef(call_classes, cont_classes)[0, 1]) if np.ptp(call_classes) and np.ptp(cont_classes) else 0.0,
    ]
    return np.array([own[k] for k in STATISTICS] + [before[k] for k in STATISTICS] + relation, np.float64)


# -- the classifiers ---------------------------------------------------------------------------


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative (ties half)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):                              # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos, neg = labels.sum(), (~labels).sum()
    if not pos or not neg:
        return float("nan")
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def folds_by_piece(pieces: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """k folds of item indices, each piece's items in one fold."""
    rng = np.random.default_rng(seed)
    unique = rng.permutation(np.unique(pieces))
    return [np.flatnonzero(np.isin(pieces, unique[f::k])) for f in range(k)]


def _fit_stats(x_train, y_train, x_test, hidden: int, seed: int):
    import torch

    torch.manual_seed(seed)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.tensor((x_train - mean) / std, dtype=torch.float32)
    yt = torch.tensor(y_train, dtype=torch.float32)
    xs = torch.tensor((x_test - mean) / std, dtype=torch.float32)
    if hidden:
        net = torch.nn.Sequential(torch.nn.Linear(xt.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                  torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
        opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-3)
        for _ in range(300):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt)[:, 0], yt)
            loss.backward()
            opt.step()
    else:
        net = torch.nn.Linear(xt.shape[1], 1)
        opt = torch.optim.LBFGS(net.parameters(), max_iter=200)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt)[:, 0], yt) \
                + 1e-2 * (net.weight ** 2).sum()
            loss.backward()
            return loss
        opt.step(closure)
    net.eval()
    with torch.no_grad():
        return net(xs)[:, 0].numpy()


def _fit_frames(x_train, y_train, x_test, seed: int, epochs: int = 30):
    """A 1-D convolution over time of (steps, 177) inputs: sounding keys, struck keys, and a flag
    on the continuation's steps; mean and max over time, then a logistic output."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv1d(2 * N_KEYS + 1, 64, 5, padding=2), torch.nn.ReLU(),
        torch.nn.Conv1d(64, 64, 5, padding=4, dilation=2), torch.nn.ReLU())
    head = torch.nn.Linear(128, 1)

    def score(frames: np.ndarray, flags: np.ndarray) -> torch.Tensor:
        x = np.concatenate([frames > OFF, frames == 2, flags[..., None]], -1).transpose(0, 2, 1)   # (B, 177, T)
        h = net(torch.tensor(x, dtype=torch.float32))                                              # (B, 64, T)
        return head(torch.cat([h.mean(2), h.amax(2)], 1))[:, 0]

    frames_train, flags_train = x_train
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=2e-3, weight_decay=1e-4)
    yt = torch.tensor(y_train, dtype=torch.float32)
    for _ in range(epochs):
        net.train()
        order = rng.permutation(len(y_train))
        for b in range(0, len(order), 32):
            idx = order[b:b + 32]
            shift = int(rng.integers(-5, 6))            # the same transposition for call and continuation
            batch = np.roll(frames_train[idx], shift, axis=2)
            if shift > 0:
                batch[..., :shift] = 0
            elif shift < 0:
                batch[..., shift:] = 0
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(score(batch, flags_train[idx]), yt[idx])
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        return score(*x_test).numpy()


CLASSIFIERS = ("stats-logistic", "stats-mlp", "frames-cnn")


def judge(calls: list[dict], fakes: list[np.ndarray], seed: int, classifiers=CLASSIFIERS) -> dict:
    """Cross-validated ROC AUC of each classifier telling each call's real continuation (label 1)
    from ``fakes`` (label 0, one per call), folds cut by piece."""
    n = len(calls)
    conts = [c["real"] for c in calls] + list(fakes)
    pair_calls = calls + calls
    labels = np.r_[np.ones(n), np.zeros(n)]
    pieces = np.r_[[c["key"] for c in calls], [c["key"] for c in calls]]
    x_stats = np.stack([features(c["call"], f, c["bar"], c["spb"]) for c, f in zip(pair_calls, conts)])
    length = max(len(c["call"]) + len(f) for c, f in zip(pair_calls, conts))
    x_frames = np.zeros((2 * n, length, N_KEYS), np.uint8)
    x_flags = np.zeros((2 * n, length), np.float32)
    for i, (c, f) in enumerate(zip(pair_calls, conts)):
        both = np.concatenate([c["call"], f])
        x_frames[i, length - len(both):] = both          # left-padded, so every sequence ends at the last step
        x_flags[i, length - len(f):] = 1
    out = {}
    for name in classifiers:
        scores = np.zeros(2 * n)
        for f, test in enumerate(folds_by_piece(pieces, FOLDS, seed)):
            train = np.setdiff1d(np.arange(2 * n), test)
            if name == "frames-cnn":
                scores[test] = _fit_frames((x_frames[train], x_flags[train]), labels[train],
                                           (x_frames[test], x_flags[test]), seed + f)
            else:
                scores[test] = _fit_stats(x_stats[train], labels[train], x_stats[test],
                                          hidden=32 if name == "stats-mlp" else 0, seed=seed + f)
        out[name] = roc_auc(scores, labels)
    out["judge"] = max(out[c] for c in classifiers)
    return out


# -- calls, answers, controls --------------------------------------------------------------------


def gather_calls(corpus_path: str, steps_per_beat: int, per_piece: int, split: str = "test",
                 fresh: bool = True) -> tuple[list[dict], int]:
    """Every call of the split's pieces (``per_piece`` at most, every 8 bars from bar 1), and the
    number of pieces. ``fresh``: the real 2 bars and the controls start with every key struck
    (``struck_again``); otherwise a key held across the cut stays held there."""
    from livecomp_train.data import load_corpus

    corpus = load_corpus(corpus_path, steps_per_beat, progress=False)
    rolls = [r for r in corpus.splits[split] if r.n_steps]
    calls = []
    for i, roll in enumerate(rolls):
        got, _ = calls_of(roll, steps_per_beat, tuple(range(0, CALLS_EVERY_BARS * per_piece, CALLS_EVERY_BARS)))
        whole = roll.to_states(3) if got else None     # the piece, once, for the "other" control
        calls += [dict(c, key=i, frames=whole, split=split, fresh=fresh,
                       real=struck_again(c["real"]) if fresh else c["real"]) for c in got]
    return calls, len(rolls)


def other_bars(calls: list[dict], i: int, rng: np.random.Generator) -> np.ndarray:
    """Another piece's real 2 bars of the same bar length, from a bar line chosen at random."""
    c = calls[i]
    pool = [d for d in calls if d["key"] != c["key"] and d["bar"] == c["bar"]]
    if not pool:
        return np.zeros_like(c["real"])
    d = pool[int(rng.integers(len(pool)))]
    n = REAL_BARS * c["bar"]
    whole = d["frames"]
    first = int(rng.integers(0, max((len(whole) - n) // c["bar"], 0) + 1)) * c["bar"]
    out = np.zeros_like(c["real"])
    part = whole[first:first + n]
    out[:len(part)] = part
    return struck_again(out) if c["fresh"] else out


def copy_bars(c: dict) -> np.ndarray:
    """The call's own last 2 bars, replayed."""
    out = c["call"][-REAL_BARS * c["bar"]:]
    return struck_again(out) if c["fresh"] else out


def melody(frames: np.ndarray) -> np.ndarray:
    """The top line of frames (steps, 88): at each step only the highest key sounding, in its
    state (a key that comes to the top while held from before starts there)."""
    out = np.zeros_like(frames)
    for t, frame in enumerate(frames):
        keys = np.flatnonzero(frame > OFF)
        if keys.size:
            top = keys[-1]
            out[t, top] = frame[top] if t and out[t - 1, top] > OFF else STRUCK
    return out


def below_melody(frames: np.ndarray) -> np.ndarray:
    """What sounds under the top line: frames (steps, 88) without ``melody``'s key at each step."""
    out = np.array(frames, copy=True)
    out[melody(frames) > OFF] = OFF
    return out


PARTS = {"melody": melody, "below": below_melody}


def parts_judged(calls: list[dict], sets: dict[str, list[np.ndarray]], seed: int) -> dict[str, dict[str, float]]:
    """Where the frame classifier tells: its ROC AUC for each set of continuations against the
    real ones, with the call and both continuations cut to one part (``PARTS``: the top line
    alone, or what sounds under it). set -> part -> AUC."""
    out = {name: {} for name in sets}
    for part, cut in PARTS.items():
        cut_calls = [dict(c, call=cut(c["call"]), real=cut(c["real"])) for c in calls]
        for name, fakes in sets.items():
            out[name][part] = judge(cut_calls, [cut(f) for f in fakes], seed, ("frames-cnn",))["frames-cnn"]
    return out


def duet_answer(engine: Engine, call: dict, cfg: PerformerConfig) -> np.ndarray | None:
    """``--mode duet`` under a melody: the musician plays the call, then the top line of the
    real next 2 bars; livecomp plays along throughout. Returns that melody with livecomp's part
    of those 2 bars over it, or None where livecomp played nothing there."""
    from livecomp.music.frames import played_frames
    from livecomp.music.roll import PianoRoll, roll_to_midi
    from livecomp.perform.duet import duet

    tune = melody(call["real"])
    roll = PianoRoll(np.concatenate([call["call"], tune]), call["spb"], [(0, 500_000)], [(0, *call["meter"])])
    result = duet(engine, roll_to_midi(roll), replace(cfg, mode="duet"))
    start = len(call["call"])
    mine = played_frames(result.events, start, start + len(tune))
    return np.maximum(tune, mine) if mine.any() else None


def answers(model: str, calls: list[dict], cfg: PerformerConfig, seed: int, by: list | None = None
            ) -> tuple[list[np.ndarray], int, float]:
    """livecomp's first 2 bars for each call (silence where it did not answer), the unanswered count, seconds.
    ``by`` is told the model that answered each call answered (the model's or a specialist's name)."""
    engine = Engine(find_model(model), provider="cpu")
    out, unanswered, started = [], 0, time.perf_counter()
    for j, c in enumerate(calls):
        if cfg.mode == "duet":
            frames = duet_answer(engine, c, replace(cfg, seed=seed + j))
        else:
            frames = answer(engine, c, replace(cfg, seed=seed + j), by)
        n = REAL_BARS * c["bar"]
        got = np.zeros((n, N_KEYS), np.uint8)
        if frames is None:
            unanswered += 1
        else:
            got[:min(n, len(frames))] = frames[:n]
        out.append(got)
    return out, unanswered, time.perf_counter() - started


def stats_table(calls: list[dict], sets: dict[str, list[np.ndarray]], seed: int) -> dict:
    """Mean of each statistic for each set, and the tolerance around real (10%, or the split-half spread)."""
    rows = {name: np.array([[statistics(f, c["bar"], c["spb"])[k] for k in STATISTICS] for c, f in zip(calls, frames)])
            for name, frames in sets.items()}
    means = {name: dict(zip(STATISTICS, r.mean(0).tolist())) for name, r in rows.items()}
    rng = np.random.default_rng(seed)
    pieces = np.unique([c["key"] for c in calls])
    keys = np.array([c["key"] for c in calls])
    spreads = []
    for _ in range(20):
        half = np.isin(keys, rng.permutation(pieces)[:len(pieces) // 2])
        spreads.append(np.abs(rows["real"][half].mean(0) - rows["real"][~half].mean(0)))
    spread = np.mean(spreads, 0)
    tolerance = {k: float(max(STAT_TOLERANCE * abs(means["real"][k]), spread[i])) for i, k in enumerate(STATISTICS)}
    return {"means": means, "tolerance": tolerance}


def tells(calls: list[dict], fakes: list[np.ndarray]) -> list[tuple[str, float, float, float]]:
    """Each feature the statistics' classifiers see, alone: (name, ROC AUC of the feature as a score
    for "real", its mean on the real continuations, on livecomp's), the furthest from 0.5 first.
    The call's own features are left out: they are the same on both sides."""
    real = np.stack([features(c["call"], c["real"], c["bar"], c["spb"]) for c in calls])
    fake = np.stack([features(c["call"], f, c["bar"], c["spb"]) for c, f in zip(calls, fakes)])
    labels = np.r_[np.ones(len(real)), np.zeros(len(fake))]
    out = [(name, roc_auc(np.r_[real[:, i], fake[:, i]], labels), float(real[:, i].mean()), float(fake[:, i].mean()))
           for i, name in enumerate(FEATURES) if not name.startswith("call_tail.")]
    return sorted(out, key=lambda t: -abs(t[1] - 0.5))


def _judged(calls: list[dict], fakes: list[np.ndarray], seed: int, judged: bool) -> dict:
    """``judge``, or NaN for each classifier where only the statistics are asked for."""
    return judge(calls, fakes, seed) if judged else dict.fromkeys((*CLASSIFIERS, "judge"), float("nan"))


def run(model: str, corpus: str, calls: list[dict], pieces: int, cfg: PerformerConfig, seed: int,
        controls: dict, judged: bool = True, told: bool = False) -> dict:
    by: list[str] = []
    fakes, unanswered, seconds = answers(model, calls, cfg, seed, by)
    started = time.perf_counter()
    result = {"model": model, "corpus": corpus, "calls": len(calls), "pieces": pieces, "unanswered": unanswered,
              "answered_by": {name: by.count(name) for name in sorted(set(by))},
              "answer_seconds": round(seconds, 1), "livecomp": _judged(calls, fakes, seed, judged),
              "controls": controls}
    table = stats_table(calls, {"livecomp": fakes, "real": [c["real"] for c in calls]}, seed)
    result["statistics"] = table
    result["judge_seconds"] = round(time.perf_counter() - started, 1)
    live, real, tol = table["means"]["livecomp"], table["means"]["real"], table["tolerance"]
    result["targets"] = {"judge": result["livecomp"]["judge"] <= AUC_TARGET,
                         **{k: abs(live[k] - real[k]) <= tol[k] for k in STATISTICS}}
    result["fakes"] = fakes
    result["split"] = calls[0]["split"] if calls else "test"
    result["tells"] = tells(calls, fakes) if told else []       # only where --tells asks
    return result


def control_sets(calls: list[dict], seed: int, mode: str = "call") -> dict[str, list[np.ndarray]]:
    """The controls' continuations: other and copy, and for ``--mode duet`` the melody alone (no
    accompaniment at all)."""
    rng = np.random.default_rng(seed)
    sets = {"other": [other_bars(calls, i, rng) for i in range(len(calls))],
            "copy": [copy_bars(c) for c in calls]}
    if mode == "duet":
        sets["melody"] = [melody(c["real"]) for c in calls]
    return sets


def control_results(calls: list[dict], sets: dict[str, list[np.ndarray]], seed: int,
                    judged: bool = True) -> tuple[dict, dict]:
    """The judge on the controls' continuations (``control_sets``), and their statistics."""
    table = stats_table(calls, {"real": [c["real"] for c in calls], **sets}, seed)
    return {name: _judged(calls, fakes, seed, judged) for name, fakes in sets.items()}, table["means"]


def save_pngs(folder: Path, result: dict, calls: list[dict], count: int, seed: int) -> None:
    """Rolls of ``count`` calls, each with livecomp's answer (call + answer) and the real continuation below."""
    from livecomp.music.image import save_roll_png
    from livecomp.music.roll import PianoRoll

    folder.mkdir(parents=True, exist_ok=True)
    model = Path(result["model"]).name                      # a model folder's name, not its path
    rng = np.random.default_rng(seed)
    for i in sorted(rng.choice(len(calls), min(count, len(calls)), replace=False)):
        c = calls[i]
        gap = np.zeros((c["bar"], N_KEYS), np.uint8)
        call_part = np.concatenate([c["call"], gap, np.zeros_like(c["real"])])
        others = np.concatenate([np.zeros_like(c["call"]), gap, result["fakes"][i]])
        real = np.concatenate([c["call"], gap, c["real"]])
        meters = [(0, *c["meter"])]
        top = PianoRoll(np.maximum(call_part, 0), c["spb"], meters=meters)
        save_roll_png(folder / f"{model}-{result['corpus']}-{i:03d}-livecomp.png", top,
                      PianoRoll(others, c["spb"], meters=meters), names=("call", "livecomp"))
        save_roll_png(folder / f"{model}-{result['corpus']}-{i:03d}-real.png",
                      PianoRoll(real, c["spb"], meters=meters), names=("call + real",))


def print_tells(r: dict, count: int) -> None:
    print("what tells, one feature at a time (ROC AUC of the feature alone; real / livecomp means):")
    for name, auc, real, live in r["tells"][:count]:
        print(f"  {name:<34}{auc:>7.3f}{real:>10.3f}{live:>10.3f}")


def print_result(r: dict) -> None:
    print(f"\n{r['model']} on {r['corpus']} ({r['split']}): {r['calls']} calls from {r['pieces']} pieces, "
          f"{r['unanswered']} unanswered; answers {r['answer_seconds']} s, judge {r['judge_seconds']} s")
    if r.get("answered_by"):                             # the model itself, or a specialist (style following)
        print("answered by " + ", ".join(f"{name} {n}" for name, n in r["answered_by"].items()))
    fmt = "{:<12}" + "{:>16}" * (len(CLASSIFIERS) + 1)
    print(fmt.format("ROC AUC", *CLASSIFIERS, "judge (max)"))
    for who, aucs in (("livecomp", r["livecomp"]), *r["controls"].items()):
        print(fmt.format(who, *(f"{aucs[c]:.3f}" for c in CLASSIFIERS), f"{aucs['judge']:.3f}"))
    means, tol = r["statistics"]["means"], r["statistics"]["tolerance"]
    controls = list(r["controls"])
    print(f"{'statistic':<22}{'livecomp':>10}{'real':>10}{'+-':>8}" + "".join(f"{c:>10}" for c in controls))
    for k in STATISTICS:
        mark = "" if r["targets"][k] else " *"
        print(f"{k:<22}{means['livecomp'][k]:>10.3f}{means['real'][k]:>10.3f}{tol[k]:>8.3f}"
              + "".join(f"{r['control_means'][c][k]:>10.3f}" for c in controls) + mark)
    print(f"targets: judge <= {AUC_TARGET} {'met' if r['targets']['judge'] else 'MISSED'}; statistics "
          f"{sum(r['targets'][k] for k in STATISTICS)}/{len(STATISTICS)} within tolerance (* = outside)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(shipped_models()), help="shipped model names or folders")
    parser.add_argument("--corpora", default="own",
                        help="'own': the default model on every corpus, every other model on its own; "
                             "or a list of " + ", ".join(CORPORA))
    parser.add_argument("--per-piece", type=int, default=4, help="calls per piece at most (every 8 bars from bar 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="test", choices=("test", "valid"),
                        help="valid: to try a change without looking at the pieces the figures are reported on")
    parser.add_argument("--statistics-only", action="store_true", help="the statistics alone, no classifiers")
    parser.add_argument("--tells", type=int, default=0, metavar="N",
                        help="also print the N features that tell livecomp from real most on their own")
    parser.add_argument("--cut", default="fresh", choices=("fresh", "tied"),
                        help="fresh: keys held across the call's end are struck again in the real bars and the "
                             "controls, as an answer's must be; tied: kept held (the judge before)")
    defaults = PerformerConfig()
    parser.add_argument("--candidates", type=int, default=defaults.candidates,
                        help="candidate bars per answer bar (default: each model's own count, as listen plays it)")
    parser.add_argument("--temperature", type=float, default=defaults.temperature)
    parser.add_argument("--choice", default=defaults.choice, choices=("floors", "fit"),
                        help="floors: the first candidate within FIT_FLOORS of the call (listen's); "
                             "fit: the one that agrees best (the choice before)")
    parser.add_argument("--fit-weight", type=float, default=defaults.fit_weight,
                        help="nats per unit of agreement with the call (inf, the default: agreement alone)")
    parser.add_argument("--parts", action="store_true",
                        help="also judge the melody alone and what sounds under it with the frame classifier")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--png-dir", type=Path, help="write rolls of 5 calls with answer and real continuation here")
    parser.add_argument("--mode", default="call", choices=("call", "duet"),
                        help="duet: livecomp plays along under the melody of the 2 bars after the call")
    parser.add_argument("--no-repeat", action="store_true",
                        help="no answer bar brings back the call's bar at its place in the phrase (no repeat gate)")
    style_options(parser, defaults)
    args = parser.parse_args()
    os.chdir(ROOT)
    cfg = replace(defaults, candidates=args.candidates, temperature=args.temperature, fit_weight=args.fit_weight,
                  choice=args.choice, mode=args.mode, repeat=not args.no_repeat,
                  follow_style=not args.no_follow_style, style_margin=args.style_margin)
    print(f"options: mode {cfg.mode}, candidates {cfg.candidates or OWN_COUNT}, temperature "
          f"{cfg.temperature:g}, choice {cfg.choice}, fit weight {cfg.fit_weight:g}, "
          f"repeat gate {'on' if cfg.repeat else 'off'}, "
          f"{style_said(cfg)}, "
          f"silence {cfg.silence_beats:g} beats; cut {args.cut}; "
          f"{FOLDS}-fold cross-validation by piece; seed {args.seed}")
    own = {"piano": "piano", "pop": "pop909", "folk": "nottingham", "basic": "nottingham"}
    jobs = []
    models = args.models.split(",")
    for model in sorted(models, key=lambda m: m != DEFAULT_MODEL):          # the default model first
        if args.corpora == "own":
            corpora = list(CORPORA) if model == DEFAULT_MODEL else [own.get(model, "piano")]
        else:
            corpora = args.corpora.split(",")
        jobs += [(model, c) for c in corpora]
    cache, control_parts, results = {}, {}, []
    for model, corpus in jobs:
        if corpus not in cache:
            calls, pieces = gather_calls(CORPORA[corpus], 4, args.per_piece, args.split, args.cut == "fresh")
            sets = control_sets(calls, args.seed, cfg.mode)
            cache[corpus] = (calls, pieces, sets, *control_results(calls, sets, args.seed, not args.statistics_only))
        calls, pieces, sets, controls, control_means = cache[corpus]
        r = run(model, corpus, calls, pieces, cfg, args.seed, controls, not args.statistics_only, args.tells > 0)
        r["control_means"] = control_means
        print_result(r)
        if args.tells:
            print_tells(r, args.tells)
        if args.parts:
            if corpus not in control_parts:                 # the controls' once for each corpus
                control_parts[corpus] = parts_judged(calls, sets, args.seed)
            r["parts"] = {**parts_judged(calls, {"livecomp": r["fakes"]}, args.seed), **control_parts[corpus]}
            print(f"where the frame classifier tells ({' / '.join(PARTS)} alone):")
            for who, aucs in r["parts"].items():
                print(f"  {who:<10}" + " / ".join(f"{aucs[p]:.3f}" for p in PARTS))
        if args.png_dir:
            save_pngs(args.png_dir, r, calls, 5, args.seed)
        results.append({k: v for k, v in r.items() if k not in ("fakes", "tells")})
    print("\nsummary: judge ROC AUC (livecomp / other / copy), target <= 0.65; statistics within tolerance")
    for r in results:
        print(f"{r['model']:<8}{r['corpus']:<12}{r['livecomp']['judge']:.3f} / {r['controls']['other']['judge']:.3f} / "
              f"{r['controls']['copy']['judge']:.3f}   {sum(r['targets'][k] for k in STATISTICS)}/{len(STATISTICS)}")
    if args.json:
        atomic_write_bytes(args.json, json.dumps(results, indent=2).encode())


if __name__ == "__main__":
    main()
