"""Forward log records from any thread to the GUI thread's log view.

A ``logging.Handler`` runs on whichever thread logs (a transcription worker, the watcher, the NVML
sampler). It never touches a widget: it formats the record and emits a signal of a QObject that lives in
the GUI thread, so Qt queues the delivery to the view's slot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal, Slot

DEFAULT_LOGGERS = ("whisperdesk", "faster_whisper")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _SignalHandler(logging.Handler):
    def __init__(self, bridge: LogBridge, level: int) -> None:
        super().__init__(level)
        self._bridge = bridge
        self.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            self._bridge.recordEmitted.emit(record.levelno, text)
        except RuntimeError:  # the bridge's C++ object is gone (shutdown race): nowhere to show it
            pass
        except Exception:
            self.handleError(record)


class LogBridge(QObject):
    """Owns the handler; ``recordEmitted(levelno, text)`` arrives in the GUI thread."""

    recordEmitted = Signal(int, str)

    def __init__(self, level: int = logging.WARNING, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._handler = _SignalHandler(self, level)
        self._loggers: list[logging.Logger] = []

    @property
    def handler(self) -> logging.Handler:
        return self._handler

    @property
    def level(self) -> int:
        return self._handler.level

    @Slot(int)
    def set_level(self, level: int) -> None:
        """WARNING shows problems only; INFO also shows model loads and finished jobs."""
        self._handler.setLevel(level)

    def install(self, names: Sequence[str] = DEFAULT_LOGGERS) -> None:
        for name in names:
            logger = logging.getLogger(name)
            if self._handler not in logger.handlers:
                logger.addHandler(self._handler)
                self._loggers.append(logger)

    def uninstall(self) -> None:
        """Detach from every logger; call before the bridge is destroyed so workers stop emitting."""
        for logger in self._loggers:
            logger.removeHandler(self._handler)
        self._loggers.clear()
        self._handler.close()
