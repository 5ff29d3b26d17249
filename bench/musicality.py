"""Does an answer continue its call? Score the co-performer on held-out calls of real music.

    python bench/musicality.py [--models piano,folk,pop] [--corpora nottingham,jsb16,...]
                               [--split test] [--seed 0] [--write-cards]

For each piece of a corpus's split, the call is bars 1-4 (a piece that starts with an upbeat
keeps it, padded to a full bar) and, where the piece is long enough, bars 9-12 too. The call
is played into the co-performer as `livecomp duet` drives it (the Performer on a simulated
clock, the CLI's default options), followed by silence until it answers; its answer's first 2
bars are the continuation scored. "real" is the piece's own next 2 bars; "other" is another
piece's bars 5-6, so a reader sees the range of each measure. The measures (key, rhythm,
density, register, silent, echo) are defined in livecomp/music/musicality.py; "copied" is the
longest run of consecutive answer bars (the whole answer) found verbatim, at any
transposition, in the model's training split (bars without an onset never count, nor bars that
repeat a bar of the call: those are the musician's).

Prints, per model and corpus, the mean of each measure for livecomp, real and other, and
whether the targets hold (key and rhythm >= 0.95 x real, register <= 1.25 x real, density in
0.8-1.25 x real, silent <= real + 0.05, echo within 0.05 of real from either side, copied <= 2
bars for every answer).
`--write-cards` stores the figures in each model's model.json ("musicality").
`--floors` prints instead how far real continuations go from their calls on each model's own
training split (its collections weighing the same): the floors the performer screens its
candidates with; `--write-floors` stores them in each model's model.json ("fit_floors"). A
model without them is screened by ``FIT_FLOORS``: the default's, measured on its collections.
`--gate` fits instead the repeat gate (livecomp/music/form.py: how likely an answer bar is to
bring back the call's bar at its place in the phrase) on each model's training split, its
collections weighing the same, and checks it on their validation splits; `--write-gate` stores it
in model.json ("repeat_gate"). A model without one answers with ``form.REPEAT_GATE``: the
default's.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livecomp.files import atomic_write_bytes  # noqa: E402
from livecomp.model.engine import DEFAULT_CANDIDATES, Engine  # noqa: E402
from livecomp.model.folder import find_model, shipped_models  # noqa: E402
from livecomp.music import form, musicality  # noqa: E402
from livecomp.music.frames import played_frames  # noqa: E402
from livecomp.music.musicality import FIT_TERMS, CallStyle, measures, transposition_free  # noqa: E402
from livecomp.music.roll import PianoRoll, onsets_of, roll_to_midi  # noqa: E402
from livecomp.perform.duet import duet  # noqa: E402
from livecomp.perform.performer import PerformerConfig  # noqa: E402
from livecomp_train.data import load_corpus  # noqa: E402

MEASURES = ("key", "rhythm", "density", "register", "silent", "echo")     # as ``measures`` names them

OWN_COUNT = "each model's own"    # candidates: as many as model.json names, as listen plays
CORPORA = {
    "nottingham": "../shared/midi/nottingham",
    "jsb16": "jsb16",
    "piano-midi-de": "../shared/midi/piano-midi-de",
    "mutopia": "../shared/midi/mutopia",
    "pop909": "../shared/midi/pop909",
}
CALL_BARS, REAL_BARS, MIN_CALL_NOTES = 4, 2, 4
CALL_AT = (0, 8)                     # calls start at bar 1 and bar 9 (0-based bar indices)


def calls_of(roll: PianoRoll, spb_model: int, starts_at: tuple[int, ...] = CALL_AT) -> tuple[list[dict], list[str]]:
    """The calls a piece gives, starting at the 0-based bars ``starts_at``: frames (with an upbeat
    padded to a full bar), meter, real continuation, first bar. Also the reasons calls were
    left out."""
    frames = roll.to_states(3)
    starts = roll.bar_starts() + [roll.n_steps]
    out, skipped = [], []
    upbeat = 1 if len(starts) > 2 and starts[1] - starts[0] < roll.steps_per_bar(starts[1]) else 0
    for at in starts_at:
        b0 = at + upbeat
        if b0 + CALL_BARS + REAL_BARS >= len(starts):
            if at == 0:
                skipped.append("shorter than 6 bars")
            continue
        bar = roll.steps_per_bar(starts[b0])
        num, den = roll.meter_at(starts[b0])
        lengths = {starts[b + 1] - starts[b] for b in range(b0, b0 + CALL_BARS + REAL_BARS)}
        if lengths != {bar} or (num * 4) % den:
            skipped.append("meter changes or is not whole beats")
            continue
        first = starts[b0] - (starts[b0] - starts[0] if at == 0 and upbeat else 0)
        end = starts[b0 + CALL_BARS]
        call = np.zeros((end - starts[b0] + bar * (first < starts[b0]), frames.shape[1]), np.uint8)
        call[len(call) - (end - first):] = frames[first:end]
        if onsets_of(call).sum() < MIN_CALL_NOTES:
            skipped.append(f"fewer than {MIN_CALL_NOTES} notes in the call")
            continue
        out.append({"call": call, "meter": (num, den), "bar": bar,
                    "real": frames[end:end + REAL_BARS * bar], "spb": roll.steps_per_beat, "bar_index": b0})
    return out, skipped


def answer(engine: Engine, call: dict, cfg: PerformerConfig, by: list | None = None) -> np.ndarray | None:
    """The performer's answer to a call, the first planned after the call's end (one planned on a
    bar line inside the call stopped after a step, the call going on): frames of the whole
    answer, or None. ``by`` is told the name of the model that answered (the engine's, or one of
    its specialists')."""
    roll = PianoRoll(call["call"], call["spb"], [(0, 500_000)], [(0, *call["meter"])])
    result = duet(engine, roll_to_midi(roll), cfg)
    after = [(i, start, end) for i, (start, end) in enumerate(result.answers) if start >= len(call["call"])]
    if not after:
        return None
    i, start, end = after[0]
    if by is not None:
        by.append(result.answered_by[i])
    return played_frames(result.events, start, end)


class CopyIndex:
    """Blocks of 1..n consecutive bars of a training split, at any transposition."""

    def __init__(self, sequences: list[np.ndarray], bar_starts: list[list[int]], steps_per_bar: int, max_bars: int):
        self.spb, self.blocks = steps_per_bar, {k: set() for k in range(1, max_bars + 1)}
        for frames, starts in zip(sequences, bar_starts):
            for s in starts:
                for k in self.blocks:
                    block = frames[s:s + k * steps_per_bar]
                    if len(block) == k * steps_per_bar:
                        key = transposition_free(block)
                        if key is not None:
                            self.blocks[k].add(key)

    def longest_copy(self, frames: np.ndarray, call_bars: set | None = None) -> int:
        """Longest run of consecutive bars of ``frames`` found in the index. Bars without an onset
        break runs, and so do bars that repeat a bar of the call (``call_bars``, transposition-free
        as ``CallStyle.bars`` holds them): those are the musician's, not the training data's."""
        bars = len(frames) // self.spb
        own = [onsets_of(frames[i * self.spb:(i + 1) * self.spb]).any()
               and transposition_free(frames[i * self.spb:(i + 1) * self.spb]) not in (call_bars or set())
               for i in range(bars)]
        best = 0
        for k in range(1, min(bars, max(self.blocks)) + 1):
            found = False
            for b in range(bars - k + 1):
                block = frames[b * self.spb:(b + k) * self.spb]
                if all(own[b:b + k]):
                    if transposition_free(block) in self.blocks[k]:
                        found = True
                        break
            if not found:
                break
            best = k
        return best


def summarise(rows: list[dict]) -> dict:
    return {m: float(np.nanmean([r[m] for r in rows])) if rows else float("nan") for m in MEASURES}


def verdict(live: dict, real: dict, copied_max: int) -> dict:
    """Each target: True when met."""
    return {
        "key": live["key"] >= 0.95 * real["key"],
        "rhythm": live["rhythm"] >= 0.95 * real["rhythm"],
        "density": 0.8 * real["density"] <= live["density"] <= 1.25 * real["density"],
        "register": live["register"] <= 1.25 * real["register"],
        "silent": live["silent"] <= real["silent"] + 0.05,
        "echo": abs(live["echo"] - real["echo"]) <= 0.05,      # from either side: real music repeats
        "copied": copied_max <= 2,
    }


def run(model: str, corpus_name: str, split: str, cfg: PerformerConfig, seed: int, max_calls: int,
        copy_index: CopyIndex | None) -> dict:
    engine = Engine(find_model(model), provider="cpu")
    corpus = load_corpus(CORPORA.get(corpus_name, corpus_name), engine.steps_per_beat, progress=False)
    rolls = [r for r in corpus.splits[split] if r.n_steps]
    rng = np.random.default_rng(seed)
    calls, skipped = [], {}
    for i, roll in enumerate(rolls):
        got, why = calls_of(roll, engine.steps_per_beat)
        calls += [dict(c, piece=i) for c in got]
        for reason in why:
            skipped[reason] = skipped.get(reason, 0) + 1
    if max_calls and len(calls) > max_calls:
        calls = [calls[j] for j in sorted(rng.choice(len(calls), max_calls, replace=False))]
    others = {}                                       # bar length -> (piece, bars 5-6) of every piece
    for i, roll in enumerate(rolls):
        starts = roll.bar_starts()
        if len(starts) > 6 and starts[6] - starts[4] == 2 * roll.steps_per_bar(starts[4]):
            others.setdefault(roll.steps_per_bar(starts[4]), []).append((i, roll.to_states(3)[starts[4]:starts[6]]))
    live, real, other, copied, silent_answers = [], [], [], [], 0
    started = time.perf_counter()
    for j, call in enumerate(calls):
        c = replace(cfg, seed=seed + j)
        frames = answer(engine, call, c)
        real.append(measures(call["call"], call["real"], call["bar"]))       # every call starts on a bar line
        pool = [f for p, f in others.get(call["bar"], []) if p != call["piece"]]
        if pool:
            other.append(measures(call["call"], pool[int(rng.integers(len(pool)))], call["bar"]))
        if frames is None:
            silent_answers += 1
            frames = np.zeros((REAL_BARS * call["bar"], 88), np.uint8)
        live.append(measures(call["call"], frames[:REAL_BARS * call["bar"]], call["bar"]))
        if copy_index is not None and call["bar"] == copy_index.spb:
            copied.append(copy_index.longest_copy(frames, CallStyle.of(call["call"], call["bar"]).bars))
    seconds = time.perf_counter() - started
    result = {"model": engine.name, "corpus": corpus_name, "split": split, "calls": len(calls),
              "pieces": len(rolls), "skipped": skipped, "unanswered": silent_answers,
              "livecomp": summarise(live), "real": summarise(real), "other": summarise(other),
              "copied_mean": float(np.mean(copied)) if copied else 0.0, "copied_max": int(max(copied, default=0)),
              "seconds": round(seconds, 1)}
    result["targets"] = verdict(result["livecomp"], result["real"], result["copied_max"])
    return result


def copy_index_for(model: str, max_bars: int) -> CopyIndex | None:
    engine_info = json.loads((find_model(model) / "model.json").read_text())
    data = engine_info.get("training", {}).get("corpus")
    if not data:
        return None
    corpus = load_corpus(data, engine_info["steps_per_beat"], progress=False)
    train = [r for r in corpus.splits["train"] if r.n_steps]
    return CopyIndex([r.to_states(3) for r in train], [r.bar_starts() for r in train], engine_info["steps_per_bar"],
                     max_bars)


def print_result(r: dict) -> None:
    fmt = "{:<10}" + "{:>9}" * len(MEASURES)
    print(f"\n{r['model']} on {r['corpus']} ({r['split']}): {r['calls']} calls from {r['pieces']} pieces, "
          f"{r['unanswered']} unanswered, {r['seconds']} s" + (f"; left out: {r['skipped']}" if r["skipped"] else ""))
    print(fmt.format("", *MEASURES))
    for who in ("livecomp", "real", "other"):
        print(fmt.format(who, *(f"{r[who][m]:.3f}" for m in MEASURES)))
    t = r["targets"]
    print(f"copied: mean {r['copied_mean']:.2f} bars, longest {r['copied_max']} bars")
    print("targets: " + ", ".join(f"{m} {'met' if ok else 'MISSED'}" for m, ok in t.items()))


def write_card(model: str, results: list[dict], cfg: PerformerConfig) -> None:
    path = find_model(model) / "model.json"
    info = json.loads(path.read_text())
    info["musicality"] = {
        "bench": "bench/musicality.py", "split": results[0]["split"],
        "options": {"candidates": cfg.candidates or info.get("candidates", DEFAULT_CANDIDATES), "choice": cfg.choice,
                    "temperature": cfg.temperature,
                    "fit_weight": cfg.fit_weight if math.isfinite(cfg.fit_weight) else "inf",
                    "fit_terms": dict(FIT_TERMS), "answer_from": cfg.answer_from},
        **{r["corpus"]: {**{m: round(r["livecomp"][m], 3) for m in MEASURES}, "copied_max": r["copied_max"],
                         "calls": r["calls"], "real": {m: round(r["real"][m], 3) for m in MEASURES}}
           for r in results}}
    atomic_write_bytes(path, (json.dumps(info, indent=2) + "\n").encode())


# The default model's collections, each weighing the same in the floors (``floors``): ``FIT_FLOORS``
FLOOR_CORPORA = ("../shared/midi/piano-midi-de,../shared/midi/mutopia", "../shared/midi/pop909",
                 "../shared/midi/nottingham")
FLOOR_CALLS_AT = (0, 8, 16, 24)                  # bars 1, 9, 17 and 25, as bench/judge.py takes its calls
FLOOR_SCALE_BINS = (0.9, 0.97, math.inf)         # upper bounds of the call's own share of onsets in its key
CLASSICAL = {"../shared/midi/piano-midi-de", "../shared/midi/mutopia"}     # one collection, as the judge takes it


def collections_of(model: str) -> tuple[str, ...]:
    """The collections a model learnt from (model.json's training corpus), the classical piano
    ones as one, for ``floors``."""
    paths = json.loads((find_model(model) / "model.json").read_text())["training"]["corpus"].split(",")
    classical = [p for p in paths if p in CLASSICAL]
    return tuple([",".join(classical)] * bool(classical) + [p for p in paths if p not in CLASSICAL])


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(np.searchsorted(cumulative, q), len(values) - 1)])


