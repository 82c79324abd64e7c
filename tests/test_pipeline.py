"""One pipeline, two front ends: the same fault and behaviour tests through ``watch``'s loop and the window's
runner, which both call :func:`whisperdesk.core.queue.run.run_next`.

"No transcription ran" is shown with an engine that cannot load any model: had a job reached
transcription, it would have gone back to the queue with a model error instead of ending as asserted.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from test_watch_cli import wait_for

from whisperdesk.core.clock import FakeClock
from whisperdesk.core.engine import Engine
from whisperdesk.core.errors import OUTPUT_EXISTS, OUTPUT_UNWRITABLE
from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, QUEUED, RUNNING, Job, JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.queue.enqueue import enqueue
from whisperdesk.core.queue.loop import QueueLoop
from whisperdesk.core.queue.retry import CHOOSE_FOLDER, OVERWRITE, fix_actions, retry_settings
from whisperdesk.core.queue_stats import summarize
from whisperdesk.core.settings import (
    DecodeOptions,
    ModelConfig,
    OutputOptions,
    Settings,
    UiOptions,
    WatchedFolder,
)
from whisperdesk.devtools.synth_audio import noise, tone, write_audio
from whisperdesk.services.job_runner import JobRunner
from whisperdesk.services.watcher_bridge import WatcherBridge

FAST = DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=16)
WAIT = 60.0  # an upper bound for a few seconds of audio on a slow machine; never asserted as a timing
FRONT_ENDS = ("watch", "window")
LONG = 1200.0  # seconds: the random-weight model decodes fast; a cancel must land while the job still runs

pytestmark = pytest.mark.usefixtures("no_leaks")


class Box:
    """The settings getter the processor and runner read at each job; tests change it between jobs."""

    def __init__(self, settings: Settings) -> None:
        self.value = settings

    def __call__(self) -> Settings:
        return self.value


@pytest.fixture
def no_model(tmp_path: Path) -> Engine:
    return Engine(ModelConfig(model=str(tmp_path / "no-model-here"), device="cpu"), tmp_path / "models")


@pytest.fixture
def box(whisper_model_dir: Path, tmp_path: Path) -> Box:
    model = ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=1)
    return Box(Settings(model=model, decode=FAST, output=OutputOptions(formats=("txt", "json"))))


def recording(path: Path, seconds: float = 2.0, seed: int = 0) -> Path:
    return write_audio(
        path, noise(seconds, amplitude=0.2, seed=seed) + tone(300.0 + seed, seconds, amplitude=0.2)
    )


class Front:
    """Runs the store's queue to the end through one front end, with the given engine."""

    def __init__(self, kind: str, store: JobStore, box: Box, tmp_path: Path, qtbot: QtBot) -> None:
        self.kind, self.store, self.box, self.qtbot = kind, store, box, qtbot
        self.ledger = OutputLedger(tmp_path / "data" / "ledger.json")
        self.runner: JobRunner | None = None
        self._engine: Engine | None = None

    def processor(self, engine: Engine) -> JobProcessor:
        return JobProcessor(self.store, engine, self.ledger, self.box)

    def drain(self, engine: Engine) -> None:
        """Run until nothing is queued or running (or the queue paused itself)."""
        if self.kind == "watch":
            loop = QueueLoop(self.store, self.processor(engine), poll_seconds=0.02)
            loop.start()
            try:
                wait_for(lambda: loop.stopped or self._settled(), "the loop to run the queue")
            finally:
                loop.stop()
            return
        runner = self.window(engine)
        runner.set_paused(False)
        self.qtbot.waitUntil(lambda: runner.paused or self._settled(), timeout=int(WAIT * 1000))

    def window(self, engine: Engine) -> JobRunner:
        """The window's runner over ``engine`` (a new one when the engine changes)."""
        if self.runner is not None and self._engine is not engine:
            self.close()
            self.runner = None
        if self.runner is None:
            self._engine = engine
            self.runner = JobRunner(self.store, self.processor(engine), self.box)
            self.runner.start()
        return self.runner

    def _settled(self) -> bool:
        return not self.store.list([QUEUED, RUNNING]) and (self.runner is None or not self.runner.is_busy())

    def close(self) -> None:
        if self.runner is not None:
            assert self.runner.shutdown(int(WAIT * 1000))
            self.runner.deleteLater()


