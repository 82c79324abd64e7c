"""SIGTERM and SIGINT quit the window the way File → Quit does: running jobs go back to the queue.

Why: a session logout, ``systemctl --user stop`` or ``kill`` sends SIGTERM, whose default action ends the
process on the spot and leaves running jobs marked running (the next start counts them as crashes); Ctrl+C
in the terminal that started the window raised KeyboardInterrupt somewhere inside Qt. Python runs signal
handlers only when the interpreter gets control, which Qt's event loop does not give it; the C-level handler
writes the signal number to ``signal.set_wakeup_fd``'s socket, and a ``QSocketNotifier`` on the other end
wakes the event loop, which emits :attr:`QuitSignals.received` on the GUI thread.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSocketNotifier, Signal, Slot

log = logging.getLogger(__name__)

QUIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class QuitSignals(QObject):
    """Create on the main thread (signal handlers can only be set there); :meth:`stop` restores the old."""

    received = Signal(int)  # the signal's number

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno())
        self._old: dict[int, Callable[..., Any] | int | None] = {}
        for number in QUIT_SIGNALS:
            self._old[number] = signal.signal(number, _noted)
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._on_ready)

    @Slot()
    def _on_ready(self) -> None:
        try:
            data = self._reader.recv(64)
        except OSError:
            return
        for number in data:
            if number in QUIT_SIGNALS:
                log.info("quitting on signal %s", signal.Signals(number).name)
                self.received.emit(int(number))
                return

    def stop(self) -> None:
        self._notifier.setEnabled(False)
        for number, handler in self._old.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._old_fd)
        self._reader.close()
        self._writer.close()


def _noted(_signum: int, _frame: object) -> None:
    """Not SIG_DFL (that would end the process at once): the wakeup fd already carries the signal."""
