"""The window's processing loop: a thin Qt adapter over the core queue's one way to claim and run a job.

Why it looks like this:

* **One path.** Claiming and running a job (and the error policy) is :func:`run_next`, queuing a file (and
  the duplicate rule) is :func:`enqueue`, the number of jobs at once is :func:`workers_for` — exactly what
  ``whisperdesk watch`` calls. This module only moves that work off the GUI thread and back as signals.
* **The GUI thread never waits on SQLite writes or audio.** Claims and adds (which hash files) run as
  QRunnables on the runner's own named ``QThreadPool``; tasks emit signals of one ``_Signals`` object
  created in the GUI thread and owned by the runner; every connection goes to an ``@Slot`` with exact types.
* **The runner alone owns pause.** "Pause after the current job" stops claiming; "pause now" also puts the
  running jobs back in the queue. Tray, window and model errors all go through :meth:`set_paused` /
  :meth:`pause_now` and hear back through ``pausedChanged``.
* **It hears of the store from the feed.** Changes (this process's and other processes') arrive through the
  window's one :class:`StoreFeed`; the runner polls nothing itself. The queue summary and ETA live in
  :class:`QueueSummaryFeed`, not here.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from whisperdesk.core.errors import SUPERSEDED, WhisperDeskError
from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, QUEUED, RUNNING, Job, JobStore, JobStoreError
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.queue.cancel import CancelRegistry
from whisperdesk.core.queue.enqueue import Enqueued, enqueue
from whisperdesk.core.queue.retry import retry_settings
from whisperdesk.core.queue.run import RunOutcome, run_next
from whisperdesk.core.queue.workers import MAX_WORKERS, workers_for
from whisperdesk.core.settings import Settings
from whisperdesk.services.store_feed import StoreFeed
from whisperdesk.services.throttle import Throttle

log = logging.getLogger(__name__)

PROGRESS_PER_SECOND = 10.0
WORKER_EMIT_INTERVAL = 0.02  # seconds between progress signals from one worker
STORE_ERRORS: tuple[type[Exception], ...] = (JobStoreError, sqlite3.Error)  # a locked or damaged database
ADDS_WAIT_MS = 30_000  # quitting waits this long for files being queued (hashing), never for jobs


@dataclass(frozen=True)
class AddRequest:
    """One file to queue, with the settings dict it will run with (see :func:`job_settings`)."""

    path: Path
    settings: dict[str, Any] = field(hash=False)
    origin: str = "dropped"
    watch_folder: str | None = None


class _Signals(QObject):
    """Created in the GUI thread and owned by the runner; the pool's tasks only emit."""

    claimed = Signal(object)  # Job
    progress = Signal(int, float, float)  # job id, audio seconds done, total
    waiting = Signal(int, bool)  # job id, True while it waits for the model
    ended = Signal(object)  # RunOutcome (idle, finished or pause)
    added = Signal(object)  # list[Enqueued]


class _ProgressRelay:
    """The processor's progress callback, on the worker thread: emits at most every 20 ms, always the end."""

    def __init__(self, signals: _Signals) -> None:
        self._signals = signals
        self._last = float("-inf")

    def __call__(self, job_id: int, done: float, total: float) -> None:
        now = time.monotonic()
        if done < total and now - self._last < WORKER_EMIT_INTERVAL:
            return
        self._last = now
        self._signals.progress.emit(job_id, float(done), float(total))

    def waiting(self, job_id: int, waiting: bool) -> None:
        """The processor's "waiting for the model" report (batched jobs), on the worker thread."""
        self._signals.waiting.emit(job_id, bool(waiting))


class _JobTask(QRunnable):
    """Claim and run one job through :func:`run_next`; always ends with exactly one ``ended``."""

    def __init__(
        self, store: JobStore, processor: JobProcessor, signals: _Signals, registry: CancelRegistry
    ) -> None:
        super().__init__()
        self._store = store
        self._processor = processor
        self._signals = signals
        self._registry = registry

    def run(self) -> None:
        outcome = run_next(
            self._store,
            self._processor,
            self._registry,
            progress=_ProgressRelay(self._signals),
            on_claimed=self._signals.claimed.emit,
        )
        self._signals.ended.emit(outcome)


