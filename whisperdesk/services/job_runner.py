"""The GUI's processing loop: claims queued jobs from the store and runs them on its own thread pool.

Why it looks like this:

* **The GUI thread never waits on SQLite writes or audio.** Claims, adds (which hash files) and duration
  probes run as QRunnables on the runner's own named ``QThreadPool``; the GUI thread only does cheap
  indexed reads (is anything queued? what is running?).
* **Qt's cross-thread rules.** Tasks emit signals of one ``_Signals`` object created in the GUI thread and
  owned by the runner (never by the auto-deleted runnable); every connection goes to an ``@Slot`` of the
  runner with exact types. Cancel flags are plain ``threading.Event`` objects in a locked registry, so
  ``cancel()`` reaches a job the moment it is claimed.
* **One way to run a job.** Every job goes through :meth:`JobProcessor.process`, exactly like the
  headless ``whisperdesk watch`` loop: cancel is cooperative (the engine checks between segments and
  batches), quitting releases running jobs back to the queue, a model error pauses the queue.
* **Concurrency follows the batch size.** One job at a time with batch size 1; with larger batches up to
  ``min(batch_size, 4)`` jobs run at once and the engine's scheduler packs their windows into shared
  batches. The setting is read at each claim, so a change applies to the next job.
* **Bounded update rates.** Workers drop progress calls closer than 20 ms apart (never the last one);
  the GUI side forwards at most 10 per second per job through :class:`Throttle`, and recomputes the queue
  summary at most twice a second.
"""

from __future__ import annotations

import copy
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal, Slot

from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.jobstore import (
    CANCELED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    AddResult,
    Job,
    JobEvent,
    JobStore,
    JobStoreError,
)
from whisperdesk.core.processor import ENGINE_ERRORS, OVERWRITE_KEY, JobProcessor, job_settings
from whisperdesk.core.queue_stats import QueueSummary, recent_speed, summarize
from whisperdesk.core.settings import Settings
from whisperdesk.services.job_text import window_error
from whisperdesk.services.throttle import Throttle

log = logging.getLogger(__name__)

MAX_WORKERS = 4
PROGRESS_PER_SECOND = 10.0
SUMMARY_PER_SECOND = 2.0
WORKER_EMIT_INTERVAL = 0.02  # seconds between progress signals from one worker
POLL_MS = 1000  # how often changes made by other processes are looked for
PROBE_BATCH = 50
NO_FRACTION = -1.0
STORE_ERRORS: tuple[type[Exception], ...] = (
    JobStoreError,
    sqlite3.Error,
)  # a locked or damaged database  # queueSummary's fraction when there is nothing to show a bar for


PAUSE_NONE = ""
PAUSE_AFTER_CURRENT = "after_current"  # running jobs finish; nothing new starts
PAUSE_NOW = "now"  # running jobs stop at once and go back to the head of the queue


def workers_for(batch_size: int) -> int:
    """Jobs to run at once: more than one only helps when the scheduler can batch their windows."""
    return 1 if batch_size <= 1 else min(batch_size, MAX_WORKERS)


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
    finished = Signal(object)  # the job's final record (done, failed, canceled or back in the queue)
    modelError = Signal(int, str)  # job id, message
    crashed = Signal(int, str)  # job id (0: none was claimed), message
    idle = Signal()  # a claim found nothing queued
    added = Signal(object)  # list[AddResult]
    addFailed = Signal(str, str)  # path, reason
    probed = Signal(int, float)  # job id, audio seconds (-1: unknown)
    wake = Signal()  # the store changed; there may be work or a new summary


class _CancelRegistry:
    """The cancel flag of every job running on the pool; shared by the GUI thread and the workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[int, threading.Event] = {}
        self._releases: dict[int, threading.Event] = {}  # set: the job goes back to the queue when it stops
        self.shutdown = threading.Event()

    def register(self, job_id: int) -> tuple[threading.Event, threading.Event]:
        """The job's cancel flag and its release flag (quitting or "pause now": back to the queue)."""
        event, release = threading.Event(), threading.Event()
        with self._lock:
            self._events[job_id] = event
            self._releases[job_id] = release
            if self.shutdown.is_set():
                release.set()
                event.set()
        return event, release

    def unregister(self, job_id: int) -> None:
        with self._lock:
            self._events.pop(job_id, None)
            self._releases.pop(job_id, None)

    def release_all(self) -> int:
        """Stop every running job and put it back in the queue ("pause now"); returns how many."""
        with self._lock:
            pairs = [(self._releases[i], e) for i, e in self._events.items()]
        for release, event in pairs:
            release.set()
            event.set()
        return len(pairs)

    def cancel(self, job_id: int) -> bool:
        with self._lock:
            event = self._events.get(job_id)
        if event is None:
            return False
        event.set()
        return True

    def __contains__(self, job_id: object) -> bool:
        with self._lock:
            return job_id in self._events


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


