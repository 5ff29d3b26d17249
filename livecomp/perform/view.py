"""What ``listen`` shows while it plays: on a terminal a status area of a few lines at the
bottom, redrawn in place each beat, with a line for each answer and each change written above
it; plain log lines when the output is not a terminal.

The area is drawn with ANSI cursor moves on stderr, and everything a session says goes
through ``say``: a line said while the area is up is written above it (the area cleared, the
line, the area again), under one lock, so the port threads, the step loop and the controls
never write into each other's lines.
"""

from __future__ import annotations

import math
import shutil
import sys
import threading
import time

UP, CLEAR_LINE, CLEAR_BELOW = "\x1b[1A", "\x1b[K", "\x1b[J"


def on_terminal() -> bool:
    return sys.stderr.isatty()


def width() -> int:
    """The terminal's columns now (80 where it cannot say)."""
    return max(shutil.get_terminal_size((80, 24)).columns, 20)


def fit(lines: list[str], columns: int) -> list[str]:
    """``lines`` to the terminal's width, never wrapping: a line too long is cut between its
    fields (two spaces apart) into as many lines as it needs, and a field too long is cut."""
    out = []
    for line in lines:
        row = ""
        for field in line.split("  "):
            field = field.strip()
            if not field:
                continue
            if row and len(row) + 2 + len(field) <= columns - 1:
                row += "  " + field
            else:
                if row:
                    out.append(row)
                row = field[:columns - 1]
        out.append(row)
    return out


