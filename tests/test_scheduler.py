"""The scheduler: its bookkeeping of what sounds (a release ends every note, the one being sent
at that moment included), cancel and release on simulated time, panic (twice), and the
stuck-note guard."""

from __future__ import annotations

import threading
import time

from livecomp.timing.scheduler import Scheduler, now


def test_a_release_during_the_send_of_a_note_on_ends_that_note_too():
    """An answer is stopped (cancel + release) while its next note-on is on its way out: the
    note-on leaves, so its note-off must too, though the cancel dropped the planned one."""
    sent, sending = [], threading.Event()

    def slow_port(message):
        if message[0] & 0xF0 == 0x90:
            sending.set()
            time.sleep(0.05)                    # a port that takes its time: the window of the race
        sent.append(message)

    scheduler = Scheduler(slow_port)
    due = now() + 0.01
    scheduler.at(due, [0x90, 60, 90], tag=1)
    scheduler.at(due + 0.5, [0x80, 60, 0], tag=1)
    assert sending.wait(1.0)
    scheduler.cancel(1)                         # the note-off of the plan is gone
    scheduler.release()
    time.sleep(0.2)
    ended = list(sent)                          # by the release, not by the panic of the way out
    scheduler.panic()
    assert [m[:2] for m in ended] == [[0x90, 60], [0x80, 60]], sent


def offline():
    """A scheduler on simulated time, with what it sent: (rehearsal, scheduler, sent)."""
    from livecomp.timing.timeline import Rehearsal

    rehearsal = Rehearsal([])
    sent: list = []
    scheduler = rehearsal.scheduler(sent.append)
    return rehearsal, scheduler, sent


def test_cancel_drops_one_answers_plans_from_a_time_on_and_release_ends_what_sounds_then():
    rehearsal, scheduler, sent = offline()
    scheduler.at(0.1, [0x90, 60, 90], tag=1)
    scheduler.at(0.6, [0x80, 60, 0], tag=1)
    scheduler.at(0.4, [0x90, 64, 90], tag=1)                 # planned after the stop: dropped
    scheduler.at(0.7, [0x80, 64, 0], tag=1)
    scheduler.at(0.45, [0x99, 76, 100], tag=2)               # another tag (a click): kept
    scheduler.cancel(1, after=0.3)
    scheduler.release(0.3)
    rehearsal.to(1.0)
    assert [(round(t, 3), m[:2]) for t, m in scheduler.sent] == [
        (0.1, [0x90, 60]), (0.3, [0x80, 60]), (0.45, [0x99, 76])]
    assert scheduler.sounding == {(9, 76): 0.45}


def test_panic_ends_every_note_and_silences_every_channel_twice_and_can_be_called_again():
    sent = []
    scheduler = Scheduler(sent.append)
    t = now()
    scheduler.at(t, [0x90, 60, 90])
    scheduler.at(t, [0x93, 48, 90])
    scheduler.at(t + 5.0, [0x80, 60, 0])                     # never due: the panic comes first
    time.sleep(0.1)
    scheduler.panic()
    first = list(sent)
    scheduler.panic()                                        # again (a second signal): no error
    assert first[:2] == [[0x90, 60, 90], [0x93, 48, 90]]
    assert sorted(m[:2] for m in first[2:4]) == [[0x80, 60], [0x83, 48]]
    silence = [[0xB0 | channel, number, 0] for channel in (0, 3) for number in (120, 123, 64)] * 2
    assert sorted(first[4:]) == sorted(silence)
    assert not [m for m in sent[len(first):] if m[0] & 0xF0 in (0x80, 0x90)]   # nothing more to end


def test_a_note_held_past_the_guard_is_ended_by_the_scheduler_itself():
    """The stuck-note guard: a note-on whose note-off never comes is ended once it has sounded
    ``guard_s`` (the idle thread looks every second)."""
    sent = []
    scheduler = Scheduler(sent.append, guard_s=0.2)
    scheduler.at(now(), [0x90, 60, 90])
    deadline = now() + 3.0
    while [0x80, 60, 0] not in sent and now() < deadline:
        time.sleep(0.05)
    scheduler.panic()
    assert sent[:2] == [[0x90, 60, 90], [0x80, 60, 0]], sent


def test_with_a_lead_a_note_on_handed_over_ahead_is_released_after_its_own_time():
    """A port that places messages at their times (livecomp's JACK client) is handed each one a
    lead ahead, with its time. An answer stopped now (cancel + release) has note-ons already
    handed over that are due after now: each one's note-off is due at or after it, never
    before (which would leave it sounding). A panic control's drop takes back what has not
    left."""
    handed, dropped = [], threading.Event()

    def port(message, at):
        handed.append((at, message))

    scheduler = Scheduler(port, lead_s=lambda: 0.2, drop=dropped.set)
    t = now()
    scheduler.at(t + 0.1, [0x90, 60, 90], tag=1)                 # within the lead: handed over at once
    scheduler.at(t + 0.15, [0x90, 64, 90], tag=1)
    scheduler.at(t + 0.5, [0x80, 60, 0], tag=1)                  # not yet
    deadline = time.monotonic() + 1
    while len(handed) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    scheduler.cancel(1)
    scheduler.release()
    time.sleep(0.1)
    offs = {m[1]: at for at, m in handed if m[0] & 0xF0 == 0x80}
    ons = {m[1]: at for at, m in handed if m[0] & 0xF0 == 0x90}
    assert set(offs) == {60, 64} and all(offs[p] >= ons[p] for p in ons), handed
    scheduler.hush()
    assert dropped.is_set()
    scheduler.panic()


def test_a_panic_with_a_lead_is_not_counted_as_late():
    """With a 15 ms lead (a JACK port), notes planned ahead are handed over 15 ms early and are
    not late; a panic's silence, due the moment it is pressed, would count the whole lead as
    late, and once put the status area's p99 at 15 ms while every note was on time."""
    handed = []
    scheduler = Scheduler(lambda message, at: handed.append((at, message)), lead_s=lambda: 0.015)
    t = now()
    for i in range(20):
        scheduler.at(t + 0.05 + 0.01 * i, [0x90, 60 + i, 90], tag=1)
    deadline = time.monotonic() + 2
    while len(handed) < 20 and time.monotonic() < deadline:
        time.sleep(0.005)
    before = scheduler.lateness_ms()
    scheduler.hush()
    deadline = time.monotonic() + 2
    while len(handed) < 20 + 20 + 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(handed) >= 43, handed
    assert scheduler.lateness_ms() == before and before["sent"] == 20
    scheduler.panic()
