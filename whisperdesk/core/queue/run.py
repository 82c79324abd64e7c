"""Claim the next queued job and run it: the one error policy of the window and ``whisperdesk watch``.

* A problem with the file or its outputs fails that job with a plain reason (the processor decides).
* An unexpected error (a bug) fails that job too, with a plain reason; the details go to the log, and the
  queue carries on with the next job.
* An engine error (the model cannot load, the device lacks a compute type) would fail every job the same
  way: the job goes back to the queue and the queue pauses (``watch``, with no one to resume it, stops).
* A job store that cannot be read or written pauses the queue the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from whisperdesk.core.jobstore import RUNNING, Job, JobStore
from whisperdesk.core.processor import ENGINE_ERRORS, UNEXPECTED_REASON, JobProcessor, JobProgressFn
from whisperdesk.core.queue.cancel import CancelRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """``idle``: nothing was queued. ``finished``: ``job`` is its final record (done, failed, canceled,
    or back in the queue after a pause or quit). ``pause``: the queue must stop claiming; ``message`` says
    why in plain words and ``job`` (if any) is back in the queue."""

    kind: Literal["idle", "finished", "pause"]
    job: Job | None = None
    message: str = ""
    error: BaseException | None = None


IDLE = RunOutcome("idle")


def run_next(
    store: JobStore,
    processor: JobProcessor,
    registry: CancelRegistry,
    *,
    progress: JobProgressFn | None = None,
    on_claimed: Callable[[Job], None] | None = None,
) -> RunOutcome:
    """Claim the oldest runnable job and run it to the end; never raises."""
    if registry.shutdown.is_set():
        return IDLE
    try:
        job = store.claim_next()
    except Exception as exc:  # a locked or damaged database: every claim would fail the same way
        log.exception("could not take the next job from the queue")
        message = (
            f"the job list {store.path} cannot be read or written; check that the disk is not full and no "
            "other program holds it, then resume the queue"
        )
        return RunOutcome("pause", None, message, exc)
    if job is None:
        return IDLE
    flags = registry.register(job.id)
    try:
        if on_claimed is not None:
            _call(on_claimed, job)
        try:
            final = processor.process(job, cancel=flags.cancel, progress=progress, shutdown=flags.requeue)
        except ENGINE_ERRORS as exc:  # the processor already put the job back in the queue
            log.error("queue paused: %s", exc)
            return RunOutcome("pause", _current(store, job), str(exc) or type(exc).__name__, exc)
        except Exception as exc:
            log.exception("job %d failed unexpectedly: %s", job.id, job.source)
            return RunOutcome("finished", _fail_if_running(store, job), UNEXPECTED_REASON, exc)
    finally:
        registry.unregister(job.id)  # before anyone hears of the end, so a late cancel sees it ended
    return RunOutcome("finished", final)


def _call(callback: Callable[[Job], None], job: Job) -> None:
    try:
        callback(job)
    except Exception:  # a display problem must not fail the job
        log.exception("job-claimed callback failed")


def _current(store: JobStore, job: Job) -> Job:
    try:
        return store.get(job.id) or job
    except Exception:
        log.exception("could not read job %d", job.id)
        return job


def _fail_if_running(store: JobStore, job: Job) -> Job:
    try:
        current = store.get(job.id)
        if current is not None and current.state == RUNNING:
            return store.mark_failed(job.id, UNEXPECTED_REASON)
        return current or job
    except Exception:
        log.exception("could not record the failure of job %d", job.id)
        return job
