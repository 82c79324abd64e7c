"""Model downloads and checks off the GUI thread, one at a time, with progress for the window.

The download runs as a QRunnable on the app's pool; its signals live on a QObject owned by this service
(GUI thread), so they outlive the task. Cancel sets an event the transfer loop checks every quarter
megabyte; what arrived stays on disk and the next start resumes it. The queue is not touched: it keeps
transcribing with the current model until the user switches.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from whisperdesk.core.errors import ModelError
from whisperdesk.core.models.builtin import ensure_builtin, is_builtin
from whisperdesk.core.models.download import DownloadCancelled, DownloadError, download_model
from whisperdesk.core.models.store import verify_download

log = logging.getLogger(__name__)

_UNEXPECTED = "The {what} stopped because of an unexpected problem; the log has the details. Try again."


class _TaskSignals(QObject):
    progress = Signal(object)  # DownloadProgress
    finished = Signal(str, str)  # name, folder
    failed = Signal(str, str)  # name, plain message
    cancelled = Signal(str)
    verified = Signal(str, bool, str)  # name, intact, detail


class _DownloadTask(QRunnable):
    def __init__(self, name: str, models_dir: Path, cancel: threading.Event, signals: _TaskSignals) -> None:
        super().__init__()
        self._name, self._models_dir, self._cancel, self._signals = name, models_dir, cancel, signals

    def run(self) -> None:
        try:
            path = download_model(
                self._name, self._models_dir, progress=self._signals.progress.emit, cancel=self._cancel
            )
        except DownloadCancelled:
            self._signals.cancelled.emit(self._name)
        except DownloadError as exc:
            self._signals.failed.emit(self._name, str(exc))
        except Exception:  # never lost on the pool thread: the window hears of it
            log.exception("download of %s failed", self._name)
            self._signals.failed.emit(self._name, _UNEXPECTED.format(what="download"))
        else:
            self._signals.finished.emit(self._name, str(path))


class _VerifyTask(QRunnable):
    def __init__(self, name: str, models_dir: Path, signals: _TaskSignals) -> None:
        super().__init__()
        self._name, self._models_dir, self._signals = name, models_dir, signals

    def run(self) -> None:
        try:
            if is_builtin(self._name):
                status = ensure_builtin(self._models_dir)
                self._signals.verified.emit(self._name, True, status.note)
                return
            result = verify_download(self._name, self._models_dir)
            self._signals.verified.emit(self._name, result.ok, result.detail)
        except ModelError as exc:  # our own words (e.g. the built-in model cannot be rebuilt)
            self._signals.verified.emit(self._name, False, str(exc))
        except Exception:
            log.exception("check of %s failed", self._name)
            self._signals.verified.emit(self._name, False, _UNEXPECTED.format(what="check"))


class ModelDownloads(QObject):
    """``progressChanged(DownloadProgress)``, ``downloadFinished(name, folder)``,
    ``downloadFailed(name, message)``, ``downloadCancelled(name)``, ``verified(name, ok, detail)``."""

    progressChanged = Signal(object)
    downloadFinished = Signal(str, str)
    downloadFailed = Signal(str, str)
    downloadCancelled = Signal(str)
    verified = Signal(str, bool, str)

    def __init__(self, models_dir: Path, pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._models_dir = Path(models_dir)
        self._pool = pool
        self._active: str | None = None
        self._cancel = threading.Event()
        self._signals = _TaskSignals(self)
        self._signals.progress.connect(self._on_progress)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._signals.cancelled.connect(self._on_cancelled)
        self._signals.verified.connect(self._on_verified)
        self.last_progress: object = None

    @property
    def models_dir(self) -> Path:
        return self._models_dir

    @property
    def active(self) -> str | None:
        """The model being downloaded, or None."""
        return self._active

    @Slot(str)
    def start(self, name: str) -> bool:
        """Start (or resume) downloading ``name``; False while another download runs."""
        if self._active is not None:
            return False
        self._active = name
        self._cancel = threading.Event()
        self.last_progress = None
        log.info("downloading model %s", name)
        self._pool.start(_DownloadTask(name, self._models_dir, self._cancel, self._signals))
        return True

    @Slot()
    def cancel(self) -> None:
        self._cancel.set()

    @Slot(str)
    def verify(self, name: str) -> None:
        self._pool.start(_VerifyTask(name, self._models_dir, self._signals))

    def shutdown(self) -> None:
        """Stop a running download (kept for a resume); the app then waits for its pool."""
        self._cancel.set()

    @Slot(object)
    def _on_progress(self, progress: object) -> None:
        self.last_progress = progress
        self.progressChanged.emit(progress)

    @Slot(str, str)
    def _on_finished(self, name: str, folder: str) -> None:
        self._active = None
        log.info("model %s is ready in %s", name, folder)
        self.downloadFinished.emit(name, folder)

    @Slot(str, str)
    def _on_failed(self, name: str, message: str) -> None:
        self._active = None
        log.warning("download of %s failed: %s", name, message)
        self.downloadFailed.emit(name, message)

    @Slot(str)
    def _on_cancelled(self, name: str) -> None:
        self._active = None
        log.info("download of %s canceled; it resumes where it stopped next time", name)
        self.downloadCancelled.emit(name)

    @Slot(str, bool, str)
    def _on_verified(self, name: str, ok: bool, detail: str) -> None:
        self.verified.emit(name, ok, detail)
