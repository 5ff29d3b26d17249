"""The `livecomp` command line: each command is a thin layer over library code.

Heavy imports (torch, onnxruntime) happen inside the commands that need them,
so `livecomp --help` is instant and the runtime never loads torch.
"""

from __future__ import annotations

import json
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


def fail(message: str, code: int = 1) -> NoReturn:
    """End the command with one clear sentence on stderr and a non-zero exit."""
    typer.echo(f"livecomp: {message}", err=True)
    raise typer.Exit(code)


def example_path() -> Path:
    """The example MIDI file shipped inside the package."""
    return Path(str(resources.files("livecomp") / "examples" / EXAMPLE_MIDI))


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
    from .roll import MidiFileError, midi_to_roll, roll_to_midi

    path = file if file is not None else example_path()
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
            typer.echo(f"wrote {png}")
        if midi_out is not None:
            save_midi(midi_out, roll_to_midi(piano_roll))
            typer.echo(f"wrote {midi_out}")
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
        f"left out        {conv['out_of_range']} notes outside A0..C8, {conv['drum_notes']} drum notes",
    ]
    return "\n".join(lines)


_PASS_ANY_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def _not_built(name: str) -> NoReturn:
    fail(f"`livecomp {name}` is not built yet in version {__version__}.", code=2)


@app.command(context_settings=_PASS_ANY_ARGS)
def train(ctx: typer.Context) -> None:
    """Train a basic RNN or EnDeCell model on MIDI files or a piano-roll benchmark."""
    _not_built("train")


@app.command(context_settings=_PASS_ANY_ARGS)
def eval(ctx: typer.Context) -> None:  # noqa: A001 - the command's name
    """Score a checkpoint or exported model: NLL per frame and frame accuracy."""
    _not_built("eval")


@app.command(context_settings=_PASS_ANY_ARGS)
def export(ctx: typer.Context) -> None:
    """Export a trained checkpoint as ONNX graphs with the bar-level predictor."""
    _not_built("export")


@app.command(context_settings=_PASS_ANY_ARGS)
def generate(ctx: typer.Context) -> None:
    """Write new music with a model, optionally continuing a primer MIDI file."""
    _not_built("generate")


@app.command(context_settings=_PASS_ANY_ARGS)
def listen(ctx: typer.Context) -> None:
    """Play with a musician on MIDI ports: listen, then answer on the grid."""
    _not_built("listen")


@app.command(context_settings=_PASS_ANY_ARGS)
def ports(ctx: typer.Context) -> None:
    """List MIDI input and output ports."""
    _not_built("ports")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
