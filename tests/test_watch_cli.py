"""`whisperdesk watch` and `whisperdesk jobs`: in-process for options and exit codes, in a child process where
files must arrive while it runs or where it is stopped by a signal or killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from whisperdesk.cli import main
from whisperdesk.core import jobstore
from whisperdesk.core.errors import UnreadableFileError
from whisperdesk.core.fingerprint import Fingerprint
from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, QUEUED, RUNNING, Job, JobStore
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.processor import job_settings
from whisperdesk.core.settings import OutputOptions, Settings, save_settings
from whisperdesk.devtools.synth_audio import make_truncated, noise, tone, write_audio

FAST = ["--beam-size", "1", "--no-vad", "--temperature", "0", "--max-new-tokens", "16", "--device", "cpu"]
WAIT = 60.0  # upper bound for child processes; never asserted as a timing
FORMATS = ("json", "txt")


def signal_of(seconds: float, seed: int = 0) -> np.ndarray:
    return noise(seconds, amplitude=0.2, seed=seed) + tone(200.0 + 10 * seed, seconds, amplitude=0.2)


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def outputs_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def expected_outputs(*stems: str) -> list[str]:
    return sorted(f"{s}.{f}" for s in stems for f in FORMATS)


def watch_args(inbox: Path, out: Path, model: Path, *extra: str, settle: str = "0.3") -> list[str]:
    return [
        "watch", str(inbox), "--output-dir", str(out), "--exit-when-idle", "--settle", settle,
        "--model", str(model), *FAST, "--format", ",".join(FORMATS), *extra,
    ]  # fmt: skip


def spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "whisperdesk", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_running(proc: subprocess.Popen[str], db: JobStore) -> list[Job]:
    found: list[Job] = []

    def running() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"watch exited early ({proc.returncode}): {proc.communicate()}")
        found[:] = db.list([RUNNING])
        return bool(found)

    wait_for(running, "a job to be running")
    return found


def done_line(job: Job) -> str:
    return f"{job.source} -> {', '.join(map(str, job.outputs))}"


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("whisperdesk: error:")]


@pytest.fixture
def db() -> Iterator[JobStore]:
    store = JobStore(AppPaths.default().ensure().jobs_db)
    yield store
    store.close()


# --- the Done-when scenario -------------------------------------------------------------------------------
def test_folder_receiving_files_then_sigkill_and_restart(
    tmp_path: Path, whisper_model_dir: Path, db: JobStore
) -> None:
    inbox, out, staging = tmp_path / "IN", tmp_path / "OUT", tmp_path / "staging"
    write_audio(inbox / "long.wav", signal_of(120.0, 0))  # keeps the run busy while the others arrive
    write_audio(inbox / "first.wav", signal_of(3.0, 1))
    slow = write_audio(staging / "slow.wav", signal_of(4.0, 2)).read_bytes()
    renamed = write_audio(staging / "renamed.flac", signal_of(3.0, 3))
    dup = write_audio(staging / "dup.wav", signal_of(3.0, 4))
    corrupt = make_truncated(write_audio(staging / "whole.wav", signal_of(3.0, 5)), staging / "corrupt.wav")
    args = watch_args(inbox, out, whisper_model_dir, settle="0.5")

    # Run 1: files arrive while it works.
    proc = spawn(args)
    try:
        wait_until_running(proc, db)
        shutil.copyfile(corrupt, inbox / "corrupt.wav")
        shutil.copyfile(dup, inbox / "dup.wav")
        shutil.copyfile(dup, inbox / "dup copy.wav")  # the same recording dropped in twice
        shutil.copyfile(renamed, inbox / "renamed.flac.part")
        (inbox / "renamed.flac.part").rename(inbox / "renamed.flac")  # written under a temp name, renamed
        with (inbox / "slow.wav").open("wb") as fh:  # copied slowly, a chunk every 0.1 s
            for chunk in np.array_split(np.frombuffer(slow, np.uint8), 8):
                fh.write(chunk.tobytes())
                fh.flush()
                time.sleep(0.1)
        stdout, stderr = proc.communicate(timeout=WAIT)
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr
    assert error_lines(stderr) == [
        f"whisperdesk: error: {inbox / 'corrupt.wav'}: {db.find(inbox / 'corrupt.wav')[0].error}"
    ]
    jobs = {j.source.name: j for j in db.list()}
    good = ["long.wav", "first.wav", "slow.wav", "renamed.flac", "dup.wav", "dup copy.wav"]
    assert sorted(jobs) == sorted([*good, "corrupt.wav"])  # the copy has a job of its own...
    original, copy = sorted((jobs["dup.wav"], jobs["dup copy.wav"]), key=lambda j: j.copy_of or 0)
    assert copy.copy_of == original.id and copy.processing_time == 0.0  # ...that copied, not transcribed
    assert jobs["corrupt.wav"].state == FAILED
    assert all(jobs[n].state == DONE and jobs[n].attempts == 1 for n in good)
    assert outputs_in(out) == expected_outputs(*(Path(n).stem for n in good))
    assert sorted(stdout.splitlines()) == sorted(done_line(jobs[n]) for n in good)
    assert jobs["slow.wav"].duration == pytest.approx(4.0, abs=0.05)  # the whole slow copy
    first_run = {p: p.stat().st_mtime_ns for p in out.iterdir()}

    # Run 2: more files; killed with SIGKILL while it works.
    write_audio(inbox / "second long.wav", signal_of(120.0, 6))
    for i in range(3):
        write_audio(inbox / f"later {i}.wav", signal_of(3.0, 7 + i))
    shutil.copyfile(dup, inbox / "dup again.wav")  # a known recording under yet another name
    shutil.copyfile(inbox / "first.wav", staging / "first.wav")
    shutil.copyfile(staging / "first.wav", inbox / "first.wav")  # copied in again: same bytes, new mtime
    proc = spawn(args)
    try:
        wait_until_running(proc, db)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate(timeout=WAIT)
    assert proc.returncode == -signal.SIGKILL
    interrupted = {j.id for j in db.list([RUNNING])}
    done_before_kill = {j.id for j in db.list([DONE])}
    assert interrupted

    # Run 3: finishes the rest, transcribing nothing twice.
    again = subprocess.run(
        [sys.executable, "-m", "whisperdesk", *args], capture_output=True, text=True, timeout=WAIT
    )
    assert again.returncode == 1  # the corrupt file is still not transcribed, and says so
    assert error_lines(again.stderr) == [
        f"whisperdesk: error: {inbox / 'corrupt.wav'}: {jobs['corrupt.wav'].error} (job "
        f"{jobs['corrupt.wav'].id} failed earlier; `whisperdesk jobs retry {jobs['corrupt.wav'].id}` runs it again)"
    ]
    final = {j.source.name: j for j in db.list()}
    new = ["second long.wav", "later 0.wav", "later 1.wav", "later 2.wav", "dup again.wav"]
    assert sorted(final) == sorted([*good, "corrupt.wav", *new])  # the same file copied in again: no job
    assert final["dup again.wav"].copy_of in (original.id, copy.id)
    assert all(final[n].state == DONE for n in [*good, *new])
    for job in final.values():
        assert job.attempts == (2 if job.id in interrupted else 1), job
    assert sorted(again.stdout.splitlines()) == sorted(
        done_line(j) for j in final.values() if j.state == DONE and j.id not in done_before_kill
    )
    assert outputs_in(out) == expected_outputs(*(Path(n).stem for n in [*good, *new]))
    assert {p: p.stat().st_mtime_ns for p in first_run} == first_run  # run 1's transcripts untouched
    assert not list(out.glob(".*"))  # no temp files left by the killed run


# --- stopping -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["TERM", "INT"])
def test_signal_stops_cleanly_and_leaves_jobs_queued(
    signum: int, code: int, tmp_path: Path, whisper_model_dir: Path, db: JobStore
) -> None:
    inbox, out = tmp_path / "in", tmp_path / "out"
    for i in range(2):
        write_audio(inbox / f"long {i}.wav", signal_of(240.0, i))
    proc = spawn(watch_args(inbox, out, whisper_model_dir, "--batch-size", "1"))
    try:
        running = wait_until_running(proc, db)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=WAIT)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert stdout == "" and error_lines(stderr) == []
    jobs = db.list()
    assert len(jobs) == 2 and all(j.state == QUEUED and j.attempts == 0 for j in jobs)
    assert {j.id for j in running} <= {j.id for j in jobs}
    assert outputs_in(out) == []


# --- in process: exit codes, options, after-processing --------------------------------------------------
def test_exit_when_idle_with_move_after_processing(
    tmp_path: Path, whisper_model_dir: Path, db: JobStore, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = tmp_path / "Eingang mit Leerzeichen"
    names = ["a talk.wav", "Grüße 日本.flac"]
    for i, name in enumerate(names):
        write_audio(inbox / "sub" / name if i else inbox / name, signal_of(2.0, i))
    code = main(
        watch_args(inbox, tmp_path / "out", whisper_model_dir, "--after", "move", "--recursive", "--polling")
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    jobs = db.list()
    assert [j.state for j in jobs] == [DONE, DONE]
    assert sorted(captured.out.splitlines()) == sorted(done_line(j) for j in jobs)
    assert outputs_in(tmp_path / "out") == expected_outputs("a talk", "Grüße 日本")
    # Sources moved only after their transcripts exist, into the excluded "done" folder: not queued again.
    assert sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*.*")) == [
        "done/a talk.wav",
        "done/sub/Grüße 日本.flac",
    ]
    assert main(watch_args(inbox, tmp_path / "out", whisper_model_dir, "--after", "move", "--recursive")) == 0
    assert len(db.list()) == 2 and capsys.readouterr().out == ""


def test_model_that_cannot_load_is_one_error_and_jobs_stay_queued(
    tmp_path: Path, db: JobStore, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = tmp_path / "in"
    queued = db.add(write_audio(inbox / "a.wav", signal_of(1.0)), job_settings(Settings())).job
    code = main(
        ["watch", str(inbox), "--exit-when-idle", "--settle", "0", "--model", "small", "--device", "cpu"]
    )
    captured = capsys.readouterr()
    assert code == 1
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("whisperdesk: error: model small: ") and "model folder" in line
    assert captured.out == ""
    assert db.require(queued.id).state == QUEUED and db.require(queued.id).attempts == 0


def test_file_that_cannot_be_read_is_reported_and_the_rest_done(
    tmp_path: Path, whisper_model_dir: Path, db: JobStore, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    inbox = tmp_path / "in"
    locked = write_audio(inbox / "locked.wav", signal_of(2.0, 1))
    write_audio(inbox / "open.wav", signal_of(2.0, 2))
    real = jobstore.fingerprint_file

    def fingerprint(path: Path | str) -> Fingerprint:
        if Path(path) == locked:  # as another user's file without read permission would be
            raise UnreadableFileError(
                path, f"cannot read {path}: permission denied; check the file's permissions"
            )
        return real(path)

    monkeypatch.setattr(jobstore, "fingerprint_file", fingerprint)
    assert main(watch_args(inbox, tmp_path / "out", whisper_model_dir)) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"whisperdesk: error: {locked}: cannot read {locked}: permission denied; check the file's permissions"
    ]
    (job,) = db.list()
    assert job.source.name == "open.wav" and job.state == DONE
    assert captured.out.splitlines() == [done_line(job)]


def test_watch_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["watch", str(missing)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"whisperdesk: error: {missing}: folder not found; create it or check the path"
    )
    file = tmp_path / "a.wav"
    file.write_bytes(b"x")
    assert main(["watch", str(file)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    for bad in (["--settle", "-1"], ["--after", "shred"], ["--beam-size", "0"]):
        with pytest.raises(SystemExit) as info:
            main(["watch", str(tmp_path), *bad])
        assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["watch"])
    assert info.value.code == 2


# --- whisperdesk jobs -----------------------------------------------------------------------------------
@pytest.fixture
def some_jobs(tmp_path: Path, db: JobStore) -> dict[str, Job]:
    record = job_settings(Settings())
    made = {}
    for i, name in enumerate(["done", "failed", "running", "canceled", "queued"]):  # claimed in this order
        path = tmp_path / "rec" / f"{name} file.wav"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(f"audio {i}".encode())
        made[name] = db.add(path, record).job
    for name in ["done", "failed", "running", "canceled"]:
        claimed = db.claim_next()
        assert claimed is not None and claimed.id == made[name].id
        if name == "done":
            db.mark_done(claimed.id)
        elif name == "failed":
            db.mark_failed(claimed.id, "file is empty (0 bytes)")
        elif name == "running":
            db.mark_progress(claimed.id, 0.42)
        else:
            db.mark_canceled(claimed.id)
    return {name: db.require(job.id) for name, job in made.items()}


def test_jobs_lists_state_progress_file_and_error(
    some_jobs: dict[str, Job], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "DONE", "FILE"]
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert len(rows) == 5
    for job in some_jobs.values():
        row = rows[str(job.id)]
        assert row.split()[1] == job.state and str(job.source) in row
    assert "100%" in rows[str(some_jobs["done"].id)] and "42%" in rows[str(some_jobs["running"].id)]
    assert rows[str(some_jobs["failed"].id)].endswith("[error: file is empty (0 bytes)]")
    assert lines[-1] == "1 queued, 1 running, 1 done, 1 failed, 1 canceled"

    assert main(["jobs", "--state", "failed", "--json"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["id"] == some_jobs["failed"].id and record["error"] == "file is empty (0 bytes)"


def test_jobs_retry_remove_and_clear(
    some_jobs: dict[str, Job], db: JobStore, capsys: pytest.CaptureFixture[str]
) -> None:
    failed, done, running = some_jobs["failed"], some_jobs["done"], some_jobs["running"]
    assert main(["jobs", "retry", str(failed.id)]) == 0
    assert db.require(failed.id).state == QUEUED
    assert f"queued again: job {failed.id}" in capsys.readouterr().out

    assert main(["jobs", "retry", str(done.id)]) == 1
    err = capsys.readouterr().err
    assert f"job {done.id}" in err and "is done" in err and "only failed or canceled" in err
    assert main(["jobs", "retry", "999"]) == 1
    assert "no job with id 999" in capsys.readouterr().err
    assert main(["jobs", "retry"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["jobs", "retry", "abc"])
    assert info.value.code == 2

    db.mark_failed(db.claim_next().id, "cut off")  # type: ignore[union-attr]
    assert main(["jobs", "retry", "--failed"]) == 0
    assert db.counts()[FAILED] == 0
    capsys.readouterr()

    assert main(["jobs", "remove", str(running.id)]) == 1
    assert "is running" in capsys.readouterr().err
    assert main(["jobs", "remove", str(some_jobs["canceled"].id)]) == 0
    assert db.get(some_jobs["canceled"].id) is None
    assert main(["jobs", "remove", "999"]) == 1
    capsys.readouterr()

    assert main(["jobs", "clear"]) == 0
    assert capsys.readouterr().out.strip() == "cleared 1 finished job(s)"
    assert done.id not in {j.id for j in db.list()}
    assert done.id in {j.id for j in db.list(include_archived=True)}
    assert main(["jobs", "list", "--all"]) == 0
    assert str(done.source) in capsys.readouterr().out
    assert db.list([CANCELED]) == []


def test_jobs_retry_can_overwrite_or_write_elsewhere_with_the_current_settings(
    some_jobs: dict[str, Job], db: JobStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canceled = some_jobs["canceled"]
    save_settings(AppPaths.default().settings_file, Settings(output=OutputOptions(formats=("srt",))))
    target = tmp_path / "elsewhere"
    assert main(["jobs", "retry", str(canceled.id), "--overwrite", "--output-dir", str(target)]) == 0
    again = db.require(canceled.id)
    assert again.state == QUEUED
    assert again.settings["overwrite"] is True
    assert again.settings["output"]["output_dir"] == str(target)
    assert again.settings["output"]["formats"] == ["srt"]  # the settings as they are now
    assert main(["jobs", "retry", "--failed", "--overwrite"]) == 2
    assert "need job ids" in capsys.readouterr().err