class _JobTask(QRunnable):
    """Claim the oldest queued job and run it; always ends with exactly one of idle/finished/modelError/crashed."""

    def __init__(
        self, store: JobStore, processor: JobProcessor, signals: _Signals, registry: _CancelRegistry
    ) -> None:
        super().__init__()
        self._store = store
        self._processor = processor
        self._signals = signals
        self._registry = registry

    def run(self) -> None:
        if self._registry.shutdown.is_set():
            self._signals.idle.emit()
            return
        try:
            job = self._store.claim_next()
        except Exception as exc:  # a locked or broken database must not kill the pool thread silently
            log.exception("could not take the next job from the queue")
            self._signals.crashed.emit(0, f"could not take the next job from the queue: {exc}")
            return
        if job is None:
            self._signals.idle.emit()
            return
        cancel, release = self._registry.register(job.id)
        self._signals.claimed.emit(job)
        final: Job | None = None
        model_error = crash = ""
        try:
            final = self._processor.process(
                job, cancel=cancel, progress=_ProgressRelay(self._signals), shutdown=release
            )
        except ENGINE_ERRORS as exc:  # the model or its configuration: every job would fail the same way
            model_error = str(exc) or type(exc).__name__
        except Exception as exc:  # a bug in one job must fail that job, never the app
            log.exception("job %d failed unexpectedly: %s", job.id, job.source)
            crash = f"unexpected error: {type(exc).__name__}: {exc}"
            self._fail_if_running(job.id, crash)
        finally:
            self._registry.unregister(job.id)  # before the GUI hears of the end, so cancel() sees it ended
        if final is not None:
            self._signals.finished.emit(final)
        elif model_error:
            self._signals.modelError.emit(job.id, model_error)
        else:
            self._signals.crashed.emit(job.id, crash)

    def _fail_if_running(self, job_id: int, message: str) -> None:
        try:
            current = self._store.get(job_id)
            if current is not None and current.state == RUNNING:
                self._store.mark_failed(job_id, message)
        except Exception:
            log.exception("could not record the failure of job %d", job_id)


class _AddTask(QRunnable):
    """Queue files off the GUI thread: ``JobStore.add`` hashes each file and commits with fsync."""

    def __init__(self, store: JobStore, requests: Sequence[AddRequest], signals: _Signals) -> None:
        super().__init__()
        self._store = store
        self._requests = list(requests)
        self._signals = signals

    def run(self) -> None:
        results: list[AddResult] = []
        for request in self._requests:
            try:
                result = self._store.add(
                    request.path,
                    request.settings,
                    origin=request.origin,  # type: ignore[arg-type]
                    watch_folder=request.watch_folder,
                )
            except WhisperDeskError as exc:
                reason = getattr(exc, "reason", None) or str(exc)
                self._signals.addFailed.emit(str(request.path), reason)
                continue
            except Exception as exc:  # report, never lose the rest of the batch
                log.exception("could not queue %s", request.path)
                self._signals.addFailed.emit(str(request.path), f"{type(exc).__name__}: {exc}")
                continue
            results.append(result)
            log.info("%s: %s", request.path, result.reason)
        self._signals.added.emit(results)


class _ProbeTask(QRunnable):
    """Read the audio length of queued jobs from their headers, for the duration column and the ETA."""

    def __init__(self, targets: Sequence[tuple[int, Path]], signals: _Signals) -> None:
        super().__init__()
        self._targets = list(targets)
        self._signals = signals

    def run(self) -> None:
        from whisperdesk.core.audio import probe

        for job_id, path in self._targets:
            try:
                seconds = float(probe(path).duration) or -1.0
            except Exception as exc:  # the job itself will report the problem when it runs
                log.debug("cannot probe %s: %s", path, exc)
                seconds = -1.0
            self._signals.probed.emit(job_id, seconds)


