"""`livecomp listen`, `models` and `ports`: playing with a musician, and what there is to play with."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

import typer

from ..perform.controls import DEFAULTS
from .common import (
    ALIGN,
    BARGE_IN,
    BARS,
    CANDIDATES,
    CHANNEL,
    END_CC,
    FOLLOW_STYLE,
    MAX_CALL_BARS,
    MIN_CALL_BEATS,
    MODE,
    MODEL,
    PHRASE_BARS,
    PROVIDER,
    REPEAT,
    SILENCE_BEATS,
    SUSTAIN,
    TEMPERATURE,
    Align,
    BargeIn,
    Mode,
    Provider,
    Sync,
    _config,
    _engine,
    _performer_config,
    app,
    check_outputs,
    fail,
)


def _settings(ctx: typer.Context, preset: Optional[str]) -> Optional[str]:
    """``--preset``'s callback, run before the other options are read: the config file's
    ``[listen]`` settings, with the preset's laid over them, become those options' defaults, so
    what the command line gives wins. A bad file, setting or value ends the command here."""
    if ctx.resilient_parsing:
        return preset
    from ..perform.settings import SettingsError, config_path, read_settings

    try:
        settings = read_settings(preset)
    except SettingsError as exc:
        fail(str(exc), 2)
    path = config_path()
    options = {opt[2:]: p for p in ctx.command.params for opt in p.opts if opt.startswith("--")}
    defaults = {}
    for key, value in settings.items():
        param = options.get(str(key).replace("_", "-"))
        if param is None or param.name == "preset":
            fail(f"{path} sets {key!r}, which is not an option of listen (the settings are its options "
                 f"without the dashes: in, out, model, bpm, channel, ...).", 2)
        try:
            param.process_value(ctx, value)
        except typer.BadParameter as exc:
            fail(f"{key} = {value!r} in {path}: {exc.message}", 2)
        defaults[param.name] = value
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta["settings"] = f"settings from {path}" + (f", preset {preset!r}" if preset else "") if settings else None
    return preset


CONTROLS_HELP = ("Take controllers as controls (or as the config file's [controls] maps them): "
                 + ", ".join(f"{number} {name}" for name, number in DEFAULTS.items())
                 + "; a program change N chooses model N of livecomp models.")


def _load_specialists(engine, say) -> None:
    """The specialists ``engine`` hands calls to, loaded off the step loop; one that cannot be
    loaded is said in one line, and the model answers every call itself."""
    from ..model.folder import ModelError

    try:
        engine.specialists()
    except ModelError as exc:
        say(f"style following is off: {exc}")


@app.command()
def listen(
    ctx: typer.Context,
    preset: Optional[str] = typer.Option(None, "--preset", is_eager=True, callback=_settings,
                                         help="Lay this preset of the config file over its [listen] settings "
                                              "(what the command line gives wins)."),
    inp: str = typer.Option(..., "--in", help="Input port: full name, unique part, index, or virtual:NAME."),
    out: str = typer.Option(..., "--out", help="Output port: full name, unique part, index, or virtual:NAME."),
    api: Optional[str] = typer.Option(None, "--api",
                                      help="alsa | jack | coremidi | winmm (default: the platform's usual one)."),
    model: Optional[str] = MODEL,
    bpm: str = typer.Option("120", "--bpm", help="Tempo in bpm (the first note played is beat 1 of bar 1), or auto: "
                                                "tempo and phase from your first phrase."),
    meter: str = typer.Option("4/4", "--meter", help="The bar: 4/4, 3/4, 6/8, ..."),
    sync: Sync = typer.Option(Sync.internal, "--sync",
                              help="internal; clock: follow MIDI clock (Start, Stop, Song Position Pointer) from "
                                   "the input port; link: join an Ableton Link session (its tempo, its bar phase, "
                                   "its start/stop; --bpm is the tempo it is joined at; needs livecomp[link])."),
    send_clock: bool = typer.Option(False, "--send-clock",
                                    help="Send MIDI clock on the output port so a DAW or drum machine follows: "
                                         "Start on bar 1 after a --count-in, else Song Position Pointer and "
                                         "Continue from your first note's grid."),
    silence_beats: float = SILENCE_BEATS,
    min_call_beats: float = MIN_CALL_BEATS,
    max_call_bars: int = MAX_CALL_BARS,
    phrase_bars: str = PHRASE_BARS,
    end_cc: Optional[int] = END_CC,
    bars: Optional[int] = BARS,
    align: Align = ALIGN,
    temperature: float = TEMPERATURE,
    candidates: Optional[int] = CANDIDATES,
    seed: Optional[int] = typer.Option(None, "--seed", min=0,
                                       help="Fix the sampling (the same playing gets the same answers)."),
    barge_in: BargeIn = BARGE_IN,
    mode: Mode = MODE,
    sustain: bool = SUSTAIN,
    repeat: bool = REPEAT,
    follow_style: bool = FOLLOW_STYLE,
    channel: int = CHANNEL,
    latency_ms: float = typer.Option(0.0, "--latency-ms", min=0, max=500,
                                     help="Send this much earlier to make up for a synth's delay."),
    record: Optional[Path] = typer.Option(None, "--record",
                                          help="Write what was heard and played to this MIDI file on exit (taken "
                                               "into FILE.part as it is played; a session killed mid-take leaves "
                                               "it, and the next listen with the same --record recovers it into "
                                               "FILE-recovered-TIME.mid)."),
    metronome: bool = typer.Option(False, "--metronome",
                                   help="Click every beat (accent on beat 1) while livecomp runs."),
    count_in: int = typer.Option(0, "--count-in", min=0, max=8,
                                 help="Bars of clicks before bar 1 (needs a fixed --bpm); they set the phase, not "
                                      "your first note."),
    click_channel: int = typer.Option(10, "--click-channel", min=1, max=16,
                                      help="MIDI channel of the clicks (10: General MIDI drums)."),
    click_out: Optional[str] = typer.Option(None, "--click-out", help="Send the clicks to this port instead of --out."),
    learn: bool = typer.Option(False, "--learn",
                               help="Before listening, map each control by moving it when asked; kept in the "
                                    "config file's [controls]."),
    learn_wait: float = typer.Option(10.0, "--learn-wait", min=1.0, max=120.0,
                                     help="Seconds --learn waits for each control before keeping it as it is."),
    controls: bool = typer.Option(True, "--controls/--no-controls", help=CONTROLS_HELP),
    thru: bool = typer.Option(False, "--thru",
                              help="Pass your notes and pedal to the output port as you play (a keyboard without a "
                                   "sound of its own)."),
    thru_channel: Optional[int] = typer.Option(None, "--thru-channel", min=1, max=16,
                                               help="The channel your notes pass thru on (default: the one they "
                                                    "come on); implies --thru."),
    provider: Provider = PROVIDER,
    rt: bool = typer.Option(True, "--realtime/--no-realtime", help="Send at real-time priority (as JACK runs its own "
                            "threads) where the system allows it: root, or an rtprio limit."),
) -> None:
    """Play with a musician on MIDI ports: listen on the beat grid, then answer in time.

    Options may also come from the config file (livecomp.perform.settings: [listen] and [presets.NAME]
    in $LIVECOMP_CONFIG or config.toml in the user's config folder)."""
    from ..io.ports import PortError
    from ..io.rtmidiport import default_api
    from ..model.engine import Engine
    from ..model.folder import DEFAULT_MODEL, ModelError, find_model, shipped_models
    from ..perform.controls import Controls, ControlsError, controls_from
    from ..perform.loop import LiveConfig
    from ..perform.session import Session
    from ..perform.settings import SettingsError, controls_problem, controls_table, read_controls, write_controls
    from ..timing.grid import parse_meter
    from .common import FROM_CONFIG

    FROM_CONFIG.clear()
    for param in ctx.command.params:                # values the config file gave, for fail()'s sentences
        if ctx.get_parameter_source(param.name) is not None and \
                ctx.get_parameter_source(param.name).name == "DEFAULT_MAP":
            flag = next(opt for opt in param.opts if opt.startswith("--"))
            FROM_CONFIG[flag] = ctx.default_map[param.name]
    from ..perform.view import say

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
                            barge_in, sustain, mode, phrase_bars, repeat, follow_style)
    if learn and not controls:
        fail("--learn maps the controls, which --no-controls turns off: give one of them.", 2)
    try:
        by_number = controls_from(read_controls(), end_cc) if controls else None
    except (ControlsError, SettingsError) as exc:
        fail(str(exc), 2)
    names = tuple(shipped_models()) + ((model,) if model and model not in shipped_models() else ())
    live_cfg = _config(LiveConfig, controls=by_number, models=names if controls else (), bpm=tempo,
                       beats_per_bar=beats, channel=channel - 1, latency_ms=latency_ms, end_cc=end_cc, record=record,
                       sync=Sync(sync).value, send_clock=send_clock, metronome=metronome, count_in=count_in,
                       click_channel=click_channel - 1, realtime=rt, thru=thru or thru_channel is not None,
                       thru_channel=thru_channel - 1 if thru_channel is not None else None)
    check_outputs(("--record", record), replace=False)
    if live_cfg.sync == "link":
        from ..timing.link import LinkError, _link_module
        try:
            _link_module()
        except LinkError as exc:
            fail(str(exc))
    if learn and controls_problem():
        fail(f"--learn keeps the map in the config file, which cannot be written: {controls_problem()}")
    engine = _engine(model, provider, say=lambda folder: typer.echo(
        f"preparing the model {model or DEFAULT_MODEL}"))
    if follow_style:                  # the specialists are found now, loaded while livecomp listens
        try:
            engine.specialist_folders()
        except ModelError as exc:
            fail(str(exc))
        threading.Thread(target=_load_specialists, args=(engine, say), name="specialists", daemon=True).start()

    def loader(name: str) -> Engine:
        """A model the keyboard chooses, with the specialists it hands calls to."""
        chosen = Engine(find_model(name), provider=Provider(provider).value)
        if follow_style:
            chosen.specialists()
        return chosen

    if ctx.meta.get("settings"):
        typer.echo(ctx.meta["settings"])
    try:
        session = Session(engine, cfg, live_cfg, inp, out, api or default_api(), click_out, log=say,
                          loader=loader)
    except PortError as exc:
        fail(str(exc))
    if learn:
        try:
            learned = session.learn(typer.echo, learn_wait)
        except KeyboardInterrupt:
            fail("--learn was stopped; the controls are as they were.", 130)
        try:
            table = {**read_controls(), **learned}
            session.live.controls = Controls(controls_from(table, end_cc))
        except (ControlsError, SettingsError) as exc:
            session.close()
            fail(f"the controls learned cannot be used: {exc}")
        try:
            typer.echo(f"controls kept in {write_controls(table)}")
        except (SettingsError, OSError) as exc:                # played with all the same, and shown to keep
            reason = (str(exc) if isinstance(exc, SettingsError)
                      else f"cannot write the config file ({exc.strerror or exc})")
            typer.echo(f"the controls learned are used in this session but not kept: {reason}"
                       + ("" if "\n[controls]" in reason else f"; its [controls] would be:\n{controls_table(table)}"),
                       err=True)
    session.run()
    typer.echo("\n" + session.summary())
    recorded = session.live.recorded
    if record is not None and recorded != record:
        fail(f"the recording could not be written to {record}" +
             (f"; it is kept in {recorded}." if recorded else "."))


