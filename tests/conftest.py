"""Shared fixtures: the real MIDI files and benchmark rolls beside the project in ../shared
(or where $LIVECOMP_DATA points), and the tunes kept with the tests (tests/data).

A fresh clone has no ../shared: the tests over whole corpora then skip, each saying what it
needs; everything else runs on what the project holds."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import mido
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))        # bench/jack_server.py: the tests' JACK servers, clients and hands
SHARED = Path(os.environ.get("LIVECOMP_DATA") or ROOT.parent / "shared")
NOTTINGHAM = SHARED / "midi" / "nottingham"
ORIGINAL_SAMPLES = SHARED / "midi" / "original-samples"
TUNES = ROOT / "tests" / "data" / "nottingham"     # real tunes kept with the tests (tests/data/README.md)


def still_sounding(messages, lossy: bool = False) -> dict:
    """Notes started and not ended, per (channel, pitch): neither by their note-off nor by All
    Sound Off or All Notes Off on their channel. ``messages``: raw MIDI messages, or (time,
    message) pairs, in the order they were sent. A note-off with no note-on counts -1, unless
    ``lossy`` (what a receiver heard, where the MIDI system may have dropped the note-on)."""
    sounding: dict = {}
    for m in messages:
        m = m[1] if isinstance(m, tuple) else m
        kind, key = m[0] & 0xF0, (m[0] & 0x0F, m[1] if len(m) > 1 else 0)
        if kind == 0x90 and m[2] > 0:
            sounding[key] = sounding.get(key, 0) + 1
        elif kind == 0x80 or kind == 0x90:
            sounding[key] = sounding.get(key, 0) - 1
            if lossy:
                sounding[key] = max(sounding[key], 0)
        elif kind == 0xB0 and m[1] in (120, 123):
            sounding = {k: v for k, v in sounding.items() if k[0] != key[0]}
    return {k: v for k, v in sounding.items() if v}


def shared_midi_files() -> list[Path]:
    return sorted(NOTTINGHAM.glob("*.mid")) + sorted(ORIGINAL_SAMPLES.glob("*.mid"))


@pytest.fixture(scope="session")
def midi_files() -> list[Path]:
    files = shared_midi_files()
    if not files:
        pytest.skip(f"no MIDI files under {SHARED / 'midi'}: the shared corpora are not beside this clone")
    return files


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Where ../shared is missing (a fresh clone), a test that failed reaching for a file in it
    is reported as skipped, with the reason: it never fails for want of the corpora."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and not SHARED.is_dir() \
            and str(SHARED) in str(call.excinfo.value):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           f"Skipped: needs {SHARED} (the shared corpora), which is not beside this clone")


def make_midi(path: Path, events: list[tuple[int, mido.Message | mido.MetaMessage]],
              ticks_per_beat: int = 480, midi_type: int = 1) -> Path:
    """Write a MIDI file from (absolute tick, message) pairs, all on one track."""
    mid = mido.MidiFile(type=midi_type, ticks_per_beat=ticks_per_beat)
    track, now = mido.MidiTrack(), 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=tick - now))
        now = tick
    mid.tracks.append(track)
    mid.save(path)
    return path


def note(pitch: int, start: int, end: int, channel: int = 0, velocity: int = 90):
    """The two events of one note, for make_midi."""
    return [(start, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)),
            (end, mido.Message("note_off", note=pitch, velocity=0, channel=channel))]


def bad_midi_files(folder: Path) -> dict[str, Path]:
    """The four kinds of bad input: truncated, text named .mid, empty, no notes."""
    folder.mkdir(parents=True, exist_ok=True)
    good = (NOTTINGHAM / "ashover1.mid").read_bytes()
    files = {
        "truncated": folder / "truncated.mid",
        "text": folder / "text.mid",
        "empty": folder / "empty.mid",
        "no_notes": folder / "no_notes.mid",
    }
    files["truncated"].write_bytes(good[: len(good) // 2])
    files["text"].write_text("this is a shopping list, not a MIDI file\n")
    files["empty"].write_bytes(b"")
    make_midi(files["no_notes"], [(0, mido.MetaMessage("set_tempo", tempo=500000)),
                                  (480, mido.Message("control_change", control=7, value=100))])
    return files


def twice(check, overran=None):
    """Run a timing check, and once more when it misses. On a shared 2-core VM the kernel now and
    then holds a process for a time slice or two (5-10 ms), which no program can prevent; a fault
    of livecomp's own (a grid placed wrong, a scheduler late) misses both times. ``overran``: says
    where JACK reported an overrun during the attempt just run (``JackWatch.overruns``); an attempt
    that missed with one is not counted, up to three such: JACK drops what arrived in a period a
    client was late for, and a lost tick or note-off says nothing of livecomp. Returns what the
    passing attempt returned."""
    misses, counted, excused = [], 0, 0
    while True:
        try:
            return check()
        except AssertionError as exc:
            why = overran() if overran else ""
            misses.append(f"{exc}" + (f"\n(JACK overran in this attempt: {why})" if why else ""))
            if why and excused < 3:
                excused += 1
                continue
            counted += 1
            if counted == 2:
                raise AssertionError("\n(and the attempt before: ".join(reversed(misses))
                                     + ")" * (len(misses) - 1)) from None


_JACK_LOGS: dict[str, Path] = {}                    # a test server's name -> its output


class JackWatch:
    """Where the test server a client environment points at has reported an overrun since this
    was made: a client (or the server's own thread) not done with a period in time, whose
    messages JACK may have dropped. jackd says so on its output (``JackEngine::XRun: client = X
    was not finished``, ``JackTimedDriver::Process XRun``)."""

    def __init__(self, env: dict):
        self.path = _JACK_LOGS.get(env.get("JACK_DEFAULT_SERVER", ""))
        self.start = self.path.stat().st_size if self.path and self.path.exists() else 0

    def overruns(self) -> str:
        """The overruns reported since, counted per line said (empty: none, or no log)."""
        if not self.path or not self.path.exists():
            return ""
        with open(self.path, "rb") as log:
            log.seek(self.start)
            lines = log.read().decode(errors="replace").splitlines()
        said: dict[str, int] = {}
        for line in lines:
            if "XRun" in line:
                said[line.strip()] = said.get(line.strip(), 0) + 1
        return "; ".join(f"{n} x {line}" for line, n in said.items())


def _jack_server(frames: int, log_path: str | None):
    """A JACK server of its own (dummy driver, 48 kHz, ``frames`` per period), started and
    stopped by PID (bench/jack_server.py, the benchmarks' launcher too); yields the environment
    that points clients at it. Skips where jackd is not installed (make deps installs it)."""
    from jack_server import ServerError, launch, stop

    name, log_path_given = f"livecomp-test-{os.getpid()}-{frames}", bool(log_path)
    if not log_path:                                     # kept for JackWatch, removed with the server
        log_path = _JACK_LOGS[name] = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
    else:
        _JACK_LOGS[name] = Path(log_path)
    try:
        proc, env = launch(name, frames, str(log_path))
    except ServerError as exc:
        if "not installed" in str(exc):
            pytest.skip(str(exc))
        pytest.fail(str(exc))
    previous = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    try:
        yield env
    finally:
        for key, value in previous.items():              # tests point this process at it themselves
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stop(proc)
        if _JACK_LOGS.pop(name, None) and not log_path_given:
            Path(log_path).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def jack():
    """The timing tests' server: 128-frame periods (2.7 ms), so JACK's once-a-period delivery
    blurs a measurement by at most 2.7 ms: far finer than the 16th (62 ms and more) or the clock
    tick (18 ms at 140 bpm) a misplaced grid would be off by. Shorter periods measure finer, but
    on a busy 2-core VM a client then overruns its period several times a second and JACK drops
    what arrived in it (at 16 frames, lost ticks and notes made these tests fail where livecomp
    was right); send lateness at 16-frame periods is measured by bench/timing.py. One server per
    test module: the modules after the one that needed it should not pay for its wake-ups."""
    import os
    yield from _jack_server(128, os.environ.get("LIVECOMP_JACK_LOG"))


@pytest.fixture(scope="module")
def jack_relaxed():
    """For tests that count messages rather than time them: 256-frame periods (5.3 ms). At 0.33
    ms periods on a busy 2-core machine a JACK client now and then overruns a period and JACK
    drops what arrived in it (about one message in several thousand)."""
    import os
    yield from _jack_server(256, os.environ.get("LIVECOMP_JACK_LOG_RELAXED"))
