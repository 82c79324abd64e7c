"""Fault tests for watched folders (issue 3, item 7): whatever happens to a file, nothing is lost and nothing
is transcribed twice. They run the real parts end to end: folder watcher (real observers, fake clock for the
settle time), job store, processor and the real engine with the random-weight test model; the crash test
runs ``python -m whisperdesk watch`` in a child process and kills it with SIGKILL.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from whisperdesk.core.clock import FakeClock
from whisperdesk.core.engine import Engine
from whisperdesk.core.errors import SUPERSEDED
from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, QUEUED, RUNNING, Job, JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.queue.loop import QueueLoop
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings
from whisperdesk.core.watcher import Candidate, FolderWatcher, WatchSpec
from whisperdesk.devtools.synth_audio import make_empty, make_truncated, noise, tone, write_audio

FAST_DECODE = DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=16)
FAST = ["--beam-size", "1", "--no-vad", "--temperature", "0", "--max-new-tokens", "16", "--device", "cpu"]
SETTINGS = Settings(decode=FAST_DECODE, output=OutputOptions(formats=("txt", "json")))
WAIT = 60.0  # upper bound for real threads, observers and child processes; never asserted as a timing


def signal_of(seconds: float, seed: int = 0) -> np.ndarray:
    return noise(seconds, amplitude=0.2, seed=seed) + tone(200.0 + 10 * seed, seconds, amplitude=0.2)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def engine(whisper_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    eng = Engine(ModelConfig(model=str(whisper_model_dir), device="cpu"), tmp_path_factory.mktemp("models"))
    eng.load()
    return eng


@pytest.fixture
def processor(store: JobStore, engine: Engine, tmp_path: Path) -> JobProcessor:
    return JobProcessor(store, engine, OutputLedger(tmp_path / "data" / "ledger.json"), lambda: SETTINGS)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def watchers() -> Iterator[list[FolderWatcher]]:
    started: list[FolderWatcher] = []
    yield started
    for w in started:
        w.stop()


def start_watcher(watchers: list[FolderWatcher], folder: Path, clock: FakeClock, **kw: Any) -> FolderWatcher:
    w = FolderWatcher([WatchSpec(folder, **kw)], clock=clock, settle_seconds=2.0)
    w.start()
    watchers.append(w)
    return w


def until_pending(w: FolderWatcher, path: Path) -> None:
    """Let the real observer's event reach the watcher (real time; the fake clock stays put)."""

    def seen() -> bool:
        w.tick()
        return path in w.pending()

    wait_for(seen, f"the watcher to notice {path}")


def settle(w: FolderWatcher, clock: FakeClock) -> list[Candidate]:
    found = w.tick()
    clock.advance(w.settle_seconds)
    return found + w.tick()


def add_all(store: JobStore, found: list[Candidate], out: Path) -> list[Job]:
    record = job_settings(SETTINGS, output_dir=out)
    results = [store.add(c.path, record, origin="watched", watch_folder=str(c.folder)) for c in found]
    return [r.job for r in results if r.created]


def run_all(store: JobStore, processor: JobProcessor) -> list[Job]:
    finished = []
    while (job := store.claim_next()) is not None:
        finished.append(processor.process(job))
    return finished


def outputs_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- arriving files ---------------------------------------------------------------------------------------
def test_file_growing_for_10_seconds_is_one_job_for_the_whole_recording(
    inbox: Path, out: Path, tmp_path: Path, clock: FakeClock, store: JobStore, processor: JobProcessor,
    watchers: list[FolderWatcher],
) -> None:  # fmt: skip
    data = write_audio(tmp_path / "staging" / "lecture.wav", signal_of(6.0)).read_bytes()
    w = start_watcher(watchers, inbox, clock)
    target = inbox / "lecture.wav"
    found: list[Candidate] = []
    with target.open("wb") as fh:
        for i, chunk in enumerate(np.array_split(np.frombuffer(data, np.uint8), 10)):  # 1 chunk/s for 10 s
            fh.write(chunk.tobytes())
            fh.flush()
            if i == 0:
                until_pending(w, target)
            found += w.tick()
            clock.advance(1.0)
    assert found == []  # never handed on while it grows
    found = settle(w, clock)
    assert [(c.path, c.size) for c in found] == [(target, len(data))]
    (job,) = add_all(store, found, out)
    (final,) = run_all(store, processor)
    assert final.id == job.id and final.state == DONE and final.attempts == 1
    assert final.duration == pytest.approx(6.0, abs=0.05)  # the whole recording, not the first chunks
    w.scan()
    assert settle(w, clock) == [] and len(store.list()) == 1


