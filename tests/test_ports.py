"""Port naming and the JACK wake-up check, without a MIDI system (the live ports are in test_live.py)."""

from __future__ import annotations

import os
import re

import pytest

from livecomp.io.jack import jack_wakeup_mapped, literal
from livecomp.io.ports import PortError, resolve

PORTS = ["Midi Through:Midi Through Port-0 14:0", "Keystation 49:Keystation 49 MIDI 1 20:0", "FLUID Synth "
                                                                                             "(1234):Synth input port"]


def test_a_port_is_found_by_full_name_unique_part_or_index():
    assert resolve(PORTS[1], PORTS, "input") == 1
    assert resolve("keystation", PORTS, "input") == 1
    assert resolve("2", PORTS, "output") == 2


def test_an_ambiguous_or_unknown_port_is_one_sentence_listing_the_ports():
    with pytest.raises(PortError, match=r"'Port' matches several input ports \(there are: 0: Midi Through"):
        resolve("Port", PORTS, "input")
    with pytest.raises(PortError, match=r"'nosuch' matches no input port \(there are: 0: Midi") as refused:
        resolve("nosuch", PORTS + ["livecomp-out:out"], "input")
    assert "livecomp-out" not in str(refused.value)          # never one to listen to
    with pytest.raises(PortError, match=r"'Roland' matches no output port .*2: FLUID Synth"):
        resolve("Roland", PORTS, "output")
    with pytest.raises(PortError, match=r"there are: none"):
        resolve("anything", [], "input")


def test_a_port_name_is_matched_literally_by_jack_get_ports_patterns():
    for name in ["livecomp-in:keys", "FLUID Synth (1234):Synth input port", "a.b[1]*+?^$|{2}\\x"]:
        assert re.fullmatch(literal(name), name)
        assert not re.fullmatch(literal(name), name.replace(" ", "_") + "x")


def futex_file(folder, client: str, server: str = "default"):
    path = folder / f"jack_sem.0_{server}_{client}"
    path.write_bytes(b"\0" * 12)
    return path


def maps_file(folder, *paths, inode=None):
    """A /proc/self/maps with one shared mapping per path (its inode, or ``inode``)."""
    lines = ["55d0c0a00000-55d0c0a21000 r--p 00000000 fd:01 1311  /usr/bin/python3.11"]
    for i, path in enumerate(paths):
        ino = inode if inode is not None else os.stat(path).st_ino
        lines.append(f"7f96{i:04x}5000-7f96{i:04x}6000 rw-s 00000000 00:1a {ino}  {path}")
    maps = folder / "maps"
    maps.write_text("\n".join(lines) + "\n")
    return maps


def test_a_client_whose_futex_file_is_mapped_is_held(tmp_path):
    mine = futex_file(tmp_path, "livecomp-in")
    assert jack_wakeup_mapped("livecomp-in", maps_file(tmp_path, mine, futex_file(tmp_path, "system"))) is True


def test_a_client_jack_renamed_is_found_under_its_new_name(tmp_path):
    renamed = futex_file(tmp_path, "livecomp-in-01", server="my_studio")
    assert jack_wakeup_mapped("livecomp-in", maps_file(tmp_path, renamed)) is True


def test_a_client_missing_from_the_table_or_mapped_from_an_old_file_is_not_held(tmp_path):
    other = futex_file(tmp_path, "jack_connect")
    assert jack_wakeup_mapped("livecomp-in", maps_file(tmp_path, other)) is False
    assert jack_wakeup_mapped("livecomp-in", maps_file(tmp_path, futex_file(tmp_path, "xlivecomp-in"))) is False
    old = futex_file(tmp_path, "livecomp-in")
    stale = maps_file(tmp_path, old, inode=os.stat(old).st_ino + 1)     # the file was made again since
    assert jack_wakeup_mapped("livecomp-in", stale) is False


def test_without_jack2_futex_files_nothing_can_be_told(tmp_path):
    assert jack_wakeup_mapped("livecomp-in", maps_file(tmp_path)) is None
    assert jack_wakeup_mapped("livecomp-in", tmp_path / "no-such-maps") is None


def test_an_input_is_never_one_of_livecomps_own_outputs():
    names = ["livecomp-out:sound", "Keystation 49:Keystation 49 MIDI 1 20:0"]
    with pytest.raises(PortError, match="livecomp's own output"):
        resolve("0", names, "input")
    assert resolve("sound", ["livecomp-out:sound", "Synth:sound in"], "input") == 1    # the other one
    assert resolve("0", names, "output") == 0                                           # as an output it is fine


class _Script:
    """JACK input as rtmidi gives it, on a scripted clock: each message with the JACK time it
    was stamped and the time the reading thread gets to it."""

    def __init__(self, messages: list[tuple[list[int], float, float]], port):
        self.messages, self.port, self.now, self.last = list(messages), port, 0.0, None

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if not self.messages:
            self.port._closing.set()

    def get_message(self):
        if not self.messages or self.messages[0][2] > self.now:
            return None
        message, stamped, _ = self.messages.pop(0)
        delta, self.last = (0.0 if self.last is None else stamped - self.last), stamped
        return message, delta


@pytest.mark.parametrize("pinged", [True, False])
def test_a_busy_reader_does_not_place_the_musicians_notes_late(monkeypatch, pinged):
    """Every message is read 4 ms after JACK stamped it (another thread held the interpreter).
    The pings' send times still place JACK's clock on ours to within a period, so a note
    stamped at 2.0 s is heard at 2.0 s; without pings, only the reads can place it."""
    import threading
    import types

    import livecomp.io.jackport as ports

    period = 256 / 48000
    port = object.__new__(ports.JackPort)
    heard = []
    port.on_message = lambda message, t: heard.append((message, t))
    port._lock, port._closing, port._opened_at, port._pings = threading.Lock(), threading.Event(), 0.0, {}
    port.poll_s = 0.005
    port._patchbay = types.SimpleNamespace(period_s=lambda: period)
    messages = []
    for i in range(ports.FIRST):
        sent = 1.0 + 0.005 * i
        port._pings[i] = sent if pinged else None
        messages.append((ports.PING + [0, i, 0xF7], sent + 0.2 * period, sent + 0.2 * period + 0.004))
    port._pings = {k: v for k, v in port._pings.items() if v is not None}
    messages.append(([0x90, 60, 100], 2.0, 2.004))
    script = _Script(messages, port)
    port._midi = script
    monkeypatch.setattr(ports, "time", types.SimpleNamespace(perf_counter=script.perf_counter, sleep=script.sleep))
    port._read()
    (message, t), = heard
    assert message == [0x90, 60, 100]
    if pinged:
        assert 2.0 <= t <= 2.0 + period                     # within the JACK period the note arrived in
    else:
        assert t >= 2.004                                    # the reads' 4 ms stay in
