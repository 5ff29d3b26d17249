"""A night on stage, compressed: one `livecomp listen` through real JACK ports for --minutes, a
keyboard of this script's own playing a long, varied session into it, and a synth that stamps
every message livecomp plays with its frame.

What the keyboard does, in rounds until the time is up (each round a few bars at --bpm):

- calls of 1 to 2 bars in 4/4 (random notes of a random major key, some chords), left room to
  be answered, or played over now and then (the answer stops);
- the temperature knob moved; mute on and off; panic in the middle of an answer; the mode
  button (a phrase played along with in duet mode, then back); the next-model button;
- bursts of junk between the phrases: SysEx, active sensing, data bytes over 127, drum notes;
- the keyboard's client leaving and coming back (livecomp reconnects to it by name).

Before the first note the next-model button visits every shipped model once, so that what a
session keeps in memory is loaded before the memory is measured.

What it checks, all through the session:

- every note livecomp starts lies on its 16th grid, counted in JACK frames from the first
  note heard (beat 1 of bar 1): within --tolerance-ms, or the log says why not;
- nothing livecomp started still sounds at the synth after Ctrl-C;
- the --record file reads, and every note in it ends;
- the process's memory (RSS) and CPU, sampled every 5 s: the RSS's growth over the second
  half of the session (models loaded by then) and its slope;
- no traceback in the output, livecomp alive until Ctrl-C, exit code 0.

    python bench/soak.py                    # 30 minutes at 120 bpm, 256-frame periods
    python bench/soak.py --minutes 3        # what the suite runs (tests/test_soak.py)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import mido  # noqa: E402
import numpy as np  # noqa: E402

from livecomp.io.jackclient import FRAME_TIME, FrameClient, available  # noqa: E402
from livecomp.io.rtmidiport import load_rtmidi  # noqa: E402

from jack_server import jack_client, jack_virtual_port, start, wait_until  # noqa: E402

rtmidi = load_rtmidi()

KEYS = 1                                 # the keyboard plays on channel 2; livecomp answers on 1
KNOB, MUTE, PANIC, MODE, NEXT = 16, 81, 82, 80, 83
MAJOR = (0, 2, 4, 5, 7, 9, 11)
SAMPLE_S = 5.0


@dataclass
class Report:
    minutes: float
    rounds: int = 0
    calls: int = 0
    junk: int = 0
    reconnects: int = 0
    answer_notes: int = 0
    off_grid: list = field(default_factory=list)      # (seconds into the session, ms off the nearest line)
    explained_off_grid: int = 0                       # of them, while the log said the machine held livecomp
    sounding_after: dict = field(default_factory=dict)
    recording_ok: bool = False
    recording_unended: int = 0
    rss_mb: list = field(default_factory=list)        # (seconds, MB), every SAMPLE_S
    cpu_percent: list = field(default_factory=list)   # (seconds, %), over each SAMPLE_S
    rss_growth_mb: float = 0.0                        # over the second half
    rss_slope_mb_per_hour: float = 0.0
    traceback: bool = False
    alive_until_stop: bool = False
    returncode: int | None = None
    said: dict = field(default_factory=dict)          # how many lines of each kind livecomp said
    overruns: int = 0                                 # periods jackd said a client was late for (XRun)

    def ok(self, tolerance_ms: float, rss_limit_mb: float = 5.0) -> bool:
        return len(self.off_grid) <= self.explained_off_grid and not self.sounding_after and self.recording_ok \
            and not self.recording_unended \
            and self.rss_growth_mb <= rss_limit_mb and not self.traceback and self.alive_until_stop \
            and self.returncode == 0 and self.answer_notes > 0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Keyboard:
    """This script's keyboard: a JACK client it can unplug and plug in again."""

    def __init__(self, name: str):
        self.name = name
        self.port = None
        self.plug()

    def plug(self) -> None:
        self.port = jack_virtual_port(rtmidi.MidiOut, self.name, "keys")

    def unplug(self) -> None:
        self.port.close_port()
        self.port.delete()
        self.port = None

    def send(self, message: list[int]) -> None:
        self.port.send_message(message)


def phrase(rng: random.Random, t0: float, step: float, bars: int) -> list[tuple[float, list[int]]]:
    """A call: quavers and 16ths of a major key, some notes with a chord under them."""
    key = rng.randrange(12)
    scale = [60 + key + d + o for o in (-12, 0, 12) for d in MAJOR if 48 <= 60 + key + d + o <= 84]
    events, s = [], 0
    while s < 16 * bars - 2:
        length = rng.choice([1, 2, 2, 4])
        pitch = rng.choice(scale)
        chord = [pitch] + ([pitch - 12, pitch - 8] if rng.random() < 0.2 and pitch - 12 >= 36 else [])
        for p in chord:
            events += [(t0 + s * step, [0x90 | KEYS, p, rng.randrange(50, 110)]),
                       (t0 + (s + length * 0.9) * step, [0x80 | KEYS, p, 0])]
        s += length
    return events


