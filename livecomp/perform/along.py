"""--mode duet: livecomp plays along with the musician step by step, in a part of its own.

The model hears both parts and writes its own next step as each step closes: of the
``candidates`` steps sampled at once, the first in the key of the musician's last bars that
makes no cluster of 3 semitones, and on a beat while the musician plays, one that sounds there
(``CallStyle.choose_step``). Livecomp's part lies outside the register of the musician's latest
beat (below a tune, above a bass), kept through the musician's rests.
"""

from __future__ import annotations

import numpy as np

from ..music.frames import Event, NoteTracker
from ..music.musicality import CallStyle
from ..music.roll import N_KEYS, OFF, STRUCK

DUET_MARGIN = 2          # livecomp leaves the musician's register of the last beat, and this many keys each side
DUET_REST_BARS = 2       # livecomp stops when the musician has been silent this long, and joins again after
MIDDLE_C = 60 - 21       # key index: a musician above it is accompanied below, one under it above


class PlayAlong:
    """Livecomp's part in --mode duet, for the ``Performer`` it plays in (``step`` reads and moves
    the performer's state, counts and random stream)."""

    def __init__(self):
        self.tracker: NoteTracker | None = None     # livecomp's sounding notes, while it plays along
        self.next: np.ndarray | None = None         # the step it plays next
        self.style: CallStyle | None = None         # the musician's last bars
        self.quiet = 0                               # steps the musician has been silent while livecomp plays along
        self.keys: tuple | None = None              # (lowest key, highest, above middle C?) of the musician's
                                                    # latest beat

    @property
    def playing(self) -> bool:
        return self.tracker is not None

    def leave(self) -> None:
        """Stop playing along (a control ended it); livecomp joins afresh when the musician plays."""
        self.tracker = self.next = None

    def step(self, p, n: int, frame: np.ndarray) -> list[Event]:
        """Step n of performer ``p`` has closed with the musician's ``frame``: livecomp's events."""
        if self.tracker is None:
            if not frame.any():
                return []                                   # it joins when the musician starts
            if p.muted:                                  # heard, not played along with
                p.state = p.engine.advance(frame[None, None], p.state)
                return []
            self.tracker = NoteTracker(p._dynamics())
            p.answers += 1
            p.answer_notes = 0
            p.joins.append(n + 1)
            self.quiet = 0
        mine = self.next if self.next is not None else np.zeros(N_KEYS, np.uint8)
        both = np.maximum(frame, mine)
        p.state = p.engine.advance(both[None, None], p.state)
        self.quiet = 0 if not p.heard.silent() else self.quiet + 1
        if self.quiet >= DUET_REST_BARS * p.steps_per_bar:   # the musician has stopped: so does
            events = self.tracker.close(n + 1)                   # livecomp, and joins the next time
            self.tracker = self.next = None
            return events
        self.tracker.dynamics = p._dynamics()
        frames, _, _ = p.engine.bar(p.state, candidates=p.candidates,
                                       temperature=p.cfg.temperature, seed=p.rng, steps=1)
        steps = frames[:, 0].astype(np.uint8)                  # (K, 88)
        steps[:, frame > OFF] = OFF                            # leave the musician's keys to the musician
        steps[:, mine == OFF] = np.where(steps[:, mine == OFF] == STRUCK, STRUCK, OFF)   # a note held on that
        # livecomp is not holding is the musician's, ringing on in the model's ears: not livecomp's to strike
        heard = np.stack(list(p.frames)[-p.steps_per_beat:]) > OFF
        if heard.any():                                       # the model writes the whole texture: the part
            keys = np.flatnonzero(heard.any(0))               # in the musician's register is the musician's,
            self.keys = (int(keys[0]), int(keys[-1]), keys.mean() >= MIDDLE_C)
        if self.keys is not None:                       # and livecomp accompanies below a tune, above a
            low, high, tune = self.keys                 # bass, through the musician's rests too
            if tune:
                steps[:, max(low - DUET_MARGIN, 0):] = OFF
            else:
                steps[:, :high + DUET_MARGIN + 1] = OFF
        if (n + 1) % p.steps_per_bar == 0 or self.style is None:   # the musician's last bars, once a bar
            heard = np.stack(p.frames)
            self.style = CallStyle.of(heard, p.steps_per_bar, n + 1 - len(heard))
        on_beat = (n + 1) % p.steps_per_beat == 0 and heard.any()      # a beat of the musician's phrase
        nxt = steps[self.style.choose_step(steps, frame > OFF, sound=on_beat)]
        self.next = nxt
        events = self.tracker.feed(nxt[None], n + 1)
        p.answer_notes += sum(e.kind == "on" for e in events)
        return events
