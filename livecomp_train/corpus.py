"""A corpus: named splits (``train``, ``valid``, ``test``) of piano rolls, and the files that
could not be read."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from livecomp.music.roll import ConversionReport, PianoRoll

SPLITS = ("train", "valid", "test")


class CorpusError(ValueError):
    """A corpus that cannot be loaded: unknown name, missing or empty folder, unreadable file."""


@dataclass
class Corpus:
    """Named splits of piano rolls, and the files that could not be read."""

    name: str
    steps_per_beat: int
    splits: dict[str, list[PianoRoll]]
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (path, reason)
    names: dict[str, list[str]] = field(default_factory=dict)       # split -> source of each roll
    upbeats: int = 0                                                 # rolls whose bar lines an upbeat moved

    def frames(self, split: str) -> int:
        """Total number of steps in a split."""
        return sum(r.n_steps for r in self.splits.get(split, []))

    def sequences(self, split: str, key_states: int) -> list[np.ndarray]:
        """The non-empty rolls of a split as (steps, 88) arrays in the ``key_states`` form."""
        return [r.to_states(key_states) for r in self.splits.get(split, []) if r.n_steps > 0]

    def report(self) -> ConversionReport:
        """What quantisation did to the notes of every roll, summed."""
        total = ConversionReport()
        for rolls in self.splits.values():
            for r in rolls:
                for key, value in r.report.as_dict().items():
                    setattr(total, key, getattr(total, key) + value)
        return total