class JobRunner(QObject):
    """Runs the job store's queue on a private thread pool. Create, connect, then :meth:`start`."""

    jobStarted = Signal(int)  # job id
    jobProgress = Signal(int, float, float)  # job id, audio seconds done, total; ≤ 10/s per job
    jobFinished = Signal(object)  # Job (done)
    jobFailed = Signal(object)  # Job (failed)
    jobCanceled = Signal(object)  # Job (canceled)
    jobRequeued = Signal(object)  # Job put back in the queue (quitting, model error)
    queueDrained = Signal(int, int)  # jobs done, jobs failed or canceled in the run that just ended
    pausedChanged = Signal(bool)
    pauseModeChanged = Signal(str)  # PAUSE_NONE, PAUSE_AFTER_CURRENT or PAUSE_NOW
    busyChanged = Signal(bool)  # True while at least one job runs
    modelError = Signal(str)  # the queue paused itself: the model cannot be used
    queueSummary = Signal(str, float)  # status-bar text, overall fraction 0..1 (NO_FRACTION: hide the bar)
    durationProbed = Signal(int, float)  # job id, audio seconds of a job that has not started
    jobsAdded = Signal(object)  # list[AddResult] of one add_paths/submit call
    addFailed = Signal(str, str)  # path, why it could not be queued
    actionFailed = Signal(str)  # a retry/cancel/remove that could not be done, and why

    def __init__(
        self,
        store: JobStore,
        processor: JobProcessor,
        settings: Callable[[], Settings],
        parent: QObject | None = None,
        *,
        max_workers: int = MAX_WORKERS,
        poll_ms: int = POLL_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("JobRunner")
        self._store = store
        self._processor = processor
        self._settings = settings
        self._max_workers = max(1, min(max_workers, MAX_WORKERS))
        self._clock = clock
        self._pool = QThreadPool(self)
        self._pool.setObjectName("whisperdesk-jobs")
        self._pool.setMaxThreadCount(self._max_workers + 2)  # + adds and probes beside full job slots
        self._signals = _Signals(self)
        self._signals.claimed.connect(self._on_claimed)
        self._signals.progress.connect(self._on_progress)
        self._signals.finished.connect(self._on_finished)
        self._signals.modelError.connect(self._on_model_error)
        self._signals.crashed.connect(self._on_crashed)
        self._signals.idle.connect(self._on_idle)
        self._signals.added.connect(self._on_added)
        self._signals.addFailed.connect(self._on_add_failed)
        self._signals.probed.connect(self._on_probed)
        self._signals.wake.connect(self._on_wake, Qt.ConnectionType.QueuedConnection)
        self._registry = _CancelRegistry()
        self._slots = 0  # job tasks started and not yet reported back
        self._adding = 0  # add tasks started and not yet reported back
        self._running: dict[int, Job] = {}
        self._live: dict[int, float] = {}  # audio seconds done per running job
        self._throttles: dict[int, Throttle] = {}
        self._remove_after: set[int] = set()
        self._durations: dict[int, float] = {}
        self._probing: set[int] = set()
        self._recent: deque[Job] = deque(maxlen=10)
        self._run_ids: set[int] = set()
        self._run_finished: dict[int, Job] = {}
        self._run_over = True
        self._ran = False  # a job ended since the queue last drained
        self._paused = False
        self._pause_mode = PAUSE_NONE
        self._started = False
        self._closing = False
        self._busy = False
        self._summary: QueueSummary | None = None
        self._last_version = -1
        self._timer = QTimer(self)
        self._timer.setObjectName("JobRunner.poll")
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self._poll)
        self._summary_throttle = Throttle(self._update_summary, SUMMARY_PER_SECOND, self)
        self._summary_throttle.setObjectName("JobRunner.summary")
        self._unsubscribe = store.add_listener(self._store_listener)

    # --- state --------------------------------------------------------------------------------------
    @property
    def pool(self) -> QThreadPool:
        return self._pool

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

    def summary(self) -> QueueSummary | None:
        return self._summary

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
        self._timer.start()
        self._fill()
        self._request_summary()

    @Slot()
    def pause(self) -> None:
        """Claim no new jobs; running ones finish."""
        self.set_paused(True)

    @Slot()
    def resume(self) -> None:
        self.set_paused(False)

    @Slot()
    def pause_now(self) -> None:
        """Pause and stop running jobs at once; they go back to the head of the queue (no attempt counted)."""
        self.set_paused(True)
        self._set_pause_mode(PAUSE_NOW)
        stopped = self._registry.release_all()
        log.info("queue paused now; %d running job(s) go back to the queue", stopped)

    @property
    def pause_mode(self) -> str:
        return self._pause_mode

    def _set_pause_mode(self, mode: str) -> None:
        if mode != self._pause_mode:
            self._pause_mode = mode
            self.pauseModeChanged.emit(mode)

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        """Pause after the running jobs (True) or resume (False)."""
        if paused == self._paused:
            return
        self._paused = paused
        log.info("queue %s", "paused" if paused else "resumed")
        self.pausedChanged.emit(paused)
        self._set_pause_mode(PAUSE_AFTER_CURRENT if paused else PAUSE_NONE)
        self._fill()
        self._request_summary()
        if not paused:
            self._check_drained()

    @Slot(int)
    def cancel(self, job_id: int) -> bool:
        """Cancel cooperatively: a running job stops within one segment or batch; a queued one is marked."""
        if self._registry.cancel(job_id):
            return True
        try:
            job = self._store.get(job_id)
        except STORE_ERRORS as exc:
            return self._refuse(f"cannot cancel job {job_id}: {exc}")
        if job is None:
            return self._refuse(f"job {job_id} no longer exists")
        if job.state not in (QUEUED, RUNNING):
            return self._refuse(f"job {job_id} ({job.name}) is already {job.state}; nothing to cancel")
        if self._registry.cancel(job_id):  # claimed by one of our workers meanwhile
            return True
        try:
            # Running here means another process (or a claim in flight): it stops at its next progress write.
            self._store.mark_canceled(job_id)
        except STORE_ERRORS as exc:
            return self._refuse(str(exc))
        return True

    @Slot(int)
    def retry(self, job_id: int) -> bool:
        """Queue a failed or canceled job again; a done job is run again (its transcripts are rewritten)."""
        try:
            job = self._store.get(job_id)
        except STORE_ERRORS as exc:
            return self._refuse(f"cannot retry job {job_id}: {exc}")
        if job is None:
            return self._refuse(f"job {job_id} no longer exists")
        try:
            if job.state in (FAILED, CANCELED):
                self._store.retry(job_id)
            elif job.state == DONE:
                result = self._store.rerun(job_id)
                if not result.created:
                    return self._refuse(f"{job.name} was not queued again: {result.reason}")
            else:
                return self._refuse(
                    f"job {job_id} ({job.name}) is {job.state}; only finished jobs can be retried"
                )
        except (WhisperDeskError, sqlite3.Error) as exc:
            return self._refuse(getattr(exc, "reason", None) or str(exc))
        self._fill()
        return True

    @Slot(int)
    def retry_overwriting(self, job_id: int) -> bool:
        """Run a job again, replacing files in the way of its transcripts (the user chose "Overwrite")."""
        return self._retry_with(job_id, overwrite=True)

    @Slot(int, str)
    def retry_in_folder(self, job_id: int, folder: str) -> bool:
        """Run a job again writing its transcripts to ``folder`` (the user chose another folder)."""
        return self._retry_with(job_id, output_dir=folder)

    def _retry_with(self, job_id: int, *, overwrite: bool = False, output_dir: str | None = None) -> bool:
        """A new job for the same file with changed output options; it replaces the finished one."""
        job = self._get(job_id)
        if job is None:
            return self._refuse(f"job {job_id} no longer exists")
        if job.state not in (DONE, FAILED, CANCELED):
            return self._refuse(f"{job.name} is {job.state}; only finished jobs can be run again")
        options = copy.deepcopy(job.settings) if job.settings else job_settings(self._settings())
        if output_dir is not None:
            options.setdefault("output", {})["output_dir"] = output_dir
        if overwrite:
            options[OVERWRITE_KEY] = True
        try:
            result = self._store.rerun(job_id, options)
            if not result.created:
                return self._refuse(f"{job.name} was not queued again: {result.reason}")
            self._store.remove(job_id)
        except (WhisperDeskError, sqlite3.Error) as exc:
            return self._refuse(getattr(exc, "reason", None) or str(exc))
        self._fill()
        return True

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
        """For ``MainWindow.filesAdded``: dropped or picked files, with the current settings."""
        self.add_paths(paths)

    def submit(self, requests: Sequence[AddRequest]) -> None:
        """Queue prepared requests off the GUI thread (the watcher bridge uses this)."""
        if self._closing or not requests:
            return
        self._adding += 1
        self._pool.start(_AddTask(self._store, requests, self._signals))

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop claiming, interrupt running jobs (they go back to the queue) and wait for the pool.

        Returns False when work was still running after ``timeout_ms``. Idempotent.
        """
        if not self._closing:
            self._closing = True
            self._timer.stop()
            self._summary_throttle.cancel()
            self._unsubscribe()
            self._registry.shutdown.set()
            self._registry.release_all()
        finished = self._pool.waitForDone(timeout_ms)
        for throttle in self._throttles.values():
            throttle.cancel()
        if not finished:
            log.warning(
                "jobs still running %.0f s after quitting was asked; they are put back in the queue next start",
                timeout_ms / 1000,
            )
        return finished

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

    def _store_listener(self, event: JobEvent) -> None:
        """Runs on whichever thread changed the store: only hand over (progress writes are ignored)."""
        if event.kind != "progress":
            self._signals.wake.emit()

    @Slot()
    def _on_wake(self) -> None:
        if self._closing:
            return
        self._fill()
        self._request_summary()

    @Slot()
    def _poll(self) -> None:
        """Notice changes from other processes (``whisperdesk watch``, ``jobs``) and keep the ETA moving."""
        try:
            version = self._store.data_version()
        except STORE_ERRORS as exc:
            log.error("cannot read the job queue: %s", exc)
            return
        if version != self._last_version:
            self._last_version = version
            self._fill()
            self._request_summary()
        elif self._running:
            self._request_summary()

    @Slot(object)
    def _on_claimed(self, job: Job) -> None:
        self._begin_run()
        self._running[job.id] = job
        self._run_ids.add(job.id)
        self._run_finished.pop(job.id, None)
        self._set_busy()
        self.jobStarted.emit(job.id)
        self._request_summary()

    @Slot(int, float, float)
    def _on_progress(self, job_id: int, done: float, total: float) -> None:
        if job_id not in self._running or self._closing:
            return
        self._live[job_id] = done
        if total > 0:
            self._durations[job_id] = total
        throttle = self._throttles.get(job_id)
        if throttle is None:
            throttle = Throttle(partial(self._emit_progress, job_id), PROGRESS_PER_SECOND, self)
            self._throttles[job_id] = throttle
        throttle(done, total)
        self._request_summary()

    def _request_summary(self) -> None:
        if not self._closing:
            self._summary_throttle()

    def _emit_progress(self, job_id: int, done: float, total: float) -> None:
        self.jobProgress.emit(job_id, done, total)

    @Slot(object)
    def _on_finished(self, job: Job) -> None:
        self._end(job.id)
        self._announce(job)
        self._after_slot()

    @Slot(int, str)
    def _on_model_error(self, job_id: int, message: str) -> None:
        self._end(job_id)
        log.error("queue paused: %s", message)
        if not self._paused:
            self.set_paused(True)
        self.modelError.emit(message)
        job = self._get(job_id)
        if job is not None:
            self.jobRequeued.emit(job)
        self._after_slot()

    @Slot(int, str)
    def _on_crashed(self, job_id: int, message: str) -> None:
        if job_id:
            self._end(job_id)
            job = self._get(job_id)
            if job is not None:
                self._announce(job)
        else:
            self._slots -= 1
            self.actionFailed.emit(message)
        self._after_slot()

    @Slot()
    def _on_idle(self) -> None:
        self._slots -= 1
        self._after_slot()

    def _end(self, job_id: int) -> None:
        self._slots -= 1
        throttle = self._throttles.pop(job_id, None)
        if throttle is not None:
            throttle.flush()  # the last progress value arrives before the job's end
            throttle.cancel()
            throttle.deleteLater()
        self._running.pop(job_id, None)
        self._live.pop(job_id, None)

    def _announce(self, job: Job) -> None:
        if job.state in (DONE, FAILED, CANCELED):
            self._ran = True
            self._run_finished[job.id] = job
        if job.state == DONE:
            self._recent.append(job)
            self.jobFinished.emit(job)
        elif job.state == FAILED:
            log.warning("%s failed: %s", job.source, window_error(job))  # shown in the window's log view
            self.jobFailed.emit(job)
        elif job.state == CANCELED:
            self.jobCanceled.emit(job)
        elif job.state == QUEUED:
            self.jobRequeued.emit(job)
        if job.id in self._remove_after:
            self._remove_after.discard(job.id)
            try:
                self._store.remove(job.id)
            except STORE_ERRORS as exc:
                self._refuse(str(exc))

    def _after_slot(self) -> None:
        self._set_busy()
        if self._closing:
            return
        self._fill()
        self._update_summary()
        self._check_drained()

    def _check_drained(self) -> None:
        """Say once per run of the queue that it is empty (for the "queue finished" notification)."""
        if self._slots or self._adding or self._paused or self._closing or not self._ran:
            return
        try:
            waiting = self._store.list([QUEUED], limit=1)
        except STORE_ERRORS:
            return
        if waiting:
            return
        self._ran = False
        summary = self._summary
        done = summary.done if summary else 0
        failed = summary.failed if summary else 0
        canceled = summary.canceled if summary else 0
        log.info("queue drained: %d done, %d failed, %d canceled", done, failed, canceled)
        self.queueDrained.emit(done, failed + canceled)

    def _set_busy(self) -> None:
        busy = bool(self._running)
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)

    def _get(self, job_id: int) -> Job | None:
        try:
            return self._store.get(job_id)
        except STORE_ERRORS as exc:
            log.error("cannot read job %d: %s", job_id, exc)
            return None

    def _refuse(self, message: str) -> bool:
        log.warning(message)
        self.actionFailed.emit(message)
        return False

    # --- adding and probing -------------------------------------------------------------------------
    @Slot(object)
    def _on_added(self, results: list[AddResult]) -> None:
        self._adding -= 1
        self.jobsAdded.emit(results)
        if not self._closing:
            self._fill()
            self._request_summary()
            self._check_drained()

    @Slot(str, str)
    def _on_add_failed(self, path: str, reason: str) -> None:
        log.warning("not queued: %s: %s", path, reason)
        self.addFailed.emit(path, reason)

    @Slot(int, float)
    def _on_probed(self, job_id: int, seconds: float) -> None:
        self._probing.discard(job_id)
        self._durations[job_id] = seconds
        if seconds > 0:
            self.durationProbed.emit(job_id, seconds)
            self._request_summary()

    def _probe(self, jobs: Iterable[Job]) -> None:
        if self._probing or self._closing:
            return  # one probe task at a time; the next summary picks up the rest
        targets = [(j.id, j.source) for j in jobs if j.duration is None and j.id not in self._durations][
            :PROBE_BATCH
        ]
        if targets:
            self._probing.update(job_id for job_id, _ in targets)
            self._pool.start(_ProbeTask(targets, self._signals))

    # --- summary ------------------------------------------------------------------------------------
    def _begin_run(self) -> None:
        """Forget the previous run of the queue once something is queued or running again."""
        if self._run_over:
            self._run_over = False
            self._run_ids.clear()
            self._run_finished.clear()

    def _update_summary(self) -> None:
        """Overall progress and ETA of the current run of the queue (the jobs since it was last empty)."""
        if self._closing:
            return
        try:
            active = self._store.list([QUEUED, RUNNING])
        except STORE_ERRORS as exc:
            log.error("cannot read the job queue: %s", exc)
            return
        if active:
            self._begin_run()
        current = {j.id: j for j in active}
        self._run_ids.update(current)
        for job_id in list(self._run_ids):
            if job_id in current or job_id in self._run_finished:
                continue
            try:
                job = self._store.get(job_id)
            except STORE_ERRORS as exc:
                log.error("cannot read the job queue: %s", exc)
                return
            if job is None or job.archived:
                self._run_ids.discard(job_id)
            elif job.finished:
                self._run_finished[job_id] = job
        for job_id in list(self._run_finished):
            if job_id in current:
                del self._run_finished[job_id]
        summary = summarize(
            [*current.values(), *self._run_finished.values()],
            self._clock(),
            live_done=self._live,
            durations=self._durations,
            recent_speed=recent_speed(self._recent),
            paused=self._paused,
        )
        if not summary.active and self._slots == 0 and self._adding == 0:
            self._run_over = True
        self._summary = summary
        fraction = summary.fraction if summary.active and summary.fraction is not None else NO_FRACTION
        self.queueSummary.emit(summary.text(), fraction)
        self._probe(j for j in active if j.state == QUEUED)