@pytest.fixture(params=FRONT_ENDS)
def front(
    request: pytest.FixtureRequest, store: JobStore, box: Box, tmp_path: Path, qtbot: QtBot
) -> Iterator[Front]:
    made = Front(request.param, store, box, tmp_path, qtbot)
    yield made
    made.close()


def queue(store: JobStore, box: Box, path: Path, **kw: object) -> Job:
    outcome = enqueue(store, path, job_settings(box.value, **kw))  # type: ignore[arg-type]
    assert outcome.created and outcome.job is not None, outcome.reason
    return outcome.job


# --- outputs in the way -------------------------------------------------------------------------------
def test_a_foreign_file_in_the_way_fails_the_job_before_transcription(
    front: Front, store: JobStore, box: Box, no_model: Engine, engine: Engine, tmp_path: Path
) -> None:
    source = recording(tmp_path / "talk.wav")
    foreign = tmp_path / "talk.txt"
    foreign.write_text("the user's own notes")
    job = queue(store, box, source)
    front.drain(no_model)  # a transcription would have paused the queue with a model error instead
    failed = store.require(job.id)
    assert failed.state == FAILED and failed.error_kind == OUTPUT_EXISTS
    assert str(foreign) in (failed.error or "") and "--overwrite" not in (failed.error or "")
    assert foreign.read_text() == "the user's own notes"
    if front.runner is not None:
        assert not front.runner.paused  # the file's problem, not the engine's

    # The two actions the window offers, behind the runner's methods; watch's user runs `jobs retry`.
    runner = front.window(engine)
    assert runner.retry_in_folder(job.id, str(tmp_path / "elsewhere"))
    front.drain(engine)
    moved = store.require(job.id)
    assert moved.state == DONE and {p.parent for p in moved.outputs} == {tmp_path / "elsewhere"}
    assert foreign.read_text() == "the user's own notes"
    assert runner.retry_overwrite(job.id)
    front.drain(engine)
    replaced = store.list()[-1]
    assert replaced.state == DONE and foreign in replaced.outputs
    assert foreign.read_text() != "the user's own notes"


def test_an_unwritable_output_folder_fails_at_once_and_retry_uses_the_current_settings(
    front: Front, store: JobStore, box: Box, no_model: Engine, engine: Engine, tmp_path: Path
) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    box.value = box.value.replace(output=OutputOptions(formats=("txt",), output_dir=str(blocker / "out")))
    job = queue(store, box, recording(tmp_path / "in" / "talk.wav"))
    front.drain(no_model)
    failed = store.require(job.id)
    assert failed.state == FAILED and failed.error_kind == OUTPUT_UNWRITABLE
    assert str(blocker) in (failed.error or "")

    box.value = box.value.replace(output=OutputOptions(formats=("txt",), output_dir=str(tmp_path / "fixed")))
    assert front.window(engine).retry(job.id)  # the user fixed the setting, then pressed Retry
    front.drain(engine)
    done = store.require(job.id)
    assert done.state == DONE and done.outputs == (tmp_path / "fixed" / "talk.txt",)


def test_transcripts_get_the_users_file_mode(
    front: Front, store: JobStore, box: Box, engine: Engine, tmp_path: Path
) -> None:
    old = os.umask(0o027)
    try:
        job = queue(store, box, recording(tmp_path / "talk.wav"))
        front.drain(engine)
    finally:
        os.umask(old)
    done = store.require(job.id)
    assert done.state == DONE and done.outputs
    assert {stat.S_IMODE(p.stat().st_mode) for p in done.outputs} == {0o640}


