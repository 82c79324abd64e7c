"""``whisperdesk worker`` on a real PostgreSQL with real tiny.en weights: a worker killed with SIGKILL in
the middle of a job loses it when its lease runs out, the next worker transcribes it, and the transcripts
are written once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from whisperdesk.core.processor import job_settings
from whisperdesk.core.queue.protocol import DONE, RUNNING, QueueJob
from whisperdesk.core.settings import Settings

pytestmark = pytest.mark.slow

GUARD_S = 600  # only so a broken worker fails the test instead of hanging it; not a speed requirement


def _worker(dsn: str, schema: str, name: str, model: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "whisperdesk", "worker", "--queue", dsn, "--schema", schema, "--name", name,
        "--lease", "2", "--poll", "0.2", "-v",
        "--model", str(model), "--device", "cpu", "--beam-size", "1", "--temperature", "0",
    ]  # fmt: skip
    with log.open("wb") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=dict(os.environ))


def _wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + GUARD_S
    while not check():
        if proc.poll() is not None:
            pytest.fail(
                f"the worker exited ({proc.returncode}) before {what}:\n{log.read_text(errors='replace')}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {GUARD_S} s:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_killed_workers_job_is_requeued_and_transcribed_once(
    postgres_server: object,
    tiny_en_model: Path,
    speech_corpus: object,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    from whisperdesk.core.queue.postgres import PostgresJobQueue

    dsn = postgres_server.dsn  # type: ignore[attr-defined]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    source = tmp_path / "in" / "talk.wav"
    source.parent.mkdir()
    shutil.copyfile(speech_corpus.path, source)  # type: ignore[attr-defined]
    out = tmp_path / "out"
    out.mkdir()
    with PostgresJobQueue(dsn, schema=schema, submitter="alice") as queue:
        job_id = queue.add(source, job_settings(Settings(), output_dir=out)).job.id

        def job() -> QueueJob:
            found = queue.get(job_id)
            assert found is not None
            return found

        first_log = tmp_path / "w1.log"
        procs.append(_worker(dsn, schema, "w1", tiny_en_model, first_log))
        _wait_for("the first worker's claim", lambda: job().state == RUNNING, procs[0], first_log)
        os.kill(procs[0].pid, signal.SIGKILL)  # mid-job: its lease stops being renewed
        procs[0].wait()
        assert job().state == RUNNING and job().worker == "w1"
        assert list(out.iterdir()) == []  # the killed worker wrote nothing

        second_log = tmp_path / "w2.log"
        procs.append(_worker(dsn, schema, "w2", tiny_en_model, second_log))
        _wait_for("the job done by the second worker", lambda: job().state == DONE, procs[1], second_log)
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(timeout=GUARD_S) == 0, second_log.read_text(errors="replace")

        done = job()
    assert done.attempts == 2  # claimed by w1, requeued after its lease ran out, claimed by w2
    assert sorted(p.name for p in out.iterdir()) == ["talk.json", "talk.srt", "talk.txt", "talk.vtt"]
    assert sorted(done.outputs) == sorted(out.iterdir())
    text = (out / "talk.txt").read_text().lower()
    assert "office will be closed on friday" in text  # real weights, real speech: the first sentence
