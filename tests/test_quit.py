"""Quit means quit (issue 17.5), asserted as events: the window's process ends while a window of audio is
being decoded, its job is back in the queue (released, not a crash), and a start during an old window's
shutdown waits for it and then opens with its files queued. How long quitting takes is measured by
``bench/quit_time.py``, never asserted here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_watch_cli import wait_for

from whisperdesk.core.instance import window_lock, window_running
from whisperdesk.core.jobstore import QUEUED, RUNNING, JobStore
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings, save_settings
from whisperdesk.devtools.synth_audio import noise, write_audio

WAIT = 180.0  # starting Python, Qt and a real model on a busy machine; never asserted as a timing


@pytest.fixture
def paths(isolated_home: Path) -> AppPaths:
    return AppPaths.default().ensure()


def _window(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "whisperdesk", "gui", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
    )


def _log_tail(paths: AppPaths, lines: int = 15) -> str:
    """The window's last log lines, for a failure's message."""
    try:
        return "\n".join(paths.log_file.read_text(encoding="utf-8").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def _settings(paths: AppPaths, model: Path, out: Path, batch_size: int) -> None:
    save_settings(
        paths.settings_file,
        Settings(
            model=ModelConfig(model=str(model), device="cpu", compute_type="int8", batch_size=batch_size),
            decode=DecodeOptions(beam_size=5),
            output=OutputOptions(formats=("txt",), output_dir=str(out)),
        ),
    )


@pytest.mark.parametrize("batch_size", [1, 8], ids=["sequential", "batched"])
def test_quitting_mid_window_ends_the_process_and_queues_the_job_again(
    paths: AppPaths, tiny_en_model: Path, long_speech: object, tmp_path: Path, batch_size: int
) -> None:
    """SIGTERM (what a logout sends; the same path as File → Quit) while tiny.en decodes a 10-minute
    lecture: the process exits, and the job is queued again with its attempt not counted, no transcript."""
    recording: Path = long_speech.path  # type: ignore[attr-defined]
    _settings(paths, tiny_en_model, tmp_path / "out", batch_size)
    window = _window(str(recording))
    try:
        with JobStore(paths.jobs_db) as store:

            def decoding() -> bool:
                assert window.poll() is None, (window.returncode, window.communicate(), _log_tail(paths))
                jobs = store.find(recording)
                return bool(jobs) and jobs[0].state == RUNNING and jobs[0].progress > 0

            wait_for(decoding, "the job to be decoding")
            window.send_signal(signal.SIGTERM)
            _, err = window.communicate(timeout=WAIT)
            assert window.returncode == 0, (window.returncode, err, _log_tail(paths))
            (job,) = store.find(recording)
            assert job.state == QUEUED and job.attempts == 0, (job, _log_tail(paths))  # released, not failed
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
        assert not window_running(paths.data_dir)
        log = paths.log_file.read_text(encoding="utf-8")
        assert "quitting on signal SIGTERM" in log
    finally:
        if window.poll() is None:
            window.kill()
            window.communicate()


def test_a_start_during_an_old_windows_shutdown_waits_then_opens_with_its_file(
    paths: AppPaths, whisper_model_dir: Path, tmp_path: Path
) -> None:
    """The old window still holds the data folder but no longer answers (it is shutting down): the new
    start says it waits, opens once the old one is gone, and queues the file it was given."""
    _settings(paths, whisper_model_dir, tmp_path / "out", 1)
    recording = write_audio(tmp_path / "in" / "memo.wav", noise(1.0, amplitude=0.2, seed=5))
    old = window_lock(paths.data_dir)
    assert old.acquire()  # the closing window's lock, its socket already closed
    window = _window(str(recording))
    try:
        assert window.stderr is not None
        # Qt's libraries may speak first on stderr (QtMultimedia looking for PipeWire): read to our line.
        line = ""
        for _ in range(20):
            line = window.stderr.readline()
            if line.startswith("whisperdesk:") or not line:
                break
        assert "closing or starting; waiting for it" in line, line
        old.release()  # the old window's process ends
        with JobStore(paths.jobs_db) as store:
            wait_for(
                lambda: window.poll() is not None or bool(store.find(recording)), "the file to be queued"
            )
            assert window.poll() is None, window.communicate()
            assert [j.source for j in store.find(recording)] == [recording]
        window.send_signal(signal.SIGTERM)
        _, err = window.communicate(timeout=WAIT)
        assert window.returncode == 0, err
        assert "the old window has closed; opening WhisperDesk" in line + err
    finally:
        old.release()
        if window.poll() is None:
            window.kill()
            window.communicate()
