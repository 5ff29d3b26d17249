"""livecomp: a real-time MIDI co-performer."""

__version__ = "0.1.0"
