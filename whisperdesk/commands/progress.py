"""A one-line progress bar for terminals; silent when stderr is not a terminal (pipes, CI, logs)."""

from __future__ import annotations

import time
from typing import TextIO


def format_clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class TerminalProgress:
    def __init__(self, stream: TextIO, *, width: int = 28, enabled: bool | None = None) -> None:
        self._stream = stream
        self._width = width
        self._enabled = stream.isatty() if enabled is None else enabled
        self._label = ""
        self._started = time.monotonic()
        self._last_draw = 0.0

    def start(self, label: str) -> None:
        self._label = label
        self._started = time.monotonic()
        self._last_draw = 0.0

    def update(self, done: float, total: float) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1 and done < total:
            return
        self._last_draw = now
        fraction = min(1.0, done / total) if total > 0 else 0.0
        filled = int(fraction * self._width)
        elapsed = now - self._started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.02 else None
        speed = done / elapsed if elapsed > 0 else 0.0
        tail = f" ETA {format_clock(eta)}" if eta is not None else ""
        line = (
            f"\r{self._label[:40]:40} [{'#' * filled}{'-' * (self._width - filled)}] "
            f"{fraction * 100:5.1f}% {format_clock(done)}/{format_clock(total)} {speed:5.1f}x{tail}"
        )
        self._stream.write(line + "\033[K")
        self._stream.flush()

    def finish(self, message: str = "") -> None:
        if self._enabled:
            self._stream.write("\r\033[K" + (message + "\n" if message else ""))
            self._stream.flush()
