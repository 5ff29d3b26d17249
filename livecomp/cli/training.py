"""`livecomp train`: models from MIDI files or piano-roll benchmarks (`eval` and `export` of what
it trains: ``evaluation``)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional

import typer

from livecomp_train.configs import default_text

from .common import app, fail


def _need_training_extra():
    """Import the training package, or end with the install command when torch is missing."""
    try:
        import torch  # noqa: F401
    except ImportError:
        fail("this command needs the training extra: pip install 'livecomp[train]'.")
    import livecomp_train
    return livecomp_train


WITH_HELP = ("EnDeCell: another run (folder or checkpoint file) whose per-key conditionals are averaged with the "
             "checkpoint's; repeat for more runs.")


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


def _held_files(folder: Path) -> str:
    """What a folder already holds, named (a few), or "" where it is empty or not there yet."""
    try:
        names = sorted(entry.name for entry in folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return ""
    except OSError as exc:
        fail(f"cannot read --out {folder} ({exc.strerror or exc}).")
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _unwritten(run_dir: Path, exc: OSError, created: bool) -> str:
    """The sentence for a run that could not write its files."""
    return _left(run_dir, f"cannot write {exc.filename or run_dir} ({exc.strerror or exc})", created,
                 " once there is room")


def _left(run_dir: Path, reason: str, created: bool, when: str = "") -> str:
    """``reason`` and what the run ended early leaves, after making sure that is of use: a run
    that kept no checkpoint leaves nothing (its folder too, where it made it), so the same
    --out takes a new run."""
    kept = [name for name in ("last.pt", "best.pt") if (run_dir / name).is_file()]
    if not kept:
        for name in ("config.json", "log.jsonl", "best.json", "best.png"):
            (run_dir / name).unlink(missing_ok=True)
        if created:
            try:
                run_dir.rmdir()
            except OSError:
                pass
        return f"{reason}; the run kept no checkpoint, so nothing of it is left."
    if "last.pt" in kept:
        return f"{reason}; {run_dir / 'last.pt'} is kept: pass --resume {run_dir}{when} to go on."
    return f"{reason}; its best checkpoint so far, {run_dir / 'best.pt'}, is kept (it can be exported)."


def _h(option: str, text: str) -> str:
    """An option's help with the default the configs give it (livecomp_train.configs): the
    options of `train` have no defaults of their own, so an option left out is the config's."""
    default = default_text(option)
    return f"{text} ({default})." if default else text


