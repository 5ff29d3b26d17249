"""livecomp's one compiled part, its JACK MIDI client (``livecomp/_jackmidi.c``; see
``livecomp/io/jackclient.py``). Optional: where it cannot be built (no C compiler, not Linux),
livecomp talks to JACK through python-rtmidi, a period less exact. Everything else is in
pyproject.toml."""

import sys

from setuptools import Extension, setup

JACK_CLIENT = Extension("livecomp._jackmidi", ["livecomp/_jackmidi.c"], depends=["livecomp/_jackmidi.h"],
                        libraries=["dl"], optional=True)

setup(ext_modules=[JACK_CLIENT] if sys.platform.startswith("linux") else [])
