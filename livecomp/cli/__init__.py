"""The `livecomp` command line: parsing and printing, each command a thin layer over library
code (``common``: the app and what the commands share; ``live``, ``offline``, ``training``,
``evaluation``: the commands, which register themselves on the app as they are imported, in the
order `livecomp --help` lists them). The top layer: it may import every other."""

# isort: off
from . import live, offline, training, evaluation  # noqa: F401
# isort: on
from .common import app, example_path, main

__all__ = ["app", "example_path", "main"]
