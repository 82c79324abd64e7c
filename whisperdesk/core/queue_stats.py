"""Per-job timing (elapsed, speed, ETA) and the whole-queue summary shown in the status bar.

Pure functions over :class:`~whisperdesk.core.jobstore.Job` records so the table, the status bar and the
CLI agree on one definition. Speeds are "× realtime": seconds of audio transcribed per wall-clock second.
Durations of queued jobs are often unknown until they start; the caller may pass probed durations, and
the rest are estimated from the known ones, so the ETA is honest about being an estimate but never blank
while something runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, FINISHED_STATES, QUEUED, RUNNING, Job

MIN_ELAPSED_FOR_SPEED = 0.5  # seconds; earlier measurements are dominated by model and audio loading


@dataclass(frozen=True)
class JobTiming:
    elapsed: float | None  # seconds spent transcribing so far (running) or in all (finished)
    speed: float | None  # × realtime
    eta: float | None  # seconds until a running job is done


def format_seconds(seconds: float | None) -> str:
    """``m:ss`` or ``h:mm:ss``; empty for unknown."""
    if seconds is None or seconds < 0:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def job_timing(
    job: Job,
    now: float,
    done_seconds: float | None = None,
    total_seconds: float | None = None,
    *,
    paced_from: tuple[float, float] | None = None,
) -> JobTiming:
    """Timing of one job at wall-clock ``now``; ``done_seconds``/``total_seconds`` is live progress in
    audio seconds (fresher than the store's record).

    ``paced_from`` is (wall-clock time, audio seconds done) when the job's first work was decoded: the ETA
    then follows the job's own pace since that moment, not counting the time it waited for the model before
    it nor the windows a resumed job kept from an earlier run.
    """
    if job.state == RUNNING:
        if job.started_at is None:
            return JobTiming(None, None, None)
        elapsed = max(0.0, now - job.started_at)
        duration = job.duration or total_seconds
        if done_seconds is None and duration:
            done_seconds = job.progress * duration
        speed = None
        if done_seconds and elapsed >= MIN_ELAPSED_FOR_SPEED:
            speed = done_seconds / elapsed
        eta = None
        pace = speed
        if paced_from is not None and done_seconds is not None:
            since, base = paced_from
            if now - since >= MIN_ELAPSED_FOR_SPEED and done_seconds > base:
                pace = (done_seconds - base) / (now - since)
        if pace and duration:
            eta = max(0.0, duration - (done_seconds or 0.0)) / pace
        return JobTiming(elapsed, speed, eta)
    if job.state in FINISHED_STATES:
        elapsed = job.processing_time
        if elapsed is None and job.started_at is not None and job.finished_at is not None:
            elapsed = max(0.0, job.finished_at - job.started_at)
        speed = None
        if job.state == DONE and job.duration and elapsed:
            speed = job.duration / elapsed
        return JobTiming(elapsed, speed, None)
    return JobTiming(None, None, None)


@dataclass(frozen=True)
class QueueSummary:
    total: int  # jobs in the current run of the queue (since it was last empty)
    done: int
    failed: int  # failed only: a canceled job is the user's choice, not a failure
    running: int
    queued: int
    fraction: float | None  # 0..1 of the run's audio; None when nothing is in the run
    eta: float | None  # seconds until every queued and running job is done
    speed: float | None  # current throughput, × realtime
    paused: bool = False
    canceled: int = 0

    @property
    def active(self) -> bool:
        return self.running + self.queued > 0

    def text(self) -> str:
        if self.total == 0:
            return "Queue: empty"
        if not self.active:
            tail = f", {self.failed} failed" if self.failed else ""
            tail += f", {self.canceled} canceled" if self.canceled else ""
            return f"Queue: finished, {self.done} done{tail}"
        parts = [f"Queue: {self.done} of {self.total} done"]  # a failure or a cancel is not "done"
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.canceled:
            parts.append(f"{self.canceled} canceled")
        if self.paused:
            parts.append("paused")
        elif self.running:
            parts.append(f"{self.running} running")
        if self.eta is not None and not self.paused:
            parts.append(f"ETA {format_seconds(self.eta)}")
        if self.speed and not self.paused:
            parts.append(f"{self.speed:.1f}× realtime")
        return " · ".join(parts)


def summarize(
    jobs: Iterable[Job],
    now: float,
    *,
    live_done: Mapping[int, float] | None = None,
    durations: Mapping[int, float] | None = None,
    recent_speed: float | None = None,
    paused: bool = False,
) -> QueueSummary:
    """Summarise one run of the queue (``jobs``: the queued, running and finished jobs of that run).

    ``live_done``: audio seconds done per running job (fresher than the store); ``durations``: probed audio
    lengths of jobs that have not started; ``recent_speed``: × realtime of recently finished jobs, used
    until running jobs have measured their own.
    """
    live_done = live_done or {}
    durations = durations or {}
    jobs = list(jobs)
    if not jobs:
        return QueueSummary(0, 0, 0, 0, 0, None, None, None, paused)

    def length(job: Job) -> float | None:
        if job.duration:
            return job.duration
        probed = durations.get(job.id)
        return probed if probed and probed > 0 else None

    known = [d for d in (length(j) for j in jobs) if d is not None]
    typical = sum(known) / len(known) if known else None
    weights = {j.id: length(j) or typical or 1.0 for j in jobs}
    total_weight = sum(weights.values())

    done_weight = 0.0
    remaining_audio = 0.0
    remaining_known = True
    throughput = 0.0
    counts = {DONE: 0, FAILED: 0, CANCELED: 0, "running": 0, "queued": 0}
    for job in jobs:
        weight = weights[job.id]
        if job.state in FINISHED_STATES:
            counts[job.state] += 1
            done_weight += weight
            continue
        if job.state == RUNNING:
            counts["running"] += 1
            duration = length(job)
            timing = job_timing(job, now, live_done.get(job.id), duration)
            fraction = _fraction(job, live_done.get(job.id), duration)
            done_weight += weight * fraction
            if duration is None and typical is None:
                remaining_known = False
            remaining_audio += (duration or typical or 0.0) * (1.0 - fraction)
            if timing.speed:
                throughput += timing.speed
        elif job.state == QUEUED:
            counts["queued"] += 1
            duration = length(job) or typical
            if duration is None:
                remaining_known = False
            remaining_audio += duration or 0.0
    if not throughput and recent_speed:
        throughput = recent_speed * max(1, counts["running"])
    eta = remaining_audio / throughput if throughput and remaining_known else None
    if counts["running"] + counts["queued"] == 0:
        eta = None
    fraction = min(1.0, done_weight / total_weight) if total_weight else None
    return QueueSummary(
        total=len(jobs),
        done=counts[DONE],
        failed=counts[FAILED],
        running=counts["running"],
        queued=counts["queued"],
        fraction=fraction,
        eta=eta,
        speed=throughput or None,
        paused=paused,
        canceled=counts[CANCELED],
    )


def _fraction(job: Job, done_seconds: float | None, duration: float | None) -> float:
    if done_seconds is not None and duration:
        return min(1.0, max(0.0, done_seconds / duration))
    return min(1.0, max(0.0, job.progress))


def recent_speed(jobs: Iterable[Job], limit: int = 10) -> float | None:
    """× realtime over the last ``limit`` done jobs that recorded duration and processing time."""
    timed = [j for j in jobs if j.state == DONE and j.duration and j.processing_time]
    timed.sort(key=lambda j: j.finished_at or 0.0)
    timed = timed[-limit:]
    audio = sum(j.duration or 0.0 for j in timed)
    spent = sum(j.processing_time or 0.0 for j in timed)
    return audio / spent if spent > 0 else None
