"""A ``livecomp listen`` session from start to exit: ports opened in an order that leaves nothing
behind, the threads, the signals, and the way out.

The order matters. Ctrl-C and SIGTERM are blocked in every thread made while the session opens
(the MIDI system's, livecomp's) and taken by the main thread alone: taken by a JACK client's
process thread, a signal breaks its wait, the client stops running, and the note-offs queued
for it on the way out never leave. The outputs open before the input, so nothing heard is
answered into nothing, and close before it at exit: they drain their last note-offs while the
input client still runs (a client whose JACK wake-up this process lost runs only when another
of its clients is woken).
"""

from __future__ import annotations

import gc
import queue
import signal
import sys
import threading
import time
from typing import Callable

from ..io.backends import open_port
from ..model.engine import Engine
from ..timing.timeline import WallTimeline
from .loop import Live, LiveConfig
from .performer import PerformerConfig
from .view import AREA

STOPS = {signal.SIGINT, signal.SIGTERM}
LEARN_SETTLE_S = 0.5           # after --learn's last question, what arrives is still learning's


class Session:
    """Open with ``Session(...)`` (raises ``PortError`` with nothing left open), then ``run()``
    until Ctrl-C, SIGTERM or an error; ``summary()`` says how it went."""

    def __init__(self, engine: Engine, performer: PerformerConfig, cfg: LiveConfig, inp: str, out: str, api: str,
                 click_out: str | None = None, log: Callable[[str], None] = print, loader=None):
        """``loader(name)``: an engine for a model chosen on the keyboard (``Live``)."""
        self.api, self.log = api, log
        self.live: Live | None = None
        self.output = self.clicks = self.source = None
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS) if hasattr(signal, "pthread_sigmask") else None
        self._mask = mask
        try:
            self.output = open_port(out, "output", api, on_change=log)
            if click_out is not None:
                self.clicks = open_port(click_out, "output", api, on_change=log, client="livecomp-click")
            self.live = Live(engine, performer, cfg, self.output, log=log, click_send=self.clicks, loader=loader,
                             timeline=WallTimeline(self.output.now))
            # thru: what is heard is played at once, as the musician hears it
            self.source = open_port(inp, "input", api, on_message=self.live.heard, on_change=log,
                                    immediate=cfg.thru)
        except BaseException:
            if self.live is not None:
                self.live.scheduler.panic()
            self._close_ports()
            self._unblock()
            raise

    def _unblock(self) -> None:
        if self._mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            self._mask = None

    def _close_ports(self) -> None:
        for port in (self.output, self.clicks, self.source):
            if port is not None:
                port.close()

    def learn(self, ask: Callable[[str], None], wait_s: float) -> dict[str, int]:
        """``--learn``, on the session's own input before it listens (``controls.learn``): the
        port stays open and connected for the session. Ctrl-C here closes the ports and ends."""
        from .controls import learn

        def take(timeout: float) -> list[int] | None:
            try:
                return self.live.timeline.get(timeout)[1]
            except queue.Empty:
                return None

        self._unblock()                 # the main thread takes Ctrl-C; the port threads still do not
        try:
            learned = learn(take, ask, wait_s)
            settle = time.monotonic() + LEARN_SETTLE_S    # what the last control sent on (a second press,
            while (left := settle - time.monotonic()) > 0:  # a knob still turning) is learning's, not the session's
                take(left)
            while take(0.0) is not None:
                pass
            return learned
        except KeyboardInterrupt:
            self.close()
            raise

    def close(self) -> None:
        """Close the ports of a session that will not run (safe to call more than once)."""
        self._close_ports()
        self._unblock()

    def run(self) -> None:
        """Listen and answer on a thread of its own until stopped; every note ends on the way
        out, and the ports close."""
        live = self.live

        def stop(signum, frame):
            live.stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        if hasattr(signal, "SIGWINCH"):
            signal.signal(signal.SIGWINCH, AREA.redraw)       # the status area fits a resized terminal
        sys.setswitchinterval(0.0002)   # the MIDI input thread gets the interpreter lock fast
        # A full collection walks every object the interpreter tracks (some 33,000 once onnxruntime
        # and the model are loaded: 6 ms here), holding the lock, so a send due meanwhile goes
        # late. What exists by now lives as long as the session: out of the collector's sight.
        gc.collect()
        gc.freeze()
        engine = live.engine
        transport = self.output.transport()
        if transport:
            self.log(transport)
        self.log(f"listening on {self.source.connected_to!r} ({self.api}), answering on "
                 f"{self.output.connected_to!r} channel {live.cfg.channel + 1}; {engine.name} ({engine.architecture}) "
                 f"on {engine.provider_used}" + ("; real-time priority" if live.scheduler.realtime else "")
                 + "; Ctrl-C to stop")
        loop = threading.Thread(target=live.run, name="livecomp-steps")
        loop.start()
        self._unblock()                 # the main thread takes the signals
        try:
            while loop.is_alive():
                loop.join(timeout=0.2)
        finally:
            live.stopping.set()
            loop.join()
            self._close_ports()

    def summary(self) -> str:
        live = self.live
        late = live.scheduler.lateness_ms()
        placed = getattr(self.output, "frame_stats", lambda: None)()
        rate = self.output.rate if placed else 1
        answers = live.performer.answers
        return (f"stopped: {answers} answer{'s' * (answers != 1)}, {late['sent']} messages sent, lateness p50 "
                f"{late['p50']:.3f} ms, p99 {late['p99']:.3f} ms, max {late['max']:.3f} ms"
                + (f"; JACK: {placed['written']} written at their frames, {placed['late']} after theirs "
                   f"(by {placed['max_late_frames'] / rate * 1e3:.2f} ms at most)" if placed else "")
                + (f"; {live.follower.ticks} clock ticks, {live.follower.lost} found lost on the way"
                   if live.follower is not None and live.cfg.sync == "clock" else "")
                + (f"; recorded {live.recorded}" if live.recorded else ""))
