"""One window per data folder: a second start hands its files over, ``watch`` refuses to run beside it, and
settings saved by one process never undo another's."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from test_watch_cli import wait_for

from whisperdesk.cli import main
from whisperdesk.core.engine import Engine
from whisperdesk.core.instance import FileLock, window_lock, window_running
from whisperdesk.core.jobstore import JobStore
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import (
    ModelConfig,
    Settings,
    UiOptions,
    WatchedFolder,
    load_settings,
    save_settings,
)
from whisperdesk.devtools.synth_audio import noise, write_audio
from whisperdesk.services.settings_controller import SettingsController

WAIT = 120.0  # starting Python, Qt and the app twice on a slow machine; never asserted as a timing


@pytest.fixture
def paths(isolated_home: Path) -> AppPaths:
    return AppPaths.default().ensure()


def _start(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.Popen(
        [sys.executable, "-m", "whisperdesk", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_the_lock_is_held_once_and_freed_when_released(paths: AppPaths) -> None:
    first, second = window_lock(paths.data_dir), window_lock(paths.data_dir)
    assert not window_running(paths.data_dir)
    assert first.acquire() and not second.acquire()
    assert window_running(paths.data_dir)
    first.release()
    assert second.acquire() and window_running(paths.data_dir)
    second.release()
    assert not window_running(paths.data_dir)


def test_a_second_start_hands_its_files_to_the_running_window(paths: AppPaths, tmp_path: Path) -> None:
    recording = write_audio(tmp_path / "in" / "memo.wav", noise(1.0, amplitude=0.2, seed=1))
    window = _start("gui")
    try:
        wait_for(lambda: window.poll() is not None or window_running(paths.data_dir), "the first window")
        assert window.poll() is None, window.communicate()
        second = subprocess.run(
            [sys.executable, "-m", "whisperdesk", str(recording)],  # how "Open with" calls it
            capture_output=True,
            text=True,
            timeout=WAIT,
            env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
        )
        assert second.returncode == 0, second.stderr
        assert "handed to the running window" in second.stderr
        with JobStore(paths.jobs_db) as store:
            wait_for(lambda: bool(store.find(recording)), "the window to queue the file")
            assert len(store.list()) == 1
        assert window.poll() is None  # the first window is still the one running
    finally:
        window.terminate()
        window.communicate(timeout=WAIT)
    assert not window_running(paths.data_dir)  # the OS freed the lock with the process


def test_watch_refuses_to_run_beside_the_window(
    paths: AppPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = window_lock(paths.data_dir)
    assert lock.acquire()  # what the running window holds
    try:
        (tmp_path / "inbox").mkdir()
        assert main(["watch", str(tmp_path / "inbox")]) == 2
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert "window is running on this data folder" in err and "Watched folders" in err


# --- settings saved by two processes ------------------------------------------------------------------
@pytest.fixture
def two_controllers(
    qtbot: QtBot, tmp_path: Path
) -> Iterator[tuple[SettingsController, SettingsController, Path]]:
    file = tmp_path / "config" / "settings.json"
    start = Settings()
    save_settings(file, start)
    loaded, _ = load_settings(file)
    one = SettingsController(loaded, file, Engine(start.model, tmp_path / "m1"))
    two = SettingsController(loaded, file, Engine(start.model, tmp_path / "m2"))
    yield one, two, file


def test_settings_saved_elsewhere_are_not_undone(
    two_controllers: tuple[SettingsController, SettingsController, Path],
) -> None:
    one, two, file = two_controllers
    assert one.apply(one.settings.replace(ui=dataclasses.replace(one.settings.ui, close_to_tray=True)))
    batch = ModelConfig(model="tiny", device="cpu", compute_type="int8", batch_size=4)
    assert two.apply(two.settings.replace(model=batch))  # read before one saved: its copy is stale
    saved, problems = load_settings(file)
    assert problems == []
    assert saved.ui.close_to_tray is True and saved.model == batch  # both changes kept
    assert two.settings == saved  # the window that saved last shows the merge


def test_the_same_setting_changed_twice_keeps_the_latest(
    two_controllers: tuple[SettingsController, SettingsController, Path],
) -> None:
    one, two, file = two_controllers
    assert one.apply(one.settings.replace(ui=UiOptions(settle_seconds=5.0)))
    assert two.apply(two.settings.replace(ui=UiOptions(settle_seconds=9.0)))
    assert load_settings(file)[0].ui.settle_seconds == 9.0


def test_a_blocking_lock_waits_for_nothing_once_released(tmp_path: Path) -> None:
    lock, other = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    with lock:
        assert lock.held and not other.acquire()
    assert not lock.held and other.acquire()
    other.release()


def test_watched_folders_added_in_two_processes_are_both_kept(
    two_controllers: tuple[SettingsController, SettingsController, Path], tmp_path: Path
) -> None:
    one, two, file = two_controllers
    assert one.apply(one.settings.replace(watched=(WatchedFolder(str(tmp_path / "a")),)))
    assert two.apply(two.settings.replace(watched=(WatchedFolder(str(tmp_path / "b")),)))
    assert [f.path for f in load_settings(file)[0].watched] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert two.apply(two.settings.replace(watched=(WatchedFolder(str(tmp_path / "a")),)))  # b removed
    assert [f.path for f in load_settings(file)[0].watched] == [str(tmp_path / "a")]
