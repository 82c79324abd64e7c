"""The app's own folders: a folder that cannot be created or written is a plain message naming it and what to
do, in every command and the window, never a traceback (issue 18, point 4); they are private (point 7)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from whisperdesk.cli import main
from whisperdesk.core.paths import AppFolderError, AppPaths
from whisperdesk.devtools.synth_audio import tone, write_audio


@pytest.fixture
def blocked_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A WHISPERDESK_HOME below a regular file: no user, root included, can create it."""
    (tmp_path / "a file").write_text("in the way\n")
    home = tmp_path / "a file" / "home"
    monkeypatch.setenv("WHISPERDESK_HOME", str(home))
    return home


def test_ensure_names_the_folder_and_what_to_do(blocked_home: Path) -> None:
    with pytest.raises(AppFolderError) as caught:
        AppPaths.default().ensure()
    message = str(caught.value)
    assert str(blocked_home / "config") in message and "a file is in the way" in message
    assert f"move or rename {blocked_home.parent}, which is a file" in message
    assert "WHISPERDESK_HOME" in message


@pytest.mark.parametrize(
    "command",
    [["jobs"], ["watch", "{dir}"], ["transcribe", "{file}"], ["bench", "{file}"], ["models", "verify"]],
)
def test_every_command_says_it_in_plain_words(
    command: list[str], blocked_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = write_audio(tmp_path / "in" / "a.wav", tone(200.0, 1.0))
    words = [w.format(dir=recording.parent, file=recording) for w in command]
    assert main(words) == 1
    err = capsys.readouterr().err
    assert err.startswith("whisperdesk: error: cannot create WhisperDesk's") and "Traceback" not in err
    assert str(blocked_home / "config") in err


def test_an_unwritable_home_is_a_message_not_a_traceback(shared_tmp: Path, as_other_user: list[str]) -> None:
    prefix = as_other_user
    home = shared_tmp / "home"
    home.mkdir(mode=0o555)
    home.chmod(0o555)  # exists, but nobody but root may create the app's folders in it
    env = {**os.environ, "WHISPERDESK_HOME": str(home), "HOME": str(shared_tmp)}
    run = subprocess.run(
        [*prefix, sys.executable, "-m", "whisperdesk", "jobs"], capture_output=True, text=True, env=env
    )
    assert run.returncode == 1, run
    assert "Traceback" not in run.stderr
    assert f"cannot create WhisperDesk's settings folder {home / 'config'}: permission denied" in run.stderr


def test_the_window_says_it_in_a_dialog(
    blocked_home: Path, qtbot: QtBot, capsys: pytest.CaptureFixture[str]
) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from whisperdesk.app import run_gui

    seen: list[str] = []

    def read_and_close() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, read_and_close)
            return
        seen.append(box.text())
        box.accept()

    QTimer.singleShot(0, read_and_close)
    assert run_gui(["whisperdesk"]) == 1
    assert len(seen) == 1 and str(blocked_home / "config") in seen[0]
    assert "Traceback" not in capsys.readouterr().err


def test_data_config_and_log_folders_are_private(isolated_home: Path) -> None:
    paths = AppPaths.default().ensure()
    for folder in (paths.data_dir, paths.config_dir, paths.log_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    # An older install's folders, made under the umask, are made private on the next start.
    paths.data_dir.chmod(0o755)
    AppPaths.default().ensure()
    assert stat.S_IMODE(paths.data_dir.stat().st_mode) == 0o700
