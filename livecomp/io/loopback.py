"""Ports in memory, for tests and rehearsals: ``loopback:NAME``."""

from __future__ import annotations

import threading
import time
from typing import Callable

from .ports import BasePort


class LoopbackPort(BasePort):
    """A port in memory, for tests and rehearsals: what an output named ``loopback:NAME`` is sent
    reaches every open input of that name at once (``on_message(bytes, time.perf_counter())``,
    on the sender's thread). ``close`` is safe twice."""

    _inputs: dict[str, list["LoopbackPort"]] = {}
    _lock = threading.Lock()

    def __init__(self, spec: str, direction: str, api: str | None = None, on_message: Callable | None = None,
                 **_options):
        self.spec, self.direction = spec, direction
        self.name = spec.split(":", 1)[1]
        self.connected_to = spec
        self.on_message = on_message
        self.sent: list[list[int]] = []
        self.closed = False
        if direction == "input":
            with self._lock:
                self._inputs.setdefault(self.name, []).append(self)

    def send(self, message: list[int], at: float | None = None) -> None:
        if self.closed:
            return
        self.sent.append(list(message))
        with self._lock:
            listeners = list(self._inputs.get(self.name, []))
        for port in listeners:
            if port.on_message is not None:
                port.on_message(list(message), time.perf_counter())

    def close(self, drain_s: float = 0.0) -> None:
        with self._lock:
            if not self.closed and self.direction == "input":
                self._inputs[self.name].remove(self)
            self.closed = True
