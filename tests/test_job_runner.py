"""JobRunner over the real engine and the random-weight model: claims, progress, pause, cancel, shutdown.

Every runner made here is shut down at teardown and must leave its pool idle and its timers stopped; no
Python thread may outlive a test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Slot
from pytestqt.qtbot import QtBot

from whisperdesk.core.clock import FakeClock
from whisperdesk.core.engine import Engine
from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, QUEUED, Job, JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.queue.workers import workers_for
from whisperdesk.core.queue_stats import format_seconds, job_timing, recent_speed, summarize
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings
from whisperdesk.devtools.synth_audio import make_not_audio, noise, write_audio
from whisperdesk.services.job_runner import JobRunner
from whisperdesk.services.queue_summary import NO_FRACTION, QueueSummaryFeed
from whisperdesk.services.store_feed import StoreFeed

FAST = DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=16)
WAIT_MS = 60_000  # an upper bound for a few seconds of audio on a slow CI machine; never a timing assertion
LONG_SECONDS = 90.0  # long enough (many segments) that a cancel lands while the job is still running


class SettingsBox:
    """The settings getter the runner and processor read at each job; tests change it between jobs."""

    def __init__(self, settings: Settings) -> None:
        self.value = settings

    def __call__(self) -> Settings:
        return self.value


class Recorder(QObject):
    """Collects the runner's signals through decorated slots, as the app's objects receive them."""

    def __init__(self, runner: JobRunner) -> None:
        super().__init__()
        self.started: list[int] = []
        self.progress: list[tuple[int, float, float, float]] = []
        self.finished: list[Job] = []
        self.failed: list[Job] = []
        self.canceled: list[Job] = []
        self.requeued: list[Job] = []
        self.drained: list[tuple[int, int, int]] = []
        self.canceling: list[int] = []
        self.paused: list[bool] = []
        self.busy: list[bool] = []
        self.model_errors: list[str] = []
        self.summaries: list[tuple[str, float]] = []
        self.added: list[object] = []
        self.add_failed: list[tuple[str, str]] = []
        self.refused: list[str] = []
        self.concurrent: list[int] = []
        self._runner = runner
        runner.jobStarted.connect(self.on_started)
        runner.jobProgress.connect(self.on_progress)
        runner.jobFinished.connect(self.on_finished)
        runner.jobFailed.connect(self.on_failed)
        runner.jobCanceled.connect(self.on_canceled)
        runner.jobRequeued.connect(self.on_requeued)
        runner.queueDrained.connect(self.on_drained)
        runner.pausedChanged.connect(self.on_paused)
        runner.busyChanged.connect(self.on_busy)
        runner.modelError.connect(self.on_model_error)
        runner.findChild(QueueSummaryFeed).queueSummary.connect(self.on_summary)
        runner.jobCanceling.connect(self.on_canceling)
        runner.jobsAdded.connect(self.on_added)
        runner.addFailed.connect(self.on_add_failed)
        runner.actionFailed.connect(self.on_refused)

    @Slot(int)
    def on_started(self, job_id: int) -> None:
        self.started.append(job_id)
        self.concurrent.append(len(self._runner.running_jobs()))

    @Slot(int, float, float)
    def on_progress(self, job_id: int, done: float, total: float) -> None:
        self.progress.append((job_id, done, total, time.monotonic()))

    @Slot(object)
    def on_finished(self, job: Job) -> None:
        self.finished.append(job)

    @Slot(object)
    def on_failed(self, job: Job) -> None:
        self.failed.append(job)

    @Slot(object)
    def on_canceled(self, job: Job) -> None:
        self.canceled.append(job)

    @Slot(object)
    def on_requeued(self, job: Job) -> None:
        self.requeued.append(job)

    @Slot(int, int, int)
    def on_drained(self, done: int, failed: int, canceled: int) -> None:
        self.drained.append((done, failed, canceled))

    @Slot(int)
    def on_canceling(self, job_id: int) -> None:
        self.canceling.append(job_id)

    @Slot(bool)
    def on_paused(self, paused: bool) -> None:
        self.paused.append(paused)

    @Slot(bool)
    def on_busy(self, busy: bool) -> None:
        self.busy.append(busy)

    @Slot(str)
    def on_model_error(self, message: str) -> None:
        self.model_errors.append(message)

    @Slot(str, float)
    def on_summary(self, text: str, fraction: float) -> None:
        self.summaries.append((text, fraction))

    @Slot(object)
    def on_added(self, results: object) -> None:
        self.added.append(results)

    @Slot(str, str)
    def on_add_failed(self, path: str, reason: str) -> None:
        self.add_failed.append((path, reason))

    @Slot(str)
    def on_refused(self, message: str) -> None:
        self.refused.append(message)

    def progress_of(self, job_id: int) -> list[tuple[float, float, float]]:
        return [(d, t, at) for j, d, t, at in self.progress if j == job_id]


pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def box(whisper_model_dir: Path) -> SettingsBox:
    return SettingsBox(
        Settings(
            model=ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=1),
            decode=FAST,
            output=OutputOptions(formats=("txt", "json")),
        )
    )


MakeRunner = Callable[..., JobRunner]


@pytest.fixture
def make_runner(
    qtbot: QtBot, store: JobStore, engine: Engine, box: SettingsBox, tmp_path: Path
) -> Iterator[MakeRunner]:
    made: list[JobRunner] = []

    def make(*, using: Engine | None = None, poll_ms: int = 1000, **kwargs: object) -> JobRunner:
        processor = JobProcessor(store, using or engine, OutputLedger(tmp_path / "ledger.json"), box)
        feed = StoreFeed(store, poll_ms=poll_ms)
        runner = JobRunner(store, processor, box, feed=feed, **kwargs)  # type: ignore[arg-type]
        feed.setParent(runner)  # the runner closes a feed it owns at shutdown
        QueueSummaryFeed(store, feed, runner, runner)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        summary = runner.findChild(QueueSummaryFeed)
        assert runner.shutdown(WAIT_MS) and summary.shutdown(WAIT_MS)
        assert runner.pool.activeThreadCount() == 0
        assert [t.objectName() for t in runner.timers() if t.isActive()] == []
        runner.deleteLater()


def audio(folder: Path, name: str, seconds: float = 4.0, seed: int = 0) -> Path:
    return write_audio(folder / name, noise(seconds, amplitude=0.3, seed=seed))


def test_concurrency_follows_batch_size() -> None:
    assert [workers_for(b) for b in (1, 2, 3, 4, 8, 64)] == [1, 2, 3, 4, 4, 4]


def test_added_files_run_to_done_with_throttled_progress_and_outputs(
    qtbot: QtBot, make_runner: MakeRunner, store: JobStore, tmp_path: Path
) -> None:
    files = [audio(tmp_path / "in", f"take{i}.wav", 3.0 + i, seed=i) for i in range(3)]
    runner = make_runner()
    rec = Recorder(runner)
    runner.start()
    runner.add_paths(files)
    qtbot.waitUntil(lambda: bool(rec.drained), timeout=WAIT_MS)

    assert rec.drained == [(3, 0, 0)]
    assert [j.source for j in rec.finished] == files  # one at a time, in the order added
    assert rec.concurrent == [1, 1, 1]
    for job in rec.finished:
        stored = store.require(job.id)
        assert stored.state == DONE and stored.progress == 1.0
        assert {p.suffix for p in stored.outputs} == {".txt", ".json"}
        assert all(p.is_file() for p in stored.outputs)
        assert stored.duration == pytest.approx(job.duration) and stored.duration is not None
        updates = rec.progress_of(job.id)
        assert updates, "no progress reached the GUI"
        done, total, _ = updates[-1]
        assert done == pytest.approx(total) == pytest.approx(stored.duration, abs=0.05)
        span = updates[-1][2] - updates[0][2]
        assert len(updates) <= 2 + 10 * span  # ≤ 10 updates a second per job, plus the first and the last
    assert rec.busy[0] is True and rec.busy[-1] is False
    qtbot.waitUntil(lambda: rec.summaries[-1][0].startswith("Queue: finished"), timeout=WAIT_MS)
    text, fraction = rec.summaries[-1]
    assert text == "Queue: finished, 3 done" and fraction == NO_FRACTION
    assert any(f > 0 for _, f in rec.summaries)  # the bar showed progress while jobs ran
    assert not runner.is_busy()


def test_pause_stops_claiming_and_resume_carries_on(
    qtbot: QtBot, make_runner: MakeRunner, store: JobStore, tmp_path: Path
) -> None:
    runner = make_runner(poll_ms=50)
    rec = Recorder(runner)
    runner.start()
    runner.pause()
    runner.add_paths([audio(tmp_path, "a.wav", seed=1), audio(tmp_path, "b.wav", seed=2)])
    qtbot.waitUntil(lambda: bool(rec.added), timeout=WAIT_MS)
    qtbot.wait(300)  # several poll ticks: a paused runner must still claim nothing
    assert rec.started == []
    assert [j.state for j in store.list()] == [QUEUED, QUEUED]
    qtbot.waitUntil(lambda: "paused" in rec.summaries[-1][0], timeout=WAIT_MS)
    assert rec.summaries[-1] == ("Queue: 0 of 2 done · paused", 0.0)

    runner.resume()
    qtbot.waitUntil(lambda: bool(rec.drained), timeout=WAIT_MS)
    assert rec.paused == [True, False]
    assert [j.state for j in store.list()] == [DONE, DONE]


def _wait_until_running(qtbot: QtBot, rec: Recorder) -> int:
    """Wait for the first live progress inside the job (not its start or end); returns the job id."""
    qtbot.waitUntil(lambda: any(0 < d < t for _, d, t, _ in rec.progress), timeout=WAIT_MS)
    return rec.started[0]


def test_cancel_a_running_job_stops_it_cooperatively(
    qtbot: QtBot, make_runner: MakeRunner, store: JobStore, tmp_path: Path
) -> None:
    source = audio(tmp_path, "long.wav", LONG_SECONDS, seed=3)
    runner = make_runner()
    rec = Recorder(runner)
    runner.start()
    runner.add_paths([source])
    job_id = _wait_until_running(qtbot, rec)
    assert runner.cancel(job_id)
    qtbot.waitUntil(lambda: bool(rec.canceled), timeout=WAIT_MS)

    job = store.require(job_id)
    assert job.state == CANCELED and job.progress < 1.0
    assert rec.finished == [] and rec.canceled[0].id == job_id
    assert rec.canceling == [job_id]  # said at once, before the job stopped
    assert not (tmp_path / "long.txt").exists()
    assert rec.drained == [(0, 0, 1)]  # canceled is not failed
    qtbot.waitUntil(lambda: rec.summaries[-1][0] == "Queue: finished, 0 done, 1 canceled", timeout=WAIT_MS)


def test_cancel_a_queued_job_marks_it_and_it_never_starts(
    qtbot: QtBot, make_runner: MakeRunner, store: JobStore, tmp_path: Path
) -> None:
    runner = make_runner()
    rec = Recorder(runner)
    runner.start()
    runner.pause()
    runner.add_paths([audio(tmp_path, "keep.wav", seed=4), audio(tmp_path, "drop.wav", seed=5)])
    qtbot.waitUntil(lambda: bool(rec.added), timeout=WAIT_MS)
    keep, drop = store.list()
    assert runner.cancel(drop.id)
    assert store.require(drop.id).state == CANCELED

    runner.resume()
    qtbot.waitUntil(lambda: bool(rec.drained), timeout=WAIT_MS)
    assert rec.started == [keep.id]
    assert store.require(keep.id).state == DONE
    assert not runner.cancel(keep.id)  # already done: refused with a reason
    assert "already done" in rec.refused[-1]


def test_shutdown_puts_the_running_job_back_in_the_queue(
    qtbot: QtBot, make_runner: MakeRunner, store: JobStore, tmp_path: Path
) -> None:
    source = audio(tmp_path, "interrupted.wav", LONG_SECONDS, seed=6)
    runner = make_runner()
    rec = Recorder(runner)
    runner.start()
    runner.add_paths([source])
    job_id = _wait_until_running(qtbot, rec)

    assert runner.shutdown(WAIT_MS)
    job = store.require(job_id)
    assert job.state == QUEUED and job.attempts == 0 and job.progress == 0
    assert not (tmp_path / "interrupted.txt").exists()
    runner.add_paths([audio(tmp_path, "late.wav", seed=7)])  # ignored once closing
    qtbot.wait(100)
    assert len(store.list()) == 1


def test_a_model_error_pauses_the_queue_and_keeps_the_job(
    qtbot: QtBot, make_runner: MakeRunner, store: JobStore, tmp_path: Path
) -> None:
    broken = Engine(ModelConfig(model=str(tmp_path / "no-model-here"), device="cpu"), tmp_path / "models")
    runner = make_runner(using=broken)
    rec = Recorder(runner)
    runner.start()
    runner.add_paths([audio(tmp_path, "waiting.wav", seed=8)])
    qtbot.waitUntil(lambda: bool(rec.model_errors), timeout=WAIT_MS)

    assert "model folder" in rec.model_errors[0] and "does not exist" in rec.model_errors[0]
    assert runner.paused and rec.paused == [True]
    assert [j.state for j in store.list()] == [QUEUED]
    assert rec.requeued and rec.requeued[0].state == QUEUED
    assert rec.drained == []


def test_batch_size_two_runs_two_jobs_at_once(
    qtbot: QtBot,
    make_runner: MakeRunner,
    store: JobStore,
    box: SettingsBox,
    whisper_model_dir: Path,
    tmp_path: Path,
) -> None:
    config = ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=2)
    batched = Engine(config, tmp_path / "models")
    box.value = box.value.replace(model=config)
    try:
        runner = make_runner(using=batched)
        rec = Recorder(runner)
        for i in range(3):
            store.add(audio(tmp_path, f"b{i}.wav", 60.0, seed=10 + i), job_settings(box.value))
        assert runner.concurrency() == 2
        runner.start()
        qtbot.waitUntil(lambda: bool(rec.drained), timeout=WAIT_MS)
        assert max(rec.concurrent) == 2
        assert rec.drained == [(3, 0, 0)]
        assert all(j.state == DONE for j in store.list())
    finally:
        batched.scheduler.close()


def test_retry_run_again_and_remove(
    qtbot: QtBot, make_runner: MakeRunner, store: JobStore, tmp_path: Path
) -> None:
    bad = make_not_audio(tmp_path / "notes.wav", "text")
    good = audio(tmp_path, "good.wav", seed=9)
    runner = make_runner()
    rec = Recorder(runner)
    runner.start()
    runner.add_paths([bad, good])
    qtbot.waitUntil(lambda: bool(rec.drained), timeout=WAIT_MS)
    assert rec.drained == [(1, 1, 0)]
    failed = store.find(bad)[0]
    assert failed.state == FAILED and failed.error and "text" in failed.error.lower()

    assert runner.retry(failed.id)
    qtbot.waitUntil(lambda: len(rec.failed) == 2, timeout=WAIT_MS)
    done = store.find(good)[0]
    assert runner.retry(done.id)  # a done job runs again as a new job
    qtbot.waitUntil(lambda: len(rec.finished) == 2, timeout=WAIT_MS)
    assert len(store.find(good)) == 2

    assert runner.remove(failed.id)
    assert store.get(failed.id) is None
    assert not runner.retry(failed.id) and "no longer exists" in rec.refused[-1]


def test_removing_a_running_job_cancels_it_first(
    qtbot: QtBot, make_runner: MakeRunner, store: JobStore, tmp_path: Path
) -> None:
    runner = make_runner()
    rec = Recorder(runner)
    runner.start()
    runner.add_paths([audio(tmp_path, "gone.wav", LONG_SECONDS, seed=11)])
    job_id = _wait_until_running(qtbot, rec)
    assert runner.remove(job_id)
    qtbot.waitUntil(lambda: store.get(job_id) is None, timeout=WAIT_MS)
    assert rec.canceled and rec.canceled[0].id == job_id


def test_files_that_cannot_be_queued_are_named(
    qtbot: QtBot, make_runner: MakeRunner, store: JobStore, tmp_path: Path
) -> None:
    runner = make_runner()
    rec = Recorder(runner)
    missing = tmp_path / "missing.wav"
    runner.add_paths([missing, tmp_path])
    qtbot.waitUntil(lambda: bool(rec.added), timeout=WAIT_MS)
    assert [p for p, _ in rec.add_failed] == [str(missing), str(tmp_path)]
    assert "no longer exists" in rec.add_failed[0][1]
    assert "folder" in rec.add_failed[1][1]
    assert store.list() == []


def test_jobs_added_by_another_process_are_picked_up(
    qtbot: QtBot, make_runner: MakeRunner, store: JobStore, box: SettingsBox, tmp_path: Path
) -> None:
    runner = make_runner(poll_ms=50)
    rec = Recorder(runner)
    runner.start()
    other = JobStore(store.path)  # what `whisperdesk watch` or `jobs add` would use
    try:
        added = other.add(audio(tmp_path, "cli.wav", seed=12), job_settings(box.value), origin="cli")
    finally:
        other.close()
    qtbot.waitUntil(lambda: bool(rec.drained), timeout=WAIT_MS)
    assert rec.started == [added.job.id]
    assert store.require(added.job.id).state == DONE


# --- queue statistics over real store records -------------------------------------------------------------
def test_summary_fraction_and_eta_from_durations_and_measured_speed(tmp_path: Path) -> None:
    clock = FakeClock()
    with JobStore(tmp_path / "jobs.sqlite3", clock=clock) as store:
        done_file = audio(tmp_path, "done.wav", seed=20)
        running_file = audio(tmp_path, "running.wav", seed=21)
        queued_file = audio(tmp_path, "queued.wav", seed=22)
        for f in (done_file, running_file, queued_file):
            store.add(f)
        first = store.claim_next()
        assert first is not None
        clock.advance(10.0)
        store.mark_done(first.id, duration=100.0, processing_time=10.0)  # 10× realtime
        second = store.claim_next()
        assert second is not None
        store.mark_progress(second.id, 0.25, duration=200.0)
        clock.advance(10.0)  # 50 s of audio in 10 s: 5× realtime
        jobs = store.list()
        now = clock.time()

        running = store.require(second.id)
        timing = job_timing(running, now)
        assert timing.elapsed == pytest.approx(10.0)
        assert timing.speed == pytest.approx(5.0)
        assert timing.eta == pytest.approx(150.0 / 5.0)
        assert job_timing(store.require(first.id), now).speed == pytest.approx(10.0)
        assert recent_speed([store.require(first.id)]) == pytest.approx(10.0)

        third = next(j for j in jobs if j.state == QUEUED)
        summary = summarize(jobs, now, durations={third.id: 300.0})
        # weights 100 (done), 200 (¼ done), 300 (queued): (100 + 50) / 600
        assert summary.fraction == pytest.approx(150.0 / 600.0)
        assert summary.eta == pytest.approx((150.0 + 300.0) / 5.0)
        assert (summary.done, summary.running, summary.queued) == (1, 1, 1)
        assert summary.text() == "Queue: 1 of 3 done · 1 running · ETA 1:30 · 5.0× realtime"

        live = summarize(jobs, now, live_done={second.id: 100.0}, durations={third.id: 300.0})
        assert live.fraction == pytest.approx(200.0 / 600.0)
        unknown = summarize(jobs, now)  # the queued job's length is estimated from the known ones
        assert unknown.eta == pytest.approx((150.0 + 150.0) / 5.0)
        assert summarize([], now).text() == "Queue: empty"


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (None, -1, 0, 59.4, 61, 3600, 3725)] == [
        "",
        "",
        "0:00",
        "0:59",
        "1:01",
        "1:00:00",
        "1:02:05",
    ]
