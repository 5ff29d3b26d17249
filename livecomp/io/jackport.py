"""A JACK port: messages timed by JACK, and a client this process is sure JACK will wake.

Where livecomp's own JACK client was built (``jackclient``), the port is one: what is heard is
timed by its frame, and what is sent is handed over ``lead_s`` ahead and written at its frame,
so neither moves by the period JACK moves MIDI in. Elsewhere it is python-rtmidi over the
machine's libjack (``livecomp.io.jack``), and what follows is about that client.

A JACK input is read from rtmidi's queue by a thread of its own rather than through a
callback: rtmidi calls back from JACK's process thread, which would then wait there for the
interpreter lock, and a JACK client that overruns its period loses what arrived in it. Its
arrival times are JACK's own (rtmidi gives the monotonic microseconds between messages),
placed on ``perf_counter`` by pings of its own as the port opens, before anyone plays (see
``_read`` and ``_ping``).

A JACK port is handed out only once this process holds its client's wake-up
(``jack_wakeup_mapped``), and for ``GUARD_S`` after each client opens a thread keeps checking;
a client JACK would not wake is replaced by a new one with the port's connections.
"""

from __future__ import annotations

import itertools
import math
import time

from . import jackclient, midi
from .jack import CLIENT, JackError, JackPatchbay, jack_wakeup_mapped, literal
from .ports import PortError
from .rtmidiport import Port, _client, _close

POLL_S = 0.005              # JACK input: how often the queue is read (times come from JACK) ...
IMMEDIATE_POLL_S = 0.001    # ... for an input played through as heard (``immediate``: --thru)
POLL_FIRST_S = 0.0005       # ... while its first messages place
FIRST = 20                  # ... JACK's clock on ours: that many (livecomp pings its own input at the start)
FIRST_S = 2.0               # ... for at most this long after the client opened
SETTLE_S = 0.1              # how long a new client waits before its wake-up is first checked
GUARD_S = 3.0               # how long after opening a client livecomp keeps checking it ...
GUARD_CHECK_S = 0.05        # ... and how often
GUARD_TRIES = 10            # ... and how many times it opens a new client before giving up
READ_WAIT_S = 0.02          # livecomp's client: the longest a read waits (closing waits for it)
PING = [midi.SYSEX, 0x7D, 0x6C, 0x63]   # + 2 bytes of sequence number + end: SysEx (non-commercial id)
_ping_numbers = itertools.count()


