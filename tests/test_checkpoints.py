"""Resumable jobs (issue 17, point 4): finished windows are kept in the job store and a job resumes from them.

The store's side on its own; the scheduler resuming on real tiny.en weights (same transcript, the kept
windows not decoded again); and the whole app killed with SIGKILL at ~60 % of a 2.5-minute espeak-ng talk,
then started again: the transcript has the same words as an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from whisperdesk.core.batching.checkpoint import WindowResult
from whisperdesk.core.batching.layout import ModelHandle, load_for_batching
from whisperdesk.core.batching.scheduler import BatchInfo, BatchScheduler, default_decode
from whisperdesk.core.batching.windows import plan_windows
from whisperdesk.core.jobstore import DONE, QUEUED, RUNNING, JobStore
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import DecodeOptions
from whisperdesk.core.transcript import Segment, Word

WAIT = 600.0  # upper bound for child processes on a busy 2-core machine; never asserted as a timing


def _result(index: int, text: str = "hello") -> WindowResult:
    words = (Word(index * 30.0, index * 30.0 + 0.5, " " + text, 0.9),)
    return WindowResult(
        index, (Segment(index * 30.0, index * 30.0 + 1.0, " " + text, words),), "en", 0.98, 1.5
    )


def _job(store: JobStore, tmp_path: Path, name: str = "talk.wav", data: bytes = b"RIFF audio") -> Any:
    path = tmp_path / name
    path.write_bytes(data)
    store.add(path)
    return store.claim_next()


# --- the store ---------------------------------------------------------------------------------------------
def test_checkpoints_round_trip_and_are_dropped_when_the_job_finishes(
    store: JobStore, tmp_path: Path
) -> None:
    job = _job(store, tmp_path)
    assert store.save_checkpoint(job.id, 0, "k1", _result(0).to_dict())
    assert store.save_checkpoint(job.id, 1, "k1", _result(1, "world").to_dict())
    kept = {i: WindowResult.from_dict(d) for i, d in store.checkpoints(job.id, "k1").items()}
    assert kept == {0: _result(0), 1: _result(1, "world")}
    assert store.checkpoints(job.id, "other options") == {}
    store.mark_done(job.id)
    assert store.checkpoints(job.id, "k1") == {}


@pytest.mark.parametrize("end", ["cancel", "fail", "remove", "supersede"])
def test_checkpoints_go_with_a_canceled_failed_removed_or_superseded_job(
    store: JobStore, tmp_path: Path, end: str
) -> None:
    job = _job(store, tmp_path)
    store.save_checkpoint(job.id, 0, "k", _result(0).to_dict())
    if end == "cancel":
        store.mark_canceled(job.id)
    elif end == "fail":
        store.mark_failed(job.id, "broken")
    elif end == "supersede":  # the recording was replaced: its windows belong to the old content
        store.mark_superseded(job.id, "talk.wav was replaced")
    else:
        store.mark_canceled(job.id)
        store.remove(job.id)
    count = sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    assert count == 0


def test_a_released_job_keeps_its_checkpoints_and_progress(store: JobStore, tmp_path: Path) -> None:
    job = _job(store, tmp_path)
    store.mark_progress(job.id, 0.6)
    store.save_checkpoint(job.id, 0, "k", _result(0).to_dict())
    released = store.release(job.id)
    assert released.state == QUEUED and released.progress == pytest.approx(0.6)
    again = store.claim_next()
    assert again is not None and again.id == job.id and again.progress == pytest.approx(0.6)
    assert list(store.checkpoints(job.id, "k")) == [0]


def test_checkpoints_of_a_recording_that_changed_are_dropped(store: JobStore, tmp_path: Path) -> None:
    job = _job(store, tmp_path)
    store.save_checkpoint(job.id, 0, "k", _result(0).to_dict())
    store.release(job.id)
    (tmp_path / "talk.wav").write_bytes(b"RIFF other audio, longer")
    store.add(tmp_path / "talk.wav")  # the queued job takes the new content
    assert store.checkpoints(job.id, "k") == {}
    again = store.claim_next()
    assert again is not None and again.progress == 0.0
    count = sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    assert count == 0


def test_only_a_running_job_of_this_process_keeps_windows(store: JobStore, tmp_path: Path) -> None:
    job = _job(store, tmp_path)
    store.release(job.id)
    assert not store.save_checkpoint(job.id, 0, "k", _result(0).to_dict())
    assert store.checkpoints(job.id, "k") == {}


# --- the scheduler on real weights ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from whisperdesk.devtools.speech_corpus import build_speech_of_length

    return build_speech_of_length(tmp_path_factory.mktemp("talk"), 150.0, first=20).path


def test_a_resumed_job_decodes_only_the_windows_left_and_gives_the_same_transcript(
    tiny_en_model: Path, talk: Path
) -> None:
    model = load_for_batching(str(tiny_en_model), "cpu", "int8")
    handle = ModelHandle(model, "cpu", "int8", "tiny.en", 2)
    options = DecodeOptions(word_timestamps=True)
    total = len(plan_windows(default_decode(talk), options)[0].spans)
    assert total >= 5
    results: list[WindowResult] = []
    first = BatchScheduler()
    try:
        whole = first.transcribe(handle, talk, options, on_window=results.append)
    finally:
        first.close()
    # every window but those finishing the job is kept, each once, with its words
    assert len({r.index for r in results}) == len(results) >= total - handle.batch_size
    assert all(r.language == "en" for r in results)
    kept = {r.index: r for r in results if r.index < total * 0.6}
    batches: list[BatchInfo] = []
    second = BatchScheduler(on_batch=batches.append)
    progress: list[float] = []
    try:
        resumed = second.transcribe(
            handle, talk, options, resume=kept, progress=lambda done, _t: progress.append(done)
        )
    finally:
        second.close()
    decoded = {index for b in batches for _job, index in b.members}
    assert decoded == set(range(total)) - set(kept)
    assert resumed.extra["resumed_windows"] == len(kept)
    assert [(s.start, s.end, s.text, s.words) for s in resumed.segments] == [
        (s.start, s.end, s.text, s.words) for s in whole.segments
    ]
    assert progress == sorted(progress) and progress[1] > 0  # starts where the kept windows end


# --- the whole app, killed and started again ---------------------------------------------------------------
def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _watch(inbox: Path, out: Path, model: Path) -> list[str]:
    return [
        sys.executable, "-m", "whisperdesk", "watch", str(inbox), "--output-dir", str(out), "--exit-when-idle",
        "--settle", "0.3", "--model", str(model), "--device", "cpu", "--batch-size", "2", "--format", "txt,json",
    ]  # fmt: skip


@pytest.mark.slow
def test_killed_at_60_percent_then_restarted_gives_the_same_words(
    tmp_path: Path, tiny_en_model: Path, talk: Path
) -> None:
    total = len(plan_windows(default_decode(talk), DecodeOptions())[0].spans)
    # the uninterrupted run, in its own app home
    clean_home, clean_in, clean_out = tmp_path / "clean-home", tmp_path / "clean-in", tmp_path / "clean-out"
    clean_in.mkdir()
    (clean_in / talk.name).write_bytes(talk.read_bytes())
    env = {**os.environ, "WHISPERDESK_HOME": str(clean_home)}
    clean = subprocess.run(_watch(clean_in, clean_out, tiny_en_model), env=env, capture_output=True, text=True,
                           timeout=WAIT)  # fmt: skip
    assert clean.returncode == 0, clean.stderr
    reference = _words((clean_out / f"{talk.stem}.txt").read_text(encoding="utf-8"))
    # the interrupted run: SIGKILL once ~60 % of the windows are kept
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    (inbox / talk.name).write_bytes(talk.read_bytes())
    command = _watch(inbox, out, tiny_en_model)
    db_path = AppPaths.default().ensure().jobs_db
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kept = 0
    try:
        deadline = time.monotonic() + WAIT
        while kept < 0.6 * total:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the job never got to 60 %"
            if db_path.exists():
                with sqlite3.connect(db_path) as conn:
                    try:
                        kept = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
                    except sqlite3.OperationalError:  # the schema is still being created
                        kept = 0
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate(timeout=WAIT)
    assert proc.returncode == -signal.SIGKILL
    with JobStore(db_path) as db:
        (job,) = db.list()
        assert job.state == RUNNING and not (out / f"{talk.stem}.txt").exists()
        at_kill = sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
        assert total > at_kill >= 0.6 * total
        again = subprocess.run(command, capture_output=True, text=True, timeout=WAIT)
        assert again.returncode == 0, again.stderr
        done = db.require(job.id)
        assert done.state == DONE and done.attempts == 2
    data = json.loads((out / f"{talk.stem}.json").read_text(encoding="utf-8"))
    assert data["extra"]["resumed_windows"] == at_kill  # those windows were not decoded again
    assert _words((out / f"{talk.stem}.txt").read_text(encoding="utf-8")) == reference
    assert sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 0


@pytest.mark.slow
def test_pause_now_keeps_the_finished_windows_and_resume_ends_with_the_same_words(
    tmp_path: Path, tiny_en_model: Path, talk: Path, store: JobStore
) -> None:
    """Pause now (the job's cancel and requeue flags, as the runner sets them) puts the job back in the queue
    with its kept windows and its progress; the next run decodes only the rest and writes the same words as
    the same job run without a pause."""
    import threading

    from whisperdesk.core.engine import Engine
    from whisperdesk.core.outputs import OutputLedger
    from whisperdesk.core.processor import JobProcessor, job_settings
    from whisperdesk.core.settings import ModelConfig, Settings

    config = ModelConfig(model=str(tiny_en_model), device="cpu", compute_type="int8", batch_size=2)
    engine = Engine(config, tmp_path / "models")
    settings = Settings(model=config)
    processor = JobProcessor(store, engine, OutputLedger(tmp_path / "ledger.json"), lambda: settings)
    try:
        texts: list[str] = []
        ended: list[Any] = []
        for name in ("whole", "paused"):
            folder = tmp_path / name
            folder.mkdir()
            source = folder / talk.name
            source.write_bytes(talk.read_bytes())
            store.add(source, job_settings(settings, output_dir=folder / "out"), force=True)  # no copying
            job = store.claim_next()
            assert job is not None
            if name == "paused":
                cancel, requeue = threading.Event(), threading.Event()
                pausing = threading.Thread(
                    target=lambda j=job, c=cancel, r=requeue: ended.append(
                        processor.process(j, cancel=c, shutdown=r)
                    )
                )
                pausing.start()
                while (
                    not sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
                ):
                    assert pausing.is_alive()
                    time.sleep(0.05)
                requeue.set()
                cancel.set()  # what JobRunner.pause_now does through the cancel registry
                pausing.join(WAIT)
                paused = ended.pop()
                assert paused.state == QUEUED and paused.progress > 0
                kept = len(store.checkpoints(job.id, _key_of(store, job.id)))
                assert kept >= 1
                job = store.claim_next()
                assert job is not None and job.progress == pytest.approx(paused.progress)
            done = processor.process(job)
            assert done.state == DONE
            texts.append((folder / "out" / f"{talk.stem}.txt").read_text(encoding="utf-8"))
            if name == "paused":
                extra = json.loads((folder / "out" / f"{talk.stem}.json").read_text(encoding="utf-8"))[
                    "extra"
                ]
                assert extra["resumed_windows"] == kept
        assert _words(texts[1]) == _words(texts[0])
    finally:
        engine.close()


def _key_of(store: JobStore, job_id: int) -> str:
    row = (
        sqlite3.connect(store.path)
        .execute("SELECT key FROM checkpoints WHERE job_id = ?", (job_id,))
        .fetchone()
    )
    return str(row[0])