def test_rename_into_place_is_one_job(
    inbox: Path, out: Path, tmp_path: Path, clock: FakeClock, store: JobStore, processor: JobProcessor,
    watchers: list[FolderWatcher],
) -> None:  # fmt: skip
    w = start_watcher(watchers, inbox, clock)
    part = write_audio(inbox / "call.wav.part", signal_of(2.0, 1), fmt="wav")  # a download in progress
    staged = write_audio(tmp_path / "elsewhere" / "memo.wav", signal_of(2.0, 2))
    w.scan()
    assert settle(w, clock) == [] and w.pending() == []  # partial names are never picked up
    final = inbox / "call.wav"
    part.rename(final)
    moved_in = inbox / "memo.wav"
    staged.rename(moved_in)
    until_pending(w, final)
    until_pending(w, moved_in)
    found = settle(w, clock)
    assert sorted(c.path for c in found) == [final, moved_in]
    jobs = add_all(store, found, out)
    assert len(jobs) == 2
    assert {j.state for j in run_all(store, processor)} == {DONE}
    assert outputs_in(out) == ["call.json", "call.txt", "memo.json", "memo.txt"]


def test_same_file_twice_is_one_job_and_a_renamed_copy_gets_copied_transcripts(
    inbox: Path, out: Path, tmp_path: Path, clock: FakeClock, store: JobStore, processor: JobProcessor,
    watchers: list[FolderWatcher],
) -> None:  # fmt: skip
    source = write_audio(tmp_path / "card" / "take.wav", signal_of(2.0))
    w = start_watcher(watchers, inbox, clock)
    rec = inbox / "take.wav"
    shutil.copyfile(source, rec)
    until_pending(w, rec)
    add_all(store, settle(w, clock), out)
    (done,) = run_all(store, processor)
    written = {p: p.stat().st_mtime_ns for p in done.outputs}

    time.sleep(0.01)  # a new mtime: the copy below is a real second arrival, not the same write
    shutil.copyfile(source, rec)  # copied in again over itself
    shutil.copyfile(source, inbox / "take (1).wav")  # and again under another name
    until_pending(w, inbox / "take (1).wav")
    again = settle(w, clock)
    assert sorted(c.path for c in again) == sorted([rec, inbox / "take (1).wav"])
    (copy,) = add_all(store, again, out)  # the renamed copy gets its own row; the same file does not
    assert copy.source == inbox / "take (1).wav" and copy.copy_of == done.id
    restarted = start_watcher(watchers, inbox, clock)  # the app started again: its startup scan
    assert add_all(store, settle(restarted, clock), out) == []
    # An engine that cannot load any model: had the copy been transcribed, it would have failed.
    no_model = Engine(ModelConfig(model="small", device="cpu"), tmp_path / "no-models")
    copier = JobProcessor(store, no_model, OutputLedger(tmp_path / "data" / "ledger.json"), lambda: SETTINGS)
    (copied,) = run_all(store, copier)
    assert copied.state == DONE and copied.duration == done.duration and copied.language == done.language
    assert [(j.id, j.state, j.attempts) for j in store.list()] == [(done.id, DONE, 1), (copy.id, DONE, 1)]
    assert {p: p.stat().st_mtime_ns for p in done.outputs} == written
    assert outputs_in(out) == ["take (1).json", "take (1).txt", "take.json", "take.txt"]
    assert (out / "take (1).txt").read_bytes() == (out / "take.txt").read_bytes()
    assert json.loads((out / "take (1).json").read_text())["source"] == str(copy.source)


