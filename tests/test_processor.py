"""JobProcessor and QueueLoop over the real engine and the random-weight test model.

Every job ends in a state with a reason: done with outputs, failed with what went wrong, canceled, or back in
the queue when the app stops or the model is unusable.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from whisperdesk.core.engine import Engine
from whisperdesk.core.errors import SUPERSEDED, ModelError
from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, QUEUED, RUNNING, Job, JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.processor import JobProcessor, done_path, job_settings, options_for
from whisperdesk.core.queue.loop import QueueLoop
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings
from whisperdesk.devtools.synth_audio import (
    make_empty,
    make_not_audio,
    make_truncated,
    noise,
    tone,
    write_audio,
)

FAST_DECODE = DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=16)
WAIT = 30.0  # generous bound for worker threads to finish a few seconds of audio; never asserted as a timing


def signal(seconds: float, seed: int = 0) -> np.ndarray:
    return noise(seconds, amplitude=0.2, seed=seed) + tone(220.0 + 10 * seed, seconds, amplitude=0.2)


@pytest.fixture(scope="module")
def engine(whisper_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    eng = Engine(ModelConfig(model=str(whisper_model_dir), device="cpu"), tmp_path_factory.mktemp("models"))
    eng.load()
    return eng


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(decode=FAST_DECODE, output=OutputOptions(formats=("txt", "json")))


@pytest.fixture
def processor(store: JobStore, engine: Engine, settings: Settings, tmp_path: Path) -> JobProcessor:
    return JobProcessor(store, engine, OutputLedger(tmp_path / "data" / "ledger.json"), lambda: settings)


def queue(
    store: JobStore,
    settings: Settings,
    path: Path,
    *,
    out: Path | None = None,
    after: str = "leave",
    folder: Path | None = None,
) -> Job:
    record = job_settings(settings, output_dir=out, after_processing=after)
    result = store.add(path, record, origin="watched", watch_folder=str(folder) if folder else None)
    assert result.created, result.reason
    return result.job


def claim(store: JobStore, job: Job) -> Job:
    claimed = store.claim_next()
    assert claimed is not None and claimed.id == job.id
    return claimed


# --- job settings ---------------------------------------------------------------------------------------
def test_job_records_its_options_and_runs_with_them(store: JobStore, tmp_path: Path) -> None:
    settings = Settings(decode=dataclasses.replace(FAST_DECODE, language="de", temperature=(0.0, 0.4)))
    wav = write_audio(tmp_path / "a.wav", signal(1.0))
    job = queue(store, settings, wav, out=tmp_path / "out", after="move")
    decode, output, after = options_for(store.require(job.id), Settings())
    assert decode == settings.decode  # lists from JSON come back as tuples
    assert output.output_dir == str(tmp_path / "out") and output.formats == settings.output.formats
    assert after == "move"
    with pytest.raises(ValueError, match="after_processing"):
        job_settings(settings, after_processing="shred")


def test_done_job_has_outputs_duration_and_progress(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    wav = write_audio(tmp_path / "in" / "talk.wav", signal(4.0))
    job = claim(store, queue(store, settings, wav, out=tmp_path / "out"))
    seen: list[tuple[int, float, float]] = []
    final = processor.process(job, progress=lambda *a: seen.append(a))
    assert final.state == DONE and final.error is None and final.attempts == 1
    assert sorted(p.name for p in final.outputs) == ["talk.json", "talk.txt"]
    assert all(p.parent == tmp_path / "out" and p.is_file() for p in final.outputs)
    assert final.duration == pytest.approx(4.0, abs=0.05)
    assert final.progress == 1.0 and final.language and final.processing_time is not None
    assert seen and {s[0] for s in seen} == {job.id}
    assert [s[1] for s in seen] == sorted(s[1] for s in seen)
    assert seen[-1][1] == pytest.approx(seen[-1][2])
    assert wav.exists()  # "leave" is the default


def test_relative_output_folder_is_beside_the_recording(
    store: JobStore, processor: JobProcessor, tmp_path: Path
) -> None:
    settings = Settings(decode=FAST_DECODE, output=OutputOptions(formats=("txt",), output_dir="transcripts"))
    wav = write_audio(tmp_path / "in" / "memo.wav", signal(1.5))
    final = processor.process(claim(store, queue(store, settings, wav)))
    assert final.state == DONE
    assert final.outputs == (tmp_path / "in" / "transcripts" / "memo.txt",)


# --- bad files ----------------------------------------------------------------------------------------
def test_missing_empty_corrupt_and_not_audio_fail_with_their_reason(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    good = write_audio(tmp_path / "good.wav", signal(3.0))
    cases = {
        "gone": write_audio(tmp_path / "gone.wav", signal(1.0, 1)),
        "file is empty": make_empty(tmp_path / "empty.wav"),
        "cut off": make_truncated(good, tmp_path / "corrupt.wav"),
        "text": make_not_audio(tmp_path / "notes.mp3"),
    }
    jobs = {key: queue(store, settings, path, out=tmp_path / "out") for key, path in cases.items()}
    cases["gone"].unlink()
    reasons = {}
    for key, job in jobs.items():
        final = processor.process(claim(store, job))
        assert final.state == FAILED, key
        reasons[key] = final.error
    assert "file disappeared" in (reasons["gone"] or "")
    assert "empty" in (reasons["file is empty"] or "")
    assert len(set(reasons.values())) == len(reasons)  # each problem says what it is
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_file_deleted_while_running_fails_and_writes_nothing(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    wav = write_audio(tmp_path / "in" / "x.wav", signal(3.0))
    job = claim(store, queue(store, settings, wav, out=tmp_path / "out"))

    def delete_it(_job_id: int, _done: float, _total: float) -> None:
        wav.unlink(missing_ok=True)

    final = processor.process(job, progress=delete_it)
    assert final.state == FAILED and "file disappeared" in (final.error or "")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


# --- cancel, shutdown, changes made elsewhere ---------------------------------------------------------
def _set_on_progress(event: threading.Event, action: Callable[[], None] | None = None):  # type: ignore[no-untyped-def]
    def progress(_job_id: int, _done: float, _total: float) -> None:
        if action is not None:
            action()
        event.set()

    return progress


def test_cancel_ends_canceled_and_shutdown_puts_the_job_back(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    a = write_audio(tmp_path / "a.wav", signal(3.0, 1))
    b = write_audio(tmp_path / "b.wav", signal(3.0, 2))
    job_a = queue(store, settings, a, out=tmp_path / "out")
    job_b = queue(store, settings, b, out=tmp_path / "out")

    cancel = threading.Event()
    final = processor.process(claim(store, job_a), cancel=cancel, progress=_set_on_progress(cancel))
    assert final.state == CANCELED

    cancel, shutdown = threading.Event(), threading.Event()
    shutdown.set()
    final = processor.process(
        claim(store, job_b), cancel=cancel, progress=_set_on_progress(cancel), shutdown=shutdown
    )
    assert final.state == QUEUED and final.attempts == 0 and final.started_at is None
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_job_canceled_or_removed_elsewhere_stops_quietly(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    a = write_audio(tmp_path / "a.wav", signal(3.0, 1))
    b = write_audio(tmp_path / "b.wav", signal(3.0, 2))
    job_a = claim(store, queue(store, settings, a))
    final = processor.process(job_a, progress=lambda *_: store.mark_canceled(job_a.id))
    assert final.state == CANCELED and store.require(job_a.id).state == CANCELED

    job_b = claim(store, queue(store, settings, b))

    def remove(*_: float) -> None:
        if store.get(job_b.id) is not None:
            store.mark_canceled(job_b.id)
            store.remove(job_b.id)

    final = processor.process(job_b, progress=remove)
    assert final.id == job_b.id and store.get(job_b.id) is None


def test_model_that_cannot_load_keeps_the_job_queued(
    store: JobStore, settings: Settings, tmp_path: Path
) -> None:
    broken = Engine(ModelConfig(model="small", device="cpu"), tmp_path / "no-models")
    processor = JobProcessor(store, broken, OutputLedger(tmp_path / "ledger.json"), lambda: settings)
    wav = write_audio(tmp_path / "a.wav", signal(1.0))
    job = claim(store, queue(store, settings, wav))
    with pytest.raises(ModelError, match="small"):
        processor.process(job)
    again = store.require(job.id)
    assert again.state == QUEUED and again.attempts == 0 and again.error is None


# --- after processing ---------------------------------------------------------------------------------
def test_move_and_delete_happen_only_after_outputs_exist(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    watched = tmp_path / "watched"
    moved = write_audio(watched / "sub" / "m.wav", signal(2.0, 1))
    deleted = write_audio(watched / "d.wav", signal(2.0, 2))
    kept = write_audio(watched / "k.wav", signal(2.0, 3))
    job_m = queue(store, settings, moved, after="move", folder=watched)
    final = processor.process(claim(store, job_m))
    assert final.state == DONE and all(p.is_file() for p in final.outputs)
    assert not moved.exists() and (watched / "done" / "sub" / "m.wav").is_file()
    assert done_path(final) == watched / "done" / "sub" / "m.wav"

    job_d = queue(store, settings, deleted, after="delete", folder=watched)
    final = processor.process(claim(store, job_d))
    assert final.state == DONE and all(p.is_file() for p in final.outputs) and not deleted.exists()

    # Outputs that cannot be written: the job fails and the source stays where it was.
    (watched / "k.txt").write_text("not ours\n")
    job_k = queue(store, settings, kept, after="delete", folder=watched)
    final = processor.process(claim(store, job_k))
    assert final.state == FAILED and "k.txt" in (final.error or "") and kept.is_file()


def test_source_changed_while_running_is_not_deleted(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    wav = write_audio(tmp_path / "w" / "c.wav", signal(2.0))
    job = claim(store, queue(store, settings, wav, after="delete", folder=tmp_path / "w"))
    changed = threading.Event()

    def append(*_: float) -> None:
        if not changed.is_set():
            changed.set()
            with wav.open("ab") as fh:
                fh.write(b"\0" * 64)

    final = processor.process(job, progress=append)
    assert final.state == CANCELED and final.error_kind == SUPERSEDED and wav.is_file()
    (newer,) = store.list([QUEUED])  # the changed content is its own job, deleted only once it is done
    assert newer.size == wav.stat().st_size


# --- the loop -----------------------------------------------------------------------------------------
def _wait(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_loop_runs_every_job_once_and_reports_each(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    files = [write_audio(tmp_path / "in" / f"f{i}.wav", signal(1.5, i)) for i in range(4)]
    jobs = [queue(store, settings, f, out=tmp_path / "out") for f in files]
    finished: list[Job] = []
    loop = QueueLoop(store, processor, workers=2, on_finished=finished.append, poll_seconds=0.05)
    loop.start()
    try:
        _wait(lambda: len(finished) == len(jobs), "every job")
        # A job added while the loop runs is picked up too.
        late = queue(
            store, settings, write_audio(tmp_path / "in" / "late.wav", signal(1.5, 9)), out=tmp_path / "out"
        )
        _wait(lambda: len(finished) == len(jobs) + 1, "the late job")
        _wait(lambda: not loop.busy, "the loop to go idle")
    finally:
        loop.stop()
    assert sorted(j.id for j in finished) == sorted([j.id for j in jobs] + [late.id])
    assert all(store.require(j.id).state == DONE and store.require(j.id).attempts == 1 for j in finished)
    assert len(loop.stats.done) == 5 and not loop.stats.failed


def test_loop_stop_releases_the_running_job_and_cancel_works_on_queued_ones(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    long = queue(store, settings, write_audio(tmp_path / "long.wav", signal(90.0, 1)), out=tmp_path / "out")
    other = queue(store, settings, write_audio(tmp_path / "other.wav", signal(2.0, 2)), out=tmp_path / "out")
    started = threading.Event()
    loop = QueueLoop(
        store, processor, progress=lambda *_: started.set(), on_finished=lambda j: None, poll_seconds=0.05
    )
    loop.cancel(other.id)  # queued: canceled at once
    assert store.require(other.id).state == CANCELED
    loop.start()
    try:
        assert started.wait(WAIT)
        assert store.require(long.id).state == RUNNING and loop.running() == [long.id]
    finally:
        loop.stop()
    back = store.require(long.id)
    assert back.state == QUEUED and back.attempts == 0
    assert not loop.stats.done and not loop.busy
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_loop_stops_on_an_engine_error_with_jobs_still_queued(
    store: JobStore, settings: Settings, tmp_path: Path
) -> None:
    broken = Engine(ModelConfig(model="small", device="cpu"), tmp_path / "no-models")
    processor = JobProcessor(store, broken, OutputLedger(tmp_path / "ledger.json"), lambda: settings)
    jobs = [queue(store, settings, write_audio(tmp_path / f"{i}.wav", signal(1.0, i))) for i in range(2)]
    errors: list[BaseException] = []
    loop = QueueLoop(store, processor, workers=2, on_error=errors.append, poll_seconds=0.05)
    loop.start()
    try:
        _wait(lambda: loop.stopped, "the loop to stop")
    finally:
        loop.stop()
    assert len(errors) == 1 and isinstance(loop.error, ModelError)
    assert [store.require(j.id).state for j in jobs] == [QUEUED, QUEUED]
    assert all(store.require(j.id).attempts == 0 for j in jobs)


# --- a recording replaced while its job waits or runs --------------------------------------------------------
def _replace(path: Path, seconds: float, seed: int) -> None:
    """A recorder re-exporting, a sync tool updating: the new file is renamed over the old one."""
    staged = write_audio(path.parent / ".staging" / path.name, signal(seconds, seed))
    staged.replace(path)


def test_recording_replaced_while_transcribed_is_superseded_and_the_new_one_wins(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    wav = write_audio(tmp_path / "in" / "a.wav", signal(6.0, 1))
    out = tmp_path / "out"
    job = claim(store, queue(store, settings, wav, out=out, folder=wav.parent))
    replaced = threading.Event()

    def replace_once(*_: float) -> None:
        if not replaced.is_set():
            replaced.set()
            _replace(wav, 2.0, 2)

    final = processor.process(job, progress=replace_once)
    assert replaced.is_set()
    assert final.state == CANCELED and final.error_kind == SUPERSEDED
    assert "a.wav was replaced while it was being transcribed" in (final.error or "")
    assert not out.exists() or list(out.iterdir()) == []  # the old content's transcript is not written
    (newer,) = store.list([QUEUED])  # the new content has its own job, named in the reason
    assert newer.size == wav.stat().st_size and f"job {newer.id}" in (final.error or "")
    assert newer.watch_folder == str(wav.parent) and newer.settings == job.settings
    done = processor.process(claim(store, newer))
    assert done.state == DONE and done.duration == pytest.approx(2.0, abs=0.05)
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.txt"]


def test_recording_replaced_while_the_app_was_closed_is_transcribed_once(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    wav = write_audio(tmp_path / "in" / "a.wav", signal(6.0, 1))
    out = tmp_path / "out"
    record = job_settings(settings, output_dir=out)
    first = store.add(wav, record, origin="watched", watch_folder=str(wav.parent)).job
    _replace(wav, 2.0, 2)  # the app is closed: nothing saw the change
    # Next start: the queue runs the old job before the startup scan reaches the folder ...
    started = store.claim_next()
    assert started is not None and started.id == first.id
    progress: list[float] = []
    final = processor.process(started, progress=lambda _id, done, _total: progress.append(done))
    assert final.state == CANCELED and final.error_kind == SUPERSEDED and progress == []  # no work spent
    assert "a.wav changed after it was queued" in (final.error or "")
    # ... and the scan then finds the new content already queued.
    scan = store.add(wav, record, origin="watched", watch_folder=str(wav.parent))
    assert not scan.created
    finished = []
    while (job := store.claim_next()) is not None:
        finished.append(processor.process(job))
    assert [(j.state, round(j.duration or 0)) for j in finished] == [(DONE, 2)]
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.txt"]


def test_recording_replaced_by_the_same_content_is_still_written(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    """A sync tool touching the file (new mtime, same bytes) is not a new recording: the job finishes."""
    wav = write_audio(tmp_path / "in" / "a.wav", signal(2.0, 1))
    job = claim(store, queue(store, settings, wav, out=tmp_path / "out"))
    os.utime(wav, ns=(job.mtime_ns + 5_000_000_000, job.mtime_ns + 5_000_000_000))
    final = processor.process(job)
    assert final.state == DONE and store.list([QUEUED]) == []


def test_new_bytes_with_the_same_size_and_time_are_still_a_new_recording(
    store: JobStore, processor: JobProcessor, settings: Settings, tmp_path: Path
) -> None:
    """A sync tool that keeps the time stamp: the fingerprint, not size and time, tells it is new."""
    wav = write_audio(tmp_path / "in" / "a.wav", signal(2.0, 1))
    job = claim(store, queue(store, settings, wav, out=tmp_path / "out"))
    _replace(wav, 2.0, 2)
    os.utime(wav, ns=(job.mtime_ns, job.mtime_ns))
    assert wav.stat().st_size == job.size
    final = processor.process(job)
    assert final.state == CANCELED and final.error_kind == SUPERSEDED
    (newer,) = store.list([QUEUED])
    assert newer.fingerprint != job.fingerprint and f"job {newer.id}" in (final.error or "")