# --- copies of a recording ----------------------------------------------------------------------------
def test_a_copy_queued_while_the_original_runs_waits_and_copies_its_transcripts(
    front: Front, store: JobStore, box: Box, engine: Engine, no_model: Engine, tmp_path: Path
) -> None:
    original = recording(tmp_path / "a" / "meeting.wav", 3.0, seed=1)
    first = queue(store, box, original)
    copy_path = tmp_path / "b" / "meeting (copy).wav"
    copy_path.parent.mkdir()
    copy_path.write_bytes(original.read_bytes())
    copy = queue(store, box, copy_path)
    assert copy.copy_of == first.id
    claimed = store.claim_next()  # the original is running (here, by hand)...
    assert claimed is not None and claimed.id == first.id
    assert store.claim_next() is None  # ...so its copy waits
    store.release(first.id)
    front.drain(engine)
    done, copied = store.require(first.id), store.require(copy.id)
    assert done.state == copied.state == DONE
    assert copied.processing_time == 0.0 and copied.duration == done.duration
    for a, b in zip(done.outputs, copied.outputs, strict=True):
        assert b.parent == copy_path.parent and b.stem == copy_path.stem
        if a.suffix == ".txt":
            assert a.read_bytes() == b.read_bytes()

    # "Transcribe again" on the copy transcribes it: a new job that copies nothing.
    assert front.window(engine).retry(copy.id)
    again = store.list()[-1]
    assert again.id != copy.id and again.source == copy_path and again.copy_of is None
    front.drain(engine)
    assert store.require(again.id).state == DONE and (store.require(again.id).processing_time or 0) > 0


# --- pause and cancel ---------------------------------------------------------------------------------
def test_pause_now_puts_the_running_job_back_and_after_the_current_job_lets_it_finish(
    qtbot: QtBot, store: JobStore, box: Box, engine: Engine, tmp_path: Path
) -> None:
    runner = JobRunner(store, JobProcessor(store, engine, OutputLedger(tmp_path / "l.json"), box), box)
    started: list[int] = []
    requeued: list[Job] = []
    runner.jobStarted.connect(started.append)
    runner.jobRequeued.connect(requeued.append)
    try:
        long = queue(store, box, recording(tmp_path / "long.wav", 90.0, seed=2))
        runner.start()
        qtbot.waitUntil(lambda: store.require(long.id).progress > 0, timeout=int(WAIT * 1000))
        runner.pause_now()
        qtbot.waitUntil(lambda: bool(requeued), timeout=int(WAIT * 1000))
        back = store.require(long.id)
        assert back.state == QUEUED and back.attempts == 0 and runner.paused and not runner.is_busy()

        runner.resume()
        qtbot.waitUntil(lambda: store.require(long.id).state == RUNNING, timeout=int(WAIT * 1000))
        runner.pause()  # after the current job: it finishes, nothing new starts
        short = queue(store, box, recording(tmp_path / "short.wav", 1.0, seed=3))
        qtbot.waitUntil(lambda: store.require(long.id).state == DONE, timeout=int(WAIT * 1000) * 3)
        qtbot.wait(200)
        assert store.require(short.id).state == QUEUED and started == [long.id, long.id]
    finally:
        assert runner.shutdown(int(WAIT * 1000))
        runner.deleteLater()


def test_canceled_is_counted_apart_from_failed(
    front: Front, store: JobStore, box: Box, engine: Engine, tmp_path: Path
) -> None:
    job = queue(store, box, recording(tmp_path / "x.wav"))
    store.mark_canceled(job.id)
    front.drain(engine)
    summary = summarize(store.list(), time.time())
    assert (summary.done, summary.failed, summary.canceled) == (0, 0, 1)
    assert summary.text() == "Queue: finished, 0 done, 1 canceled"
    assert store.require(job.id).state == CANCELED


