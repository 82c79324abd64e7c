"""The desktop's SQLite :class:`~whisperdesk.core.jobstore.JobStore` seen through the :class:`JobQueue` protocol.

An adapter, not a second store: every change goes through the JobStore's own methods, so its rules (dedupe,
copies, crash counts, checkpoints) are the same whichever way a job is reached. What it adds is the lease
the protocol speaks of. On one machine the lease *is* the owning process (the store records host, pid and
start time): it never expires while that process lives, and :meth:`requeue_expired` is the store's
crash recovery, which requeues the jobs of dead processes. The token fences this process's own stale
handles (a job canceled, retried and claimed again is not completed by the first claim's lease); another
process cannot take a job from a live one, so the check and the write cannot be raced from outside.
"""

from __future__ import annotations

import builtins
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from whisperdesk.core.jobstore import RUNNING, Job, JobStore
from whisperdesk.core.queue.protocol import (
    LIVE,
    LOCAL_SUBMITTER,
    AddOutcome,
    Lease,
    QueueChanges,
    QueueJob,
    Requeued,
    StaleLeaseError,
)

POLL_S = 0.1  # how often wait_for_change reads the change number: other processes do not notify


def _view(job: Job) -> QueueJob:
    return QueueJob(
        id=job.id,
        source=job.source,
        state=job.state,
        attempts=job.attempts,
        progress=job.progress,
        settings=dict(job.settings),
        outputs=job.outputs,
        error=job.error,
        submitter=LOCAL_SUBMITTER,
        priority=LIVE,
        version=job.version,
        worker=None,
    )


class SqliteJobQueue:
    """:class:`JobQueue` over a :class:`JobStore`; use one adapter per store object in a process."""

    fair_share = False  # one person's queue: no submitters, one lane, first in first out

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        # job id -> (token, attempts, started_at) of the lease handed out; what fences a stale handle
        self._leases: dict[int, tuple[str, int, float | None]] = {}

    # -- adding -----------------------------------------------------------------------------------------
    def add(
        self,
        source: Path | str,
        settings: Mapping[str, Any] | None = None,
        *,
        submitter: str | None = None,
        priority: int = LIVE,
    ) -> AddOutcome:
        """The store's own add (its dedupe rules); ``submitter`` and ``priority`` do not apply to one person's
        first-in-first-out queue and are ignored."""
        result = self.store.add(source, settings)
        return AddOutcome(_view(result.job), result.created, result.reason)

    # -- a worker's side --------------------------------------------------------------------------------
    def claim(self, worker: str, *, lease_s: float, limit: int = 1) -> builtins.list[Lease]:
        leases: builtins.list[Lease] = []
        with self._lock:
            for _ in range(max(1, int(limit))):
                job = self.store.claim_next()
                if job is None:
                    break
                token = secrets.token_hex(16)
                self._leases[job.id] = (token, job.attempts, job.started_at)
                leases.append(Lease(_view(job), token, None))
        return leases

    def _check(self, lease: Lease) -> Job:
        """The job, when ``lease`` still holds it; else StaleLeaseError. Call with ``_lock`` held."""
        job = self.store.get(lease.job_id)
        held = self._leases.get(lease.job_id)
        if job is None:
            raise StaleLeaseError(lease.job_id, "it was removed")
        if held is None or held[0] != lease.token:
            raise StaleLeaseError(lease.job_id, "it was claimed again since")
        if job.state != RUNNING or (job.attempts, job.started_at) != held[1:]:
            raise StaleLeaseError(lease.job_id, f"it is {job.state} now")
        return job

    def heartbeat(self, lease: Lease, *, lease_s: float) -> Lease:
        with self._lock:
            job = self._check(lease)
        return Lease(_view(job), lease.token, None)

    def progress(self, lease: Lease, fraction: float) -> bool:
        with self._lock:
            try:
                self._check(lease)
            except StaleLeaseError:
                return False
            return self.store.mark_progress(lease.job_id, fraction) is not None

    def complete(self, lease: Lease, outputs: Iterable[Path | str] = ()) -> QueueJob:
        with self._lock:
            self._check(lease)
            job = self.store.mark_done(lease.job_id, outputs=outputs)
            self._leases.pop(lease.job_id, None)
        return _view(job)

    def fail(self, lease: Lease, error: str) -> QueueJob:
        with self._lock:
            self._check(lease)
            job = self.store.mark_failed(lease.job_id, error)
            self._leases.pop(lease.job_id, None)
        return _view(job)

    def release(self, lease: Lease) -> QueueJob:
        with self._lock:
            self._check(lease)
            job = self.store.release(lease.job_id)
            self._leases.pop(lease.job_id, None)
        return _view(job)

    def requeue_expired(self) -> Requeued:
        """The store's crash recovery: jobs of processes that no longer exist go back (or fail after the
        crash limit); a live process's jobs stay, whatever time has passed."""
        with self._lock:
            recovery = self.store.recover_after_crash()
        return Requeued([j.id for j in recovery.requeued], [j.id for j in recovery.failed])

    # -- the user's side --------------------------------------------------------------------------------
    def cancel(self, job_id: int) -> QueueJob:
        return _view(self.store.mark_canceled(job_id))

    def retry(self, job_id: int) -> QueueJob:
        return _view(self.store.retry(job_id))

    def get(self, job_id: int) -> QueueJob | None:
        job = self.store.get(job_id)
        return None if job is None else _view(job)

    def list(self, states: Sequence[str] | None = None) -> builtins.list[QueueJob]:
        return [_view(j) for j in self.store.list(states)]

    def data_version(self) -> int:
        return self.store.data_version()

    def changes_since(self, version: int) -> QueueChanges:
        changes = self.store.changes_since(version)
        return QueueChanges(changes.version, [_view(j) for j in changes.jobs], changes.removed)

    def wait_for_change(self, version: int, timeout: float) -> int:
        """Poll the store's change number (one indexed read) until it passes ``version``."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            now = self.store.data_version()
            left = deadline - time.monotonic()
            if now > version or left <= 0:
                return now
            time.sleep(min(POLL_S, left))

    def close(self) -> None:
        self.store.close()
