"""Coalesce bursts of updates so a busy worker cannot flood the GUI thread's event loop.

The first call in a quiet period runs at once; calls inside the interval only replace the pending
arguments, and the latest of them runs when the interval ends. So a view shows every state change within
one interval, at most ``max_per_second`` times a second, and the last value is never lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Slot


class Throttle(QObject):
    """Call ``func`` at most ``max_per_second`` times a second with the newest arguments. GUI thread only."""

    def __init__(
        self,
        func: Callable[..., Any],
        max_per_second: float,
        parent: QObject | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        if max_per_second <= 0:
            raise ValueError(f"max_per_second must be positive, got {max_per_second!r}")
        self._func = func
        self._interval = 1.0 / max_per_second
        self._clock = clock
        self._last_call: float | None = None
        self._pending: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timeout)

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        now = self._clock()
        if self._pending is None and (self._last_call is None or now - self._last_call >= self._interval):
            self._run(now, args, kwargs)
            return
        self._pending = (args, kwargs)
        if not self._timer.isActive():
            wait = self._interval if self._last_call is None else self._interval - (now - self._last_call)
            self._timer.start(max(0, round(wait * 1000)))

    @Slot()
    def flush(self) -> None:
        """Deliver the pending call now (e.g. when a job ends, so its final state is shown at once)."""
        self._timer.stop()
        if self._pending is not None:
            args, kwargs = self._pending
            self._pending = None
            self._run(self._clock(), args, kwargs)

    @Slot()
    def cancel(self) -> None:
        """Drop the pending call and stop the timer (on shutdown, or when the target goes away)."""
        self._timer.stop()
        self._pending = None

    @Slot()
    def _on_timeout(self) -> None:
        if self._pending is None:
            return
        args, kwargs = self._pending
        self._pending = None
        self._run(self._clock(), args, kwargs)

    def _run(self, now: float, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._last_call = now
        self._func(*args, **kwargs)
