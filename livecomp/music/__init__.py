"""Music as data: a MIDI file's notes (``notes``), the piano roll of key states on the grid
(``roll``) and frames of it (``frames``), the musicality measures (``musicality``), and pictures
and sound of it (``image``, ``audio``).

May import ``livecomp.io``; nothing above it."""
