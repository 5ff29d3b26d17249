"""Rendering MIDI to WAV through fluidsynth with a General MIDI soundfont, where one is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)


class AudioError(RuntimeError):
    """WAV rendering is not possible here, or failed."""


def find_soundfont(explicit: str | Path | None = None) -> Path:
    candidates = [explicit] if explicit else [os.environ.get("LIVECOMP_SOUNDFONT"), *SOUNDFONTS]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    if explicit:
        raise AudioError(f"the soundfont {explicit} does not exist.")
    raise AudioError("no General MIDI soundfont found (install fluid-soundfont-gm or timgm6mb-soundfont, "
                     "or set LIVECOMP_SOUNDFONT).")


def renderer(soundfont: str | Path | None = None) -> tuple[str, Path]:
    """(fluidsynth, the soundfont) that ``render_wav`` would use, or AudioError saying what is
    missing: asked before a command's work, so that --wav fails before anything is written."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise AudioError("fluidsynth is not installed, so no WAV can be written (apt install fluidsynth).")
    return exe, find_soundfont(soundfont)


def render_wav(midi: str | Path, wav: str | Path, soundfont: str | Path | None = None, rate: int = 44100) -> Path:
    """Render a MIDI file to a WAV file (written atomically); returns the soundfont used."""
    exe, font = renderer(soundfont)
    wav = Path(wav)
    tmp = wav.with_name(f".{wav.name}.tmp-{os.getpid()}.wav")
    try:
        run = subprocess.run([exe, "-ni", "-q", "-F", str(tmp), "-r", str(rate), str(font), str(midi)],
                             capture_output=True, text=True, timeout=600)
        if run.returncode != 0 or not tmp.exists() or tmp.stat().st_size <= 44:
            raise AudioError(f"fluidsynth could not render {midi}: {(run.stderr or run.stdout).strip()[:200]}")
        os.replace(tmp, wav)
    finally:
        tmp.unlink(missing_ok=True)
    return font
