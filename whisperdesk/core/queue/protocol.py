"""One queue interface, two backends: the desktop's SQLite job store and a team's PostgreSQL queue.

Why a protocol: a worker, ``whisperdesk watch`` and later the window should run the same code whether the
queue is one person's SQLite file or a team's database. What differs between the two is *who holds a
job*:

* **SQLite** (:mod:`.sqlite`): one machine. A running job is held by the process that claimed it, for as
  long as that process lives (the store checks host, pid and start time). Its "lease" never runs out while
  the owner lives, and :meth:`JobQueue.requeue_expired` gives back the jobs of dead processes.
* **PostgreSQL** (``core.queue.postgres``): many machines. A running job is held by a lease with an expiry
  time and a token; a worker renews it with :meth:`JobQueue.heartbeat`. A lease that runs out (the worker
  was killed, frozen or cut off) is requeued by anyone, and the token fences the old holder: its late
  :meth:`JobQueue.complete` is refused with :class:`StaleLeaseError`, so no transcript is recorded twice.

Every call that changes a running job takes the :class:`Lease`, never a bare id, so a stale holder cannot
act by accident. The user's side (cancel, retry, list) takes ids: people act on jobs, not leases.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, FINISHED_STATES, QUEUED, RUNNING, STATES

__all__ = [
    "BACKFILL",
    "CANCELED",
    "DONE",
    "FAILED",
    "LIVE",
    "QUEUED",
    "RUNNING",
    "STATES",
    "AddOutcome",
    "JobQueue",
    "Lease",
    "QueueChanges",
    "QueueJob",
    "Requeued",
    "StaleLeaseError",
]

# Lanes: a higher priority is always claimed first, so live work overtakes an archive's backfill.
LIVE = 100
BACKFILL = 0
LOCAL_SUBMITTER = "local"  # the one person a desktop's SQLite queue serves


class StaleLeaseError(WhisperDeskError):
    """The lease this call names is no longer the job's: it ran out and the job went back to the queue (or
    to another worker), or the job was canceled. The caller must drop its work on that job unrecorded."""

    def __init__(self, job_id: int, why: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id}: this worker no longer holds it ({why}); its result was not recorded")


@dataclass(frozen=True)
class QueueJob:
    """A job as both backends report it: the fields a worker and a queue view need."""

    id: int
    source: Path
    state: str
    attempts: int
    progress: float
    settings: dict[str, Any] = field(hash=False)
    outputs: tuple[Path, ...]
    error: str | None
    submitter: str  # who queued it: fair share alternates between submitters
    priority: int  # its lane: LIVE or BACKFILL (higher first)
    version: int  # the queue's change number at this job's last change
    worker: str | None = None  # who runs it now (None unless running)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True)
class Lease:
    """Proof that one worker holds one running job. ``expires_at`` is the queue's clock (epoch seconds) or
    None when the lease lasts as long as the owning process (SQLite)."""

    job: QueueJob
    token: str
    expires_at: float | None

    @property
    def job_id(self) -> int:
        return self.job.id


@dataclass(frozen=True)
class AddOutcome:
    job: QueueJob
    created: bool
    reason: str  # for logs and the CLI: why it was (not) queued


@dataclass(frozen=True)
class Requeued:
    """What :meth:`JobQueue.requeue_expired` did: jobs back in the queue, and jobs failed because their
    holders died too often (the crash limit both backends share)."""

    requeued: list[int]
    failed: list[int]


@dataclass(frozen=True)
class QueueChanges:
    version: int
    jobs: list[QueueJob]
    removed: list[int]


@runtime_checkable
class JobQueue(Protocol):
    """The operations a worker and a front end need from a job queue. See the module docstring."""

    #: True when jobs carry a submitter and claims alternate between submitters, by lane.
    fair_share: bool

    # -- adding -----------------------------------------------------------------------------------------
    def add(
        self,
        source: Path | str,
        settings: Mapping[str, Any] | None = None,
        *,
        submitter: str | None = None,
        priority: int = LIVE,
    ) -> AddOutcome:
        """Queue ``source`` unless the same file with the same content is already known (dedupe)."""
        ...

    # -- a worker's side --------------------------------------------------------------------------------
    def claim(self, worker: str, *, lease_s: float, limit: int = 1) -> builtins.list[Lease]:
        """Take up to ``limit`` queued jobs at once (a batch), each under its own lease."""
        ...

    def heartbeat(self, lease: Lease, *, lease_s: float) -> Lease:
        """Renew ``lease``; raises :class:`StaleLeaseError` when it is no longer the job's."""
        ...

    def progress(self, lease: Lease, fraction: float) -> bool:
        """Record progress (0..1); False when the lease is stale (the worker should stop)."""
        ...

    def complete(self, lease: Lease, outputs: Iterable[Path | str] = ()) -> QueueJob:
        """Mark done; raises :class:`StaleLeaseError` for a lease that is no longer the job's."""
        ...

    def fail(self, lease: Lease, error: str) -> QueueJob:
        """Mark failed with a message the user can act on; stale leases are refused like :meth:`complete`."""
        ...

    def release(self, lease: Lease) -> QueueJob:
        """Give the job back without counting the attempt (a clean shutdown in the middle of it)."""
        ...

    def requeue_expired(self) -> Requeued:
        """Give back the jobs whose holders are gone; fail those whose holders died too often."""
        ...

    # -- the user's side --------------------------------------------------------------------------------
    def cancel(self, job_id: int) -> QueueJob: ...

    def retry(self, job_id: int) -> QueueJob: ...

    def get(self, job_id: int) -> QueueJob | None: ...

    def list(self, states: Sequence[str] | None = None) -> builtins.list[QueueJob]: ...

    def data_version(self) -> int: ...

    def changes_since(self, version: int) -> QueueChanges: ...

    def wait_for_change(self, version: int, timeout: float) -> int:
        """Block until the queue's version passes ``version`` (a change by anyone) or ``timeout`` seconds
        pass; returns the version now. A feed runs this in a loop on its own thread, then reads
        :meth:`changes_since`: PostgreSQL wakes it by LISTEN/NOTIFY, SQLite by polling its change number."""
        ...

    def close(self) -> None: ...
