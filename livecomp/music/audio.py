"""Rendering MIDI to WAV through fluidsynth with a General MIDI soundfont, where one is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)


PEAK_DBFS = -1.0          # a render's loudest sample: fluidsynth's own level peaks some 25 dB lower


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
        normalise(tmp)
        os.replace(tmp, wav)
    finally:
        tmp.unlink(missing_ok=True)
    return font


def normalise(path: str | Path, peak_dbfs: float = PEAK_DBFS) -> float:
    """Scale a 16-bit WAV file in place so its loudest sample is at ``peak_dbfs``; returns the
    gain in dB (0 for silence, or a file of another sample width, left as it is)."""
    with wave.open(str(path), "rb") as f:
        params = f.getparams()
        if params.sampwidth != 2:
            return 0.0
        samples = np.frombuffer(f.readframes(params.nframes), "<i2")
    peak = int(np.abs(samples.astype(np.int32)).max()) if samples.size else 0
    if peak == 0:
        return 0.0
    gain = 10 ** (peak_dbfs / 20) * 32767 / peak
    scaled = np.clip(np.round(samples * gain), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setparams(params)
        f.writeframes(scaled.tobytes())
    return float(20 * np.log10(gain))