@app.command()
def models(folders: Optional[list[Path]] = typer.Argument(None, help="Model folders to describe beside the shipped "
                                                                     "ones.")) -> None:
    """The models livecomp can play with: what each learnt from, its grid, its size and figures."""
    from ..model.folder import DEFAULT_MODEL, ModelError, card, shipped_models

    shipped = shipped_models()
    for program, (name, folder) in enumerate(shipped.items()):
        lines = card(folder)
        lines[0] += f"  [program {program}" + (", the default]" if name == DEFAULT_MODEL else "]")
        typer.echo("\n".join(lines) + "\n")
    if shipped:
        typer.echo(f"While listen runs, a program change chooses a model by its number (a folder given to "
                   f"listen's --model comes after them, program {len(shipped)}).\n")
    for folder in folders or []:
        try:
            typer.echo("\n".join(card(folder)) + "\n")
        except ModelError as exc:
            fail(str(exc))


@app.command()
def ports(api: Optional[str] = typer.Option(None, "--api",
                                            help="alsa | jack | coremidi | winmm (default: the platform's usual "
                                                 "one).")) -> None:
    """List MIDI input and output ports; the ones the config file's [listen] names are marked."""
    from ..io.ports import PortError, resolve
    from ..io.rtmidiport import default_api, list_ports
    from ..perform.settings import SettingsError, read_settings

    api = api or default_api()
    try:
        inputs, outputs = list_ports(api)
    except PortError as exc:
        fail(str(exc))
    try:
        settings = read_settings()
    except SettingsError as exc:
        fail(str(exc), 2)
    for direction, key, names in (("input", "in", inputs), ("output", "out", outputs)):
        chosen = None
        if isinstance(settings.get(key), str) and not settings[key].startswith(("virtual:", "loopback:")):
            try:
                chosen = resolve(settings[key], names, direction)
            except PortError:
                typer.echo(f"note: the config file's {key} = {settings[key]!r} matches no {direction} port now.",
                           err=True)
        what = ("where livecomp hears you: keyboards and controllers, for listen --in" if key == "in" else
                "where livecomp plays: synths, DAWs and sound modules, for listen --out")
        typer.echo(f"{api} {direction}s, {what}:")
        if not names:
            typer.echo("  (none)")
        for i, name in enumerate(names):
            typer.echo(f"  {i}: {name}" + (f"   <- listen --{key} (config file)" if i == chosen else ""))