def floors(corpora: tuple[str, ...] = FLOOR_CORPORA, steps_per_beat: int = 4) -> dict:
    """``FIT_FLOORS`` measured: the terms of ``CallStyle`` of the real first bar and first two bars
    after each call of the training splits of ``corpora``; for each bin of the call's own
    share in its key, the ``FLOOR_SHARE`` quantile of the terms that grow with agreement and the
    1 - ``FLOOR_SHARE`` one of the others."""
    rows = []                                    # (collection, own_scale, bars, terms)
    for i, path in enumerate(corpora):
        corpus = load_corpus(path, steps_per_beat, progress=False)
        for roll in corpus.splits["train"]:
            for c in calls_of(roll, steps_per_beat, FLOOR_CALLS_AT)[0] if roll.n_steps else []:
                style, bar, real = CallStyle.of(c["call"], c["bar"]), c["bar"], c["real"]
                for bars, terms in ((1, style.terms(real[None, :bar])),
                                    (2, style.terms(real[None, bar:2 * bar], real[:bar]))):
                    rows.append((i, style.own_scale, bars, {k: float(v[0]) for k, v in terms.items()}))
    counts = np.bincount([r[0] for r in rows], minlength=len(corpora))
    out = {}
    for bars in (1, 2):
        table, lower = [], 0.0
        for upper in FLOOR_SCALE_BINS:
            chosen = [r for r in rows if r[2] == bars and lower <= r[1] < upper]
            weights = np.array([1.0 / counts[r[0]] for r in chosen])
            share = {k: musicality.FLOOR_SHARE if k in musicality.HIGHER_AGREES else 1 - musicality.FLOOR_SHARE
                     for k in rows[0][3]}
            values = {k: np.array([r[3][k] for r in chosen]) for k in share}
            table.append((upper, {k: round(_weighted_quantile(values[k], weights, share[k]), 3) for k in share}))
            lower = upper
        out[bars] = tuple(table)
    return out