def _add_counts(total: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    """``counts`` added into ``total`` (the largest kept of a ``max_`` one); returns ``total``."""
    for key, value in counts.items():
        total[key] = max(total.get(key, 0), value) if key.startswith("max") else total.get(key, 0) + value
    return total


class JackPort(Port):
    """A JACK port; an input is read from a queue by a thread of its own, not called back."""

    def _prepare(self) -> None:
        self.poll_s = IMMEDIATE_POLL_S if self.immediate else POLL_S
        self._pings: dict[int, float] = {}              # ping number -> when it was sent
        self._counted: dict[str, int] = {}              # livecomp's closed clients' counts
        try:
            patchbay = JackPatchbay.shared()
        except JackError:
            patchbay = None                             # ports still work; no guard, no restored connections
        self._frames = patchbay is not None and jackclient.available()    # livecomp's own client
        self.rate = patchbay.rate() if patchbay is not None else 0                 # frames per second
        if self._frames:
            self.now = jackclient.FRAME_TIME.now     # what is heard and sent is timed in JACK's frames
        self._patchbay = patchbay

    def _first_opened(self) -> None:
        if self._patchbay is not None:
            self._settle()

    def _start_threads(self) -> None:
        if self.direction == "input":
            self._start(self._read_frames if self._frames else self._read, "read")
            if self._patchbay is not None and not self._frames:
                self._ping()        # now, before anyone plays: see ``_ping``
        if self._patchbay is not None:
            self._start(self._guard, "guard")

    def _new_client(self):
        if self._frames:
            return jackclient.FrameClient(self.client, self.direction, self._patchbay.ports)
        if self.direction == "output":
            return super()._new_client()
        # nothing ignored: rtmidi's time differences skip over the messages it drops
        midi = _client("MidiIn", self.api, self.client, queue_size_limit=8192)
        midi.ignore_types(sysex=False, timing=False, active_sense=False)
        return midi

    def _listed(self):
        if self._patchbay is None:
            return super()._listed()
        return (lambda: self._patchbay.ports(outputs=self.direction == "input")), None

    def _release(self) -> None:
        if self._patchbay is not None:
            self._patchbay = None
            JackPatchbay.release()

    # -- livecomp's own client ----------------------------------------------------------------

    def _read_frames(self) -> None:
        """JACK input through livecomp's client: each message comes with the time of its frame."""
        while not self._closing.is_set():
            client = self._midi
            got = client.read(READ_WAIT_S) if client is not None else None
            if got is not None:
                self._deliver(*got)
            elif client is None:
                self._closing.wait(self.poll_s)

    def send(self, message: list[int], at: float | None = None) -> None:
        """Send ``message`` at once, or through livecomp's client at ``at`` (``jackclient.FRAME_TIME``
        seconds), handed over ``lead_s`` before."""
        with self._lock:
            if self._midi is None:
                return
            if self._frames:
                self._midi.send_message(message, at)
            else:
                self._midi.send_message(message)

    @property
    def lead_s(self) -> float:
        client = self._midi
        return client.lead_s if self._frames and client is not None else 0.0

    def drop(self) -> None:
        client = self._midi
        if self._frames and client is not None:
            client.drop()

    def transport(self) -> str | None:
        """JACK's period, and what it adds: nothing with livecomp's client, up to a period
        with python-rtmidi."""
        client = self._midi
        if self._patchbay is None or client is None:
            return None
        period = self._patchbay.period_s()
        frames = round(period * self._patchbay.rate())
        text = f"JACK runs {frames}-frame periods ({period * 1e3:.1f} ms)"
        if not self._frames:
            return text + ("; python-rtmidi moves MIDI at a period's start, so a message can be off its "
                           f"time by up to {period * 1e3:.1f} ms (livecomp's own JACK client was not built)")
        latency = client.latency_s()
        return text + (f"; each message leaves at its own frame, handed over {client.lead_s * 1e3:.1f} ms ahead"
                       + (f"; the {self.direction} port's latency is {latency * 1e3:.1f} ms" if latency else ""))

    def frame_stats(self) -> dict[str, int] | None:
        """livecomp's clients' counts (``FrameClient.stats``) over the port's life, closed ones
        too; None with python-rtmidi."""
        if not self._frames:
            return None
        client = self._midi
        return _add_counts(dict(self._counted), client.stats() if client is not None else {})

    def _dispose(self, midi) -> None:
        if self._frames:
            _add_counts(self._counted, midi.stats())
        midi.close_port()                               # read from a queue: no callback to stop first
        midi.delete()

    # -- python-rtmidi ------------------------------------------------------------------------

    def _read(self) -> None:
        """JACK input: read rtmidi's queue and time each message on JACK's clock.

        JACK's clock and ``perf_counter`` are both the monotonic clock, but rtmidi gives only
        the time between messages, so their sum is placed on ours by a constant found from two
        sides. A message was stamped no later than it was read: the smallest gap yet seen
        between a message's sum and the moment it was read is one bound. A ping of our own was
        stamped no earlier than it was sent, and, in a cycle on time, within one JACK period
        after: the latest send less its sum, plus a period, is the other. The first ``FIRST``
        messages of a client (the guard's pings, before anyone plays) are read every
        ``POLL_FIRST_S``, after them every ``poll_s`` (a message read later is still timed by
        JACK). Read alone, a busy interpreter (another thread holding its lock for a few ms)
        would place every note of the session that much late."""
        period = self._patchbay.period_s() if self._patchbay is not None else 0.0
        midi, clock, read, sent, seen, opened = None, 0.0, math.inf, -math.inf, 0, 0.0
        while not self._closing.is_set():
            with self._lock:
                if self._midi is not midi:              # a new client: its clock starts again
                    midi, clock, read, sent, seen, opened = self._midi, 0.0, math.inf, -math.inf, 0, self._opened_at
                got = midi.get_message() if midi is not None else None
            if got is None:
                fast = seen < FIRST and time.perf_counter() - opened < FIRST_S
                time.sleep(POLL_FIRST_S if fast else self.poll_s)
                continue
            message, delta = got
            clock += delta
            read = min(read, time.perf_counter() - clock)
            if len(message) == len(PING) + 3 and message[:len(PING)] == PING:
                when = self._pings.pop(message[-3] << 7 | message[-2], None)
                if when is not None:
                    sent = max(sent, when - clock)
            seen += 1
            self._deliver(message, clock + (min(read, sent + period) if sent > -math.inf else read))

    def _own_port(self) -> str | None:
        """Our port's full JACK name, when it can be told apart from another livecomp's."""
        pattern = f"^{literal(self.client)}(-[0-9]+)?:{literal(self.port_name)}$"
        found = self._patchbay.ports(outputs=self.direction == "output", pattern=pattern)
        return found[0] if len(found) == 1 else None

    def _settle(self) -> None:
        """Wait ``SETTLE_S`` for this process to hear of the clients that came and went while
        ours opened, then make sure it holds our client's wake-up, replacing the client until
        it does (at most ``GUARD_TRIES`` times)."""
        for _ in range(GUARD_TRIES):
            time.sleep(SETTLE_S)
            if jack_wakeup_mapped(self.client) is not False:
                return
            self._replace()

    def _guard(self) -> None:
        """JACK only: for ``GUARD_S`` after each client opens, check every ``GUARD_CHECK_S`` that
        this process holds its wake-up; two misses in a row and the client is replaced (up to
        ``GUARD_TRIES`` times). An input client first gets ``FIRST`` pings of our own, which
        place JACK's clock on ours before anyone plays."""
        misses, tries, pinged = 0, 0, self._midi       # the first client was pinged as the port opened
        while not self._closing.wait(GUARD_CHECK_S):
            midi, opened = self._midi, self._opened_at
            if midi is None or time.perf_counter() - opened > GUARD_S:
                misses = 0
                self._closing.wait(0.5)
                continue
            if self.direction == "input" and pinged is not midi and not self._frames:
                pinged = midi
                self._ping()
            if jack_wakeup_mapped(self.client) is not False:
                misses = 0
                continue
            misses += 1
            if misses >= 2 and tries < GUARD_TRIES:
                tries += 1
                misses = 0
                self._replace()

    def _ping(self) -> None:
        """Send ``FIRST`` numbered pings (SysEx, never played) to our own input, 5 ms apart,
        from a short-lived client of our own, each send's time kept for ``_read``.

        Done as the port opens, before ``listen`` says it listens: python-rtmidi holds the
        interpreter lock through each call into libjack, and opening or closing a client waits
        for the server, which on a busy machine has taken seconds. Done from the guard thread
        while the musician played, that stopped every thread of the session (the reader, the
        step loop) until it returned: a call heard 8 to 12 s late, or an answer bars late."""
        target = self._own_port()
        if target is None:
            return
        try:
            ping = _client("MidiOut", "jack", f"{CLIENT}-ping")
        except PortError:
            return
        try:
            names = ping.get_ports()
            if target not in names:
                return
            ping.open_port(names.index(target), name="ping")
            for _ in range(FIRST):
                if self._closing.wait(0.005):
                    break
                number = next(_ping_numbers) & 0x3FFF
                self._pings[number] = time.perf_counter()
                ping.send_message(PING + [number >> 7, number & 0x7F, midi.SYSEX_END])
            self._closing.wait(0.02)                    # the last ones leave before the client goes
        finally:
            _close(ping)

    def _replace(self) -> None:
        """Open a new client in place of ours, with our port's connections."""
        with self._swap:
            if self._midi is not None and not self._closing.is_set():
                self._replace_client()

    def _replace_client(self) -> None:
        target = self._own_port()
        others = self._patchbay.connections(target) if target is not None else []
        with self._lock:
            midi, self._midi = self._midi, None
        if midi is not None:
            self._dispose(midi)
        if not self._open():
            return
        target = self._own_port()
        restored = 0
        for other in others if target is not None else []:
            pair = (other, target) if self.direction == "input" else (target, other)
            restored += self._patchbay.connect(*pair)
        self.on_change(f"JACK would not wake the {self.direction} client; opened a new one "
                       f"({restored} connection{'s' * (restored != 1)} restored)")

