"""A worker on a shared queue: claim a job under a lease, keep the lease alive, run it, report the result.

Why through a private staging store: the :class:`~whisperdesk.core.processor.JobProcessor` (decoding,
outputs, after-processing, checkpoints) works on a local :class:`~whisperdesk.core.jobstore.JobStore`
record. Rather than fork it for the team queue, the worker copies each claimed job into a throwaway store
of its own, runs the unchanged processor on that, and reports the outcome to the shared queue under the
lease. The shared queue stays the one record of the job; the staging store lives as long as the worker
process and holds one running job at a time.

While a job runs a heartbeat thread renews the lease every third of its length. When renewal is refused
(the job was canceled, or the lease ran out and the job went to another worker) the job is stopped
cooperatively and nothing is reported: a stale lease's completion would be refused anyway.

Known gap (see the team-queue issue): the processor writes the transcripts before the worker reports to
the queue, so a worker frozen past its lease that wakes up mid-write may write outputs that the next
worker writes again; fencing the write itself needs a lease check inside the processor.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, QUEUED, JobStore
from whisperdesk.core.processor import JobProcessor
from whisperdesk.core.queue.protocol import JobQueue, Lease, QueueJob, StaleLeaseError

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0  # a lost worker's job is back within this (plus one requeue poll)


@dataclass(frozen=True)
class WorkResult:
    job: QueueJob | None  # the shared queue's final record; None when the lease was lost meanwhile
    lost_lease: bool = False


class _Heartbeat:
    """Renews one lease on its own thread; sets ``lost`` (and the job's cancel flag) when refused."""

    def __init__(self, queue: JobQueue, lease: Lease, lease_s: float, cancel: threading.Event) -> None:
        self.lease = lease
        self.lost = threading.Event()
        self._queue = queue
        self._lease_s = lease_s
        self._cancel = cancel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{lease.job_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                self.lease = self._queue.heartbeat(self.lease, lease_s=self._lease_s)
            except StaleLeaseError as exc:
                log.warning("%s; stopping it", exc)
                self.lost.set()
                self._cancel.set()
                return
            except Exception:  # the database unreachable: keep trying until the lease would run out
                log.exception("could not renew the lease of job %d", self.lease.job_id)


class TeamWorker:
    """Runs jobs from ``queue`` one at a time through ``processor`` (built over ``staging``)."""

    def __init__(
        self,
        queue: JobQueue,
        processor: JobProcessor,
        staging: JobStore,
        *,
        name: str,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self.queue = queue
        self.processor = processor
        self.staging = staging
        self.name = name
        self.lease_s = float(lease_s)
        self.shutdown = threading.Event()  # set: the job in hand goes back to the queue, uncounted

    def run_one(self) -> WorkResult | None:
        """Requeue the jobs of lost workers, then claim and run one job; None when nothing is queued."""
        self.queue.requeue_expired()
        leases = self.queue.claim(self.name, lease_s=self.lease_s)
        if not leases:
            return None
        return self._run(leases[0])

    def _run(self, lease: Lease) -> WorkResult:
        cancel = threading.Event()
        added = self.staging.add(lease.job.source, lease.job.settings, force=True)
        local = self.staging.claim_next()
        if local is None or local.id != added.job.id:  # a private store: nothing else is in it
            raise RuntimeError(f"staging store out of step for job {lease.job_id}")
        last = [0.0]

        def progress(_job_id: int, done: float, total: float) -> None:
            fraction = done / total if total > 0 else 0.0
            if fraction - last[0] >= 0.05:  # a few writes per job, not one per window
                last[0] = fraction
                if not self.queue.progress(heartbeat.lease, fraction):
                    cancel.set()

        with _Heartbeat(self.queue, lease, self.lease_s, cancel) as heartbeat:
            try:
                final = self.processor.process(
                    local, cancel=cancel, progress=progress, shutdown=self.shutdown
                )
            except Exception:  # the engine cannot run (the processor says why): another worker may
                if not heartbeat.lost.is_set():
                    self.queue.release(heartbeat.lease)
                raise
        held = heartbeat.lease
        if heartbeat.lost.is_set():
            return WorkResult(None, lost_lease=True)
        try:
            if final.state == DONE:
                return WorkResult(self.queue.complete(held, final.outputs))
            if final.state == FAILED:
                return WorkResult(self.queue.fail(held, final.error or "failed"))
            if final.state == QUEUED:  # shutdown in the middle: back to the shared queue
                return WorkResult(self.queue.release(held))
            if final.state == CANCELED:  # canceled here only by a refused progress write
                return WorkResult(None, lost_lease=True)
        except StaleLeaseError as exc:
            log.warning("%s", exc)
            return WorkResult(None, lost_lease=True)
        raise RuntimeError(f"job {lease.job_id} ended {final.state} in the staging store")
