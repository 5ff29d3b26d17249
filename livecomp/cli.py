"""The `livecomp` command line: each command is a thin layer over library code.

Heavy imports (torch, onnxruntime) happen inside the commands that need them,
so `livecomp --help` is instant and the runtime never loads torch.
"""

from __future__ import annotations

import json
import math
import os
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import NoReturn, Optional

import typer

from . import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="livecomp: a real-time MIDI co-performer. It listens on the beat grid and answers in time.",
)

EXAMPLE_MIDI = "joplin.mid"
EXAMPLE_PHRASE = "melodie.mid"      # bars 1-4 and 9-12 of Schumann's Melodie, Op. 68 No. 1: two 4-bar calls with room to answer


def fail(message: str, code: int = 1) -> NoReturn:
    """End the command with one clear sentence on stderr and a non-zero exit."""
    typer.echo(f"livecomp: {message}", err=True)
    raise typer.Exit(code)


def _choice(name: str, *values: str) -> type[Enum]:
    """An option's choices: typer shows them in --help and refuses others in one sentence."""
    return Enum(name, [(value, value) for value in values], type=str)


Align = _choice("Align", "bar", "beat")
BargeIn = _choice("BargeIn", "stop", "continue")
Mode = _choice("Mode", "call", "duet")
Sync = _choice("Sync", "internal", "clock")
Provider = _choice("Provider", "auto", "cpu", "cuda")


# Options that `duet` and `listen` (and some of them `generate`) share, declared once.
MODEL = typer.Option(None, "--model", help="A shipped model's name or a model folder.")
PROVIDER = typer.Option(Provider.auto, "--provider", help="Where onnxruntime runs.")
SILENCE_BEATS = typer.Option(2.0, "--silence-beats", min=0.25, help="Beats of silence that end a call (a held key or pedal is not silence).")
MIN_CALL_BEATS = typer.Option(1.0, "--min-call-beats", min=0, help="Shorter calls are not answered.")
MAX_CALL_BARS = typer.Option(8, "--max-call-bars", min=1, help="A call this long is answered without waiting for silence.")
END_CC = typer.Option(None, "--end-cc", min=0, max=127, help="A controller that ends a call at once (value >= 64).")
BARS = typer.Option(None, "--bars", min=1, help="Answer length in bars (default: as long as the call).")
ALIGN = typer.Option(Align.bar, "--align", help="Where an answer starts.")
TEMPERATURE = typer.Option(1.0, "--temperature", min=0.05, max=5.0, help="Sampling temperature: below 1 plays safer, above 1 wilder.")
CANDIDATES = typer.Option(16, "--candidates", min=1, max=64, help="Sample K bars at once and play the one that best fits the call (likelihood and agreement).")
BARGE_IN = typer.Option(BargeIn("stop"), "--barge-in", help="When the musician plays during an answer: stop it, or continue.")
MODE = typer.Option(Mode.call, "--mode", help="call: call and response; duet: play along step by step, hearing both parts.")
SUSTAIN = typer.Option(True, "--sustain/--no-sustain", help="Honour the sustain pedal.")
CHANNEL = typer.Option(1, "--channel", min=1, max=16, help="MIDI channel livecomp plays on.")


def check_outputs(*outputs: tuple[str, Optional[Path]], replace: bool = True) -> None:
    """End the command before its work when an output it was asked for cannot be written."""
    from .files import output_problem

    for flag, path in outputs:
        problem = output_problem(path, flag, replace=replace) if path is not None else None
        if problem:
            fail(problem)


def example_path(name: str = EXAMPLE_MIDI) -> Path:
    """An example MIDI file shipped inside the package."""
    return Path(str(resources.files("livecomp") / "examples" / name))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"livecomp {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    pass


