"""The headless processing loop: worker threads claim queued jobs from the store and run them.

The GUI has its own runner on a QThreadPool; both run jobs through the same JobProcessor. Several workers
only make sense with batch size > 1, where the engine's scheduler packs their files into shared batches.
Claims are atomic in the store, so a GUI and a ``whisperdesk watch`` sharing one queue never run a job twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, QUEUED, Job, JobEvent, JobStore, JobStoreError
from whisperdesk.core.processor import ENGINE_ERRORS, JobProcessor, JobProgressFn

log = logging.getLogger(__name__)


@dataclass
class LoopStats:
    """Jobs this loop finished, by outcome (jobs released at shutdown are in none of them)."""

    done: list[Job] = field(default_factory=list)
    failed: list[Job] = field(default_factory=list)
    canceled: list[Job] = field(default_factory=list)


class QueueLoop:
    """Runs queued jobs on ``workers`` threads until :meth:`stop`, or until the engine fails.

    ``on_finished(job)`` is called on the worker thread for every job that ends done, failed or canceled.
    An engine error (the model cannot load...) stops the loop: the job goes back to the queue, the error is
    kept in :attr:`error` and given to ``on_error``. So is any unexpected error of the store itself.
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
        self._shutdown = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._active = 0  # workers between "about to claim" and "result recorded"
        self.stats = LoopStats()
        self.error: BaseException | None = None
        self._unsubscribe: Callable[[], None] | None = store.add_listener(self._on_store_event)

    def _on_store_event(self, event: JobEvent) -> None:
        if event.kind == "added" or (event.job is not None and event.job.state == QUEUED):
            with self._wake:
                self._wake.notify_all()

    # --- control --------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        for i in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"whisperdesk-job-{i}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; interrupt running jobs at their next segment and leave them queued."""
        self._shutdown.set()
        self._stop.set()
        with self._lock:
            for event in self._running.values():
                event.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def cancel(self, job_id: int) -> None:
        """The user's cancel: a job running here stops at its next segment and ends canceled; a queued job
        (or one running in another process, which notices at its next progress write) is canceled now."""
        with self._lock:
            event = self._running.get(job_id)
        if event is not None:
            event.set()
            return
        self._store.mark_canceled(job_id)

    def running(self) -> list[int]:
        with self._lock:
            return list(self._running)

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
        try:
            job = self._store.claim_next()
        except Exception as exc:
            self._fail_loop(exc, None)
            return False
        if job is None:
            return False
        cancel = threading.Event()
        with self._lock:
            self._running[job.id] = cancel
            if self._shutdown.is_set():
                cancel.set()  # stop() ran between the claim and now
        try:
            final = self._processor.process(
                job, cancel=cancel, progress=self._progress, shutdown=self._shutdown
            )
        except ENGINE_ERRORS as exc:
            self._fail_loop(exc, None)  # the processor already put the job back in the queue
            return False
        except Exception as exc:
            self._fail_loop(exc, job)
            return False
        finally:
            with self._lock:
                self._running.pop(job.id, None)
        self._record(final)
        return True

    def _fail_loop(self, exc: BaseException, job: Job | None) -> None:
        """Stop the whole loop: what failed would fail every job the same way."""
        if job is not None:
            log.exception("stopping the queue: job %d could not be processed", job.id)
            with contextlib.suppress(JobStoreError, Exception):
                self._store.release(job.id)
        else:
            log.error("stopping the queue: %s", exc)
        first = False
        with self._lock:
            if self.error is None:
                self.error = exc
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
        if job.state == DONE:
            bucket = self.stats.done
        elif job.state == FAILED:
            bucket = self.stats.failed
        elif job.state == CANCELED:
            bucket = self.stats.canceled
        else:
            return  # released back to the queue by a shutdown
        with self._lock:
            bucket.append(job)
        if self._on_finished is not None:
            try:
                self._on_finished(job)
            except Exception:
                log.exception("job-finished callback failed")