def junk(rng: random.Random) -> list[int]:
    return rng.choice([
        [0xF0, *(rng.randrange(128) for _ in range(rng.randint(1, 60))), 0xF7],
        [0xFE],
        [0xB0 | KEYS, 64, rng.randrange(128, 256)],
        [0x90 | KEYS, rng.randrange(128, 256), 90],
        [0x99, rng.randrange(35, 82), 100],
        [0x89, rng.randrange(35, 82), 0],
    ])


def run(minutes: float, bpm: float = 120.0, frames: int = 256, seed: int = 0, tolerance_ms: float = 1.0,
        model: str = "basic", log=print, warm: bool = True, reconnect_every: int = 12) -> Report:
    """The session; ``warm``: every model loaded once before the memory is measured (the suite's
    short run measures no memory and skips it); the keyboard unplugged in the middle round of
    every ``reconnect_every``."""
    report = Report(minutes=minutes)
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="livecomp-soak-")
    server_log = os.path.join(tmp, "jackd.log")
    jackd, env, patchbay = start("soak", frames, server_log)
    record = os.path.join(tmp, "take.mid")
    arrived: list[tuple[float, list[int]]] = []
    polling = threading.Event()
    try:
        keys = Keyboard("soak-player")
        synth = jack_client(lambda: _synth(patchbay), "soak-synth")
        listen = subprocess.Popen([sys.executable, "-m", "livecomp.cli", "listen", "--api", "jack",
                                   "--in", "soak-player:keys", "--out", "virtual:soak-out", "--model", model,
                                   "--bpm", f"{bpm:g}", "--silence-beats", "1", "--record", record,
                                   "--seed", str(seed)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**env, "PYTHONFAULTHANDLER": "1"})
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(listen.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while not any(line.startswith("listening on") for line in lines):
            if listen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("livecomp listen did not start:\n" + "".join(lines))
            time.sleep(0.05)

        def wire() -> None:
            for source, destination in (("livecomp-out:soak-out", "soak-synth:sound"),
                                        ("soak-player:keys", "soak-synth:sound")):
                patchbay.connect(source, destination)

        wire()

        def poll() -> None:
            while not polling.is_set():
                got = synth.read(0.005)
                while got is not None:
                    arrived.append((got[1], got[0]))
                    got = synth.read(0.001)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        time.sleep(0.5)
        if warm:
            warm_up(keys, lines)                                    # every model loaded once before measuring

        samples: list[tuple[float, float, float]] = []      # (seconds, RSS MB, CPU seconds)
        started = time.monotonic()

        def sample() -> None:
            while not polling.wait(SAMPLE_S):
                try:
                    samples.append((time.monotonic() - started, rss_mb(listen.pid), cpu_s(listen.pid)))
                except OSError:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        step = 60 / bpm / 4
        bar = 16 * step
        now = FRAME_TIME.now
        t = now() + 0.3
        end = started + minutes * 60
        kinds: list[str] = []
        while time.monotonic() < end:
            report.rounds += 1
            if not kinds:                                           # every kind of round, in a shuffled cycle
                kinds = ["plain", "over", "panic", "mute", "knob", "duet", "next", "plain"]
                rng.shuffle(kinds)
            kind = kinds.pop()
            events: list[tuple[float, list[int]]] = []
            bars = rng.choice([1, 2])
            events += phrase(rng, t, step, bars)
            report.calls += 1
            gap = (bars + 1) * bar + bars * bar                     # room: the silence, the answer
            if kind == "over":                                      # played over: the answer stops
                events += phrase(rng, t + (bars + 1.5) * bar, step, 1)
                gap += bar
            elif kind == "panic":
                events.append((t + (bars + 1.5) * bar, [0xB0 | KEYS, PANIC, 127]))
                events.append((t + (bars + 1.5) * bar + 0.05, [0xB0 | KEYS, PANIC, 0]))
            elif kind == "mute":
                events += [(t + 0.01, [0xB0 | KEYS, MUTE, 127]), (t + 0.06, [0xB0 | KEYS, MUTE, 0]),
                           (t + bars * bar + 0.5 * step, [0xB0 | KEYS, MUTE, 127]),
                           (t + bars * bar + 0.5 * step + 0.05, [0xB0 | KEYS, MUTE, 0])]
            elif kind == "knob":
                events.append((t + 0.02, [0xB0 | KEYS, KNOB, rng.randrange(128)]))
            elif kind == "duet":                                    # duet for the phrase, then back
                events += [(t - 0.5 * step, [0xB0 | KEYS, MODE, 127]), (t - 0.5 * step + 0.05, [0xB0 | KEYS, MODE, 0]),
                           (t + (bars + 3) * bar, [0xB0 | KEYS, MODE, 127]),
                           (t + (bars + 3) * bar + 0.05, [0xB0 | KEYS, MODE, 0])]
                gap += 2 * bar
            elif kind == "next":
                events += [(t + (bars + 2.5) * bar, [0xB0 | KEYS, NEXT, 127]),
                           (t + (bars + 2.5) * bar + 0.05, [0xB0 | KEYS, NEXT, 0])]
            for _ in range(rng.randrange(0, 30)):                  # junk strewn through the round
                events.append((t + rng.uniform(0, gap), junk(rng)))
                report.junk += 1
            for when, message in sorted(events, key=lambda e: e[0]):
                wait_until(when, now=now)
                keys.send(message)
            t += gap + rng.choice([0, bar])
            wait_until(t - 0.4 * bar, now=now)
            if report.rounds % reconnect_every == reconnect_every // 2:   # unplugged and plugged in again
                keys.unplug()
                time.sleep(1.0)
                keys.plug()
                report.reconnects += 1
                deadline = time.monotonic() + 10
                while "livecomp-in:input" not in patchbay.connections("soak-player:keys") and \
                        time.monotonic() < deadline:
                    time.sleep(0.05)
                wire()
                t = max(t, now() + 0.3)
                t = _next_line(t, arrived, step)
        report.alive_until_stop = listen.poll() is None
        listen.send_signal(signal.SIGINT)
        listen.wait(timeout=60)
        reader.join(timeout=10)
        time.sleep(0.3)
        polling.set()
        poller.join(timeout=5)
        sampler.join(timeout=10)
        report.returncode = listen.returncode
        out = "".join(lines)
        report.traceback = "Traceback" in out
        for word in ("answer ", "went away", "is back", "panic", "muted", "mode", "model", "temperature",
                     "held livecomp"):
            report.said[word.strip()] = out.count(word)
        _check_grid(report, arrived, step, tolerance_ms, out)
        _check_sounding(report, arrived)
        _check_recording(report, record)
        _memory(report, samples)
        keys.unplug()
        synth.delete()
        patchbay.close()
        if not report.ok(tolerance_ms):
            log(out)
    finally:
        polling.set()
        jackd.terminate()
        jackd.wait()
        if os.path.exists(server_log):
            with open(server_log, errors="replace") as server:
                report.overruns = sum("XRun" in line for line in server)
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def warm_up(keys: Keyboard, lines: list[str]) -> None:
    """The next-model button pressed until every shipped model has played once and the first is
    back: what a session keeps in memory is there before the memory is measured (the first
    load of a model is growth, not a leak). No note is played, so bar 1 is still to come."""
    from livecomp.model.folder import shipped_models

    for _ in range(len(shipped_models())):
        loaded = sum("answers from now on" in line for line in lines)
        keys.send([0xB0 | KEYS, NEXT, 127])
        keys.send([0xB0 | KEYS, NEXT, 0])
        deadline = time.monotonic() + 30
        while sum("answers from now on" in line for line in lines) == loaded and time.monotonic() < deadline:
            time.sleep(0.1)


def _synth(patchbay):
    client = FrameClient("soak-synth", "input", patchbay.ports)
    client.open_virtual_port("sound")
    return client


def _next_line(t: float, arrived, step: float) -> float:
    """``t`` moved on to the keyboard's own 16th grid (the one its first note set), so calls
    after a reconnect start on it as before."""
    first = next((when for when, m in arrived if m[0] & 0xF0 == 0x90 and m[0] & 0x0F == KEYS), None)
    if first is None:
        return t
    return first + np.ceil((t - first) / (16 * step)) * 16 * step


def _check_grid(report: Report, arrived, step: float, tolerance_ms: float, out: str) -> None:
    """Every note livecomp started, against its grid: 16ths from the first key heard."""
    first = next((when for when, m in arrived if m[0] & 0xF0 == 0x90 and m[0] & 0x0F == KEYS and m[2]), None)
    ons = [when for when, m in arrived if m[0] & 0xF0 == 0x90 and m[0] & 0x0F == 0 and len(m) > 2 and m[2]]
    report.answer_notes = len(ons)
    if first is None:
        return
    for when in ons:
        off = (when - first) / step
        ms = abs(off - round(off)) * step * 1e3
        if ms > tolerance_ms:
            report.off_grid.append((round(when - first, 3), round(ms, 2)))
    held = out.count("held livecomp")
    report.explained_off_grid = min(len(report.off_grid), held * 8)   # a hold late by a few notes at most


def _check_sounding(report: Report, arrived) -> None:
    sounding: dict = {}
    for _, m in arrived:
        if not m or m[0] & 0x0F != 0 or m[0] >= 0xF0:
            continue
        kind, key = m[0] & 0xF0, (m[0] & 0x0F, m[1] if len(m) > 1 else 0)
        if kind == 0x90 and m[2] > 0:
            sounding[key] = sounding.get(key, 0) + 1
        elif kind in (0x80, 0x90):
            sounding[key] = max(sounding.get(key, 0) - 1, 0)
        elif kind == 0xB0 and m[1] in (120, 123):
            sounding = {k: v for k, v in sounding.items() if k[0] != key[0]}
    report.sounding_after = {f"{c}:{p}": n for (c, p), n in sounding.items() if n}


def _check_recording(report: Report, record: str) -> None:
    try:
        mid = mido.MidiFile(record)
    except (OSError, ValueError, EOFError) as exc:
        report.recording_ok = False
        report.said["recording"] = str(exc)
        return
    report.recording_ok = True
    for part in mid.tracks[1:]:
        sounding: dict = {}
        for m in part:
            if m.type == "note_on" and m.velocity:
                sounding[(m.channel, m.note)] = sounding.get((m.channel, m.note), 0) + 1
            elif m.type in ("note_on", "note_off"):
                sounding[(m.channel, m.note)] = max(sounding.get((m.channel, m.note), 0) - 1, 0)
        report.recording_unended += sum(sounding.values())


def _memory(report: Report, samples) -> None:
    report.rss_mb = [(round(t, 1), round(m, 2)) for t, m, _ in samples]
    report.cpu_percent = [(round(b[0], 1), round(100 * (b[2] - a[2]) / (b[0] - a[0]), 1))
                          for a, b in zip(samples, samples[1:])]
    half = [(t, m) for t, m, _ in samples if t >= samples[-1][0] / 2] if samples else []
    if len(half) >= 2:
        times, mbs = np.array(half).T
        report.rss_growth_mb = round(float(mbs.max() - mbs[0]), 2)
        report.rss_slope_mb_per_hour = round(float(np.polyfit(times, mbs, 1)[0] * 3600), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--bpm", type=float, default=120.0)
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tolerance-ms", type=float, default=1.0)
    ap.add_argument("--json", help="also write the report here")
    args = ap.parse_args()
    if shutil.which("jackd") is None or not available():
        sys.exit("bench/soak.py needs jackd (apt-get install jackd2) and livecomp's JACK client "
                 "(a C compiler at install).")
    report = run(args.minutes, args.bpm, args.frames, args.seed, args.tolerance_ms)
    cpu = [c for _, c in report.cpu_percent]
    print(f"{args.minutes:g} minutes of `livecomp listen` through JACK (dummy, 48 kHz, {args.frames}-frame periods) "
          f"at {args.bpm:g} bpm, seed {args.seed}")
    print(f"{report.rounds} rounds: {report.calls} calls, {report.junk} junk messages, {report.reconnects} times the "
          f"keyboard unplugged and back; livecomp said {report.said}")
    print(f"answer notes: {report.answer_notes}, off the 16th grid by more than {args.tolerance_ms:g} ms: "
          f"{len(report.off_grid)} ({report.explained_off_grid} while the log said the machine held livecomp)"
          + (f", e.g. {report.off_grid[:5]}" if report.off_grid else ""))
    print(f"left sounding at the synth after Ctrl-C: {report.sounding_after or 'nothing'}; recording "
          f"{'reads' if report.recording_ok else 'DOES NOT READ'}, notes without an end: {report.recording_unended}")
    if report.rss_mb:
        print(f"RSS {report.rss_mb[0][1]:.1f} -> {report.rss_mb[-1][1]:.1f} MB; over the second half +"
              f"{report.rss_growth_mb:.2f} MB, slope {report.rss_slope_mb_per_hour:+.2f} MB/hour; CPU "
              f"{np.mean(cpu) if cpu else 0:.1f}% mean, {max(cpu) if cpu else 0:.1f}% at most (per {SAMPLE_S:g} s)")
    print(f"traceback: {'YES' if report.traceback else 'none'}; alive until Ctrl-C: {report.alive_until_stop}; "
          f"exit code {report.returncode}; JACK overruns reported: {report.overruns}")
    print("soak: " + ("passed" if report.ok(args.tolerance_ms) else "FAILED"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(asdict(report), f, indent=1)


if __name__ == "__main__":
    main()
