"""The headless processing loop: worker threads claim queued jobs from the store and run them.

A thin adapter over :func:`run_next` (claim, run, the error policy) and :class:`CancelRegistry` (cancel,
back to the queue), which the window's runner uses the same way on its Qt thread pool. Claims are atomic in
the store, so a window and a ``whisperdesk watch`` sharing one queue never run a job twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, QUEUED, Job, JobEvent, JobStore, JobStoreError
from whisperdesk.core.processor import JobProcessor, JobProgressFn
from whisperdesk.core.queue.cancel import CancelRegistry
from whisperdesk.core.queue.run import run_next

log = logging.getLogger(__name__)


@dataclass
class LoopStats:
    """Jobs this loop finished, by outcome (jobs released at shutdown are in none of them)."""

    done: list[Job] = field(default_factory=list)
    failed: list[Job] = field(default_factory=list)
    canceled: list[Job] = field(default_factory=list)


class QueueLoop:
    """Runs queued jobs on ``workers`` threads until :meth:`stop`, or until the queue must pause.

    ``on_finished(job)`` is called on the worker thread for every job that ends done, failed or canceled.
    When :func:`run_next` says the queue must pause (the model cannot load, the database is unusable),
    the loop stops — headless, no one could resume it: the reason is kept in :attr:`error` and
    :attr:`message` and given to ``on_error``.
    """

    def __init__(
        self,
        store: JobStore,
        processor: JobProcessor,
        *,
        workers: int = 1,
        progress: JobProgressFn | None = None,
        on_finished: Callable[[Job], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        self._store = store
        self._processor = processor
        self._workers = max(1, int(workers))
        self._progress = progress
        self._on_finished = on_finished
        self._on_error = on_error
        self._poll = poll_seconds
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._registry = CancelRegistry()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._active = 0  # workers between "about to claim" and "result recorded"
        self.stats = LoopStats()
        self.error: BaseException | None = None
        self.message = ""
        self._unsubscribe: Callable[[], None] | None = store.add_listener(self._on_store_event)

    def _on_store_event(self, event: JobEvent) -> None:
        if event.kind == "added" or (event.job is not None and event.job.state in (QUEUED, DONE)):
            with self._wake:  # a done job may free a copy that waited for it
                self._wake.notify_all()

    # --- control --------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        for i in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"whisperdesk-job-{i}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop claiming; interrupt running jobs at their next segment and leave them queued.

        With a ``timeout`` (quitting, core/quit.py), a worker still running after it — inside a ``generate``
        that cannot be interrupted — is not waited for: its job is put back in the queue here and False is
        returned, so the caller ends the process instead of waiting (or aborting) on the thread. A worker
        that ends later finds its job queued and leaves it so.
        """
        self._registry.stop_all()
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        stopped = not any(thread.is_alive() for thread in self._threads)
        if not stopped:
            for job_id in self._registry.running():
                try:
                    job = self._store.release(job_id)
                except JobStoreError as exc:  # it ended meanwhile
                    log.info("job %d not released at stop: %s", job_id, exc)
                    continue
                log.info("stopping: job %d left mid-window, queued again: %s", job_id, job.source)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        return stopped

    def cancel(self, job_id: int) -> None:
        """The user's cancel: a job running here stops at its next segment and ends canceled; a queued job
        (or one running in another process, which notices at its next progress write) is canceled now."""
        if not self._registry.cancel(job_id):
            self._store.mark_canceled(job_id)

    def running(self) -> list[int]:
        return self._registry.running()

    @property
    def busy(self) -> bool:
        """True while a worker is claiming, running or recording a job."""
        with self._lock:
            return self._active > 0

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # --- workers --------------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._active += 1
            try:
                ran = self._run_one()
            finally:
                with self._lock:
                    self._active -= 1
            if not ran:
                with self._wake:
                    if not self._stop.is_set():
                        self._wake.wait(self._poll)

    def _run_one(self) -> bool:
        """Claim and run one job; False when the queue is empty or the loop must stop."""
        outcome = run_next(self._store, self._processor, self._registry, progress=self._progress)
        if outcome.kind == "pause":
            self._halt(outcome.error or RuntimeError(outcome.message), outcome.message)
            return False
        if outcome.job is None:
            return False
        self._record(outcome.job)
        return True

    def _halt(self, exc: BaseException, message: str) -> None:
        """Stop the whole loop: what failed would fail every job the same way."""
        log.error("stopping the queue: %s", message)
        first = False
        with self._lock:
            if self.error is None:
                self.error, self.message = exc, message
                first = True
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        if first and self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:
                log.exception("queue error callback failed")

    def _record(self, job: Job) -> None:
        buckets = {DONE: self.stats.done, FAILED: self.stats.failed, CANCELED: self.stats.canceled}
        bucket = buckets.get(job.state)
        if bucket is None:
            return  # released back to the queue by a shutdown
        with self._lock:
            bucket.append(job)
        if self._on_finished is not None:
            try:
                self._on_finished(job)
            except Exception:
                log.exception("job-finished callback failed")