@app.command()
def roll(
    file: Optional[Path] = typer.Argument(None, help="MIDI file to inspect (default: the shipped example)."),
    steps_per_beat: int = typer.Option(4, "--steps-per-beat", min=1, max=96,
                                       help="Grid steps per quarter note (4 = 16th notes)."),
    sustain: bool = typer.Option(False, "--sustain/--no-sustain", help="Honour the sustain pedal (CC64)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Write a piano-roll image here."),
    midi_out: Optional[Path] = typer.Option(None, "--midi-out", help="Write the quantised roll back as MIDI here."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Inspect a MIDI file as a piano roll: steps, bars, tempo, meter, key range, polyphony."""
    from .files import save_midi
    from .image import save_roll_png
    from .roll import midi_to_roll, roll_to_midi
    from .score import MidiFileError

    path = file if file is not None else example_path()
    check_outputs(("--png", png), ("--midi-out", midi_out))
    try:
        piano_roll = midi_to_roll(path, steps_per_beat=steps_per_beat, sustain=sustain)
    except MidiFileError as exc:
        fail(str(exc))
    summary = piano_roll.summary()
    if as_json:
        typer.echo(json.dumps({"file": str(path), **summary}, indent=2))
    else:
        typer.echo(format_summary(path, summary))
    try:
        if png is not None:
            save_roll_png(png, piano_roll)
            typer.echo(f"wrote {png}", err=as_json)          # stdout holds only the JSON
        if midi_out is not None:
            save_midi(midi_out, roll_to_midi(piano_roll))
            typer.echo(f"wrote {midi_out}", err=as_json)
    except OSError as exc:
        fail(f"cannot write output: {exc.strerror or exc} ({exc.filename}).")


def format_summary(path: Path, s: dict) -> str:
    """The roll summary as aligned text lines."""
    conv = s["conversion"]
    tempos = ", ".join(f"{bpm:g} bpm @ step {step}" for step, bpm in s["tempos_bpm"])
    meters = ", ".join(f"{m} @ step {step}" for step, m in s["meters"])
    low, high = s["key_range"] or ("-", "-")
    lines = [
        f"file            {path}",
        f"grid            {s['steps_per_beat']} steps per beat",
        f"length          {s['steps']} steps, {s['bars']} bars, {s['seconds']:.2f} s",
        f"tempo           {tempos}",
        f"meter           {meters}",
        f"key range       {low} .. {high}",
        f"notes           {conv['notes']} read, {s['notes']} attacks in the roll",
        f"mean polyphony  {s['mean_polyphony']:.2f} keys sounding per step",
        f"quantisation    {conv['moved']} onsets moved, {conv['resized']} durations changed, "
        f"{conv['merged']} merged, {conv['overlapped']} cut by a re-strike",
        f"left out        {conv['out_of_range']} notes outside A0..C8, {conv['drum_notes']} drum notes"
        + (f", {conv['ignored_meta']} tempo or meter events no music can have (tempo 0, 0 beats a bar)"
           if conv.get("ignored_meta") else ""),
    ]
    return "\n".join(lines)


def _need_training_extra():
    """Import the training package, or end with the install command when torch is missing."""
    try:
        import torch  # noqa: F401
    except ImportError:
        fail("this command needs the training extra: pip install 'livecomp[train]'.")
    import training
    return training


def _parse_seconds(text: Optional[str]) -> Optional[float]:
    """'90', '90s', '15m' or '2h' -> seconds."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        fail(f"--time-budget takes a positive time in seconds or with s, m or h (like 30m), not {text!r}.")
    return seconds


RESUME_MAY_CHANGE = {"resume", "epochs", "time_budget", "quiet", "device"}


@app.command()
def train(
    ctx: typer.Context,
    model: str = typer.Option("basic", "--model", help="basic | endecell"),
    data: str = typer.Option("jsb", "--data", help="jsb | nottingham | jsb16 | a folder of MIDI files | a piano-roll JSON file"),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder for checkpoints (default runs/<model>-<data>)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder exactly where it stopped."),
    steps_per_beat: int = typer.Option(4, "--steps-per-beat", min=1, help="Grid of MIDI folders (benchmarks carry their own)."),
    key_states: int = typer.Option(2, "--key-states", min=2, max=3, help="2: off/on; 3: off/held/struck."),
    hidden: int = typer.Option(256, "--hidden", min=1, help="LSTM units per layer (basic) / time-LSTM units (endecell)."),
    layers: int = typer.Option(2, "--layers", min=1, help="LSTM layers (basic) / time-LSTM layers (endecell)."),
    dropout: float = typer.Option(0.3, "--dropout", min=0.0, max=0.9, help="Dropout probability, 0 to 0.9."),
    neighbour_keys: int = typer.Option(12, "--neighbour-keys", min=0,
                                       help="Keys either side each key's classifier (basic) or decoder step (endecell) "
                                            "reads from the previous frame; basic 0 is the original form."),
    chunk: int = typer.Option(4, "--chunk", min=1, max=88, help="EnDeCell: keys read/written per encoder/decoder step (1 = key by key)."),
    enc_hidden: int = typer.Option(128, "--enc-hidden", min=1, help="EnDeCell: encoder GRU units."),
    encoder_skip: bool = typer.Option(True, "--encoder-skip/--no-encoder-skip",
                                      help="EnDeCell: add a linear map of the frame to the encoder's vector."),
    dec_hidden: int = typer.Option(128, "--dec-hidden", min=1, help="EnDeCell: decoder GRU units."),
    lookback: int = typer.Option(0, "--lookback", min=0, max=96,
                                 help="EnDeCell: each decoder step also sees the frame this many steps back (16: a 4/4 bar of 16ths)."),
    window: int = typer.Option(64, "--window", min=2, help="Steps per training window (windows start on bar lines)."),
    hop_bars: int = typer.Option(1, "--hop-bars", min=1, help="A window starts every N bar lines."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    lr: float = typer.Option(2e-3, "--lr", min=0.0),
    lr_schedule: str = typer.Option("cosine", "--lr-schedule", help="cosine | constant (after warmup)."),
    warmup: int = typer.Option(100, "--warmup", min=0, help="Warmup optimizer steps."),
    weight_decay: float = typer.Option(0.01, "--weight-decay", min=0.0),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs to train (default 100)."),
    time_budget: Optional[str] = typer.Option(None, "--time-budget", help="Stop after this much training time: 600, 30m, 2h."),
    seed: int = typer.Option(0, "--seed", min=0),
    target_weight: str = typer.Option("none", "--target-weight", help="none | linear | step: weight of early steps in the loss."),
    target_skip: int = typer.Option(8, "--target-skip", min=0, help="With --target-weight step: steps at the start that carry no loss."),
    scheduled_sampling: float = typer.Option(0.0, "--scheduled-sampling", min=0.0, max=1.0, help="Final probability of feeding back the model's own sample."),
    transpose: int = typer.Option(0, "--transpose", min=0, max=12, help="Augment: shift each window by up to +-N semitones."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    pretrain_autoencoder: bool = typer.Option(False, "--pretrain-autoencoder",
                                              help="EnDeCell: train the encoder/decoder pair alone to reconstruct frames."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="EnDeCell: start from this pre-trained autoencoder run, "
                                                                        "or from an EnDeCell run of the same sizes (a lookback added to it starts unused)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a basic RNN or EnDeCell model on MIDI files or a piano-roll benchmark."""
    _need_training_extra()
    from dataclasses import asdict

    from training.checkpoint import CheckpointError
    from training.data import CorpusError
    from training.models import CONFIGS
    from training.train import TrainConfig, TrainingError, configs_from_options, resume_config
    from training.train import train as run_training

    budget = _parse_seconds(time_budget)

    def typed(name: str) -> bool:                   # given on the command line, not a default
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    if resume is not None:
        given = [p.opts[0] for p in ctx.command.params if p.name not in RESUME_MAY_CHANGE and typed(p.name)]
        if given:
            fail(f"--resume goes on with the run's own settings; {', '.join(given)} cannot change them "
                 f"(only --epochs, --time-budget and --device can): start a new run to change them.")
    if out is not None and out.exists() and not out.is_dir():
        fail(f"--out {out} is a file; a run needs a folder.")
    try:
        if resume is not None:
            cfg = resume_config(resume, epochs=epochs, time_budget_s=budget, device=device if typed("device") else None)
            run_dir = resume
        else:
            if model not in ("basic", "endecell"):
                fail(f"--model must be basic or endecell, not {model!r}.")
            if pretrain_autoencoder and model != "endecell":
                fail("--pretrain-autoencoder pre-trains the encoder/decoder of --model endecell.")
            if lr_schedule not in ("cosine", "constant"):
                fail(f"--lr-schedule must be cosine or constant, not {lr_schedule!r}.")
            architecture = "autoencoder" if pretrain_autoencoder else model
            options = {**ctx.params, "epochs": epochs if epochs is not None else 100, "time_budget": budget or 0.0,
                       "init_from": str(init_from or "")}
            run_fields, model_fields = configs_from_options(options, architecture)
            mcfg = CONFIGS[architecture](**model_fields)
            cfg = TrainConfig(**run_fields, model=asdict(mcfg))
            run_dir = out or Path("runs") / f"{mcfg.architecture}-{Path(data).name}"
            if (run_dir / "last.pt").exists():
                fail(f"{run_dir} already holds a run: pass --resume {run_dir} to continue it, or another --out.")
        best = run_training(cfg, run_dir, resume=resume is not None, progress=not quiet)
    except (CorpusError, TrainingError, CheckpointError) as exc:
        fail(str(exc))
    if os.environ.get("RANK", "0") == "0":   # under torchrun, one process reports
        if not (run_dir / "best.pt").is_file() or not math.isfinite(best["nll"]):
            fail(f"no validation in {run_dir} reached a finite NLL, so there is no best checkpoint; its last.pt "
                 f"can be resumed, or lower --lr.")
        typer.echo(f"best validation NLL {best['nll']:.4f} nats/frame; checkpoint {run_dir / 'best.pt'}")


@app.command("eval")
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A run folder (its best.pt), a checkpoint file, or an exported model folder."),
    data: Optional[str] = typer.Option(None, "--data", help="Benchmark name, MIDI folder or JSON file (default: the training data)."),
    split: str = typer.Option("test", "--split", help="train | valid | test"),
    model: Optional[str] = typer.Option(None, "--model", help="Expect this architecture (basic | endecell)."),
    device: str = typer.Option("auto", "--device", help="Checkpoints: auto | cpu | cuda. Exported folders: auto | cpu | cuda (the onnxruntime provider)."),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
) -> None:
    """Score a checkpoint or an exported model: NLL per frame (nats) and frame accuracy on a split."""
    if split not in ("train", "valid", "test"):
        fail(f"--split must be train, valid or test, not {split!r}.")
    if (checkpoint / "model.json").is_file():
        result = _eval_exported(checkpoint, data, split, model, device)
    else:
        result = _eval_checkpoint(checkpoint, data, split, model, device)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"{result['architecture']} on {result['data']} {split}: {result['sequences']} sequences, "
               f"{result['frames']} frames" + (f" (onnxruntime, {result['provider']})" if "provider" in result else ""))
    typer.echo(f"NLL per frame          {result['nll']:.4f} nats (every frame; the first from the zero state)")
    typer.echo(f"NLL per frame, t > 0   {result['nll_after_first']:.4f} nats (first frame of each sequence left out)")
    if result["accuracy"] is not None and result["accuracy"] == result["accuracy"]:   # not None or NaN
        typer.echo(f"frame accuracy         {result['accuracy']:.4f}")


def _same_grid(corpus, data, steps_per_beat: int, key_states: int, model) -> None:
    """A model is scored only on data of its own grid; a 3-state model on pitch lists is told
    that their attacks are inferred."""
    if corpus.steps_per_beat != steps_per_beat:
        fail(f"{data} is on a grid of {corpus.steps_per_beat} step(s) per beat and {model} on {steps_per_beat}: "
             f"score it on data of its own grid (a MIDI folder is converted to it).")
    if key_states == 3 and not all(Path(part).is_dir() for part in str(data).split(",") if part):
        typer.echo(f"note: {data} holds pitch lists, which carry no attacks: a key that stays down is read as "
                   f"held, so the struck/held split of this 3-state model is scored on inferred attacks.", err=True)


def _eval_checkpoint(checkpoint: Path, data, split: str, model, device: str) -> dict:
    _need_training_extra()
    from training.checkpoint import CheckpointError, load_model
    from training.data import CorpusError, load_corpus
    from training.evaluate import evaluate as score
    from training.train import TrainingError, pick_device

    try:
        net, meta = load_model(checkpoint, model)
        dev = pick_device(device)
        data = data or meta["train"]["data"]
        corpus = load_corpus(data, meta.get("steps_per_beat", 4), progress=False)
        _same_grid(corpus, data, meta.get("steps_per_beat", 4), meta["model"]["key_states"], checkpoint)
        sequences = corpus.sequences(split, meta["model"]["key_states"])
        if not sequences:
            fail(f"{data} has no {split} split.")
        scores = score(net.to(dev), sequences, dev).as_dict()
    except (CheckpointError, CorpusError, TrainingError) as exc:
        fail(str(exc))
    return {"checkpoint": str(checkpoint), "architecture": meta["model"]["architecture"], "data": data,
            "split": split, **scores}


def _eval_exported(folder: Path, data, split: str, model, device: str) -> dict:
    """Score an exported folder through onnxruntime; the corpus loader needs no torch."""
    from training.data import CorpusError, load_corpus

    from .engine import score
    from .models import ModelError

    engine = _engine(folder, "auto" if device == "auto" else device, job="batch")
    if model is not None and engine.architecture != model:
        fail(f"{folder} holds an {engine.architecture!r} model, not the {model!r} model asked for.")
    data = data or engine.info.get("training", {}).get("corpus")
    if not data:
        fail(f"{folder}/model.json names no training corpus: pass --data.")
    try:
        corpus = load_corpus(data, engine.steps_per_beat, progress=False)
        _same_grid(corpus, data, engine.steps_per_beat, engine.key_states, folder)
        sequences = corpus.sequences(split, engine.key_states)
        if not sequences:
            fail(f"{data} has no {split} split.")
        scores = score(engine, sequences)
    except (CorpusError, ModelError) as exc:
        fail(str(exc))
    return {"model": str(folder), "architecture": engine.architecture, "data": data, "split": split,
            "provider": engine.provider_used, **scores}


def _engine(model, provider: str = "auto", job: str = "live"):
    """Load a model folder or shipped model, or end with the sentence that says why not."""
    from .engine import Engine
    from .models import ModelError, find_model

    if provider not in set(Provider):
        fail(f"onnxruntime runs on auto, cpu or cuda, not {provider!r}.")
    try:
        return Engine(find_model(model), provider=provider, job=job)
    except ModelError as exc:
        fail(str(exc))


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="A run folder (its best.pt) or a checkpoint file."),
    out: Path = typer.Option(..., "--out", help="The model folder to write (replaced only once the new one has checked itself)."),
    name: Optional[str] = typer.Option(None, "--name", help="The model's name in model.json (default: the folder's name)."),
    corpus_licence: Optional[str] = typer.Option(None, "--corpus-licence", help="The training data's licence, for the model's card."),
    data: Optional[str] = typer.Option(None, "--data", help="Where the training corpus is now (default: the path the run "
                                                            "was trained with)."),
) -> None:
    """Export a trained checkpoint as ONNX graphs with the bar-level predictor, checked against torch."""
    _need_training_extra()
    from training.checkpoint import CheckpointError
    from training.data import CorpusError
    from training.export import ExportError
    from training.export import export as run_export

    try:
        info = run_export(checkpoint, out, name=name, progress=typer.echo, corpus_licence=corpus_licence, data=data)
    except (CheckpointError, CorpusError, ExportError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}.")
    checks = info["checks"]
    typer.echo(f"validation NLL: torch {checks['valid_nll_torch']:.6f}, onnxruntime {checks['valid_nll_onnx']:.6f}; "
               f"{checks['bars_equal_to_torch']} sampled bars equal to torch's")
    for dataset, m in info["metrics"].items():
        typer.echo(f"{dataset} {m['split']} NLL {m['nll']:.4f} nats/frame")
    typer.echo(f"wrote {out}")


@app.command()
def generate(
    model: Optional[str] = typer.Option(None, "--model", help="A shipped model's name (piano, pop, folk, basic) or a model folder."),
    primer: Optional[Path] = typer.Option(None, "--primer", help="A MIDI file to continue (in its own tempo and meter)."),
    primer_bars: Optional[int] = typer.Option(None, "--primer-bars", min=1, help="Use only the primer's first N bars."),
    bars: int = typer.Option(8, "--bars", min=1, help="Bars to write."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.05, max=5.0, help="Below 1: safer; above 1: wilder."),
    candidates: int = typer.Option(1, "--candidates", min=1, max=64, help="Sample K bars at once and keep the most likely."),
    seed: int = typer.Option(0, "--seed", min=0, help="The same seed writes the same music."),
    out: Path = typer.Option(Path("out/generated.mid"), "--out", help="The MIDI file to write."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also draw the piano roll (the continuation in orange)."),
    wav: Optional[Path] = typer.Option(None, "--wav", help="Also render audio with fluidsynth and a General MIDI soundfont."),
    soundfont: Optional[Path] = typer.Option(None, "--soundfont", help="The .sf2 file for --wav (default: a GM soundfont found on this system)."),
    provider: Provider = PROVIDER,
) -> None:
    """Write new music with a model, optionally continuing a primer MIDI file."""
    from .audio import AudioError, render_wav
    from .files import save_midi
    from .generate import continue_roll
    from .image import save_roll_png
    from .roll import midi_to_roll, roll_to_midi
    from .score import MidiFileError

    _check_temperature(temperature)
    if primer_bars is not None and primer is None:
        fail("--primer-bars cuts a primer: give the file with --primer.")
    check_outputs(("--out", out), ("--png", png), ("--wav", wav))
    engine = _engine(model, provider)
    heard = None
    if primer is not None:
        try:
            heard = midi_to_roll(primer, steps_per_beat=engine.steps_per_beat)
        except MidiFileError as exc:
            fail(str(exc))
        if primer_bars is not None:
            heard = heard.first_bars(primer_bars)
    whole, answer = continue_roll(engine, heard, bars, temperature, candidates, seed)
    try:
        save_midi(out, roll_to_midi(whole))
        if png is not None:
            save_roll_png(png, whole, second=answer if heard is not None else None)
    except OSError as exc:
        fail(f"cannot write output: {exc.strerror or exc} ({exc.filename}).")
    written = whole.n_steps - (heard.n_steps if heard else 0)
    typer.echo(f"{engine.name} ({engine.architecture}, onnxruntime on {engine.provider_used}): {bars} bars, "
               f"{written} steps" + (" after the primer" if heard else "") + f", seed {seed}")
    typer.echo(f"wrote {out}" + (f" and {png}" if png else ""))
    if wav is not None:
        try:
            font = render_wav(out, wav, soundfont)
        except AudioError as exc:
            fail(str(exc))
        typer.echo(f"wrote {wav} (soundfont {font})")


def _check_temperature(temperature: float) -> None:
    """The option's range lets NaN through (no comparison with it is true)."""
    if not math.isfinite(temperature):
        fail(f"--temperature must be a number from 0.05 to 5, not {temperature}.")


def _performer_config(silence_beats, min_call_beats, max_call_bars, bars, align, temperature, candidates, seed,
                      barge_in, sustain, mode="call"):
    from .performer import PerformerConfig

    return _config(PerformerConfig, silence_beats=silence_beats, min_call_beats=min_call_beats,
                   max_call_bars=max_call_bars, bars=bars, align=Align(align).value, temperature=temperature,
                   candidates=candidates, seed=seed, barge_in=BargeIn(barge_in).value, sustain=sustain,
                   mode=Mode(mode).value)


def _config(cls, **fields):
    """A config dataclass, or the end of the command with its own sentence, the field named as
    its option."""
    try:
        return cls(**fields)
    except ValueError as exc:
        name, _, rest = str(exc).partition(" ")
        fail(f"--{name.replace('_', '-')} {rest}.")


@app.command()
def duet(
    performance: Optional[Path] = typer.Argument(None, help="A MIDI file of the musician's part (default: the shipped "
                                                              "example, two 4-bar calls from Schumann's Melodie, Op. 68 No. 1)."),
    out: Path = typer.Option(Path("out/duet.mid"), "--out", help="The MIDI file to write: the musician's part and livecomp's answers on two tracks."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also draw both parts (livecomp's in orange)."),
    wav: Optional[Path] = typer.Option(None, "--wav", help="Also render audio with fluidsynth."),
    model: Optional[str] = MODEL,
    silence_beats: float = SILENCE_BEATS,
    min_call_beats: float = MIN_CALL_BEATS,
    max_call_bars: int = MAX_CALL_BARS,
    end_cc: Optional[int] = END_CC,
    bars: Optional[int] = BARS,
    align: Align = ALIGN,
    temperature: float = TEMPERATURE,
    candidates: int = CANDIDATES,
    seed: int = typer.Option(0, "--seed", min=0, help="The same seed gives the same answers."),
    barge_in: BargeIn = BARGE_IN,
    mode: Mode = MODE,
    sustain: bool = SUSTAIN,
    channel: int = CHANNEL,
    provider: Provider = PROVIDER,
) -> None:
    """Run the co-performer on a MIDI file, offline and deterministic: the twin of `listen`."""
    from .audio import AudioError, render_wav
    from .duet import duet as run_duet
    from .duet import part
    from .files import save_midi
    from .image import save_roll_png
    from .roll import midi_to_roll
    from .score import MidiFileError

    cfg = _performer_config(silence_beats, min_call_beats, max_call_bars, bars, align, temperature, candidates, seed,
                            barge_in, sustain, mode)
    check_outputs(("--out", out), ("--png", png), ("--wav", wav))
    engine = _engine(model, provider)
    performance = performance or example_path(EXAMPLE_PHRASE)
    try:
        result = run_duet(engine, performance, cfg, channel=channel - 1, end_cc=end_cc)
    except MidiFileError as exc:
        fail(str(exc))
    try:
        save_midi(out, result.midi)
        if png is not None:
            musician = midi_to_roll(part(result.midi, 1), steps_per_beat=engine.steps_per_beat)
            answers_roll = (midi_to_roll(part(result.midi, 2), steps_per_beat=engine.steps_per_beat)
                            if result.events else None)
            save_roll_png(png, musician, second=answers_roll)
    except OSError as exc:
        fail(f"cannot write output: {exc.strerror or exc} ({exc.filename}).")
    for line in result.told:
        typer.echo(f"note: {line}.", err=True)
    notes = sum(e.kind == "on" for e in result.events)
    typer.echo(f"{engine.name} ({engine.architecture}): {len(result.answers)} answers, {notes} notes, at "
               f"{result.grid.bpm:g} bpm in {result.grid.beats_per_bar} beats a bar")
    typer.echo(f"wrote {out}" + (f" and {png}" if png else ""))
    if wav is not None:
        try:
            font = render_wav(out, wav)
        except AudioError as exc:
            fail(str(exc))
        typer.echo(f"wrote {wav} (soundfont {font})")


@app.command()
def listen(
    inp: str = typer.Option(..., "--in", help="Input port: full name, unique part, index, or virtual:NAME."),
    out: str = typer.Option(..., "--out", help="Output port: full name, unique part, index, or virtual:NAME."),
    api: Optional[str] = typer.Option(None, "--api", help="alsa | jack | coremidi | winmm (default: the platform's usual one)."),
    model: Optional[str] = MODEL,
    bpm: str = typer.Option("120", "--bpm", help="Tempo in bpm (the first note played is beat 1 of bar 1), or auto: "
                                                "tempo and phase from your first phrase."),
    meter: str = typer.Option("4/4", "--meter", help="The bar: 4/4, 3/4, 6/8, ..."),
    sync: Sync = typer.Option(Sync.internal, "--sync", help="internal, or clock: follow MIDI clock (Start, Stop, Song Position Pointer) from the input port."),
    send_clock: bool = typer.Option(False, "--send-clock", help="Send MIDI clock on the output port so a DAW or drum machine follows: Start on bar 1 after a --count-in, else Song Position Pointer and Continue from your first note's grid."),
    silence_beats: float = SILENCE_BEATS,
    min_call_beats: float = MIN_CALL_BEATS,
    max_call_bars: int = MAX_CALL_BARS,
    end_cc: Optional[int] = END_CC,
    bars: Optional[int] = BARS,
    align: Align = ALIGN,
    temperature: float = TEMPERATURE,
    candidates: int = CANDIDATES,
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Fix the sampling (the same playing gets the same answers)."),
    barge_in: BargeIn = BARGE_IN,
    mode: Mode = MODE,
    sustain: bool = SUSTAIN,
    channel: int = CHANNEL,
    latency_ms: float = typer.Option(0.0, "--latency-ms", min=0, max=500, help="Send this much earlier to make up for a synth's delay."),
    record: Optional[Path] = typer.Option(None, "--record", help="Write what was heard and played to this MIDI file on exit."),
    metronome: bool = typer.Option(False, "--metronome", help="Click every beat (accent on beat 1) while livecomp runs."),
    count_in: int = typer.Option(0, "--count-in", min=0, max=8, help="Bars of clicks before bar 1 (needs a fixed --bpm); they set the phase, not your first note."),
    click_channel: int = typer.Option(10, "--click-channel", min=1, max=16, help="MIDI channel of the clicks (10: General MIDI drums)."),
    click_out: Optional[str] = typer.Option(None, "--click-out", help="Send the clicks to this port instead of --out."),
    thru: bool = typer.Option(False, "--thru", help="Pass your notes and pedal to the output port as you play (a keyboard without a sound of its own)."),
    thru_channel: Optional[int] = typer.Option(None, "--thru-channel", min=1, max=16, help="The channel your notes pass thru on (default: the one they come on); implies --thru."),
    provider: Provider = PROVIDER,
    rt: bool = typer.Option(True, "--realtime/--no-realtime", help="Send at real-time priority (as JACK runs its own "
                            "threads) where the system allows it: root, or an rtprio limit."),
) -> None:
    """Play with a musician on MIDI ports: listen on the beat grid, then answer in time."""
    from .clock import parse_meter
    from .live import LiveConfig
    from .ports import PortError, default_api
    from .session import Session

    try:
        beats = parse_meter(meter)
    except ValueError as exc:
        fail(f"{exc}.")
    try:
        tempo = None if bpm == "auto" else float(bpm)
    except ValueError:
        fail(f"--bpm takes a number or auto, not {bpm!r}.")
    if tempo is not None and not 20 <= tempo <= 400:
        fail(f"--bpm must be between 20 and 400, not {tempo:g}.")
    cfg = _performer_config(silence_beats, min_call_beats, max_call_bars, bars, align, temperature, candidates, seed,
                            barge_in, sustain, mode)
    live_cfg = _config(LiveConfig, bpm=tempo, beats_per_bar=beats, channel=channel - 1, latency_ms=latency_ms,
                       end_cc=end_cc, record=record, sync=Sync(sync).value, send_clock=send_clock,
                       metronome=metronome, count_in=count_in, click_channel=click_channel - 1, realtime=rt,
                       thru=thru or thru_channel is not None,
                       thru_channel=thru_channel - 1 if thru_channel is not None else None)
    check_outputs(("--record", record), replace=False)
    engine = _engine(model, provider)
    try:
        session = Session(engine, cfg, live_cfg, inp, out, api or default_api(), click_out, log=typer.echo)
    except PortError as exc:
        fail(str(exc))
    session.run()
    typer.echo("\n" + session.summary())
    recorded = session.live.recorded
    if record is not None and recorded != record:
        fail(f"the recording could not be written to {record}" +
             (f"; it is kept in {recorded}." if recorded else "."))


@app.command()
def models(folders: Optional[list[Path]] = typer.Argument(None, help="Model folders to describe beside the shipped ones.")) -> None:
    """The models livecomp can play with: what each learnt from, its grid, its size and figures."""
    from .models import DEFAULT_MODEL, ModelError, card, shipped_models

    for name, folder in shipped_models().items():
        lines = card(folder)
        lines[0] += "  [default]" if name == DEFAULT_MODEL else ""
        typer.echo("\n".join(lines) + "\n")
    for folder in folders or []:
        try:
            typer.echo("\n".join(card(folder)) + "\n")
        except ModelError as exc:
            fail(str(exc))


@app.command()
def ports(api: Optional[str] = typer.Option(None, "--api", help="alsa | jack | coremidi | winmm (default: the platform's usual one).")) -> None:
    """List MIDI input and output ports."""
    from .ports import PortError, default_api, list_ports

    api = api or default_api()
    try:
        inputs, outputs = list_ports(api)
    except PortError as exc:
        fail(str(exc))
    typer.echo(f"{api} inputs:")
    for i, name in enumerate(inputs):
        typer.echo(f"  {i}: {name}")
    typer.echo(f"{api} outputs:")
    for i, name in enumerate(outputs):
        typer.echo(f"  {i}: {name}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
