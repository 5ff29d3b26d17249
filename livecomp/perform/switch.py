"""Changing the model while playing: a model chosen on the keyboard (a program change, or the
next or previous button) loads in the background (under a second for the shipped models,
bench/latency.py) and answers from then on, the last bars heard (the call under way included) folded into
its state; listening never stops, and an answer under way is finished by the model that began it.
A model loads once a session: going back to one played before is at once, and memory holds one
copy of each."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Callable


class ModelSwitch:
    def __init__(self, names: list[str], current: str, loader: Callable | None, background: Callable,
                 steps_per_beat: int):
        """``names``: the models to choose from, in ``livecomp models``' order (a program change
        chooses by its number); ``current``: the one playing; ``loader(name)`` gives an engine;
        ``background(fn)`` runs it off the step loop (a future)."""
        self.names = list(names)
        self.current = self.names.index(current) if current in self.names else -1
        self.loader, self.background, self.steps_per_beat = loader, background, steps_per_beat
        self.pending: tuple[int, object] | None = None
        self.loaded: dict[str, object] = {}        # name -> engine: a model loads once a session

    def keep(self, name: str, engine) -> None:
        """``engine`` is model ``name``, loaded already (the one the session began with)."""
        self.loaded[name] = engine

    def choose(self, index: int, log: Callable[[str], None], wrap: bool = True) -> None:
        """Start loading model ``index`` (the next and previous buttons wrap around; a program
        change names one or none)."""
        if self.loader is None or len(self.names) < 2:
            log("model: there is no other model to choose")
            return
        if not wrap and not 0 <= index < len(self.names):
            log(f"model: no model has program {index} (there are {len(self.names)}: 0 to {len(self.names) - 1})")
            return
        index %= len(self.names)
        if index == self.current and self.pending is None:
            log(f"model: {self.names[index]} plays already")
            return
        name = self.names[index]
        if name in self.loaded:                      # back to a model played before: at once, and no
            done: Future = Future()                  # second copy of it in memory
            done.set_result(self.loaded[name])
            self.pending = (index, done)
            log(f"model: back to {name}, loaded already")
            return
        self.pending = (index, self.background(lambda: self.loader(name)))
        log(f"model: loading {name}; it answers once it has loaded")

    def ready(self, performer, log: Callable[[str], None]):
        """The engine to play with from now on, once it has loaded and the performer is not
        answering (None until then, or when it could not load or is on another grid): a call
        under way is answered by the new model, which has heard it (``Performer.use``)."""
        if self.pending is None or not self.pending[1].done() or performer.answering:
            return None
        (index, future), self.pending = self.pending, None
        try:
            engine = future.result()
        except Exception as exc:               # a damaged folder: one line, and the model plays on
            log(f"model: {self.names[index]} could not be loaded ({exc}); the model playing stays")
            return None
        if engine.steps_per_beat != self.steps_per_beat:
            log(f"model: {engine.name} is on a grid of {engine.steps_per_beat} steps a beat, not "
                f"{self.steps_per_beat}; the model playing stays")
            return None
        self.current = index
        self.loaded.setdefault(self.names[index], engine)
        log(f"model: {engine.name} ({engine.architecture}) answers from now on")
        return engine
