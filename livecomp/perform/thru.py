"""``--thru``: the musician's notes and pedal pass to the output port as they arrive, on their own
channel or one given, so a keyboard without a sound of its own is heard through livecomp's synth.

Called on the input port's thread, ahead of the step loop (nothing waits for a step). Every note
passed on is kept until its note-off, so the way out can end it: ``end`` sends the note-offs,
then ``midi.silence`` on each channel thru used, and from then on nothing more passes.
"""

from __future__ import annotations

import threading
from typing import Callable

from ..io import midi


class Thru:
    def __init__(self, send: Callable[[list[int]], None], channel: int | None = None):
        self._send = send
        self.channel = channel                    # None: each message on the channel it came on
        self._lock = threading.Lock()
        self._sounding: set[tuple[int, int]] = set()   # (channel, pitch) passed on and not yet ended
        self._channels: set[int] = set()
        self._ended = False

    def pass_on(self, message: list[int]) -> None:
        """A note or the sustain pedal goes straight to the output; anything else is not thru's."""
        if not (midi.is_note(message) or midi.is_control(message, midi.SUSTAIN)):
            return
        channel = self.channel if self.channel is not None else midi.channel(message)
        out = [midi.kind(message) | channel, *message[1:3]]
        with self._lock:
            if self._ended:
                return
            try:
                self._send(out)
            except Exception:
                return                            # a lost output: the port says so and comes back
            self._channels.add(channel)
            if midi.is_note_on(out):
                self._sounding.add((channel, out[1]))
            elif midi.is_note(out):
                self._sounding.discard((channel, out[1]))

    def end(self) -> None:
        """Note-off for every note passed on and not yet ended, then silence on each channel used;
        nothing passes after this."""
        with self._lock:
            self._ended = True
            ending = [midi.note_off(channel, pitch) for channel, pitch in sorted(self._sounding)]
            for channel in sorted(self._channels):
                ending += midi.silence(channel)
            for message in ending:
                try:
                    self._send(message)
                except Exception:                 # a lost port: nothing more can be ended there
                    break
            self._sounding.clear()