def test_retry_settings_follow_where_the_job_came_from(store: JobStore, box: Box, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    cli_out = tmp_path / "cli-out"
    job = enqueue(
        store,
        recording(inbox / "a.wav"),
        job_settings(box.value, output_dir=cli_out),
        origin="watched",
        watch_folder=str(inbox),
    ).job
    assert job is not None
    # `watch INBOX --output-dir CLI-OUT`: the folder came from the command line, not the settings.
    assert retry_settings(job, box.value)["output"]["output_dir"] == str(cli_out)
    watched = box.value.replace(watched=(WatchedFolder(str(inbox), output_dir=str(tmp_path / "now")),))
    assert retry_settings(job, watched)["output"]["output_dir"] == str(tmp_path / "now")
    assert "overwrite" not in retry_settings(job, watched)
    assert retry_settings(job, watched, overwrite=True)["overwrite"] is True
    claimed = store.claim_next()
    assert claimed is not None
    assert fix_actions(store.mark_failed(job.id, "in the way", kind=OUTPUT_EXISTS)) == (
        OVERWRITE,
        CHOOSE_FOLDER,
    )


@pytest.mark.parametrize("batch_size", [2, 4])
def test_cancel_reaches_the_batching_scheduler_in_both_front_ends(
    qtbot: QtBot, store: JobStore, box: Box, whisper_model_dir: Path, tmp_path: Path, batch_size: int
) -> None:
    config = ModelConfig(
        model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=batch_size
    )
    batched = Engine(config, tmp_path / "models")
    box.value = box.value.replace(model=config)
    processor = JobProcessor(store, batched, OutputLedger(tmp_path / "ledger.json"), box)
    try:
        headless = queue(store, box, recording(tmp_path / "one.wav", LONG, seed=5))
        loop = QueueLoop(store, processor, workers=2, poll_seconds=0.02)
        loop.start()
        try:
            wait_for(lambda: store.require(headless.id).progress > 0, "the headless job to make progress")
            loop.cancel(headless.id)
            wait_for(lambda: store.require(headless.id).finished, "the headless job to stop")
        finally:
            loop.stop()
        assert store.require(headless.id).state == CANCELED
        assert loop.stats.canceled and not loop.stats.failed

        windowed = queue(store, box, recording(tmp_path / "two.wav", LONG, seed=6))
        runner = JobRunner(store, processor, box)
        canceling: list[int] = []
        runner.jobCanceling.connect(canceling.append)
        runner.start()
        try:
            qtbot.waitUntil(lambda: store.require(windowed.id).progress > 0, timeout=int(WAIT * 1000))
            assert runner.cancel(windowed.id) and canceling == [windowed.id]
            qtbot.waitUntil(lambda: store.require(windowed.id).finished, timeout=int(WAIT * 1000))
            assert store.require(windowed.id).state == CANCELED
        finally:
            assert runner.shutdown(int(WAIT * 1000))
            runner.deleteLater()
        assert not list(tmp_path.glob("*.txt"))
    finally:
        batched.scheduler.close()


def test_an_unreadable_watched_file_is_tried_again_at_the_next_scan_in_the_window(
    qtbot: QtBot, store: JobStore, clock: FakeClock, tmp_path: Path
) -> None:
    """The same policy as ``watch``'s: the watcher forgets a file the queue could not read yet."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bad = Path(os.fsdecode(os.path.join(os.fsencode(inbox), b"caf\xe9.wav")))  # not valid UTF-8
    os.rename(recording(tmp_path / "cafe.wav"), os.fsencode(bad))
    settings = Settings(watched=(WatchedFolder(str(inbox)),), ui=UiOptions(settle_seconds=1.0))
    bridge = WatcherBridge(store, settings, clock=clock)
    try:
        bridge.start()
        bridge.tick()
        clock.advance(1.5)
        assert [c.path for c in bridge.tick()] == [bad]
        assert store.list() == []  # could not be queued: no job...
        bridge.rescan()
        bridge.tick()
        clock.advance(1.5)
        assert [c.path for c in bridge.tick()] == [bad]  # ...and handed on again, not forgotten forever
    finally:
        bridge.shutdown()
        bridge.deleteLater()
