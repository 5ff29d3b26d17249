"""The `livecomp` command line: parsing and printing, each command a thin layer over library
code (``common``: the app and what the commands share; ``offline``, ``live``, ``training``: the
commands, which register themselves on the app). The top layer: it may import every other."""

from . import live, offline, training  # noqa: F401  (the commands register themselves on ``app``)
from .common import app, example_path, main

__all__ = ["app", "example_path", "main"]