class StatusArea:
    """The bottom lines of a terminal, redrawn in place; ``log`` writes a line above them. The
    lines are fitted to the terminal's width at every draw, and a resize redraws them at once
    (``redraw``, on SIGWINCH), so no wrapped line leaves a stale copy behind."""

    def __init__(self):
        self._lock = threading.Lock()
        self._lines: list[str] = []            # as asked for
        self._rows: list[str] = []             # drawn now, fitted; the cursor is at the end of the last

    @property
    def up(self) -> bool:
        return bool(self._rows)

    def _clear(self, stream) -> None:
        if self._rows:
            columns = width()                  # rows the drawn lines take at today's width (a narrower
            rows = sum(max(1, -(-len(row) // columns)) for row in self._rows)   # terminal rewraps them)
            stream.write("\r" + UP * (rows - 1) + CLEAR_BELOW)

    def _draw(self, stream, lines: list[str]) -> None:
        self._lines = list(lines)
        self._rows = fit(lines, width()) if lines else []
        stream.write("\n".join(row + CLEAR_LINE for row in self._rows))

    def draw(self, lines: list[str]) -> None:
        stream = sys.stderr
        with self._lock:
            self._clear(stream)
            self._draw(stream, lines)
            stream.flush()

    def redraw(self, *_) -> None:
        """The terminal was resized (SIGWINCH): the same lines, fitted to its new width, now if
        no line is being written (a signal handler must not wait on the lock it interrupted),
        else at the next draw, which fits them anyway."""
        if self._lines and self._lock.acquire(blocking=False):
            try:
                self._clear(sys.stderr)
                self._draw(sys.stderr, self._lines)
                sys.stderr.flush()
            finally:
                self._lock.release()

    def log(self, text: str) -> None:
        stream = sys.stderr
        with self._lock:
            lines = self._lines
            self._clear(stream)
            stream.write(text + "\n")
            self._draw(stream, lines)
            stream.flush()

    def close(self) -> None:
        """Take the area away (the stop line follows where it was)."""
        stream = sys.stderr
        with self._lock:
            self._clear(stream)
            self._lines, self._rows = [], []
            stream.flush()


AREA = StatusArea()


def say(text: str) -> None:
    """A line of the session's: above the status area while it is up, else on stdout."""
    if AREA.up:
        AREA.log(text)
    else:
        print(text, flush=True)


def status_lines(live, n: int | None) -> list[str]:
    """Bar and beat of step ``n`` (None: before bar 1, waiting for the first note); listening,
    answering or muted; tempo and where it comes from; the model. What the controls set (mode,
    temperature, answer bars, silence beats). The answers so far, the latest one's notes, and
    the sends' lateness."""
    spbar, spb = live.performer.steps_per_bar, live.engine.steps_per_beat
    late = live.scheduler.lateness_ms()
    performer = live.performer
    what = "muted" if performer.muted else "answering" if performer.answering else "listening"
    source = ("link" if live.cfg.sync == "link" else "clock") if live.follower is not None else \
        "estimated" if live.cfg.bpm is None else "fixed"
    cfg = performer.cfg
    controls = "keyboard controls on" if live.controls is not None else "keyboard controls off"
    bpm = live.follower.bpm if live.follower is not None and live.grid is live.follower else live.bpm
    tempo = f"{bpm:.1f} bpm ({source})" if bpm else "tempo from your first phrase"
    where = f"bar {n // spbar + 1:>4}:{(n % spbar) // spb + 1}" if n is not None else "before bar 1"
    what = what if n is not None else "waiting for your first note"
    model = live.engine.name if performer.engine is live.engine else \
        f"{live.engine.name} (its specialist {performer.engine.name} plays)"
    return [f"{where}  {what:<9}  {tempo}  model {model}",
            f"mode {cfg.mode}  temperature {cfg.temperature:.2f}  answer bars {cfg.bars or 'as the call'}  "
            f"silence {cfg.silence_beats:g} beats  ({controls})",
            f"{performer.answers} answer{'s' * (performer.answers != 1)}"
            + (f", the last {performer.answer_notes} notes" if performer.answers else "")
            + f"  sends p50 {late['p50']:.2f} ms, p99 {late['p99']:.2f} ms"]


def draw_status(live, n: int | None) -> None:
    if on_terminal():
        AREA.draw(status_lines(live, n))


def answer_line(number: int, start: int, end: int, steps_per_bar: int, specialist: str | None = None) -> str:
    """"answer N: bar B" (or "bars B to C"), and "(by its specialist NAME)" where one answered."""
    first, last = start // steps_per_bar + 1, (end - 1) // steps_per_bar + 1
    return (f"answer {number}: " + (f"bar {first}" if first == last else f"bars {first} to {last}")
            + (f" (by its specialist {specialist})" if specialist else ""))


def tell_answers(live) -> None:
    """One line for each answer ``live`` has planned since the last call (where it starts and
    ends), and for each time it joined the musician in duet mode (where), numbered as the
    status area counts them."""
    performer = live.performer
    told_plans = live.told - live.told_joins
    for i, (start, end) in enumerate(performer.planned[told_plans:], told_plans):
        live.told += 1
        by = performer.answered_by[i]
        live.log(answer_line(live.told, start, end, performer.steps_per_bar, by if by != live.engine.name else None))
    for start in performer.joins[live.told_joins:]:
        live.told += 1
        live.told_joins += 1
        live.log(f"answer {live.told}: playing along from bar {start // performer.steps_per_bar + 1}")


HELD_S = 0.030                   # the step loop woke this much after its window closed: the machine held it
HELD_EVERY_S = 5.0               # at most one line about it this often


class Holds:
    """The step loop woke late: where by more than HELD_S, the machine (other programs' load)
    held livecomp back, and what it sends may be late for that; said in one line as it happens
    (at most one every HELD_EVERY_S, with the longest hold since), so the musician knows whom
    to blame."""

    def __init__(self, log):
        self.log = log
        self.worst = 0.0
        self.said = -math.inf

    def woke(self, late: float) -> None:
        """The step loop woke ``late`` seconds after its window closed."""
        self.worst = max(self.worst, late)
        if self.worst > HELD_S and time.monotonic() - self.said >= HELD_EVERY_S:
            self.log(f"the machine held livecomp for {self.worst * 1e3:.0f} ms at {time.strftime('%H:%M:%S')} "
                     f"(other programs' load): what it played then may be late by as much")
            self.said, self.worst = time.monotonic(), 0.0
