"""The flags of running jobs: the user's cancel, and "put it back in the queue" (quitting, pause now).

Both front ends keep one registry; workers register a job the moment they claim it, so a cancel or a
pause never misses a job that is just starting. Plain ``threading.Event`` objects: the engine checks them
between segments and batches on worker threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class JobFlags:
    """``cancel`` stops the job; with ``requeue`` also set it goes back to the queue instead of ending
    canceled (the processor's ``shutdown`` argument)."""

    cancel: threading.Event
    requeue: threading.Event


class CancelRegistry:
    """The flags of every job running in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flags: dict[int, JobFlags] = {}
        self.shutdown = threading.Event()  # quitting: every job, now and later, goes back to the queue

    def register(self, job_id: int) -> JobFlags:
        flags = JobFlags(threading.Event(), threading.Event())
        with self._lock:
            self._flags[job_id] = flags
            if self.shutdown.is_set():
                flags.requeue.set()
                flags.cancel.set()
        return flags

    def unregister(self, job_id: int) -> None:
        with self._lock:
            self._flags.pop(job_id, None)

    def cancel(self, job_id: int) -> bool:
        """The user's cancel of a job running here; False when it does not run here."""
        with self._lock:
            flags = self._flags.get(job_id)
        if flags is None:
            return False
        flags.cancel.set()
        return True

    def requeue_all(self) -> list[int]:
        """Stop every running job and put it back in the queue (pause now); returns their ids."""
        with self._lock:
            items = list(self._flags.items())
        for _job_id, flags in items:
            flags.requeue.set()
            flags.cancel.set()
        return [job_id for job_id, _ in items]

    def stop_all(self) -> None:
        """Quitting: running jobs go back to the queue, and so does any job claimed from now on."""
        self.shutdown.set()
        self.requeue_all()

    def running(self) -> list[int]:
        with self._lock:
            return list(self._flags)

    def __contains__(self, job_id: object) -> bool:
        with self._lock:
            return job_id in self._flags
