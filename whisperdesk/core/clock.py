"""An injectable clock, so settle times, rescans and timestamps can be tested without sleeping.

Two readings are kept apart on purpose: ``monotonic()`` measures intervals (settle time, rescan period) and
never jumps; ``time()`` is wall-clock seconds since the epoch, stored in the job database for humans.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to; both readings advance together. Thread-safe."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._mono = float(start)
        self._offset = float(wall_start) - float(start)

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def time(self) -> float:
        with self._lock:
            return self._mono + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds!r})")
        with self._lock:
            self._mono += seconds


SYSTEM_CLOCK = SystemClock()
