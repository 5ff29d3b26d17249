"""Time: the beat grid and the followers that move it (``grid``: the internal clock, MIDI clock,
tempo from the playing; ``downbeat``; ``link``: Ableton Link), the scheduler that hands each
message over on time, and the click (``pulse``).

May import ``livecomp.io``; nothing above it."""
