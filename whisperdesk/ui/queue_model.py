"""The job table: a ``QAbstractTableModel`` over the job store, updated in place.

Three sources keep it current, none of which resets the model:

* **Store events** of this process (claims, finishes, adds by the runner's pool threads) are re-posted to
  the GUI thread through a queued signal and applied row by row.
* **Polling** ``JobStore.data_version()`` (one indexed read) notices changes by other processes such as
  ``whisperdesk watch``; ``changes_since`` then returns only what changed.
* **Live progress** comes from the runner's throttled ``jobProgress`` (≤ 10/s per job), fresher than the
  store, which records progress twice a second.

Each job record carries the store's change number, so an event that arrives late (threads post in any
order) never overwrites a newer record, and ids of removed jobs are remembered so they never come back.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Slot,
)
from PySide6.QtGui import QBrush, QColor

from whisperdesk.core.jobstore import (
    CANCELED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    Job,
    JobStore,
)
from whisperdesk.core.queue_stats import format_seconds, job_timing
from whisperdesk.core.speakers.saved import job_speaker_note, job_speakers
from whisperdesk.services.job_text import error_summary, window_error
from whisperdesk.services.store_feed import StoreFeed

log = logging.getLogger(__name__)

POLL_MS = 500

ModelIndex = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    FILE = 0
    STATE = 1
    PROGRESS = 2
    DURATION = 3
    ELAPSED = 4
    ETA = 5
    SPEED = 6
    LANGUAGE = 7
    SPEAKERS = 8
    ERROR = 9


HEADERS: dict[Column, str] = {
    Column.FILE: "File",
    Column.STATE: "State",
    Column.PROGRESS: "Progress",
    Column.DURATION: "Duration",
    Column.ELAPSED: "Elapsed",
    Column.ETA: "ETA",
    Column.SPEED: "Speed",
    Column.LANGUAGE: "Language",
    Column.SPEAKERS: "Speakers",
    Column.ERROR: "Error",
}
STATE_LABELS = {QUEUED: "Queued", RUNNING: "Running", DONE: "Done", FAILED: "Failed", CANCELED: "Canceled"}
CANCELING_LABEL = "Canceling…"
WAITING_LABEL = "Waiting"  # running, but its windows wait while other jobs' batches decode (tooltip says so)
WAITING_TIP = "Running: waiting for the model, which is decoding other recordings' batches"
NUMERIC = (Column.PROGRESS, Column.DURATION, Column.ELAPSED, Column.ETA, Column.SPEED)
TIME_COLUMNS = (Column.ELAPSED, Column.ETA, Column.SPEED)

ProgressRole = int(Qt.ItemDataRole.UserRole) + 1  # float 0..1 for the progress-bar delegate
JobRole = int(Qt.ItemDataRole.UserRole) + 2  # the Job record
JobIdRole = int(Qt.ItemDataRole.UserRole) + 3


class JobTableModel(QAbstractTableModel):
    """Rows are the store's (non-archived) jobs in id order. Call :meth:`close` before dropping it."""

    def __init__(
        self,
        store: JobStore,
        parent: QObject | None = None,
        *,
        poll_ms: int = POLL_MS,
        clock: Callable[[], float] = time.time,
        feed: StoreFeed | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._clock = clock
        self._feed = feed or StoreFeed(store, self, poll_ms=poll_ms)  # before listing: nothing missed
        self._jobs: list[Job] = store.list()
        self._ids: list[int] = [j.id for j in self._jobs]
        self._gone: set[int] = set()  # removed or archived ids; never shown again
        self._live: dict[int, tuple[float, float]] = {}  # running job -> (audio seconds done, total)
        self._probed: dict[int, float] = {}
        self._canceling: set[int] = set()  # cancel asked for, job still running: shown until it stops
        self._waiting: set[int] = set()  # running jobs whose windows wait for the model
        self._paced: dict[int, tuple[float, float]] = {}  # running job -> (time, done) of its first progress
        self._speaker_cache: dict[int, tuple[int, list[str]]] = {}  # job id -> (job version, names)
        self._edited: set[int] = set()  # done jobs whose transcript the user corrected
        self._speaker_source: Callable[[int], list[str]] | None = None
        self._closed = False
        self._feed.jobChanged.connect(self._on_job_changed)
        self._feed.jobRemoved.connect(self._on_job_removed)
        self._feed.ticked.connect(self._tick_running)

    # --- Qt model API -------------------------------------------------------------------------------
    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._jobs)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[Column(section)] if 0 <= section < len(Column) else None
        return None

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._jobs):
            return None
        job = self._jobs[index.row()]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(job, column)
        if role == ProgressRole:  # no bar for jobs that did not finish: a full bar would read as success
            return None if job.state in (FAILED, CANCELED) else self.progress_of(job)
        if role == JobRole:
            return job
        if role == JobIdRole:
            return job.id
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(job, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and column in (Column.STATE, Column.ERROR):
            if job.state == FAILED:
                return QBrush(QColor(200, 40, 40))
            if job.state == CANCELED:
                return QBrush(QColor(128, 128, 128))
        return None

    # --- reading ------------------------------------------------------------------------------------
    def job_at(self, row: int) -> Job:
        return self._jobs[row]

    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def row_of(self, job_id: int) -> int | None:
        row = bisect.bisect_left(self._ids, job_id)
        return row if row < len(self._ids) and self._ids[row] == job_id else None

    def job(self, job_id: int) -> Job | None:
        row = self.row_of(job_id)
        return None if row is None else self._jobs[row]

    def progress_of(self, job: Job) -> float:
        """0..1, from live progress while the job runs, else the store's record."""
        if job.state == RUNNING:
            live = self._live.get(job.id)
            if live is not None and live[1] > 0:
                return min(1.0, max(0.0, live[0] / live[1]))
        return 1.0 if job.state == DONE else min(1.0, max(0.0, job.progress))

    def duration_of(self, job: Job) -> float | None:
        if job.duration:
            return job.duration
        live = self._live.get(job.id)
        if live is not None and live[1] > 0:
            return live[1]
        probed = self._probed.get(job.id)
        return probed if probed and probed > 0 else None

    def timers(self) -> list[QTimer]:
        return self.findChildren(QTimer)

    @property
    def feed(self) -> StoreFeed:
        return self._feed

    def is_canceling(self, job_id: int) -> bool:
        return job_id in self._canceling

    # --- updates ------------------------------------------------------------------------------------
    @Slot(int, float, float)
    def on_job_progress(self, job_id: int, done: float, total: float) -> None:
        """Connect to ``JobRunner.jobProgress``. Progress of a job being canceled is not shown: the row
        stays where it was when the user clicked."""
        if job_id in self._canceling:
            return
        if done > 0 and job_id not in self._paced:
            self._paced[job_id] = (self._clock(), done)  # its pace is measured from its first decoded work
        self._live[job_id] = (done, total)
        row = self.row_of(job_id)
        if row is not None:
            self._changed(row, Column.PROGRESS, Column.SPEED)

    @Slot(int)
    def mark_canceling(self, job_id: int) -> None:
        """The user asked to cancel: show "Canceling…" at once, until the job's record says it stopped
        (a running batched job stops within a tenth of a second; a sequential one at its next segment)."""
        row = self.row_of(job_id)
        if row is None or self._jobs[row].state != RUNNING:
            return
        self._canceling.add(job_id)
        self._changed(row, Column.STATE, Column.STATE)

    @Slot(int, bool)
    def set_waiting(self, job_id: int, waiting: bool) -> None:
        """Connect to ``JobRunner.jobWaiting``: a running job shows "Waiting" meanwhile."""
        if waiting == (job_id in self._waiting):
            return
        (self._waiting.add if waiting else self._waiting.discard)(job_id)
        row = self.row_of(job_id)
        if row is not None:
            self._changed(row, Column.STATE, Column.STATE)

    @Slot(int, float)
    def set_probed_duration(self, job_id: int, seconds: float) -> None:
        """Connect to ``JobRunner.durationProbed``: the length of a job that has not started yet."""
        self._probed[job_id] = seconds
        row = self.row_of(job_id)
        if row is not None:
            self._changed(row, Column.DURATION, Column.DURATION)

    @Slot()
    def poll(self) -> None:
        """Pick up changes made by other processes; keep running rows' elapsed time and ETA moving."""
        if not self._closed:
            self._feed.poll()

    def apply(self, job: Job) -> None:
        """Insert or update one job's row (ignoring records older than the one shown)."""
        if job.id in self._gone:
            return
        if job.archived:
            self.remove_id(job.id)
            self._gone.add(job.id)
            return
        row = bisect.bisect_left(self._ids, job.id)
        if row < len(self._ids) and self._ids[row] == job.id:
            old = self._jobs[row]
            if job.version < old.version or job == old:
                return
            self._jobs[row] = job
            if job.state != RUNNING or (old.state != RUNNING and job.state == RUNNING):
                self._live.pop(job.id, None)  # a new run starts from its own progress
                self._canceling.discard(job.id)
                self._waiting.discard(job.id)
                self._paced.pop(job.id, None)
            self._changed(row, Column.FILE, Column.ERROR)
            return
        self.beginInsertRows(QModelIndex(), row, row)
        self._jobs.insert(row, job)
        self._ids.insert(row, job.id)
        self.endInsertRows()

    def remove_id(self, job_id: int) -> None:
        self._gone.add(job_id)
        self._live.pop(job_id, None)
        self._canceling.discard(job_id)
        self._waiting.discard(job_id)
        self._paced.pop(job_id, None)
        self._probed.pop(job_id, None)
        row = self.row_of(job_id)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._jobs[row]
        del self._ids[row]
        self.endRemoveRows()

    def close(self) -> None:
        """Stop following the store (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._feed.jobChanged.disconnect(self._on_job_changed)
        self._feed.jobRemoved.disconnect(self._on_job_removed)
        self._feed.ticked.disconnect(self._tick_running)
        if self._feed.parent() is self:
            self._feed.close()

    # --- internals ----------------------------------------------------------------------------------
    @Slot(object)
    def _on_job_changed(self, job: Job) -> None:
        if not self._closed:
            self.apply(job)

    @Slot(int)
    def _on_job_removed(self, job_id: int) -> None:
        if not self._closed:
            self.remove_id(job_id)

    def _changed(self, row: int, first: Column, last: Column) -> None:
        self.dataChanged.emit(self.index(row, int(first)), self.index(row, int(last)))

    @Slot()
    def _tick_running(self) -> None:
        rows = [i for i, j in enumerate(self._jobs) if j.state == RUNNING]
        if rows:
            self.dataChanged.emit(
                self.index(rows[0], int(TIME_COLUMNS[0])), self.index(rows[-1], int(TIME_COLUMNS[-1]))
            )

    def _display(self, job: Job, column: Column) -> str:
        if column == Column.FILE:
            return job.name
        if column == Column.STATE:
            if job.state == RUNNING and job.id in self._canceling:
                return CANCELING_LABEL
            if job.state == RUNNING and job.id in self._waiting:
                return WAITING_LABEL
            label = STATE_LABELS.get(job.state, job.state)
            if job.state == DONE and job.id in self._edited:
                return f"{label} · edited"
            return f"{label} (attempt {job.attempts})" if job.state == RUNNING and job.attempts > 1 else label
        if column == Column.PROGRESS:
            if job.state == FAILED:
                return ""
            percent = f"{round(self.progress_of(job) * 100)} %"
            return f"stopped at {percent}" if job.state == CANCELED else percent
        if column == Column.DURATION:
            return format_seconds(self.duration_of(job))
        if column == Column.LANGUAGE:
            return job.language or ""
        if column == Column.SPEAKERS:
            return self._speakers_text(job)
        if column == Column.ERROR:
            return error_summary(job)
        live = self._live.get(job.id) if job.state == RUNNING else None
        timing = job_timing(job, self._clock(), *(live or (None, None)), paced_from=self._paced.get(job.id))
        if column == Column.ELAPSED:
            return format_seconds(timing.elapsed)
        if column == Column.ETA:
            return format_seconds(timing.eta)
        return f"{timing.speed:.1f}×" if timing.speed else ""

    def speaker_names(self, job: Job) -> list[str]:
        """The done job's speaker names (empty without speaker labels), read once per job version."""
        cached = self._speaker_cache.get(job.id)
        if cached is None or cached[0] != job.version:
            names: list[str] = []
            if job.state == DONE and self._speaker_source is not None:
                names = self._speaker_source(job.id)  # the transcript of record, with the user's corrections
            if not names and job.state == DONE and (job.settings or {}).get("speakers"):
                names = job_speakers(job.id)
            cached = self._speaker_cache[job.id] = (job.version, names)
        return cached[1]

    def set_speaker_source(self, source: Callable[[int], list[str]] | None) -> None:
        """Where a done job's speaker names come from first (the transcript library, through its service)."""
        self._speaker_source = source
        self._speaker_cache.clear()

    def set_edited_jobs(self, job_ids: set[int]) -> None:
        """Which done jobs have corrected transcripts (from the library at start)."""
        self._edited = set(job_ids)
        if self._jobs:
            self.dataChanged.emit(
                self.index(0, int(Column.STATE)), self.index(len(self._jobs) - 1, int(Column.STATE))
            )

    @Slot(int, bool)
    def set_edited(self, job_id: int, edited: bool) -> None:
        """A save marked (or a retry unmarked) the job's transcript as corrected."""
        (self._edited.add if edited else self._edited.discard)(job_id)
        self._speaker_cache.pop(job_id, None)  # a save may have renamed or added speakers
        if job_id in self._ids:
            self._changed(self._ids.index(job_id), Column.STATE, Column.SPEAKERS)

    def is_edited(self, job_id: int) -> bool:
        return job_id in self._edited

    @Slot(int)
    def refresh_speakers(self, job_id: int) -> None:
        """After a rename: read the job's speaker names again."""
        self._speaker_cache.pop(job_id, None)
        if job_id in self._ids:
            self._changed(self._ids.index(job_id), Column.SPEAKERS, Column.SPEAKERS)

    def _speakers_text(self, job: Job) -> str:
        requested = (job.settings or {}).get("speakers")
        if not requested:
            return ""
        names = self.speaker_names(job)
        return str(len(names)) if names else ("" if job.state == DONE else str(requested))

    def _tooltip(self, job: Job, column: Column) -> str | None:
        if column == Column.FILE:
            return str(job.source)
        if column == Column.SPEAKERS and self.speaker_names(job):
            note = job_speaker_note(job.id)  # asked for N, found another number: why
            return ", ".join(self.speaker_names(job)) + (f"\n{note}" if note else "")
        if column in (Column.ERROR, Column.STATE) and job.error:
            return window_error(job)
        if column == Column.STATE:  # the whole label, wherever a narrow column cuts it
            if job.state == RUNNING and job.id in self._waiting and job.id not in self._canceling:
                return WAITING_TIP
            if job.state == DONE and job.id in self._edited:
                return "Done; its transcript has your corrections"
            return self._display(job, column)
        if column == Column.SPEED:
            return "seconds of audio transcribed per second (× realtime)"
        return None
