"""Time: the beat grid and the followers that move it (``grid``: the internal clock, MIDI clock,
tempo from the playing; ``downbeat``; ``link``: Ableton Link; ``transport``: what an external
clock's transport does), the scheduler that hands each message over on time, the timelines it
runs on (``timeline``: wall time live, simulated time offline), and the click (``pulse``).

May import ``livecomp.io``; nothing above it."""
