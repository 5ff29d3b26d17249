"""How late livecomp's sends are, and how much CPU it uses, on real JACK ports.

Starts a JACK server of its own (dummy driver, 48 kHz, 16-frame periods: 0.33 ms), keeps the
other core busy with a spinning process, and runs `livecomp listen` at 200 bpm: a musician
plays quavers for --listen-s seconds (livecomp listens, encoding every step), then stops, and
livecomp answers for --minutes minutes. Prints livecomp's own lateness figures for every
scheduled send (p50, p99, max: how long after its time each message left livecomp, or with
livecomp's JACK client was handed to it), where each message landed in JACK's frames against
the call's 16th grid (read by a JACK client of the benchmark's own that hears the keyboard and
livecomp and stamps each message with its frame), and livecomp's CPU use (user + system time
over wall time, from /proc) while listening and while answering.

    python bench/timing.py                 # the figures in docs/figures.md: a 10-minute answer
    python bench/timing.py --minutes 1     # a quicker look
    python bench/timing.py --frames 256    # a common live setting (5.3 ms periods)
    python bench/timing.py --frames 1024 --client rtmidi   # PipeWire's default period, through python-rtmidi
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from livecomp.io import jackclient  # noqa: E402
from livecomp.io.rtmidiport import load_rtmidi  # noqa: E402

from jack_server import frame_port, jack_virtual_port, start, wait_until  # noqa: E402

rtmidi = load_rtmidi()                     # through the system libjack, as livecomp uses it

TICKS = os.sysconf("SC_CLK_TCK")
# the benchmark's clock: JACK's frames as seconds, as livecomp keeps time with its own JACK client
# (the machine's clock until one of its clients opens, and where it was not built)
now = jackclient.FRAME_TIME.now


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS          # utime + stime


class FrameWatch:
    """JACK's frame clock against the machine's, read every millisecond by a thread of its own:
    how fast the frames went (a dummy driver on a busy machine falls behind, then runs the
    periods it owes at once) and how far they jumped ahead of the machine's clock between two
    readings. livecomp hands each message over on these frames; a jump past its lead makes a
    hand-over late however promptly its sending thread ran."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._running:
            self.samples.append((time.perf_counter(), now()))
            time.sleep(0.001)

    def stop(self) -> None:
        self._running = False
        self._thread.join()

    def between(self, start: float, end: float) -> tuple[float, float, int]:
        """(frames' speed against the machine's clock, the largest jump ahead in seconds, jumps of
        10 ms or more) over the readings whose frame time lies in [start, end)."""
        got = np.array([(p, f) for p, f in self.samples if start <= f < end])
        if len(got) < 2:
            return float("nan"), float("nan"), 0
        ahead = np.diff(got[:, 1]) - np.diff(got[:, 0])
        speed = (got[-1, 1] - got[0, 1]) / (got[-1, 0] - got[0, 0])
        return float(speed), float(ahead.max()), int((ahead >= 0.010).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the answer")
    ap.add_argument("--listen-s", type=float, default=30.0, help="how long the musician plays first")
    ap.add_argument("--bpm", type=float, default=200.0)
    ap.add_argument("--model", default="basic")
    ap.add_argument("--frames", type=int, default=16, help="JACK period in frames at 48 kHz (16: 0.33 ms)")
    ap.add_argument("--no-load", action="store_true", help="leave the other core idle")
    ap.add_argument("--client", choices=("livecomp", "rtmidi"), default="livecomp",
                    help="livecomp's JACK client, or python-rtmidi (as where that was not built)")
    args = ap.parse_args()
    if shutil.which("jackd") is None:
        sys.exit("bench/timing.py needs jackd (apt-get install jackd2).")

    jackd, env, patchbay = start("bench", args.frames)
    busy = None if args.no_load else subprocess.Popen([sys.executable, "-c", "while True: pass"])
    listen = None
    try:
        step = 60 / args.bpm / 4
        bars = max(int(round(args.minutes * args.bpm / 4)), 1)
        listen = subprocess.Popen([sys.executable, "-m", "livecomp.cli", "listen", "--api", "jack",
                                   "--in", "virtual:bench-in", "--out", "virtual:bench-out", "--model", args.model,
                                   "--bpm", f"{args.bpm:g}", "--bars", str(bars), "--max-call-bars", "256",
                                   "--silence-beats", "1", "--seed", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**env, "LIVECOMP_JACK_CLIENT": args.client})
        keys = jack_virtual_port(rtmidi.MidiOut, "bench-player", "keys")
        framed = jackclient.available()
        if framed:
            synth = frame_port("bench-synth", "input", "sound", patchbay.ports)
        else:
            synth = jack_virtual_port(rtmidi.MidiIn, "bench-synth", "sound")
        heard: list[tuple[float, list[int]]] = []           # (frame as seconds, message) at the synth

        def drain(wait: float = 0.0) -> None:
            if not framed:
                while synth.get_message():
                    pass
                return
            got = synth.read(wait or 0.001)
            while got is not None:
                heard.append((got[1], got[0]))
                got = synth.read(0.001)
        for line in listen.stdout:                               # its ports are open and checked
            if line.startswith("listening on"):
                break
        else:
            sys.exit("livecomp listen ended before it listened")
        watch = FrameWatch() if framed else None
        for a, b in (("bench-player:keys", "livecomp-in:bench-in"), ("livecomp-out:bench-out", "bench-synth:sound"),
                     ("bench-player:keys", "bench-synth:sound")):
            if not patchbay.connect(a, b):
                sys.exit(f"cannot connect {a} to {b}")
        time.sleep(0.5)

        arpeggio = [60, 64, 67, 72, 67, 64]
        t0 = now() + 0.05
        n = int(args.listen_s / (2 * step))
        cpu0 = None
        for i in range(n):                                       # quavers, a 16th long
            wait_until(t0 + 2 * i * step, now=now)
            keys.send_message([0x90, arpeggio[i % len(arpeggio)], 80])
            if i == 0:
                cpu0, wall0 = cpu_seconds(listen.pid), time.perf_counter()
            wait_until(t0 + (2 * i + 1) * step, now=now)
            keys.send_message([0x80, arpeggio[i % len(arpeggio)], 0])
            drain()
        listening = (cpu_seconds(listen.pid) - cpu0) / (time.perf_counter() - wall0)
        call_end = t0 + 2 * n * step
        answer_start = call_end + 4 * step + 16 * step        # a beat of silence, then the next bar line at most
        wait_until(answer_start, now=now)
        cpu1, wall1 = cpu_seconds(listen.pid), time.perf_counter()
        answer_end = answer_start + bars * 16 * step - 16 * step
        while now() < answer_end:
            if not framed:
                time.sleep(0.5)
            drain(0.5)
        answering = (cpu_seconds(listen.pid) - cpu1) / (time.perf_counter() - wall1)
        if watch is not None:
            watch.stop()
        stopped = now()                                          # what follows is the way out's, off the grid
        listen.send_signal(15)
        out = listen.communicate(timeout=30)[0]
        drain()
        keys.delete()
        synth.delete()
        patchbay.close()
    finally:
        for proc in (listen, busy, jackd):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait()
    late = re.search(r"(\d+) messages sent, lateness p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms", out)
    if late is None:
        sys.exit(out)
    sent, p50, p99, worst = int(late[1]), float(late[2]), float(late[3]), float(late[4])
    load = "idle" if args.no_load else "busy (a spinning process)"
    print(f"livecomp listen ({'python-rtmidi' if args.client == 'rtmidi' else 'its own JACK client'}), "
          f"model {args.model}, {args.bpm:g} bpm, JACK dummy 48 kHz / {args.frames} frames "
          f"({1000 * args.frames / 48000:.2f} ms), other core {load}")
    print(f"answer: {bars} bars ({args.minutes:g} min), {sent} messages sent")
    print(f"lateness of scheduled sends{' (hand-overs)' if framed and args.client != 'rtmidi' else ''}: p50 {p50:.3f} "
          f"ms, p99 {p99:.3f} ms, max {worst:.3f} ms "
          f"(target p99 <= 0.5 ms, max <= 2 ms: {'met' if p99 <= 0.5 and worst <= 2 else 'MISSED'})")
    if framed:
        first = next(t for t, m in heard if m[0] == 0x90)                    # the keyboard's first note: beat 1
        played = np.array([t for t, m in heard if len(m) == 3 and m[0] & 0xF0 in (0x80, 0x90)
                           and call_end <= t < stopped])
        steps = (played - first) / step
        off = np.abs(steps - np.round(steps)) * step * 1e3
        placed = re.search(r"JACK: (\d+) written at their frames, (\d+) after theirs \(by ([\d.]+) ms", out)
        print(f"in JACK's frames, {len(off)} note messages against the call's 16th grid: p50 "
              f"{np.percentile(off, 50):.3f} "
              f"ms, p99 {np.percentile(off, 99):.3f} ms, max {off.max():.3f} ms"
              + (f"; livecomp's client wrote {placed[2]} of {placed[1]} after their frames (by {placed[3]} ms at most)"
                 if placed else ""))
        speed, jump, jumps = watch.between(answer_start, answer_end)
        print(f"JACK's frames against the machine's clock while answering: {100 * speed:.1f}% of its speed, "
              f"ahead by up to {jump * 1e3:.1f} ms at once ({jumps} jumps of 10 ms or more); livecomp's hand-overs "
              f"are timed on these frames, a period and {1e3 * jackclient.LEAD_MARGIN_S:.0f} ms ahead")
    else:
        print("JACK through python-rtmidi (livecomp's own client was not built): frames not read")
    print(f"CPU (one core = 100%): listening {100 * listening:.1f}%, answering {100 * answering:.1f}% "
          f"(target < 5%: {'met' if max(listening, answering) < 0.05 else 'MISSED'})")


if __name__ == "__main__":
    main()
