"""MIDI in and out: the vocabulary of MIDI messages and files (``midi``), the ports livecomp
plays through (``ports``: their interface and choosing one by name; ``backends`` opens one of the
backend its name chooses: ``rtmidiport`` python-rtmidi's, ``loopback`` in memory, ``jackport``
JACK's, with livecomp's own frame-exact client ``jackclient`` and the patchbay ``jack``).

The lowest layer: it imports nothing of livecomp but ``livecomp.files``."""
