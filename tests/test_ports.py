"""Port naming and the JACK wake-up check, without a MIDI system (the live ports are in test_live.py)."""

from __future__ import annotations

import os
import re

import pytest

from livecomp.ports import PortError, jack_wakeup_mapped, literal, resolve

PORTS = ["Midi Through:Midi Through Port-0 14:0", "Keystation 49:Keystation 49 MIDI 1 20:0", "FLUID Synth (1234):Synth input port"]


def test_a_port_is_found_by_full_name_unique_part_or_index():
    assert resolve(PORTS[1], PORTS, "input") == 1
    assert resolve("keystation", PORTS, "input") == 1
    assert resolve("2", PORTS, "output") == 2


def test_an_ambiguous_or_unknown_port_is_one_sentence_listing_the_ports():
    with pytest.raises(PortError, match=r"'Port' matches several input port \(there are: 0: Midi Through"):
        resolve("Port", PORTS, "input")
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
