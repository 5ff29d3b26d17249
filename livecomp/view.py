"""What ``listen`` shows while it plays: on a terminal one status line redrawn in place, and a
line for each answer as it is planned (plain log lines when the output is not a terminal)."""

from __future__ import annotations

import sys


def on_terminal() -> bool:
    return sys.stderr.isatty()


def status_line(live, n: int) -> str:
    """Tempo and where it comes from, bar and beat of step ``n``, listening, answering or muted,
    the model, what the controls set (mode, temperature, answer bars, silence beats), the
    answers so far and the latest one's notes, and the sends' lateness."""
    spbar, spb = live.performer.steps_per_bar, live.engine.steps_per_beat
    bar, beat = n // spbar + 1, (n % spbar) // spb + 1
    late = live.scheduler.lateness_ms()
    performer = live.performer
    what = "muted" if performer.muted else "answering" if performer.answering else "listening"
    source = "clock" if live.follower is not None else "estimated" if live.cfg.bpm is None else "fixed"
    cfg = performer.cfg
    setting = (f"{cfg.mode}  temperature {cfg.temperature:.2f}  bars {cfg.bars or 'as the call'}  "
               f"silence {cfg.silence_beats:g} beats")
    return (f"{live.bpm:.1f} bpm ({source})  {bar:>4}:{beat}  {what:<9}  {live.engine.name}  {setting}  "
            f"{performer.answers} answers (last {performer.answer_notes} notes)  sends p99 {late['p99']:.2f} ms")


def draw_status(live, n: int) -> None:
    if on_terminal():
        sys.stderr.write(f"\r{status_line(live, n)}\x1b[K")
        sys.stderr.flush()


def answer_line(number: int, start: int, end: int, steps_per_bar: int, over_status: bool) -> str:
    """"answer N: bar B" (or "bars B to C"), written over the status line where one is drawn."""
    first, last = start // steps_per_bar + 1, (end - 1) // steps_per_bar + 1
    where = f"bar {first}" if first == last else f"bars {first} to {last}"
    return ("\r\x1b[K" if over_status else "") + f"answer {number}: {where}"


def tell_answers(live) -> None:
    """One line for each answer ``live`` has planned since the last call: where it starts and
    ends (over the status line, where one is drawn)."""
    for start, end in live.performer.planned[live.told:]:
        live.told += 1
        live.log(answer_line(live.told, start, end, live.performer.steps_per_bar,
                             over_status=live.cfg.status and on_terminal()))