class _AddTask(QRunnable):
    """Queue files off the GUI thread through :func:`enqueue` (it hashes each file)."""

    def __init__(
        self,
        store: JobStore,
        requests: Sequence[AddRequest],
        signals: _Signals,
        ledger: OutputLedger,
        precheck: Callable[[Job], Job] | None = None,
    ) -> None:
        super().__init__()
        self._store = store
        self._ledger = ledger
        self._requests = list(requests)
        self._signals = signals
        self._precheck = precheck  # answers before work: a job that cannot be written fails now

    def run(self) -> None:
        results = [
            enqueue(
                self._store,
                r.path,
                r.settings,
                origin=r.origin,  # type: ignore[arg-type]
                watch_folder=r.watch_folder,
                ledger=self._ledger,
                precheck=self._precheck,
            )
            for r in self._requests
        ]
        self._signals.added.emit(results)


class JobRunner(QObject):
    """Runs the job store's queue on a private thread pool. Create, connect, then :meth:`start`."""

    jobStarted = Signal(int)  # job id
    jobProgress = Signal(int, float, float)  # job id, audio seconds done, total; ≤ 10/s per job
    jobCanceling = Signal(int)  # job id: cancel asked, the job stops at once
    jobWaiting = Signal(int, bool)  # job id, True while it runs but waits for the model (others' batches)
    jobFinished = Signal(object)  # Job (done)
    jobFailed = Signal(object)  # Job (failed)
    jobCanceled = Signal(object)  # Job (canceled)
    jobRequeued = Signal(object)  # Job put back in the queue (pause now, quitting, model error)
    queueDrained = Signal(int, int, int)  # jobs done, failed, canceled in the run that just ended
    pausedChanged = Signal(bool)
    busyChanged = Signal(bool)  # True while at least one job runs
    modelError = Signal(str)  # the queue paused itself: the model (or the job list) cannot be used
    jobsAdded = Signal(object)  # list[Enqueued] of one add_paths/submit call
    addFailed = Signal(str, str)  # path, why it could not be queued
    actionFailed = Signal(str)  # a retry/cancel/remove that could not be done, and why

    def __init__(
        self,
        store: JobStore,
        processor: JobProcessor,
        settings: Callable[[], Settings],
        parent: QObject | None = None,
        *,
        feed: StoreFeed | None = None,
        max_workers: int = MAX_WORKERS,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("JobRunner")
        self._store = store
        self._processor = processor
        self._settings = settings
        self._max_workers = max(1, min(max_workers, MAX_WORKERS))
        self._pool = QThreadPool(self)
        self._pool.setObjectName("whisperdesk-jobs")
        self._pool.setMaxThreadCount(self._max_workers)
        # Adds have a pool of their own: quitting waits for them (a file given is never dropped) but not
        # for the jobs (a window in CTranslate2's generate cannot be interrupted; see abandon()).
        self._add_pool = QThreadPool(self)
        self._add_pool.setObjectName("whisperdesk-adds")
        self._add_pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.claimed.connect(self._on_claimed)
        self._signals.progress.connect(self._on_progress)
        self._signals.waiting.connect(self._on_waiting)
        self._signals.ended.connect(self._on_ended)
        self._signals.added.connect(self._on_added)
        self._feed = feed or StoreFeed(store, self)
        self._feed.changed.connect(self._on_store_changed)
        self._registry = CancelRegistry()
        self._slots = 0  # job tasks started and not yet reported back
        self._adding = 0  # add tasks started and not yet reported back
        self._running: dict[int, Job] = {}
        self._throttles: dict[int, Throttle] = {}
        self._remove_after: set[int] = set()
        self._counts = {DONE: 0, FAILED: 0, CANCELED: 0}  # jobs ended since the queue last drained
        self._paused = False
        self._started = False
        self._closing = False
        self._busy = False

    # --- state --------------------------------------------------------------------------------------
    @property
    def pool(self) -> QThreadPool:
        return self._pool

    @property
    def feed(self) -> StoreFeed:
        return self._feed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def closing(self) -> bool:
        return self._closing

    def is_busy(self) -> bool:
        """True while a job runs (what quitting asks about)."""
        return bool(self._running)

    def running_jobs(self) -> list[Job]:
        return list(self._running.values())

    def timers(self) -> list[QTimer]:
        """Every timer the runner owns (for tests that check nothing is left running)."""
        return self.findChildren(QTimer)

    def concurrency(self) -> int:
        return min(self._max_workers, workers_for(self._settings().model.batch_size))

    # --- control ------------------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        """Recover jobs a crashed session left running, then begin claiming (unless paused)."""
        if self._started or self._closing:
            return
        self._started = True
        try:
            recovery = self._store.recover_after_crash()
        except STORE_ERRORS as exc:
            log.error("could not check the job list for interrupted jobs: %s", exc)
        else:
            if recovery.requeued or recovery.failed:
                log.warning(
                    "%d interrupted job(s) queued again, %d failed after repeated crashes",
                    len(recovery.requeued),
                    len(recovery.failed),
                )
        self._fill()

    @Slot()
    def pause(self) -> None:
        """Pause after the current job: claim no new jobs; running ones finish."""
        self.set_paused(True)

    @Slot()
    def pause_now(self) -> None:
        """Pause now: claim no new jobs and put the running ones back at the head of the queue."""
        self.set_paused(True)
        for job_id in self._registry.requeue_all():
            log.info("job %d goes back to the queue (paused now)", job_id)

    @Slot()
    def resume(self) -> None:
        self.set_paused(False)

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        if paused == self._paused:
            return
        self._paused = paused
        log.info("queue %s", "paused" if paused else "resumed")
        self.pausedChanged.emit(paused)
        self._fill()
        if not paused:
            self._check_drained()

    @Slot(int)
    def cancel(self, job_id: int) -> bool:
        """Cancel cooperatively: a running batched job stops at once (within 0.1 s); a queued one is marked."""
        if self._registry.cancel(job_id):
            self.jobCanceling.emit(job_id)
            return True
        job = self._job_or_refuse(job_id, "cancel")
        if job is None:
            return False
        if job.state not in (QUEUED, RUNNING):
            return self._refuse(f"job {job_id} ({job.name}) is already {job.state}; nothing to cancel")
        if self._registry.cancel(job_id):  # claimed by one of our workers meanwhile
            self.jobCanceling.emit(job_id)
            return True
        try:
            # Running here means another process (or a claim in flight): it stops at its next progress write.
            self._store.mark_canceled(job_id)
        except STORE_ERRORS as exc:
            return self._refuse(str(exc))
        return True

    @Slot(int)
    def retry(self, job_id: int) -> bool:
        """Queue a finished job again with the current output settings; a done job is transcribed again."""
        return self._retry(job_id)

    @Slot(int)
    def retry_overwrite(self, job_id: int) -> bool:
        """The "Overwrite" action: run the job again, replacing files in the way of its transcripts."""
        return self._retry(job_id, overwrite=True)

    @Slot(int, str)
    def retry_in_folder(self, job_id: int, folder: str) -> bool:
        """The "Choose another folder" action: run the job again, writing its transcripts to ``folder``."""
        return self._retry(job_id, output_dir=folder)

    @Slot(int)
    def remove(self, job_id: int) -> bool:
        """Forget a job; a job running here is canceled first and removed when it has stopped."""
        if job_id in self._registry:
            self._remove_after.add(job_id)
            self._registry.cancel(job_id)
            return True
        try:
            return self._store.remove(job_id)
        except STORE_ERRORS as exc:
            return self._refuse(str(exc))

    def add_paths(
        self,
        paths: Iterable[Path | str],
        settings: dict[str, Any] | None = None,
        *,
        origin: str = "dropped",
        watch_folder: str | None = None,
    ) -> None:
        """Queue files (off the GUI thread) with ``settings`` (default: the current settings' job options).

        Results arrive as ``jobsAdded`` (and ``addFailed`` for each file that could not be queued).
        """
        options = settings if settings is not None else job_settings(self._settings())
        self.submit([AddRequest(Path(p), options, origin, watch_folder) for p in paths])

    @Slot(list)
    def add_files(self, paths: list[Any]) -> None:
        """For ``MainWindow.filesAdded`` and files handed over by a second window: the current settings."""
        self.add_paths(paths)

    def submit(self, requests: Sequence[AddRequest]) -> None:
        """Queue prepared requests off the GUI thread (the watcher bridge uses this)."""
        if self._closing or not requests:
            return
        self._adding += 1
        self._add_pool.start(
            _AddTask(self._store, requests, self._signals, self._processor.ledger, self._processor.precheck)
        )

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop claiming, interrupt running jobs (they go back to the queue) and wait for the pool.

        Returns False when work was still running after ``timeout_ms``. Idempotent.
        """
        self.stop()
        finished = self._add_pool.waitForDone(timeout_ms) and self._pool.waitForDone(timeout_ms)
        for throttle in self._throttles.values():
            throttle.cancel()
        if not finished:
            log.warning(
                "jobs still running %.0f s after quitting was asked; they are put back in the queue next start",
                timeout_ms / 1000,
            )
        return finished

    def stop(self) -> None:
        """Begin quitting without waiting: claim nothing more, take no more adds, and ask every running job
        to stop and go back to the queue (at its next segment or window). Idempotent."""
        if self._closing:
            return
        self._closing = True
        self._feed.changed.disconnect(self._on_store_changed)
        if self._feed.parent() is self:
            self._feed.close()
        self._registry.stop_all()

    def abandon(self, grace_ms: int, adds_ms: int = ADDS_WAIT_MS) -> list[Job]:
        """Quit now (issue 17.5): after :meth:`stop`, wait for files being queued, give running jobs
        ``grace_ms`` to stop on their own, then put those still running back in the queue without them.

        Why not wait: a job stops only between segments or windows, and CTranslate2's ``generate`` cannot be
        interrupted from Python, so one window of a long recording (or a batch of them) holds its thread for
        many seconds on a CPU. Its record is released here instead (queued again, not counted as a crash; a
        worker that ends later finds it queued and leaves it so), and the caller ends the process without
        waiting for the thread. Files being queued are waited for (``adds_ms``, hashing only): a file given
        to the window is never dropped. Returns the jobs abandoned; empty when every worker ended in time.
        """
        self.stop()
        if not self._add_pool.waitForDone(adds_ms):
            log.warning("files were still being queued %.0f s after quitting was asked", adds_ms / 1000)
        finished = self._pool.waitForDone(max(0, grace_ms))
        for throttle in self._throttles.values():
            throttle.cancel()
        if finished:
            return []
        abandoned: list[Job] = []
        for job_id in self._registry.running():
            try:
                job = self._store.release(job_id)
            except STORE_ERRORS as exc:  # it ended meanwhile (JobStateError), or the store is unusable
                log.info("job %d not released at quit: %s", job_id, exc)
                continue
            log.info("quit: job %d left mid-window, queued again: %s", job_id, job.source)
            abandoned.append(job)
        return abandoned

    def workers_done(self) -> bool:
        """True when no job thread runs any more. After :meth:`abandon` a worker may still be between its
        last write and its return even when no job was left to release (it released its own job first):
        its thread still uses the store's connection, so the store must not be closed under it."""
        return bool(self._pool.waitForDone(0))

    # --- the pool's side ----------------------------------------------------------------------------
    def _fill(self) -> None:
        """Start claim tasks for free slots while jobs are queued."""
        if not self._started or self._paused or self._closing:
            return
        free = self.concurrency() - self._slots
        if free <= 0:
            return
        try:
            waiting = len(self._store.list([QUEUED], limit=free))
        except STORE_ERRORS as exc:
            log.error("cannot read the job queue: %s", exc)
            return
        for _ in range(waiting):
            self._slots += 1
            self._pool.start(_JobTask(self._store, self._processor, self._signals, self._registry))

    @Slot()
    def _on_store_changed(self) -> None:
        if not self._closing:
            self._fill()

    @Slot(object)
    def _on_claimed(self, job: Job) -> None:
        self._running[job.id] = job
        self._set_busy()
        self.jobStarted.emit(job.id)

    @Slot(int, float, float)
    def _on_progress(self, job_id: int, done: float, total: float) -> None:
        if job_id not in self._running or self._closing:
            return
        throttle = self._throttles.get(job_id)
        if throttle is None:
            throttle = Throttle(partial(self._emit_progress, job_id), PROGRESS_PER_SECOND, self)
            self._throttles[job_id] = throttle
        throttle(done, total)

    @Slot(int, bool)
    def _on_waiting(self, job_id: int, waiting: bool) -> None:
        if job_id in self._running and not self._closing:
            self.jobWaiting.emit(job_id, waiting)

    def _emit_progress(self, job_id: int, done: float, total: float) -> None:
        self.jobProgress.emit(job_id, done, total)

    @Slot(object)
    def _on_ended(self, outcome: RunOutcome) -> None:
        self._slots -= 1
        job = outcome.job
        if job is not None:
            self._end(job.id)
        if outcome.kind == "pause":
            log.error("queue paused: %s", outcome.message)
            self.set_paused(True)
            self.modelError.emit(outcome.message)
            if job is not None:
                self.jobRequeued.emit(job)
        elif job is not None:
            self._announce(job)
        self._set_busy()
        if self._closing:
            return
        if outcome.kind != "idle":
            # After an empty claim, wait for the feed: what is queued may be a copy waiting for its twin,
            # and claiming again at once would spin until the twin is done.
            self._fill()
        self._check_drained()

    def _end(self, job_id: int) -> None:
        throttle = self._throttles.pop(job_id, None)
        if throttle is not None:
            throttle.flush()  # the last progress value arrives before the job's end
            throttle.cancel()
            throttle.deleteLater()
        self._running.pop(job_id, None)

    def _announce(self, job: Job) -> None:
        if job.state in self._counts:
            self._counts[job.state] += 1
        if job.state == DONE:
            self.jobFinished.emit(job)
        elif job.state == FAILED:
            log.warning("%s failed: %s", job.source, job.error)  # shown in the window's log view
            self.jobFailed.emit(job)
        elif job.state == CANCELED:
            if job.error_kind == SUPERSEDED:  # the Log says why a job stopped that nobody canceled
                log.warning("%s: %s", job.source, job.error)
            self.jobCanceled.emit(job)
        elif job.state == QUEUED:
            self.jobRequeued.emit(job)
        if job.id in self._remove_after:
            self._remove_after.discard(job.id)
            try:
                self._store.remove(job.id)
            except STORE_ERRORS as exc:
                self._refuse(str(exc))

    def _check_drained(self) -> None:
        """Say once per run of the queue that it is empty (for the "queue finished" notification)."""
        if self._slots or self._adding or self._paused or self._closing or not any(self._counts.values()):
            return
        try:
            if self._store.list([QUEUED, RUNNING], limit=1):
                return
        except STORE_ERRORS:
            return
        done, failed, canceled = self._counts[DONE], self._counts[FAILED], self._counts[CANCELED]
        self._counts = dict.fromkeys(self._counts, 0)
        log.info("queue drained: %d done, %d failed, %d canceled", done, failed, canceled)
        self.queueDrained.emit(done, failed, canceled)

    def _set_busy(self) -> None:
        busy = bool(self._running)
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)

    def _job_or_refuse(self, job_id: int, verb: str) -> Job | None:
        try:
            job = self._store.get(job_id)
        except STORE_ERRORS as exc:
            self._refuse(f"cannot {verb} job {job_id}: {exc}")
            return None
        if job is None:
            self._refuse(f"job {job_id} no longer exists")
        return job

    def _retry(self, job_id: int, *, overwrite: bool = False, output_dir: str | None = None) -> bool:
        job = self._job_or_refuse(job_id, "retry")
        if job is None:
            return False
        if job.state not in (FAILED, CANCELED, DONE):
            return self._refuse(
                f"job {job_id} ({job.name}) is {job.state}; only finished jobs can be retried"
            )
        options = retry_settings(job, self._settings(), overwrite=overwrite, output_dir=output_dir)
        try:
            if job.state == DONE:
                result = self._store.rerun(job_id, options)
                if not result.created:
                    return self._refuse(f"{job.name} was not queued again: {result.reason}")
            else:
                self._store.retry(job_id, settings=options)
        except (WhisperDeskError, sqlite3.Error) as exc:
            return self._refuse(getattr(exc, "reason", None) or str(exc))
        self._fill()
        return True

    def _refuse(self, message: str) -> bool:
        log.warning(message)
        self.actionFailed.emit(message)
        return False

    # --- adding -------------------------------------------------------------------------------------
    @Slot(object)
    def _on_added(self, results: list[Enqueued]) -> None:
        self._adding -= 1
        for outcome in results:
            if outcome.created and outcome.job is not None and outcome.job.state == FAILED:
                # Failed at once by the checks that need no model (answers before work): told like any
                # failed job — its row, the notification, the run's counts — not as a file not queued.
                self._announce(outcome.job)
            elif outcome.problem and outcome.old_news:
                log.info("not queued again: %s: %s", outcome.path, outcome.reason)  # told when it failed
            elif outcome.problem:
                log.warning("not queued: %s: %s", outcome.path, outcome.reason)
                self.addFailed.emit(str(outcome.path), outcome.reason)
        self.jobsAdded.emit(results)
        if not self._closing:
            self._fill()
            self._check_drained()


__all__ = ["AddRequest", "JobRunner"]
