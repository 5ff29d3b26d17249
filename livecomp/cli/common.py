"""What every command of the `livecomp` command line shares: the app, the options several
commands take and the helpers each uses; the commands live beside it by what the musician
does: ``offline`` (roll, generate, duet), ``live`` (listen, models, ports) and ``training``
(train, eval, export). Heavy imports (torch, onnxruntime) happen inside the commands that need
them, so `livecomp --help` is instant and the runtime never loads torch.
"""

from __future__ import annotations

import math
import re
import sys
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import NoReturn, Optional

import typer

from .. import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,              # help text as written: "[listen]" is a TOML table, not markup
    help="livecomp: a real-time MIDI co-performer. It listens on the beat grid and answers in time.",
)

EXAMPLE_MIDI = "joplin.mid"
# bars 1-4 and 9-12 of Schumann's Melodie, Op. 68 No. 1: two 4-bar calls with room to answer
EXAMPLE_PHRASE = "melodie.mid"


FROM_CONFIG: dict[str, object] = {}     # option -> the value the config file gave it


def fail(message: str, code: int = 1) -> NoReturn:
    """End the command with one clear sentence on stderr and a non-zero exit. A sentence about
    an option whose value came from the config file (it names the option, or the value quoted)
    names the file and its line, exit 2."""
    from ..perform.settings import config_path

    for flag, value in FROM_CONFIG.items():
        if re.search(rf"{re.escape(flag)}(?![\w-])", message) or isinstance(value, str) and repr(value) in message:
            message, code = f"{flag[2:]} = {value!r} in {config_path()}: {message}", 2
            break
    typer.echo(f"livecomp: {message}", err=True)
    raise typer.Exit(code)


def _choice(name: str, *values: str) -> type[Enum]:
    """An option's choices: typer shows them in --help and refuses others in one sentence."""
    return Enum(name, [(value, value) for value in values], type=str)


Align = _choice("Align", "bar", "beat")
BargeIn = _choice("BargeIn", "stop", "continue")
Mode = _choice("Mode", "call", "duet")
Sync = _choice("Sync", "internal", "clock", "link")
Provider = _choice("Provider", "auto", "cpu", "cuda")


# Options that `duet` and `listen` (and some of them `generate`) share, declared once.
MODEL = typer.Option(None, "--model", help="A shipped model's name or a model folder.")
PROVIDER = typer.Option(Provider.auto, "--provider", help="Where onnxruntime runs.")
SILENCE_BEATS = typer.Option(2.0, "--silence-beats", min=0.25,
                             help="Beats of silence that end a call (a held key or pedal is not silence); half of "
                                  "it right before a bar line.")
MIN_CALL_BEATS = typer.Option(1.0, "--min-call-beats", min=0, help="Shorter calls are not answered.")
MAX_CALL_BARS = typer.Option(8, "--max-call-bars", min=1,
                             help="A call this long is answered without waiting for silence.")
PHRASE_BARS = typer.Option("4,8", "--phrase-bars",
                           help="Calls of these many bars (once one is answered: as long as it) that strike "
                                "nothing on their last 16th are answered on the next bar line, with no wait; "
                                "'none': only silence ends a call.")
END_CC = typer.Option(None, "--end-cc", min=0, max=127, help="A controller that ends a call at once (value >= 64).")
BARS = typer.Option(None, "--bars", min=1, help="Answer length in bars (default: as long as the call).")
ALIGN = typer.Option(Align.bar, "--align", help="Where an answer starts.")
TEMPERATURE = typer.Option(1.0, "--temperature", min=0.05, max=5.0,
                           help="Sampling temperature: below 1 plays safer, above 1 wilder.")
CANDIDATES = typer.Option(None, "--candidates", min=1, max=64,
                          help="Sample K bars at once and play the one that best fits the call (likelihood and "
                               "agreement); default: the model's own count (its card), else 16.")
BARGE_IN = typer.Option(BargeIn("stop"), "--barge-in",
                        help="When the musician plays during an answer: stop it, or continue.")
MODE = typer.Option(Mode.call, "--mode",
                    help="call: call and response; duet: play along step by step, hearing both parts.")
SUSTAIN = typer.Option(True, "--sustain/--no-sustain", help="Honour the sustain pedal.")
REPEAT = typer.Option(True, "--repeat/--no-repeat",
                      help="An answer bar may be your call's bar at its place in the phrase, as often as the music "
                           "the model learnt from brings such a bar back (its card's repeat gate).")