@app.command()
def train(
    ctx: typer.Context,
    model: str = typer.Option("basic", "--model", help="basic | endecell"),
    data: Optional[str] = typer.Option(None, "--data",
                                       help=_h("--data", "jsb | nottingham | jsb16 | a folder of MIDI files | a "
                                                         "piano-roll JSON file")),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder for checkpoints (default runs/<model>-<data>)."),
    resume: Optional[Path] = typer.Option(None, "--resume",
                                          help="Continue the run in this folder exactly where it stopped."),
    recipe: Optional[Path] = typer.Option(None, "--recipe",
                                          help="A TOML file whose [train] table sets the options below by name "
                                               "(recipes/ holds the shipped models'); options given on the command "
                                               "line win."),
    steps_per_beat: Optional[int] = typer.Option(None, "--steps-per-beat", min=1,
                                                 help=_h("--steps-per-beat", "Grid of MIDI folders (benchmarks "
                                                                             "carry their own)")),
    key_states: Optional[int] = typer.Option(None, "--key-states", min=2, max=3,
                                             help=_h("--key-states", "2: off/on; 3: off/held/struck")),
    hidden: Optional[int] = typer.Option(None, "--hidden", min=1,
                                         help=_h("--hidden", "LSTM units per layer (basic) / time-LSTM units "
                                                             "(endecell)")),
    layers: Optional[int] = typer.Option(None, "--layers", min=1,
                                         help=_h("--layers", "LSTM layers (basic) / time-LSTM layers (endecell)")),
    dropout: Optional[float] = typer.Option(None, "--dropout", min=0.0, max=0.9,
                                            help=_h("--dropout", "Dropout probability, 0 to 0.9")),
    input_dropout: Optional[float] = typer.Option(None, "--input-dropout", min=0.0, max=0.9,
                                                  help=_h("--input-dropout", "Training: drop each sounding key of "
                                                                             "the frames the LSTM (basic) or "
                                                                             "encoder (endecell) reads, 0 to 0.9; "
                                                                             "the scored frames stay whole")),
    weight_drop: Optional[float] = typer.Option(None, "--weight-drop", min=0.0, max=0.9,
                                                help=_h("--weight-drop", "Training: drop each recurrent weight of "
                                                                         "the LSTM (basic) or time LSTM (endecell), "
                                                                         "0 to 0.9 (DropConnect, one mask per "
                                                                         "batch)")),
    neighbour_keys: Optional[int] = typer.Option(None, "--neighbour-keys", min=0,
                                                 help=_h("--neighbour-keys", "Keys either side each key's "
                                                                             "classifier (basic) or decoder step "
                                                                             "(endecell) reads from the previous "
                                                                             "frame; basic 0 is the original form")),
    mix_shifts: Optional[int] = typer.Option(None, "--mix-shifts", min=0, max=12,
                                             help=_h("--mix-shifts", "Basic: a mixture of the model's copies "
                                                                     "transposed by -N..N semitones, each frame "
                                                                     "from one copy (0: the plain model). Costs 2N "
                                                                     "+ 1 times the compute")),
    chunk: Optional[int] = typer.Option(None, "--chunk", min=1, max=88,
                                        help=_h("--chunk", "EnDeCell: keys read/written per encoder/decoder step "
                                                           "(1 = key by key)")),
    joint_keys: Optional[int] = typer.Option(None, "--joint-keys", min=1, max=8,
                                             help=_h("--joint-keys", "EnDeCell: keys of a chunk drawn together, as "
                                                                     "one choice among all their states (a chord's "
                                                                     "notes in one draw); 1: each key of a chunk on "
                                                                     "its own")),
    link_hidden: Optional[int] = typer.Option(None, "--link-hidden", min=0,
                                              help=_h("--link-hidden", "EnDeCell with joint keys: units of a layer "
                                                                       "that tells each group of a chunk what was "
                                                                       "drawn below it, reading where the chunk is "
                                                                       "(0: the linear link alone)")),
    enc_hidden: Optional[int] = typer.Option(None, "--enc-hidden", min=1,
                                             help=_h("--enc-hidden", "EnDeCell: encoder GRU units")),
    encoder_skip: Optional[bool] = typer.Option(None, "--encoder-skip/--no-encoder-skip",
                                                help=_h("--encoder-skip", "EnDeCell: add a linear map of the frame "
                                                                          "to the encoder's vector")),
    dec_hidden: Optional[int] = typer.Option(None, "--dec-hidden", min=1,
                                             help=_h("--dec-hidden", "EnDeCell: decoder GRU units")),
    dec_dropout: Optional[float] = typer.Option(None, "--dec-dropout", min=0.0, max=0.9,
                                                help=_h("--dec-dropout", "EnDeCell, training: dropout on the "
                                                                         "decoder's output at each key (chunk), 0 "
                                                                         "to 0.9")),
    lookback: Optional[int] = typer.Option(None, "--lookback", min=0, max=96,
                                           help=_h("--lookback", "EnDeCell: each decoder step also sees the frame "
                                                                 "this many steps back (16: a 4/4 bar of 16ths)")),
    window: Optional[int] = typer.Option(None, "--window", min=2,
                                         help=_h("--window", "Steps per training window (windows start on bar "
                                                             "lines)")),
    hop_bars: Optional[int] = typer.Option(None, "--hop-bars", min=1,
                                           help=_h("--hop-bars", "A window starts every N bar lines")),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1,
                                             help=_h("--batch-size", "Windows per optimizer step")),
    lr: Optional[float] = typer.Option(None, "--lr", min=0.0, help=_h("--lr", "Peak learning rate")),
    lr_schedule: Optional[str] = typer.Option(None, "--lr-schedule",
                                              help=_h("--lr-schedule", "cosine | constant (after warmup)")),
    warmup: Optional[int] = typer.Option(None, "--warmup", min=0, help=_h("--warmup", "Warmup optimizer steps")),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", min=0.0,
                                                 help=_h("--weight-decay", "AdamW's weight decay")),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help=_h("--epochs", "Epochs to train")),
    time_budget: Optional[str] = typer.Option(None, "--time-budget",
                                              help="Stop after this much training time: 600, 30m, 2h."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0,
                                       help=_h("--seed", "Seed of the weights, the data order and the sampling")),
    target_weight: Optional[str] = typer.Option(None, "--target-weight",
                                                help=_h("--target-weight", "none | linear | step: weight of early "
                                                                           "steps in the loss")),
    target_skip: Optional[int] = typer.Option(None, "--target-skip", min=0,
                                              help=_h("--target-skip", "With --target-weight step: steps at the "
                                                                       "start that carry no loss")),
    scheduled_sampling: Optional[float] = typer.Option(None, "--scheduled-sampling", min=0.0, max=1.0,
                                                       help=_h("--scheduled-sampling", "Final probability of "
                                                                                       "feeding back the model's "
                                                                                       "own sample")),
    transpose: Optional[int] = typer.Option(None, "--transpose", min=0, max=12,
                                            help=_h("--transpose", "Augment: shift each window by up to +-N "
                                                                   "semitones")),
    ema: Optional[float] = typer.Option(None, "--ema", min=0.0, max=0.99999,
                                        help=_h("--ema", "Validate and keep a moving average of the weights with "
                                                         "this decay per step (0: off; 0.999 averages over about "
                                                         "1000 steps)")),
    snapshots: Optional[int] = typer.Option(None, "--snapshots", min=0,
                                            help=_h("--snapshots", "Also keep the validated weights of every Nth "
                                                                   "epoch as snapshot-EEEE.pt (0: off), to be "
                                                                   "scored together with --with")),
    device: Optional[str] = typer.Option(None, "--device", help=_h("--device", "auto | cpu | cuda | cuda:N")),
    pretrain_autoencoder: bool = typer.Option(False, "--pretrain-autoencoder",
                                              help="EnDeCell: train the encoder/decoder pair alone to reconstruct "
                                                   "frames."),
    init_from: Optional[Path] = typer.Option(None, "--init-from",
                                             help="Start from the kept weights of this run, of the same model and "
                                                  "sizes; EnDeCell also from a pre-trained autoencoder run (a "
                                                  "lookback added starts unused)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a basic RNN or EnDeCell model on MIDI files or a piano-roll benchmark."""
    _need_training_extra()
    from dataclasses import asdict

    from livecomp_train.checkpoint import CheckpointError
    from livecomp_train.configs import TrainConfig, configs_from_options
    from livecomp_train.data import CorpusError
    from livecomp_train.models import CONFIGS
    from livecomp_train.train import TrainingError, resume_config
    from livecomp_train.train import train as run_training

    budget = _parse_seconds(time_budget)

    def typed(name: str) -> bool:                   # given on the command line, not a default
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    if resume is not None:
        given = [p.opts[0] for p in ctx.command.params if p.name not in RESUME_MAY_CHANGE and typed(p.name)]
        if given:
            fail(f"--resume goes on with the run's own settings; {', '.join(given)} cannot change them "
                 f"(only --epochs, --time-budget and --device can): start a new run to change them.")
    if recipe is not None:
        _from_recipe(ctx, recipe, typed)
        p = ctx.params
        model, lr_schedule, pretrain_autoencoder = p["model"], p["lr_schedule"], p["pretrain_autoencoder"]
        budget, init_from = _parse_seconds(p["time_budget"]), p["init_from"]
    if out is not None and out.exists() and not out.is_dir():
        fail(f"--out {out} is a file; a run needs a folder.")
    run_dir, created = out or Path("runs"), False
    try:
        if resume is not None:
            cfg = resume_config(resume, epochs=epochs, time_budget_s=budget, device=device)
            run_dir = resume
        else:
            if model not in ("basic", "endecell"):
                fail(f"--model must be basic or endecell, not {model!r}.")
            if pretrain_autoencoder and model != "endecell":
                fail("--pretrain-autoencoder pre-trains the encoder/decoder of --model endecell.")
            if lr_schedule not in (None, "cosine", "constant"):
                fail(f"--lr-schedule must be cosine or constant, not {lr_schedule!r}.")
            architecture = "autoencoder" if pretrain_autoencoder else model
            options = {**ctx.params, "time_budget": budget, "init_from": str(init_from) if init_from else None}
            run_fields, model_fields = configs_from_options(options, architecture)   # None: the config's default
            try:
                mcfg = CONFIGS[architecture](**model_fields)
            except ValueError as exc:
                fail(str(exc))
            cfg = TrainConfig(**run_fields, model=asdict(mcfg))
            run_dir = out or Path("runs") / f"{mcfg.architecture}-{Path(cfg.data).name}"
            if (run_dir / "last.pt").exists():
                fail(f"{run_dir} already holds a run: pass --resume {run_dir} to continue it, or another --out.")
            held = _held_files(run_dir) if os.environ.get("RANK", "0") == "0" else ""   # rank 0 writes first
            if held:
                fail(f"--out {run_dir} already holds files ({held}); a new run writes its config.json, best.json "
                     f"and checkpoints into a new or empty folder: give another --out.")
        created = not run_dir.exists()
        best = run_training(cfg, run_dir, resume=resume is not None, progress=not quiet)
    except (CorpusError, TrainingError, CheckpointError) as exc:
        fail(str(exc))
    except OSError as exc:                      # the disk filled, the folder went: say what is kept
        fail(_unwritten(run_dir, exc, created))
    except KeyboardInterrupt:
        fail(_left(run_dir, "stopped by Ctrl-C", created), 130)
    if os.environ.get("RANK", "0") == "0":   # under torchrun, one process reports
        if not (run_dir / "best.pt").is_file() or not math.isfinite(best["nll"]):
            fail(f"no validation in {run_dir} reached a finite NLL, so there is no best checkpoint; its last.pt "
                 f"can be resumed, or lower --lr.")
        typer.echo(f"best validation NLL {best['nll']:.4f} nats/frame; checkpoint {run_dir / 'best.pt'}")


def _from_recipe(ctx: typer.Context, recipe: Path, typed) -> None:
    """The settings of ``recipe`` into ``ctx.params``, each checked as the command line's option
    of its name is (type, range), where the command line did not give that option."""
    from livecomp_train.configs import RecipeError, read_recipe

    try:
        settings = read_recipe(recipe)
    except RecipeError as exc:
        fail(str(exc))
    params = {p.opts[0]: p for p in ctx.command.params if p.opts and p.name not in ("recipe", "resume", "out", "quiet")}
    for option, value in settings.items():
        param = params.get(option)
        if param is None:
            fail(f"the recipe {recipe} sets {option[2:]!r}, which is not a setting of `livecomp train` "
                 f"(see livecomp train --help).")
        if typed(param.name):                       # given on the command line: it wins
            continue
        try:
            ctx.params[param.name] = param.process_value(ctx, value)     # type and range as on the command line
        except typer.BadParameter as exc:
            fail(f"the recipe {recipe} sets {option[2:]} = {value!r}: {exc.message}.")