def test_500_files_at_once_are_500_jobs_each_run_exactly_once(
    inbox: Path, tmp_path: Path, clock: FakeClock, store: JobStore
) -> None:
    files = [inbox / f"rec {i:03}.wav" for i in range(500)]
    for i, f in enumerate(files):
        f.write_bytes(b"RIFF" + i.to_bytes(4, "little") * 64)
    w = FolderWatcher([WatchSpec(inbox)], clock=clock)
    w.scan()
    found = settle(w, clock)
    assert sorted(c.path for c in found) == files
    # The watcher's candidates, re-announced and added from four threads at once (as a rescan racing the
    # events would): still one job per file.
    record = job_settings(SETTINGS)
    errors: list[BaseException] = []

    def add(order: list[Candidate]) -> None:
        try:
            for c in order:
                store.add(c.path, record, origin="watched", watch_folder=str(c.folder))
        except BaseException as exc:
            errors.append(exc)
            raise

    orders = [found, found[::-1], found[1::2] + found[::2], found[250:] + found[:250]]
    threads = [threading.Thread(target=add, args=(o,)) for o in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    jobs = store.list()
    assert len(jobs) == 500 and sorted(j.source for j in jobs) == files
    # Four consumers with their own store objects (a window and a `watch` sharing the queue) claim them all.
    claimed: list[list[int]] = [[] for _ in range(4)]

    def consume(bucket: list[int]) -> None:
        with JobStore(store.path) as mine:
            while (job := mine.claim_next()) is not None:
                bucket.append(job.id)
                mine.mark_done(job.id)

    threads = [threading.Thread(target=consume, args=(b,)) for b in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for bucket in claimed for i in bucket]
    assert len(every) == 500 and sorted(every) == sorted(j.id for j in jobs)
    assert store.counts()[DONE] == 500 and all(j.attempts == 1 for j in store.list())


# --- files that go wrong ----------------------------------------------------------------------------------
def test_file_deleted_while_queued_or_running_fails_and_the_others_continue(
    tmp_path: Path, out: Path, store: JobStore, processor: JobProcessor
) -> None:
    record = job_settings(SETTINGS, output_dir=out)
    paths = [write_audio(tmp_path / "in" / f"{name}.wav", signal_of(3.0, i)) for i, name in enumerate("abcd")]
    jobs = {p.stem: store.add(p, record).job for p in paths}
    paths[1].unlink()  # b: deleted while queued

    def delete_c_while_running(job_id: int, _done: float, _total: float) -> None:
        if job_id == jobs["c"].id:
            paths[2].unlink(missing_ok=True)

    finished: list[Job] = []
    loop = QueueLoop(store, processor, progress=delete_c_while_running, on_finished=finished.append)
    loop.start()
    try:
        wait_for(lambda: len(finished) == 4, "all four jobs")
    finally:
        loop.stop()
    states = {name: store.require(job.id) for name, job in jobs.items()}
    assert [states[n].state for n in "abcd"] == [DONE, FAILED, FAILED, DONE]
    assert "file disappeared" in (states["b"].error or "") and "file disappeared" in (states["c"].error or "")
    assert outputs_in(out) == ["a.json", "a.txt", "d.json", "d.txt"]


def test_zero_byte_and_corrupt_files_fail_with_their_reason(
    inbox: Path, out: Path, tmp_path: Path, clock: FakeClock, store: JobStore, processor: JobProcessor,
    watchers: list[FolderWatcher],
) -> None:  # fmt: skip
    whole = write_audio(tmp_path / "whole.wav", signal_of(3.0))
    make_empty(inbox / "empty.mp3")
    make_truncated(whole, inbox / "cut.wav")
    (inbox / "garbage.m4a").write_bytes(os.urandom(5000))
    shutil.copyfile(whole, inbox / "good.wav")
    w = start_watcher(watchers, inbox, clock)
    found = settle(w, clock)
    assert len(found) == 4
    add_all(store, found, out)
    finished = {j.source.name: j for j in run_all(store, processor)}
    assert finished["good.wav"].state == DONE
    for name in ("empty.mp3", "cut.wav", "garbage.m4a"):
        assert finished[name].state == FAILED, name
    assert "empty (0 bytes)" in (finished["empty.mp3"].error or "")
    assert "cut off or damaged" in (finished["cut.wav"].error or "")
    assert finished["garbage.m4a"].error and finished["garbage.m4a"].error != finished["cut.wav"].error
    assert outputs_in(out) == ["good.json", "good.txt"]
    # A failed file is not retried by every rescan: it stays one failed job until the user retries it.
    w.scan()
    assert add_all(store, settle(w, clock), out) == []
    assert len(store.list()) == 4


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "disk is full"), (errno.EACCES, "may not write there")],
    ids=["ENOSPC", "EACCES"],
)
def test_output_write_failure_fails_the_job_keeps_the_source_and_retry_succeeds(
    code: int, words: str, tmp_path: Path, out: Path, store: JobStore, processor: JobProcessor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    source = write_audio(tmp_path / "in" / "board meeting.wav", signal_of(3.0))
    before = (source.read_bytes(), source.stat().st_mtime_ns)
    record = job_settings(SETTINGS, output_dir=out, after_processing="delete")
    job = store.add(source, record, watch_folder=str(source.parent)).job
    out.mkdir()
    real_mkstemp, real_fsync = tempfile.mkstemp, os.fsync
    calls = {"n": 0}

    if code == errno.EACCES:  # the output folder refuses new files

        def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
            if Path(kwargs.get("dir") or "") == out:
                raise PermissionError(code, os.strerror(code), str(out))
            return real_mkstemp(*args, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    else:  # the disk fills up while the second transcript is written

        def fsync(fd: int) -> None:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                calls["n"] += 1
                if calls["n"] == 2:
                    raise OSError(code, os.strerror(code))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    failed = processor.process(store.claim_next() or job)
    monkeypatch.undo()
    assert failed.state == FAILED
    assert os.strerror(code) in (failed.error or "") and words in (failed.error or "")
    assert (source.read_bytes(), source.stat().st_mtime_ns) == before  # untouched, not deleted
    assert outputs_in(out) == []  # what was written before the failure was rolled back; no temp files

    store.retry(job.id)  # the user freed space / fixed the permissions
    done = processor.process(store.claim_next() or job)
    assert done.state == DONE and done.attempts == 1
    assert outputs_in(out) == ["board meeting.json", "board meeting.txt"]
    assert not source.exists()  # "delete" only now that the transcripts exist


def test_unicode_and_space_paths(
    tmp_path: Path, clock: FakeClock, store: JobStore, processor: JobProcessor, watchers: list[FolderWatcher]
) -> None:
    inbox = tmp_path / "Aufnahmen März 2024" / "Büro – Köln"
    out = tmp_path / "Transkripte 日本語"
    names = ["Besprechung mit Jürgen.wav", "会議 録音.flac", "  leading space.mp3", "emoji 🎙️ note.ogg"]
    for i, name in enumerate(names):
        write_audio(inbox / name, signal_of(2.0, i))
    w = start_watcher(watchers, inbox, clock)
    found = settle(w, clock)
    assert sorted(c.path.name for c in found) == sorted(names)
    add_all(store, found, out)
    finished = run_all(store, processor)
    assert [j.state for j in finished] == [DONE] * 4
    stems = sorted(Path(n).stem for n in names)
    assert outputs_in(out) == sorted(f"{s}.{ext}" for s in stems for ext in ("json", "txt"))
    assert sorted(j.source.name for j in store.list()) == sorted(names)


# --- a crash in the middle of a job -----------------------------------------------------------------------
def watch_command(inbox: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "whisperdesk", "watch", str(inbox), "--output-dir", str(out), "--exit-when-idle",
        "--settle", "0.3", "--model", str(model), *FAST, "--format", "txt,json", *extra,
    ]  # fmt: skip


def wait_until_running(proc: subprocess.Popen[str], db: JobStore) -> Job:
    found: list[Job] = []

    def running() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"watch exited early ({proc.returncode}): {proc.communicate()}")
        found[:] = db.list([RUNNING])
        return bool(found)

    wait_for(running, "a job to be running")
    return found[0]


def test_sigkill_mid_job_then_restart_completes_the_job_exactly_once(
    inbox: Path, out: Path, whisper_model_dir: Path
) -> None:
    write_audio(inbox / "long interview.wav", signal_of(180.0))
    command = watch_command(inbox, out, whisper_model_dir)
    with JobStore(AppPaths.default().ensure().jobs_db) as db:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            job = wait_until_running(proc, db)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.communicate(timeout=WAIT)
        assert proc.returncode == -signal.SIGKILL
        killed = db.require(job.id)
        assert killed.state == RUNNING and killed.attempts == 1  # as the dead process left it
        assert outputs_in(out) == []  # nothing partial, no temp files

        again = subprocess.run(command, capture_output=True, text=True, timeout=WAIT)
        assert again.returncode == 0, again.stderr
        done = db.require(job.id)
        assert done.state == DONE and done.attempts == 2 and done.error is None
        assert [j.id for j in db.list()] == [job.id]
        assert outputs_in(out) == ["long interview.json", "long interview.txt"]
        assert again.stdout.splitlines() == [f"{done.source} -> {', '.join(map(str, done.outputs))}"]
        assert db.counts()[QUEUED] == 0


# --- the headless `watch` under the faults of issue 18 ------------------------------------------------------
# Each runs `python -m whisperdesk watch --exit-when-idle` as a child process, as a user or a service would.
# Held before issue 18 and kept here so they do not regress: SIGKILL mid-job (above), a disk with no room.
# Fixed by issue 18: a recording replaced mid-job or while stopped, a damaged or 0-byte queue, an unreadable
# data root, a nearly full disk refused by a fixed 16-MB floor. The squatted hand-over socket is tested with
# the socket's own fix (services/single_instance).
def run_watch(command: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=WAIT, **kw)


def duration_in(transcript_json: Path) -> float:
    return float(json.loads(transcript_json.read_text())["duration"])


def replace_with(path: Path, seconds: float, seed: int) -> None:
    """A recorder re-exporting the file: the new recording is renamed over the old one."""
    staged = write_audio(path.parent.parent / "staging" / path.name, signal_of(seconds, seed))
    staged.replace(path)


@pytest.mark.slow
def test_watch_recording_replaced_mid_job_ends_with_the_new_transcript(
    inbox: Path, out: Path, whisper_model_dir: Path
) -> None:
    recording = write_audio(inbox / "a.wav", signal_of(600.0))
    command = watch_command(inbox, out, whisper_model_dir)
    with JobStore(AppPaths.default().ensure().jobs_db) as db:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            old = wait_until_running(proc, db)
            wait_for(lambda: db.require(old.id).progress > 0, "the old content to be transcribed")
            replace_with(recording, 3.0, 7)
            assert db.require(old.id).state == RUNNING  # replaced while the old content was transcribed
        finally:
            stdout, stderr = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, stderr
        jobs = db.list()
    assert duration_in(out / "a.json") == pytest.approx(3.0, abs=0.05)  # the new recording's, not the old
    assert [(j.id, j.state, j.error_kind) for j in jobs] == [
        (old.id, CANCELED, SUPERSEDED),
        (jobs[-1].id, DONE, None),
    ]
    assert f"{recording}: a.wav was replaced while it was being transcribed" in stdout
    assert outputs_in(out) == ["a.json", "a.txt"]


@pytest.mark.slow
def test_watch_recording_replaced_while_stopped_is_transcribed_once(
    inbox: Path, out: Path, whisper_model_dir: Path
) -> None:
    recording = write_audio(inbox / "a.wav", signal_of(600.0))
    command = watch_command(inbox, out, whisper_model_dir)
    with JobStore(AppPaths.default().ensure().jobs_db) as db:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until_running(proc, db)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.communicate(timeout=WAIT)
        replace_with(recording, 3.0, 7)  # while nothing runs
        again = run_watch(command)
        assert again.returncode == 0, again.stderr
        done = db.list([DONE])
    assert len(done) == 1 and done[0].duration == pytest.approx(3.0, abs=0.05)  # once, the new content
    assert duration_in(out / "a.json") == pytest.approx(3.0, abs=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("damage", [b"", b"not a database " * 300], ids=["zero-byte", "corrupt"])
def test_watch_after_a_lost_queue_warns_and_does_not_transcribe_again(
    damage: bytes, inbox: Path, out: Path, whisper_model_dir: Path
) -> None:
    write_audio(inbox / "a.wav", signal_of(3.0))
    command = watch_command(inbox, out, whisper_model_dir)
    first = run_watch(command)
    assert first.returncode == 0, first.stderr
    written = (out / "a.txt").stat().st_mtime_ns
    db = AppPaths.default().jobs_db
    db.write_bytes(damage)
    write_audio(inbox / "b.wav", signal_of(3.0, 2))
    second = run_watch(command)
    assert second.returncode == 0, second.stderr
    (kept,) = db.parent.glob("jobs.sqlite3.corrupt-*[!lm]")  # the damaged file, its -wal/-shm beside it
    assert second.stderr.startswith("whisperdesk: warning: the job list") and str(kept) in second.stderr
    assert second.stdout.splitlines() == [f"{inbox / 'b.wav'} -> {out / 'b.txt'}, {out / 'b.json'}"]
    assert (out / "a.txt").stat().st_mtime_ns == written  # a.wav was not transcribed a second time
    with JobStore(db) as store:
        assert [j.source.name for j in store.list()] == ["b.wav"]
    assert kept.read_bytes() == damage


@pytest.mark.slow
def test_watch_with_an_unreadable_data_root_says_so_plainly(
    shared_tmp: Path, as_other_user: list[str]
) -> None:
    home = shared_tmp / "home"
    data = home / "data"
    data.mkdir(parents=True)
    if os.geteuid() == 0:
        for folder in (home, data):
            os.chown(folder, 65534, 65534)
    data.chmod(0)
    inbox = shared_tmp / "in"
    inbox.mkdir()
    env = {**os.environ, "WHISPERDESK_HOME": str(home)}
    run = run_watch([*as_other_user, sys.executable, "-m", "whisperdesk", "watch", str(inbox)], env=env)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.startswith(f"whisperdesk: error: cannot write in WhisperDesk's data folder {data}")
    assert "permission denied" in run.stderr and "WHISPERDESK_HOME" in run.stderr


@pytest.mark.slow
def test_watch_on_a_nearly_full_disk_writes_and_on_a_full_one_fails_plainly_then_retries(
    inbox: Path, small_disk: Path, whisper_model_dir: Path
) -> None:
    """A real 4-MiB file system: 300 KB free takes a short recording's transcripts (a fixed 16-MB floor
    refused them); 20 KB free is answered at start, before the model or any job, with nothing partial
    left, and a run after freeing space finishes it."""
    from conftest import fill_disk

    out = small_disk / "out"
    out.mkdir()
    write_audio(inbox / "a.wav", signal_of(3.0))
    command = watch_command(inbox, out, whisper_model_dir)
    fill_disk(small_disk, 300_000)
    first = run_watch(command)
    assert first.returncode == 0, first.stderr
    assert outputs_in(out) == ["a.json", "a.txt"]

    (small_disk / "filler.bin").unlink()
    fill_disk(small_disk, 20_000)
    write_audio(inbox / "b.wav", signal_of(3.0, 2))
    full = run_watch(command)
    assert full.returncode == 1
    (line,) = full.stderr.splitlines()  # answered before any work (issue 17.6): the output folder's check
    assert line.startswith(f"whisperdesk: error: the disk holding {out} is full")
    assert "free some space" in line
    assert outputs_in(out) == ["a.json", "a.txt"]  # nothing partial, no temp files

    (small_disk / "filler.bin").unlink()
    retried = run_watch([sys.executable, "-m", "whisperdesk", "jobs", "retry", "--failed"])
    assert retried.returncode == 0, retried.stderr
    final = run_watch(command)
    assert final.returncode == 0, final.stderr
    assert outputs_in(out) == ["a.json", "a.txt", "b.json", "b.txt"]
