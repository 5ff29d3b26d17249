"""The sending thread's bookkeeping of what sounds: a release ends every note, the one being
sent at that moment included."""

from __future__ import annotations

import threading
import time

from livecomp.scheduler import Scheduler, now


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