CHANNEL = typer.Option(1, "--channel", min=1, max=16, help="MIDI channel livecomp plays on.")
FOLLOW_STYLE = typer.Option(True, "--follow-style/--no-follow-style",
                            help="A call that one of the model's specialists (its card names them) finds clearly "
                                 "more likely than the model does (20 times) is answered by that specialist.")


def check_outputs(*outputs: tuple[str, Optional[Path]], replace: bool = True,
                  inputs: tuple[tuple[str, Optional[Path]], ...] = ()) -> None:
    """End the command before its work when an output it was asked for cannot be written, when
    two outputs name one file (one would be lost), or when an output names an input file."""
    from ..files import output_problem, same_file

    given = [(flag, path) for flag, path in outputs if path is not None]
    for i, (flag, path) in enumerate(given):
        for other, earlier in given[:i]:
            if same_file(path, earlier):
                fail(f"{other} and {flag} both name {path}; give each its own file (one would be lost).")
        for other, source in inputs:
            if source is not None and same_file(path, source):
                fail(f"{flag} {path} is the {other} file being read; give the output another name.")
    for flag, path in given:
        problem = output_problem(path, flag, replace=replace)
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



def _engine(model, provider: str = "auto", job: str = "live", say=None, specialists: bool = False):
    """Load a model folder or shipped model, or end with the sentence that says why not.
    ``say(folder)``: told once the folder is found, before the seconds loading takes.
    ``specialists``: the models its model.json names to hand calls to are loaded too."""
    from ..model.engine import Engine
    from ..model.folder import ModelError, find_model

    if provider not in set(Provider):
        fail(f"onnxruntime runs on auto, cpu or cuda, not {provider!r}.")
    try:
        folder = find_model(model)
        if say is not None:
            say(folder)
        engine = Engine(folder, provider=provider, job=job)
        if specialists:
            engine.specialists()
        return engine
    except ModelError as exc:
        fail(str(exc))


def _check_temperature(temperature: float) -> None:
    """The option's range lets NaN through (no comparison with it is true)."""
    if not math.isfinite(temperature):
        fail(f"--temperature must be a number from 0.05 to 5, not {temperature}.")


def _phrase_bars(text: str) -> tuple[int, ...]:
    """--phrase-bars: "4,8" -> (4, 8); "none" (or nothing) -> ()."""
    if text.strip().lower() in ("", "none", "0"):
        return ()
    try:
        bars = tuple(int(part) for part in text.split(","))
    except ValueError:
        bars = ()
    if not bars or min(bars) < 1:
        fail(f"--phrase-bars takes whole numbers of bars separated by commas (4,8), or none, not {text!r}.")
    return bars


def _performer_config(silence_beats, min_call_beats, max_call_bars, bars, align, temperature, candidates, seed,
                      barge_in, sustain, mode="call", phrase_bars="4,8", repeat=True, follow_style=True):
    from ..perform.performer import PerformerConfig

    return _config(PerformerConfig, silence_beats=silence_beats, min_call_beats=min_call_beats,
                   max_call_bars=max_call_bars, bars=bars, align=Align(align).value, temperature=temperature,
                   candidates=candidates, seed=seed, barge_in=BargeIn(barge_in).value, sustain=sustain,
                   mode=Mode(mode).value, phrase_bars=_phrase_bars(phrase_bars), repeat=repeat,
                   follow_style=follow_style)


def _config(cls, **fields):
    """A config dataclass, or the end of the command with its own sentence, the field named as
    its option."""
    try:
        return cls(**fields)
    except ValueError as exc:
        name, _, rest = str(exc).partition(" ")
        fail(f"--{name.replace('_', '-')} {rest}.")


NOT_NUMBERS = {"nan", "inf", "infinity"}
NAMES = {"--api", "--click-out", "--corpus-licence", "--data", "--in", "--init-from", "--midi-out", "--model", "--name",
         "--out", "--png", "--preset", "--primer", "--record", "--resume", "--soundfont", "--wav", "--with",
         "--json", "--device", "--provider"}             # options that take a name or a path, never a number


def main() -> None:
    """The command line; an option given NaN or an infinity is refused here, in words, before
    the range checks, which would call "nan" too large or too small."""
    words = sys.argv[1:]
    for i, word in enumerate(words):
        flag, equals, value = word.partition("=")
        if not equals:
            value = words[i + 1] if i + 1 < len(words) else ""
        if flag.startswith("--") and flag not in NAMES and value.strip().lower().lstrip("+-") in NOT_NUMBERS:
            typer.echo(f"livecomp: {flag} takes a finite number, not {value!r}.", err=True)
            sys.exit(2)
    app()

