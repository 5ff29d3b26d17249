"""The co-performer's decisions, as pure logic on steps: what it heard, when to answer, what to play.

Nothing here reads a clock or a port. The live loop (``livecomp listen``) and the offline twin
(``livecomp duet``) feed the same ``Performer`` with what the musician played, each message
already placed on its grid step, and call ``step(n)`` once step n's window has closed (half a
step after the grid line, so a note played a little early or late still counts for its nearest
step). ``step`` returns the events to play, on grid steps; the caller turns steps into times.

Call and response: every heard step is folded into the model's state at once. When the musician
has been silent for ``silence_beats`` (a held key or a held pedal is not silence) after a call of
at least ``min_call_beats``, or sends the end-of-call controller, the answer is planned to start
on the next bar (or beat) line; half that silence right before a bar line is enough. A call that
reaches a phrase boundary (``phrase_bars`` bars from the bar line it began at; once a call has
been answered, as many bars as that call), plays into the last of those bars and strikes nothing
on the step before its end (nothing for a beat, for 2-bar phrases) is answered on the bar line
after it, with no empty bar. If the musician plays on across the line of such an answer (or of
one that half the silence brought), it stops after its first step and the call goes on. An
answer's first bar is sampled when the call ends, or a step before where it ends right before
the bar line the answer starts on, and each further bar as the one before starts, so no bar is
sampled in the half step before it is due. The answer continues the call, not the silence that
ended it (``answer_from``), and of the ``candidates`` bars sampled at once the one kept is the
first that goes no further from the call than real music does (``CallStyle.choose``; with
``choice="fit"`` the one that agrees best), unless the answer's bar brings back the call's bar
at its place in the phrase, as often as the composers' own next bars do (``form.Repeats``;
``repeat=False``: never). A model whose model.json names specialists (the default names
``folk``) hands the call to whichever of them and itself finds the call most likely, a
specialist only by a clear margin (``style_margin``), as the answer is sampled
(``follow_style``): a folk tune is answered by the model of folk tunes, which
then listens on until a call suits another better. Playing during an answer stops it
(``barge_in="stop"``) or is heard alongside it (``"continue"``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..io.midi import DRUMS, SUSTAIN, channel, is_control, is_note, is_note_on
from ..model.engine import Engine, State
from ..music.form import Repeats
from ..music.frames import Dynamics, Event, FrameBuilder, NoteTracker, likely_next
from ..music.musicality import CallStyle
from ..music.roll import N_KEYS, STRUCK, onsets_of
from .along import PlayAlong
from .config import PerformerConfig


@dataclass
class _Answer:
    start: int                         # first step of the answer
    end: int                           # step after its last
    state_before: State                # the model's state at ``start``
    style: CallStyle                   # what the call sounded like: candidates are chosen to fit it
    call_start: int                    # first step of the call it answers
    tentative: bool = False            # planned on the bar line a call reached (a phrase's end, or half
                                       # the silence): the musician may play on across it
    frames: list = field(default_factory=list)      # planned frames, bar by bar
    heard: dict = field(default_factory=dict)       # step -> frame heard during the answer
    state_after: State | None = None   # state after the planned frames
    tracker: NoteTracker | None = None
    repeats: Repeats | None = None     # which answer bars bring back the call's bar at their place in the phrase


class Performer:
    """Call and response with an exported model, on steps of a grid of ``steps_per_bar``."""

    def __init__(self, engine: Engine, steps_per_bar: int, steps_per_beat: int, config: PerformerConfig | None = None):
        self.engine = engine
        self.cfg = config or PerformerConfig()
        self.steps_per_bar = steps_per_bar
        self.steps_per_beat = steps_per_beat
        self.rng = np.random.default_rng(self.cfg.seed)
        self.form_rng = self.rng.spawn(1)[0]              # the repeat gate's draws, apart from the sampling's
        self.answers = 0
        self.planned: list[tuple[int, int]] = []           # (first step, step after the last) of each answer
        self.answered_by: list[str] = []                   # the model that answered each (a specialist, or this one)
        self.recent: deque[tuple[int, State]] = deque(maxlen=4 * steps_per_bar)   # (step, state at that line)
        self.muted = False                                 # listen, fold in, but answer nothing
        self.answer_notes = 0                              # notes planned for the latest answer so far
        self.joins: list[int] = []                         # --mode duet: the steps it joined the musician on
        self.last_call_bars: int | None = None             # bars of the last call answered (2 or more)
        self.frames: deque[np.ndarray] = deque(maxlen=4 * steps_per_bar)   # the last steps heard
        self.frames_heard = 0                              # steps heard so far (the last of them is in frames)
        self.followed: tuple[int, int] | None = None       # (first step, last sound) of the call last handed on
        self.home = engine                                 # the model chosen; its specialists may answer
        self.restart()

    def restart(self) -> None:
        """The music starts again elsewhere (a clock source's transport restarted or moved):
        forget the call and any answer and listen from the model's first state. The count of
        answers and the random stream go on."""
        self.heard = FrameBuilder(self.cfg.sustain)
        self.state = self.engine.initial_state()
        self.call_start: int | None = None
        self.last_sound = -1
        self.end_requested = False
        self.answer: _Answer | None = None
        self.foreseen: tuple | None = None                 # an answer's first bar, sampled a step early
        self.call: list[np.ndarray] = []                   # the frames of the call so far
        self.recent.clear()
        self.along = PlayAlong()                           # --mode duet: livecomp's part

    # -- what the musician played (already on grid steps) ------------------------------------

    def note_on(self, step: int, pitch: int, velocity: int) -> None:
        self.heard.note_on(step, pitch, velocity)

    def note_off(self, step: int, pitch: int) -> None:
        self.heard.note_off(step, pitch)

    def pedal(self, down: bool) -> None:
        self.heard.set_pedal(down)

    def end_of_call(self) -> None:
        self.end_requested = True

    def hear(self, step: int, message: list[int], end_cc: int | None = None) -> None:
        """One message the musician sent (raw bytes) on ``step``: a note, the sustain pedal, or
        ``end_cc`` (``--end-cc``: a controller at 64 or more ends the call at once). Anything
        else is not for the performer, nor are drum notes (channel 10), which the rolls leave out."""
        if is_note(message) and channel(message) == DRUMS:
            return
        if is_note_on(message):
            self.note_on(step, message[1], message[2])
        elif is_note(message):
            self.note_off(step, message[1])
        elif is_control(message, SUSTAIN):
            self.pedal(message[2] >= 64)
        elif end_cc is not None and is_control(message, end_cc) and message[2] >= 64:
            self.end_of_call()

    @property
    def candidates(self) -> int:
        """Bars sampled at once for each answer bar: as set, else the model's own count."""
        return self.cfg.candidates or self.engine.candidates

    @property
    def answering(self) -> bool:
        return self.answer is not None or self.along.playing

    def use(self, engine: Engine) -> None:
        """Play with another model from now on (between calls): its state is the last bars heard,
        folded in by it, so it answers the next call knowing what came before. Its own
        specialists are the models calls may be handed to from now on."""
        self.home = engine
        self._hand_to(engine)

    def _hand_to(self, engine: Engine) -> None:
        """``engine`` plays from now on, its state the last bars heard folded in step by step (the
        states at the recent grid lines kept, as listening keeps them)."""
        self.engine = engine
        self.recent.clear()
        self.state = engine.initial_state()
        if self.frames:
            frames = np.stack(self.frames).astype(np.int64)
            n = self.frames_heard - len(frames)                 # the step of the first frame kept
            for i, frame in enumerate(frames):
                self.state = engine.advance(frame[None, None], self.state)
                self.recent.append((n + i + 1, self.state))

    def _follow_style(self) -> None:
        """Before an answer is sampled: the model (this one or one of its specialists) that finds
        the call most likely answers it, a specialist only where it finds the call ``style_margin``
        nats more likely than the model itself does. Only specialists loaded by now take part
        (``listen`` loads them while it listens)."""
        styles = [self.home, *self.home.loaded_specialists()] if self.cfg.follow_style else [self.home]
        if len(styles) < 2 or self.call_start is None or self.followed == (self.call_start, self.last_sound):
            return
        self.followed = (self.call_start, self.last_sound)
        call = self.call[:self.last_sound - self.call_start + 1][-4 * self.steps_per_bar:]
        if not call:
            return
        frames = np.stack(call)
        scores = [e.call_log_likelihood(frames) for e in styles]
        scores[0] += self.cfg.style_margin                  # a specialist must explain the call clearly better
        best = styles[int(np.argmax(scores))]
        if best is not self.engine:
            self._hand_to(best)

    def drop(self, n: int) -> None:
        """Nothing more of what was playing after step n (a control ended it): an answer under
        way ends there, its state following what was played of it; one not yet begun is
        forgotten, and so is the call it answered; in duet mode livecomp joins afresh."""
        a = self.answer
        if a is not None and n >= a.start:
            self._finish(n)
        elif a is not None:
            self.answer, self.call_start = None, None
        self.along.leave()

    # -- one step ------------------------------------------------------------------------------

    def step(self, n: int) -> list[Event]:
        """Step n's window has closed: fold what was heard, decide, and return events to play."""
        frame = self.heard.frame(n)
        self.frames.append(frame)
        self.frames_heard = n + 1
        if self.cfg.mode == "duet":
            return self.along.step(self, n, frame)
        if self.answer is not None:
            return self._step_answering(n, frame)
        return self._step_listening(n, frame)

    def _step_listening(self, n: int, frame: np.ndarray) -> list[Event]:
        self.state = self.engine.advance(frame[None, None], self.state)
        self.recent.append((n + 1, self.state))
        if frame.any() or not self.heard.silent():
            self.last_sound = n
            if self.call_start is None:
                self.call_start = n
                self.call = []
        if self.call_start is None:
            return []
        self.call.append(frame)
        ends, phrase, early = self._call_ends(n, self.last_sound)
        if not ends:
            self._foresee(n)
            return []
        self.end_requested = False
        if self.muted:                                      # heard, not answered
            self.call_start = None
            return []
        return self._plan_answer(n, self.last_sound - self.call_start + 1, phrase, early)

    def _call_ends(self, n: int, last_sound: int, call: list | None = None) -> tuple[bool, int | None, bool]:
        """After step n (the call's frames in ``call``, default ``self.call``; its last sound at
        ``last_sound``): whether the call ended, on a phrase of how many bars, and early."""
        silence = n - last_sound
        long_enough = last_sound - self.call_start + 1 >= self.cfg.min_call_beats * self.steps_per_beat
        phrase = self._phrase_end(n, self.call if call is None else call)
        full = self.cfg.silence_beats * self.steps_per_beat
        at_line = (n + 1) % self.steps_per_bar == 0 and self.cfg.align == "bar"
        early = phrase is not None or (at_line and full / 2 <= silence < full)   # on this line, the call may go on
        ended = (silence >= full or self.end_requested or early
                 or n - self.call_start + 1 >= self.cfg.max_call_bars * self.steps_per_bar)
        return long_enough and ended, phrase, early

    def _foresee(self, n: int) -> None:
        """When the call may end with the next step, on the bar line right after it, sample the
        answer's first bar now, as if nothing new is struck in that step (``likely_next``): an
        answer decided half a step before the line has no time left to sample it. ``_bar`` takes
        it where the answer starts from this very state, and the random stream goes on as
        sampling it left it; otherwise as if it had never been sampled."""
        self.foreseen = None
        line = n + 2
        if line % self.steps_per_bar or self.muted or self.cfg.align != "bar" or self.cfg.answer_from != "call":
            return
        guess = likely_next(self.call)                      # the next step if nothing new is struck
        last = n + 1 if guess.any() or self.heard.pedal else self.last_sound
        if not self._call_ends(n + 1, last, self.call + [guess])[0]:
            return
        self._follow_style()
        start = last + 1 + (line - last - 1) % self.steps_per_bar    # as _answer_state finds it
        state = self.engine.advance(guess[None, None], self.state) if start == line else \
            next((s for step, s in self.recent if step == start), None)
        if state is not None:
            before = self.rng.bit_generator.state
            self.foreseen = (line, state, (self.engine, self.candidates, self.cfg.temperature), self._bar(state),
                             self.rng.bit_generator.state)
            self.rng.bit_generator.state = before

    def _bar(self, state: State, first: bool = False) -> tuple[np.ndarray, np.ndarray, State]:
        """An answer bar's candidates after ``state``: for the ``first``, the one ``_foresee``
        sampled for its line, from this very state with these settings; else sampled now."""
        foreseen, self.foreseen = self.foreseen, None
        if first and foreseen is not None and foreseen[0] == self.answer.start and foreseen[1].same(state) and \
                foreseen[2] == (self.engine, self.candidates, self.cfg.temperature):
            self.rng.bit_generator.state = foreseen[4]
            return foreseen[3]
        return self.engine.bar(state, candidates=self.candidates, temperature=self.cfg.temperature, seed=self.rng,
                               steps=self.steps_per_bar)

    def _phrase_end(self, n: int, call: list) -> int | None:
        """The call's length in bars when step n is the last of a phrase that comes to rest on the
        bar line after it (see the module's docstring), else None."""
        line = n + 1
        if line % self.steps_per_bar or self.cfg.align != "bar" or not self.cfg.phrase_bars:
            return None
        first = (self.call_start + self.steps_per_bar // 2) // self.steps_per_bar * self.steps_per_bar
        bars = (line - first) // self.steps_per_bar     # from the bar line nearest the call's first sound
        lengths = {self.last_call_bars} if self.last_call_bars else set(self.cfg.phrase_bars)   # the form, once heard
        if bars < 1 or bars not in lengths:
            return None
        rest = self.steps_per_beat if bars <= 2 else 1  # steps before the line with nothing struck
        tail = onsets_of(np.stack(call[-self.steps_per_bar - 1:])).any(1)[1:]   # the phrase's last bar
        if len(tail) < self.steps_per_bar or tail[-rest:].any() or not tail.any():
            return None                                 # played on to the line, or not played into its last bar
        return bars

    def _plan_answer(self, n: int, call_steps: int, phrase: int | None = None, early: bool = False) -> list[Event]:
        unit = self.steps_per_bar if self.cfg.align == "bar" else self.steps_per_beat
        start = -(-(n + 1) // unit) * unit
        call_bars = phrase or max(math.ceil(call_steps / self.steps_per_bar), 1)
        bars = self.cfg.bars or min(call_bars, self.cfg.max_call_bars)
        self.last_call_bars = call_bars if call_bars >= 2 else None
        self._follow_style()
        call = np.stack(self.call[:self.last_sound - self.call_start + 1])
        style = CallStyle.of(call, self.steps_per_bar, self.call_start, self.engine.fit_floors)
        repeats = Repeats(call, self.steps_per_bar, self.steps_per_beat, self.call_start, style.own_scale,
                          self.engine.repeat_gate if self.cfg.repeat else None)
        self.answer = _Answer(start, start + bars * self.steps_per_bar, self._answer_state(n, start), style,
                              self.call_start, tentative=early, tracker=NoteTracker(self._dynamics()), repeats=repeats)
        self.answers += 1
        self.answer_notes = 0
        self.planned.append((start, self.answer.end))
        self.answered_by.append(self.engine.name)
        self.call_start = None
        return self._next_bar()

    def _dynamics(self) -> Dynamics:
        """How loud to play: as loud as the musician, with the musician's accents."""
        return self.heard.dynamics_shape(self.steps_per_beat, self.steps_per_bar)

    def _answer_state(self, n: int, start: int) -> State:
        """The state the answer starts from.

        The silence that ends a call is the musician's sign to answer, not music to continue: with
        ``answer_from="call"`` the answer starts from the state at the first grid line after the
        call's last sound that falls where the answer does in the bar (the bar line after the call
        for bar-aligned answers), as if the answer followed the call without the wait. With
        ``"heard"`` it continues everything heard, the silence included, up to ``start``."""
        if self.cfg.answer_from == "call":
            line = self.last_sound + 1 + (start - self.last_sound - 1) % self.steps_per_bar
            if line > n + 1:                            # the line is still ahead: the call's own rest up to it
                return self.engine.advance(np.zeros((1, line - (n + 1), N_KEYS), np.int64), self.state)
            for step, state in self.recent:
                if step == line:
                    return state
        gap = start - (n + 1)                           # "heard" (or a line no longer kept)
        return self.engine.advance(np.zeros((1, gap, N_KEYS), np.int64), self.state) if gap else self.state

    def _next_bar(self) -> list[Event]:
        a = self.answer
        first = a.start + len(a.frames) * self.steps_per_bar
        if first >= a.end:
            return []
        state, before = a.state_after or a.state_before, np.concatenate(a.frames) if a.frames else None
        again = a.repeats.draw(len(a.frames), self.form_rng, before)
        if again is not None:                             # the call's bar at this place in the phrase, not sampled
            frames, after, best, self.foreseen = again[None], self.engine.advance(again[None], state), 0, None
        else:
            frames, logp, after = self._bar(state, first=not a.frames)
            best = a.style.choose(frames, logp, self.cfg.fit_weight, before, floors=self.cfg.choice == "floors")
        a.frames.append(frames[best])
        a.state_after = after.take(best)
        events = a.tracker.feed(frames[best], first)
        self.answer_notes += sum(e.kind == "on" for e in events)
        if first + self.steps_per_bar >= a.end:
            events += a.tracker.close(a.end)
        return events

    def _step_answering(self, n: int, frame: np.ndarray) -> list[Event]:
        a = self.answer
        attacked = bool((frame == STRUCK).any())
        if n < a.start:                                   # between the call's end and the answer
            self.state = self.engine.advance(frame[None, None], self.state)
            self.recent.append((n + 1, self.state))
            self.call.append(frame)
            if attacked:                                  # the call goes on: drop the planned answer
                self.answer = None
                self.last_sound = n
                self.call_start = a.call_start
                return [Event(a.start, "stop")]
            return []
        if frame.any():
            a.heard[n] = frame
        if attacked and a.tentative and n == a.start:     # the musician plays on across the bar line
            self._finish(n)                               # (what was heard is folded in with the first step)
            self.recent.append((n + 1, self.state))
            self.last_sound, self.call_start, self.last_call_bars = n, a.call_start, None
            self.call.append(frame)
            return [Event(n + 1, "stop")]
        if attacked and self.cfg.barge_in == "stop":
            self._finish(n)
            self.state = self.engine.advance(frame[None, None], self.state)
            self.recent.append((n + 1, self.state))
            self.last_sound = self.call_start = n
            self.call = [frame]
            return [Event(n + 1, "stop")]
        events: list[Event] = []
        if (n - a.start) % self.steps_per_bar == 0:       # a bar starts: sample the one after it
            events = self._next_bar()
        if n + 1 >= a.end:
            self._finish(n)
        return events

    def _finish(self, last: int) -> None:
        """The answer ends after step ``last``: the state follows what was played and heard."""
        a = self.answer
        played = np.concatenate(a.frames)[: last - a.start + 1] if a.frames else np.zeros((0, N_KEYS), np.int64)
        merged = played.astype(np.int64).copy()
        for step, frame in a.heard.items():
            i = step - a.start
            if 0 <= i < len(merged):
                merged[i] = np.maximum(merged[i], frame)
        self.state = self.engine.advance(merged[None], a.state_before) if len(merged) else a.state_before
        self.answer = None
        self.last_sound = last
        self.call_start = None
