"""A long session, shortened: `bench/soak.py` for 90 seconds of playing through a JACK server
of its own, as the 30-minute bench run does:
calls, answers played over, panic, mute, the temperature knob, duet mode, model switches,
junk on the input and the keyboard unplugged and back. Every answer note on its frame of the
grid, nothing left sounding, the recording whole, no traceback, exit 0. The memory is the
30-minute run's to measure (it loads every model first; 90 seconds would measure their loads)."""

from __future__ import annotations

import shutil

import pytest

from livecomp.io import jackclient  # noqa: E402

from conftest import twice


@pytest.mark.skipif(shutil.which("jackd") is None or not jackclient.available(),
                    reason="needs jackd and livecomp's JACK client")
def test_a_short_session_loses_nothing_and_plays_every_note_on_its_frame():
    import soak

    overruns: list[int] = []

    def attempt():
        said = []
        report = soak.run(minutes=1.5, seed=1, log=said.append, warm=False, reconnect_every=6)
        overruns.append(report.overruns)
        print(f"\nsoak: {report.rounds} rounds, {report.answer_notes} answer notes, {report.reconnects} reconnects, "
              f"livecomp said {report.said}; JACK overruns reported: {report.overruns}")
        assert report.rounds >= 8 and report.reconnects >= 1 and report.answer_notes > 50, report
        assert len(report.off_grid) <= report.explained_off_grid, (report.off_grid, said, report.overruns)
        assert not report.sounding_after, report.sounding_after
        assert report.recording_ok and not report.recording_unended, said
        assert not report.traceback and report.alive_until_stop and report.returncode == 0, said
        for kind in ("panic", "muted", "mode", "model", "went away", "is back"):
            assert report.said[kind], (kind, report.said, f"JACK overruns reported: {report.overruns}")

    # a timing check like the live tests': once more when it misses, and a run in which the server
    # said a client overran a period (JACK delivers late then, or drops) is not counted, up to three
    twice(attempt, overran=lambda: f"jackd said so {overruns[-1]} times" if overruns and overruns[-1] else "")
