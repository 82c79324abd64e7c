"""The status bar's queue summary and ETA, out of the runner: it only listens to the feed and the runner.

It follows one "run" of the queue — the jobs queued, running or finished since the queue was last empty —
so "3 of 5 done" counts what the user just asked for, not the whole history. The lengths of queued jobs are
read from their headers on a small pool of its own (for the ETA and the table's duration column); live
progress comes from the runner's throttled ``jobProgress``; everything else from the store feed.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from whisperdesk.core.jobstore import DONE, QUEUED, RUNNING, Job, JobStore, JobStoreError
from whisperdesk.core.queue_stats import QueueSummary, recent_speed, summarize
from whisperdesk.services.job_runner import JobRunner
from whisperdesk.services.store_feed import StoreFeed
from whisperdesk.services.throttle import Throttle

log = logging.getLogger(__name__)

SUMMARY_PER_SECOND = 2.0
PROBE_BATCH = 50
NO_FRACTION = -1.0  # queueSummary's fraction when there is nothing to show a bar for
STORE_ERRORS: tuple[type[Exception], ...] = (JobStoreError, sqlite3.Error)


class _ProbeSignals(QObject):
    probed = Signal(int, float)  # job id, audio seconds (-1: unknown)


class _ProbeTask(QRunnable):
    """Read the audio length of queued jobs from their headers."""

    def __init__(self, targets: Sequence[tuple[int, Path]], signals: _ProbeSignals) -> None:
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


class QueueSummaryFeed(QObject):
    """``queueSummary(text, fraction)`` at most twice a second; ``durationProbed(id, seconds)``."""

    queueSummary = Signal(str, float)
    durationProbed = Signal(int, float)

    def __init__(
        self,
        store: JobStore,
        feed: StoreFeed,
        runner: JobRunner,
        parent: QObject | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("QueueSummaryFeed")
        self._store = store
        self._runner = runner
        self._clock = clock
        self._pool = QThreadPool(self)
        self._pool.setObjectName("whisperdesk-probes")
        self._pool.setMaxThreadCount(1)
        self._signals = _ProbeSignals(self)
        self._signals.probed.connect(self._on_probed)
        self._live: dict[int, float] = {}  # audio seconds done per running job
        self._durations: dict[int, float] = {}
        self._probing: set[int] = set()
        self._recent: deque[Job] = deque(maxlen=10)
        self._run_ids: set[int] = set()
        self._run_finished: dict[int, Job] = {}
        self._summary: QueueSummary | None = None
        self._closed = False
        self._throttle = Throttle(self._update, SUMMARY_PER_SECOND, self)
        self._throttle.setObjectName("QueueSummaryFeed.throttle")
        feed.jobChanged.connect(self._on_job_changed)
        feed.changed.connect(self.request)
        feed.ticked.connect(self._on_tick)
        runner.jobProgress.connect(self._on_progress)
        for ended in (runner.jobFinished, runner.jobFailed, runner.jobCanceled, runner.jobRequeued):
            ended.connect(self._on_job_ended)
        runner.pausedChanged.connect(self._on_paused)

    def summary(self) -> QueueSummary | None:
        return self._summary

    @property
    def pool(self) -> QThreadPool:
        return self._pool

    @Slot()
    def request(self) -> None:
        if not self._closed:
            self._throttle()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        self._closed = True
        self._throttle.cancel()
        return self._pool.waitForDone(timeout_ms)

    # --- inputs -------------------------------------------------------------------------------------
    @Slot()
    def _on_tick(self) -> None:
        if self._live or self._runner.running_jobs():
            self.request()  # keep the ETA moving while a job runs

    @Slot(object)
    def _on_job_changed(self, job: Job) -> None:
        """Every job queued or started joins the run, even one that ends before the next summary."""
        if job.state in (QUEUED, RUNNING) and job.id not in self._run_ids:
            if not self._run_ids:
                self._run_finished.clear()  # a new run begins
            self._run_ids.add(job.id)

    @Slot(int, float, float)
    def _on_progress(self, job_id: int, done: float, total: float) -> None:
        self._live[job_id] = done
        if total > 0:
            self._durations[job_id] = total
        self.request()

    @Slot(object)
    def _on_job_ended(self, job: Job) -> None:
        """A job's end is news at once (the bar moves a step), not at the next throttled update."""
        self._live.pop(job.id, None)
        if not self._closed:
            self._update()

    @Slot(bool)
    def _on_paused(self, _paused: bool) -> None:
        self.request()

    @Slot(int, float)
    def _on_probed(self, job_id: int, seconds: float) -> None:
        self._probing.discard(job_id)
        self._durations[job_id] = seconds
        if seconds > 0 and not self._closed:
            self.durationProbed.emit(job_id, seconds)
            self.request()

    # --- the summary --------------------------------------------------------------------------------
    def _update(self) -> None:
        """Overall progress and ETA of the current run of the queue (the jobs since it was last empty)."""
        if self._closed:
            return
        try:
            active = self._store.list([QUEUED, RUNNING])
            self._follow_run(active)
        except STORE_ERRORS as exc:
            log.error("cannot read the job queue: %s", exc)
            return
        current = {j.id: j for j in active}
        for job_id in [j for j in self._live if j not in current or current[j].state != RUNNING]:
            del self._live[job_id]
        summary = summarize(
            [*current.values(), *self._run_finished.values()],
            self._clock(),
            live_done=self._live,
            durations=self._durations,
            recent_speed=recent_speed(self._recent),
            paused=self._runner.paused,
        )
        if not summary.active:
            self._run_ids.clear()  # the next job starts a new run; this one stays on screen until then
        self._summary = summary
        fraction = summary.fraction if summary.active and summary.fraction is not None else NO_FRACTION
        self.queueSummary.emit(summary.text(), fraction)
        self._probe(j for j in active if j.state == QUEUED)

    def _follow_run(self, active: list[Job]) -> None:
        if active and not self._run_ids:
            self._run_finished.clear()  # a new run begins
        current = {j.id for j in active}
        self._run_ids.update(current)
        for job_id in list(self._run_ids):
            if job_id in current:
                self._run_finished.pop(job_id, None)
                continue
            if job_id in self._run_finished:
                continue
            job = self._store.get(job_id)
            if job is None or job.archived:
                self._run_ids.discard(job_id)
            elif job.finished:
                self._run_finished[job_id] = job
                if job.state == DONE:
                    self._recent.append(job)

    def _probe(self, jobs: Iterable[Job]) -> None:
        if self._probing or self._closed:
            return  # one probe task at a time; the next summary picks up the rest
        targets = [(j.id, j.source) for j in jobs if j.duration is None and j.id not in self._durations][
            :PROBE_BATCH
        ]
        if targets:
            self._probing.update(job_id for job_id, _ in targets)
            self._pool.start(_ProbeTask(targets, self._signals))
