"""`livecomp roll`, `generate` and `duet`: music from files, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import (
    ALIGN,
    BARGE_IN,
    BARS,
    CANDIDATES,
    CHANNEL,
    END_CC,
    EXAMPLE_PHRASE,
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
    _check_temperature,
    _engine,
    _performer_config,
    app,
    check_outputs,
    example_path,
    fail,
)


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
    from ..files import save_midi
    from ..music.image import save_roll_png
    from ..music.notes import MidiFileError
    from ..music.roll import midi_to_roll, roll_to_midi

    path = file if file is not None else example_path()
    check_outputs(("--png", png), ("--midi-out", midi_out), inputs=(("MIDI", path),))
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
        + (f", {conv['ignored_meta']} tempo or meter event{'s' * (conv['ignored_meta'] != 1)} no music can have "
           f"(a tempo of 0, a bar of 0 beats, or a beat shorter than a 64th note)"
           if conv.get("ignored_meta") else ""),
    ]
    return "\n".join(lines)




@app.command()
def generate(
    model: Optional[str] = typer.Option(None, "--model",
                                        help="A shipped model's name (piano, pop, folk, basic) or a model folder."),
    primer: Optional[Path] = typer.Option(None, "--primer",
                                          help="A MIDI file to continue (in its own tempo and meter)."),
    primer_bars: Optional[int] = typer.Option(None, "--primer-bars", min=1, help="Use only the primer's first N bars."),
    bars: int = typer.Option(8, "--bars", min=1, help="Bars to write."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.05, max=5.0, help="Below 1: safer; above 1: wilder."),
    candidates: int = typer.Option(1, "--candidates", min=1, max=64,
                                   help="Sample K bars at once and keep the most likely."),
    seed: int = typer.Option(0, "--seed", min=0, help="The same seed writes the same music."),
    out: Path = typer.Option(Path("out/generated.mid"), "--out", help="The MIDI file to write."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also draw the piano roll (the continuation in orange)."),
    wav: Optional[Path] = typer.Option(None, "--wav",
                                       help="Also render audio with fluidsynth and a General MIDI soundfont."),
    soundfont: Optional[Path] = typer.Option(None, "--soundfont",
                                             help="The .sf2 file for --wav (default: a GM soundfont found on this "
                                                  "system)."),
    provider: Provider = PROVIDER,
) -> None:
    """Write new music with a model, optionally continuing a primer MIDI file."""
    from ..files import save_midi
    from ..model.generate import continue_roll
    from ..music.audio import AudioError, render_wav
    from ..music.image import save_roll_png
    from ..music.notes import MidiFileError
    from ..music.roll import midi_to_roll, roll_to_midi

    _check_temperature(temperature)
    if primer_bars is not None and primer is None:
        fail("--primer-bars cuts a primer: give the file with --primer.")
    check_outputs(("--out", out), ("--png", png), ("--wav", wav),
                  inputs=(("--primer", primer), ("--soundfont", soundfont)))
    _check_audio(wav, soundfont)
    engine = _engine(model, provider)
    heard = None
    if primer is not None:
        try:
            heard = midi_to_roll(primer, steps_per_beat=engine.steps_per_beat)
        except MidiFileError as exc:
            fail(str(exc))
        if primer_bars is not None:
            heard = heard.first_bars(primer_bars)
    try:
        whole, answer = continue_roll(engine, heard, bars, temperature, candidates, seed, progress=_progress(bars))
    except KeyboardInterrupt:
        fail(f"stopped by Ctrl-C before the {bars} bars were written; nothing was written.", 130)
    try:
        save_midi(out, roll_to_midi(whole))
        if png is not None:
            save_roll_png(png, whole, second=answer if heard is not None else None,
                          names=("primer", "livecomp") if heard is not None else ("livecomp",))
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




def _on_terminal(say, after_s: float = 0.0):
    """On a terminal, ``say(x)`` (the words for how far the work is, given ``x`` and whether it is
    done) on stderr in place, a few times a second, once ``after_s`` seconds have passed; None
    elsewhere. ``say`` returns (words, done)."""
    import sys
    import time

    if not sys.stderr.isatty():
        return None
    started, shown = time.monotonic(), [time.monotonic()]

    def tell(x) -> None:
        words, done = say(x)
        if time.monotonic() - started < after_s:
            return
        if time.monotonic() - shown[0] >= 0.25:
            shown[0] = time.monotonic()
            sys.stderr.write(f"\r{words}\x1b[K")
            sys.stderr.flush()
        if done:
            sys.stderr.write("\r\x1b[K")

    return tell


def _progress(bars: int):
    """For a long generation (64 bars or more), "writing bar N of M"."""
    return _on_terminal(lambda done: (f"writing bar {done + 1} of {bars}", done == bars - 1)) if bars >= 64 else None


def _share_shown():
    """For duet, how much of the file it has played, from the second second on."""
    return _on_terminal(lambda share: (f"playing the file through: {share:.0%}", share >= 1.0), after_s=1.0)


def _check_audio(wav: Optional[Path], soundfont: Optional[Path] = None) -> None:
    """--wav needs fluidsynth and a soundfont, found before any work; --soundfont needs --wav."""
    from ..music.audio import AudioError, renderer

    if soundfont is not None and wav is None:
        fail(f"--soundfont {soundfont} is the sound of --wav's audio: give --wav too (or leave --soundfont out).")
    if wav is not None:
        try:
            renderer(soundfont)
        except AudioError as exc:
            fail(str(exc))


@app.command()
def duet(
    performance: Optional[Path] = typer.Argument(None, help="A MIDI file of the musician's part (default: the shipped "
                                                              "example, two 4-bar calls from Schumann's Melodie, Op. "
                                                              "68 No. 1)."),
    out: Path = typer.Option(Path("out/duet.mid"), "--out",
                             help="The MIDI file to write: the musician's part and livecomp's answers on two "
                                  "tracks."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also draw both parts (livecomp's in orange)."),
    wav: Optional[Path] = typer.Option(None, "--wav", help="Also render audio with fluidsynth."),
    model: Optional[str] = MODEL,
    silence_beats: float = SILENCE_BEATS,
    min_call_beats: float = MIN_CALL_BEATS,
    max_call_bars: int = MAX_CALL_BARS,
    phrase_bars: str = PHRASE_BARS,
    end_cc: Optional[int] = END_CC,
    bars: Optional[int] = BARS,
    align: Align = ALIGN,
    temperature: float = TEMPERATURE,
    candidates: Optional[int] = CANDIDATES,
    seed: int = typer.Option(0, "--seed", min=0, help="The same seed gives the same answers."),
    barge_in: BargeIn = BARGE_IN,
    mode: Mode = MODE,
    sustain: bool = SUSTAIN,
    repeat: bool = REPEAT,
    follow_style: bool = FOLLOW_STYLE,
    channel: int = CHANNEL,
    provider: Provider = PROVIDER,
) -> None:
    """Run the co-performer on a MIDI file, offline and deterministic: the twin of `listen`."""
    from ..files import save_midi
    from ..music.audio import AudioError, render_wav
    from ..music.image import save_roll_png
    from ..music.notes import MidiFileError
    from ..music.roll import midi_to_roll
    from ..perform.duet import duet as run_duet
    from ..perform.duet import part

    cfg = _performer_config(silence_beats, min_call_beats, max_call_bars, bars, align, temperature, candidates, seed,
                            barge_in, sustain, mode, phrase_bars, repeat, follow_style)
    performance = performance or example_path(EXAMPLE_PHRASE)
    check_outputs(("--out", out), ("--png", png), ("--wav", wav),
                  inputs=(("performance", performance),))
    _check_audio(wav)
    engine = _engine(model, provider, specialists=follow_style)
    try:
        result = run_duet(engine, performance, cfg, channel=channel - 1, end_cc=end_cc, progress=_share_shown())
    except MidiFileError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail(f"stopped by Ctrl-C before {performance} was played through; nothing was written.", 130)
    try:
        save_midi(out, result.midi)
        if png is not None:
            musician = midi_to_roll(part(result.midi, 1), steps_per_beat=engine.steps_per_beat)
            answers_roll = (midi_to_roll(part(result.midi, 2), steps_per_beat=engine.steps_per_beat)
                            if result.events else None)
            save_roll_png(png, musician, second=answers_roll, names=("musician", "livecomp"))
    except OSError as exc:
        fail(f"cannot write output: {exc.strerror or exc} ({exc.filename}).")
    for line in result.told:
        typer.echo(f"note: {line}.", err=True)
    notes = sum(e.kind == "on" for e in result.events)
    answers = len(result.answers)
    handed = sorted({name for name in result.answered_by if name != engine.name})
    by = sum(name != engine.name for name in result.answered_by)
    typer.echo(f"{engine.name} ({engine.architecture}): {answers} answer{'s' * (answers != 1)}"
               + (f" ({by} by its specialist{'s' * (len(handed) > 1)} {', '.join(handed)})" if by else "")
               + f", {notes} note{'s' * (notes != 1)}, at "
               f"{result.grid.bpm:g} bpm in {result.grid.beats_per_bar} beats a bar")
    typer.echo(f"wrote {out}" + (f" and {png}" if png else ""))
    if wav is not None:
        try:
            font = render_wav(out, wav)
        except AudioError as exc:
            fail(str(exc))
        typer.echo(f"wrote {wav} (soundfont {font})")
