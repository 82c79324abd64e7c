"""The speaker-count hint in the window: the editor, the question asked when files are added with speaker
labels, and the per-folder count in the watched-folders panel that reaches the folder's jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog
from pytestqt.qtbot import QtBot

from whisperdesk.core.engine import Engine
from whisperdesk.core.jobstore import JobStore
from whisperdesk.core.settings import ModelConfig, Settings, WatchedFolder, load_settings
from whisperdesk.devtools.synth_audio import noise, write_audio
from whisperdesk.services.settings_controller import SettingsController
from whisperdesk.ui.main_window import MainWindow
from whisperdesk.ui.speaker_count import SpeakerCountDialog, SpeakerCountEdit
from whisperdesk.ui.watched_panel import WatchedFoldersPanel


@pytest.mark.parametrize("text", ["auto", "3", "2-4"])
def test_editor_shows_and_gives_back_the_count(qtbot: QtBot, text: str) -> None:
    edit = SpeakerCountEdit()
    qtbot.addWidget(edit)
    edit.set_value(text)
    assert edit.value() == text


def test_editor_reports_each_edit(qtbot: QtBot) -> None:
    edit = SpeakerCountEdit()
    qtbot.addWidget(edit)
    with qtbot.waitSignal(edit.changed) as seen:
        edit.mode.setCurrentIndex(1)  # exactly
    assert seen.args == ["2"]
    with qtbot.waitSignal(edit.changed) as seen:
        edit.mode.setCurrentIndex(2)  # between
    assert seen.args == ["2-4"]
    with qtbot.waitSignal(edit.changed) as seen:
        edit.high.setValue(1)  # the user typed the bounds the wrong way round
    assert seen.args == ["1-2"]


def test_files_added_with_speaker_labels_carry_the_count_asked_for(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    recording = write_audio(tmp_path / "interview.wav", noise(0.5, amplitude=0.3, seed=4))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(recording)], ""))

    def answer() -> None:
        dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, SpeakerCountDialog))
        dialog.edit.set_value("3")
        dialog.accept()

    QTimer.singleShot(0, answer)
    with qtbot.waitSignal(window.filesAddedWithSpeakers) as added:
        window.choose_files_with_speakers()
    assert added.args == [[recording], "3"]

    def cancel() -> None:
        dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, SpeakerCountDialog))
        dialog.done(QDialog.DialogCode.Rejected)

    QTimer.singleShot(0, cancel)
    with qtbot.assertNotEmitted(window.filesAddedWithSpeakers), qtbot.assertNotEmitted(window.filesAdded):
        window.choose_files_with_speakers()


def test_watched_folder_keeps_its_own_count(
    qtbot: QtBot, store: JobStore, tmp_path: Path, isolated_home: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    engine = Engine(ModelConfig(model="tiny", device="cpu"), isolated_home / "models", local_files_only=True)
    controller = SettingsController(
        Settings(watched=(WatchedFolder(path=str(inbox)),)), tmp_path / "s.json", engine
    )
    panel = WatchedFoldersPanel(controller)
    qtbot.addWidget(panel)
    panel.table.selectRow(0)
    assert not panel.speaker_count.isEnabled()
    panel.speakers_box.click()
    assert panel.speaker_count.isEnabled()
    panel.speaker_count.mode.setCurrentIndex(1)
    panel.speaker_count.low.setValue(3)
    assert load_settings(controller.settings_file)[0].watched[0].speakers == "3"
    panel.table.selectRow(0)  # shown again from the saved settings
    assert panel.speaker_count.value() == "3"
    panel.speakers_box.click()
    assert load_settings(controller.settings_file)[0].watched[0].speakers is None
