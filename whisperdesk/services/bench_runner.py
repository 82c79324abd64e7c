"""Runs the benchmark table for the window: off the GUI thread on its own one-thread pool, cancelable.

The window only shows what this reports; it never runs the app's work itself (an import-linter contract
in pyproject.toml keeps ui from importing the benchmark's runner or the core's work modules).
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from whisperdesk.benchmark.matrix import BenchRequest
from whisperdesk.core.errors import Cancelled, WhisperDeskError


class _Signals(QObject):
    """Created in the GUI thread and owned by the runner; the pool's task only emits."""

    progress = Signal(str, float)
    finished = Signal(object)  # BenchReport
    failed = Signal(str)


class _BenchTask(QRunnable):
    def __init__(
        self, request: BenchRequest, synthetic_minutes: float, signals: _Signals, cancel: threading.Event
    ) -> None:
        super().__init__()
        self._request = request
        self._minutes = synthetic_minutes
        self._signals = signals
        self._cancel = cancel

    def run(self) -> None:
        from whisperdesk.benchmark.corpus import references, synthetic_corpus
        from whisperdesk.benchmark.run import run_matrix

        try:
            request = self._request
            with tempfile.TemporaryDirectory(prefix="whisperdesk-bench-") as scratch:
                if not request.files:
                    self._signals.progress.emit("making the synthetic speech corpus", 0.0)
                    corpus = synthetic_corpus(Path(scratch), self._minutes)
                    files = tuple(f.path for f in corpus)
                    request = dataclasses.replace(request, files=files, references=references(corpus))
                report = run_matrix(request, progress=self._signals.progress.emit, cancel=self._cancel)
        except Cancelled:
            self._signals.failed.emit("benchmark canceled")
        except (WhisperDeskError, ValueError, OSError) as exc:
            self._signals.failed.emit(str(exc))
        except Exception as exc:  # a worker must report, never die silently
            self._signals.failed.emit(f"unexpected error: {type(exc).__name__}: {exc}")
        else:
            self._signals.finished.emit(report)


class BenchRunner(QObject):
    """One benchmark run at a time; ``progress``, ``finished`` and ``failed`` arrive on the GUI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._cancel = threading.Event()
        self.signals = _Signals(self)

    @property
    def running(self) -> bool:
        return self._pool.activeThreadCount() > 0

    def start(self, request: BenchRequest, synthetic_minutes: float) -> None:
        """Run ``request``; with no files, on a synthetic corpus of that many minutes made first."""
        self._cancel = threading.Event()
        self._pool.start(_BenchTask(request, synthetic_minutes, self.signals, self._cancel))

    def cancel(self) -> None:
        self._cancel.set()

    def shutdown(self) -> None:
        """Cancel a run and wait for its thread, so none outlives the window."""
        self._cancel.set()
        self._pool.waitForDone()
