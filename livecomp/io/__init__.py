"""MIDI in and out: the vocabulary of MIDI messages and files (``midi``), the ports livecomp
plays through (``ports``: python-rtmidi's, in-memory loopbacks; ``jackport``: JACK's, with
livecomp's own frame-exact client ``jackclient`` and the patchbay ``jack``).

The lowest layer: it imports nothing of livecomp but ``livecomp.files``."""