GATE_EVERY_BARS, GATE_CALL_BARS = 4, (2, 4, 8)     # a call of 2, 4 and 8 bars from every 4th bar line


def gate_rows(path: str, split: str, steps_per_beat: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The repeat gate's examples from the pieces of a split: for calls of ``GATE_CALL_BARS`` bars
    from every ``GATE_EVERY_BARS``-th bar line (the call and as many bars after it of one bar
    length), each of the call's bars with an onset: its features (``form.repeat_features``, after
    the real bar before it) and whether the real bar at its place after the call brings it back."""
    x, y = [], []
    for roll in load_corpus(path, steps_per_beat, progress=False).splits[split]:
        if not roll.n_steps:
            continue
        frames, starts = roll.to_states(3), roll.bar_starts() + [roll.n_steps]
        for b0, bars in ((b0, n) for b0 in range(0, len(starts) - 1, GATE_EVERY_BARS) for n in GATE_CALL_BARS):
            if b0 + 2 * bars >= len(starts) or len({starts[b + 1] - starts[b] for b in range(b0, b0 + 2 * bars)}) > 1:
                continue
            call = [frames[starts[b]:starts[b + 1]] for b in range(b0, b0 + bars)]
            after = [frames[starts[b]:starts[b + 1]] for b in range(b0 + bars, b0 + 2 * bars)]
            if sum(onsets_of(b).sum() for b in call) < MIN_CALL_NOTES:
                continue
            in_scale = CallStyle.of(np.concatenate(call), len(call[0])).own_scale
            again = False
            for j in range(bars):
                if onsets_of(call[j]).any():
                    x.append(form.repeat_features(call, j, again, roll.steps_per_beat, in_scale))
                    y.append(bool(onsets_of(after[j]).any()) and form.same_bar(after[j], call[j]))
                again = bool(y and y[-1]) and onsets_of(call[j]).any()
    return np.array(x, np.float64).reshape(-1, len(form.FEATURES)), np.array(y, np.float64)


def gate(corpora: tuple[str, ...]) -> tuple[form.RepeatGate, dict]:
    """The repeat gate fitted on the training splits of ``corpora`` (each weighing the same), and
    on each one's validation split the share of bars the composers brought back, the mean
    probability the gate gives them, and its ROC AUC."""
    from judge import roc_auc

    train = [gate_rows(c, "train") for c in corpora]
    weights = np.concatenate([np.full(len(y), 1.0 / max(len(y), 1)) for _, y in train])
    fitted = form.fit_gate(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), weights)
    checks = {}
    for corpus in corpora:
        x, y = gate_rows(corpus, "valid")
        p = np.array([fitted.probability(row) for row in x])
        checks[corpus] = {"bars": len(y), "real": float(y.mean()), "gate": float(p.mean()), "auc": roc_auc(p, y)}
    return fitted, checks


def style_options(parser: argparse.ArgumentParser, defaults: PerformerConfig) -> None:
    """Style following's options, as this script and bench/judge.py take them."""
    parser.add_argument("--no-follow-style", action="store_true",
                        help="the model answers every call itself, none handed to its specialists")
    parser.add_argument("--style-margin", type=float, default=defaults.style_margin,
                        help="nats by which a specialist must find a call more likely than the model to answer it")


