"""One feed of job-store changes for the window: this process's changes at once, other processes' by polling.

Why one: the runner, the job table and the queue summary each used to listen to the store and poll its
``data_version`` on their own timers, so every job change was heard two or three times. The feed listens
once (the store calls listeners on whichever thread committed, so events are re-posted to the GUI thread
through a queued signal) and polls once (``whisperdesk watch`` and ``whisperdesk jobs`` change the same
database from other processes), and re-emits both as the same signals on the GUI thread.
"""

from __future__ import annotations

import logging
import sqlite3

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from whisperdesk.core.jobstore import JobEvent, JobStore, JobStoreError

log = logging.getLogger(__name__)

POLL_MS = 1000


class StoreFeed(QObject):
    """``jobChanged(Job)`` for each added or changed job (progress writes included), ``jobRemoved(id)``,
    ``changed()`` once per batch of non-progress changes, and ``ticked()`` at each poll (for clocks that
    move while nothing changes: elapsed time, ETA)."""

    jobChanged = Signal(object)  # Job
    jobRemoved = Signal(int)
    changed = Signal()
    ticked = Signal()
    _relay = Signal(object)  # JobEvent, from whichever thread changed the store

    def __init__(self, store: JobStore, parent: QObject | None = None, *, poll_ms: int = POLL_MS) -> None:
        super().__init__(parent)
        self.setObjectName("StoreFeed")
        self._store = store
        self._version = store.data_version()  # read before anyone lists: later changes are seen, never lost
        self._closed = False
        self._relay.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        self._unsubscribe = store.add_listener(self._listener)
        self._timer = QTimer(self)
        self._timer.setObjectName("StoreFeed.poll")
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)
        self._timer.start()

    @property
    def store(self) -> JobStore:
        return self._store

    def timers(self) -> list[QTimer]:
        return [self._timer]

    @Slot()
    def poll(self) -> None:
        """Pick up changes made by other processes (and any this process made that are not heard yet)."""
        if self._closed:
            return
        try:
            if self._store.data_version() != self._version:
                changes = self._store.changes_since(self._version)
                self._version = changes.version
                for job in changes.jobs:
                    self.jobChanged.emit(job)
                for job_id in changes.removed:
                    self.jobRemoved.emit(job_id)
                self.changed.emit()
        except (JobStoreError, sqlite3.Error) as exc:
            log.error("cannot read the job list: %s", exc)
            return
        self.ticked.emit()

    def close(self) -> None:
        """Stop listening and polling (idempotent); call before the store closes."""
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        self._unsubscribe()

    def _listener(self, event: JobEvent) -> None:
        """Runs on the thread that changed the store: only re-post to the GUI thread."""
        self._relay.emit(event)

    @Slot(object)
    def _on_event(self, event: JobEvent) -> None:
        if self._closed:
            return
        if event.kind == "removed":
            self.jobRemoved.emit(event.job_id)
        elif event.job is not None:
            self.jobChanged.emit(event.job)
        if event.kind != "progress":
            self.changed.emit()
