"""How often JACK loses the wake-up of a client livecomp opens, and whether every phrase is
still heard.

Starts a JACK server of its own (dummy driver, 48 kHz, --frames per period) and, --sessions
times, a fresh `livecomp listen` while another program opens and closes JACK clients all along
(JACK's own `jack_lsp`, every 50 ms, the way a patchbay or a script polls). Each time, once
livecomp says it is listening, a keyboard client plays a bar of quavers into it and livecomp
records what it heard (--record). Prints how many of livecomp's clients it replaced because
this process did not hold their wake-up (each one would otherwise have heard nothing, or only
what another client of livecomp's happened to wake it for), and in how many sessions a message
of the phrase went unheard.

    python bench/restarts.py                 # 40 sessions at 256-frame periods (5.3 ms)
    python bench/restarts.py --frames 16     # at 0.33 ms periods
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import mido  # noqa: E402

from livecomp.io.jack import JackPatchbay  # noqa: E402
from livecomp.io.rtmidiport import load_rtmidi  # noqa: E402

from jack_server import jack_virtual_port, start, wait_until  # noqa: E402

rtmidi = load_rtmidi()                     # through the system libjack, as livecomp uses it

PHRASE = [60, 64, 67, 72, 67, 64, 60, 55]              # quavers, each a 16th long


def session(env: dict, patchbay: JackPatchbay, keys, record: str, bpm: float) -> tuple[int, int, str]:
    """One fresh livecomp: (messages of the phrase it heard, clients it replaced, its output)."""
    listen = subprocess.Popen([sys.executable, "-m", "livecomp.cli", "listen", "--api", "jack",
                               "--in", "virtual:restarts-in", "--out", "virtual:restarts-out", "--model", "basic",
                               "--bpm", f"{bpm:g}", "--bars", "1", "--silence-beats", "1", "--record", record],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in listen.stdout:
        lines.append(line)
        if line.startswith("listening on"):
            break
    else:
        return 0, 0, "".join(lines)
    if not patchbay.connect("restarts-player:keys", "livecomp-in:restarts-in"):
        listen.terminate()
        return 0, 0, "".join(lines) + listen.communicate()[0]
    time.sleep(0.3)
    step = 60 / bpm / 4
    t0 = time.perf_counter() + 0.02
    for i, pitch in enumerate(PHRASE):
        wait_until(t0 + 2 * i * step)
        keys.send_message([0x90, pitch, 90])
        wait_until(t0 + (2 * i + 1) * step)
        keys.send_message([0x80, pitch, 0])
    time.sleep(0.3)
    listen.terminate()
    out = "".join(lines) + listen.communicate(timeout=30)[0]
    while patchbay.ports(outputs=True, pattern="^livecomp-out.*:restarts-out$"):     # gone before the next
        time.sleep(0.05)
    heard = [m for m in mido.MidiFile(record).tracks[1] if m.type in ("note_on", "note_off")]
    return len(heard), out.count("JACK would not wake"), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=40)
    ap.add_argument("--frames", type=int, default=256, help="JACK period in frames at 48 kHz (256: 5.3 ms)")
    ap.add_argument("--bpm", type=float, default=240.0)
    args = ap.parse_args()
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        sys.exit("bench/restarts.py needs jackd and jack_lsp (apt-get install jackd2).")

    jackd, env, patchbay = start("restarts", args.frames)
    polling = threading.Event()

    def poll() -> None:                                  # another program's clients, coming and going
        while not polling.wait(0.05):
            try:
                subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=10)
            except subprocess.TimeoutExpired:
                pass

    try:
        keys = jack_virtual_port(rtmidi.MidiOut, "restarts-player", "keys")
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        replaced, short, started = 0, [], time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.sessions):
                heard, swaps, out = session(env, patchbay, keys, os.path.join(tmp, f"{i}.mid"), args.bpm)
                replaced += swaps
                if heard < 2 * len(PHRASE):
                    short.append(i)
                    print(f"session {i}: heard {heard} of {2 * len(PHRASE)} messages\n{out}", file=sys.stderr)
        polling.set()
        poller.join()
        keys.delete()
        patchbay.close()
    finally:
        jackd.terminate()
        jackd.wait()
    print(f"{args.sessions} fresh `livecomp listen` sessions on JACK dummy 48 kHz / {args.frames} frames "
          f"({1000 * args.frames / 48000:.2f} ms), jack_lsp every 50 ms beside them "
          f"({time.monotonic() - started:.0f} s)")
    print(f"clients replaced because this process did not hold their wake-up: {replaced}")
    print(f"sessions in which a message of the {len(PHRASE)}-note phrase went unheard: {len(short)} of {args.sessions}"
          + (f" ({', '.join(map(str, short))})" if short else ""))


if __name__ == "__main__":
    main()