def style_said(cfg: PerformerConfig) -> str:
    """Style following as an options line says it."""
    return f"style following {f'on (margin {cfg.style_margin:g} nats)' if cfg.follow_style else 'off'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(shipped_models()), help="shipped model names or folders")
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--split", default="test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-calls", type=int, default=0, help="score a seeded sample of this many calls (0: all)")
    defaults = PerformerConfig()
    parser.add_argument("--candidates", type=int, default=defaults.candidates,
                        help="candidate bars per answer bar (default: each model's own count, as listen plays it)")
    parser.add_argument("--temperature", type=float, default=defaults.temperature)
    parser.add_argument("--choice", default=defaults.choice, choices=("floors", "fit"),
                        help="floors: the first candidate within FIT_FLOORS of the call (listen's); "
                             "fit: the one that agrees best (the choice before)")
    parser.add_argument("--fit-weight", type=float, default=defaults.fit_weight)
    parser.add_argument("--answer-from", default=defaults.answer_from, choices=("call", "heard"))
    parser.add_argument("--fit-terms", default="", help="weights of the fit's terms, e.g. key=4,rhythm=2 (default: "
                                                         + ",".join(f"{k}={v:g}" for k, v in FIT_TERMS.items()) + ")")
    parser.add_argument("--no-copies", action="store_true", help="skip the copy check (it indexes the training split)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--write-cards", action="store_true", help="store the figures in each model's model.json")
    parser.add_argument("--floors", action="store_true",
                        help="print how far real continuations go from their calls on each model's training data")
    parser.add_argument("--write-floors", action="store_true", help="with --floors: store them in model.json")
    parser.add_argument("--gate", action="store_true",
                        help="fit the repeat gate on each model's training data and check it on the validation split")
    parser.add_argument("--write-gate", action="store_true", help="with --gate: store it in model.json")
    parser.add_argument("--no-repeat", action="store_true",
                        help="no answer bar brings back the call's bar at its place in the phrase (no repeat gate)")
    style_options(parser, defaults)
    args = parser.parse_args()
    import os
    os.chdir(ROOT)                                    # corpora paths in model.json are relative to the checkout
    if args.gate:
        for model in args.models.split(","):
            fitted, checks = gate(collections_of(model))
            print(f"{model}: {json.dumps(fitted.to_json())}")
            for corpus, c in checks.items():
                print(f"  {corpus} (validation): {c['bars']} call bars, brought back {c['real']:.3f}, "
                      f"gate {c['gate']:.3f}, ROC AUC {c['auc']:.3f}")
            if args.write_gate:
                path = find_model(model) / "model.json"
                info = json.loads(path.read_text())
                info["repeat_gate"] = fitted.to_json()
                atomic_write_bytes(path, (json.dumps(info, indent=2) + "\n").encode())
        return
    if args.floors:
        for model in args.models.split(","):
            corpora = collections_of(model)
            table = floors(corpora)
            print(f"{model} ({' + '.join(corpora)}):\n    {{")
            for bars, rows in table.items():
                print(f"    {bars}: (" + ",\n         ".join(f"({upper}, {terms})" for upper, terms in rows) + "),")
            print("    }")
            if args.write_floors:
                path = find_model(model) / "model.json"
                info = json.loads(path.read_text())
                info["fit_floors"] = musicality.floors_to_json(table)
                atomic_write_bytes(path, (json.dumps(info, indent=2) + "\n").encode())
        return
    for term in filter(None, args.fit_terms.split(",")):
        name, value = term.split("=")
        if name not in FIT_TERMS:
            parser.error(f"--fit-terms: no term {name!r} (terms: {', '.join(FIT_TERMS)})")
        FIT_TERMS[name] = float(value)
    cfg = replace(defaults, candidates=args.candidates, temperature=args.temperature, fit_weight=args.fit_weight,
                  choice=args.choice, answer_from=args.answer_from, repeat=not args.no_repeat,
                  follow_style=not args.no_follow_style, style_margin=args.style_margin)
    print(f"options: candidates {cfg.candidates or OWN_COUNT}, temperature {cfg.temperature:g}, choice {cfg.choice}, "
          f"fit weight "
          f"{cfg.fit_weight:g} nats "
          f"({', '.join(f'{k} {v:g}' for k, v in FIT_TERMS.items())}), "
          f"answer from {cfg.answer_from}, repeat gate {'on' if cfg.repeat else 'off'}, "
          f"{style_said(cfg)}, "
          f"silence {cfg.silence_beats:g} beats; seed {args.seed}")
    everything = []
    for model in args.models.split(","):
        index = None if args.no_copies else copy_index_for(model, 4)
        results = [run(model, c, args.split, cfg, args.seed, args.max_calls, index) for c in args.corpora.split(",")]
        for r in results:
            print_result(r)
        everything += results
        if args.write_cards:
            write_card(model, results, cfg)
    print("\nsummary (livecomp / real; * = target missed)")
    print(f"{'model':<10}{'corpus':<15}" + "".join(f"{m:>14}" for m in MEASURES) + f"{'copied':>8}")
    for r in everything:
        cells = [f"{r['livecomp'][m]:.2f}/{r['real'][m]:.2f}{'*' if not r['targets'][m] else ' '}" for m in MEASURES]
        print(f"{r['model']:<10}{r['corpus']:<15}" + "".join(f"{c:>14}" for c in cells)
              + f"{r['copied_max']:>7}{'*' if not r['targets']['copied'] else ' '}")
    if args.json:
        atomic_write_bytes(args.json, json.dumps(everything, indent=2).encode())


if __name__ == "__main__":
    main()
