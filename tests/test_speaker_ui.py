"""Speakers in the window: the "Speakers" column, the rename dialog, and renaming that rewrites transcripts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from whisperdesk.core.clock import FakeClock
from whisperdesk.core.engine import Engine
from whisperdesk.core.jobstore import Job, JobStore
from whisperdesk.core.outputs import OutputLedger, write_outputs
from whisperdesk.core.processor import job_settings
from whisperdesk.core.settings import ModelConfig, OutputOptions, Settings, WatchedFolder, load_settings
from whisperdesk.core.speakers.saved import save_job_transcript
from whisperdesk.core.transcript import Segment, Transcript
from whisperdesk.devtools.synth_audio import noise, write_audio
from whisperdesk.services.settings_controller import SettingsController
from whisperdesk.services.speaker_renamer import SpeakerRenamer
from whisperdesk.services.watcher_bridge import WatcherBridge
from whisperdesk.ui.main_window import MainWindow
from whisperdesk.ui.queue_model import Column, JobTableModel
from whisperdesk.ui.speaker_dialog import SpeakerNamesDialog
from whisperdesk.ui.watched_panel import WatchedFoldersPanel

OUTPUT = OutputOptions(formats=("txt", "vtt"))


@pytest.fixture
def model(store: JobStore, qtbot: QtBot) -> Iterator[JobTableModel]:
    table = JobTableModel(store, poll_ms=50)
    yield table
    table.close()
    table.deleteLater()


def _queue(store: JobStore, tmp_path: Path, name: str, speakers: str | None, seed: int) -> Job:
    source = write_audio(tmp_path / name, noise(1.0, amplitude=0.3, seed=seed))
    result = store.add(source, job_settings(Settings(output=OUTPUT), speakers=speakers), origin="dropped")
    assert result.created, result.reason
    return result.job


def _finish_with_speakers(store: JobStore, job: Job, ledger: OutputLedger) -> Job:
    running = store.claim_next()
    assert running is not None and running.id == job.id
    transcript = Transcript(
        str(job.source),
        [Segment(0.0, 1.0, " Hello.", speaker="Speaker 1"), Segment(1.0, 2.0, " Hi.", speaker="Speaker 2")],
        "en",
        1.0,
        2.0,
        "tiny.en",
        "int8",
        "cpu",
    )
    written = write_outputs(transcript, job.source, OUTPUT, ledger=ledger)
    save_job_transcript(job.id, transcript)
    return store.mark_done(job.id, outputs=list(written.values()))


def _cell(model: JobTableModel, job: Job, role: int = Qt.ItemDataRole.DisplayRole) -> object:
    row = model.row_of(job.id)
    assert row is not None
    return model.index(row, int(Column.SPEAKERS)).data(role)


def test_speakers_column_shows_the_request_then_the_count_and_renaming_rewrites(
    store: JobStore, model: JobTableModel, tmp_path: Path, qtbot: QtBot
) -> None:
    ledger = OutputLedger(tmp_path / "ledger.json")
    meeting = _queue(store, tmp_path, "meeting.wav", "auto", 2)
    plain = _queue(store, tmp_path, "plain.wav", None, 1)
    qtbot.waitUntil(lambda: model.row_of(meeting.id) is not None)
    assert _cell(model, plain) == ""
    assert _cell(model, meeting) == "auto"

    done = _finish_with_speakers(store, meeting, ledger)
    qtbot.waitUntil(lambda: _cell(model, done) == "2")
    assert _cell(model, done, Qt.ItemDataRole.ToolTipRole) == "Speaker 1, Speaker 2"

    renamer = SpeakerRenamer(store, ledger, lambda: Settings(output=OUTPUT))
    renamer.renamed.connect(model.refresh_speakers)
    with qtbot.waitSignal(renamer.renamed, timeout=30_000):
        renamer.rename(done.id, {"Speaker 2": "Grace"})
    assert renamer.wait()
    assert "Grace: Hi." in done.source.with_suffix(".txt").read_text(encoding="utf-8")
    assert "<v Grace>Hi." in done.source.with_suffix(".vtt").read_text(encoding="utf-8")
    qtbot.waitUntil(lambda: _cell(model, done, Qt.ItemDataRole.ToolTipRole) == "Speaker 1, Grace")


def test_renaming_a_removed_job_says_so(store: JobStore, tmp_path: Path, qtbot: QtBot) -> None:
    renamer = SpeakerRenamer(store, OutputLedger(tmp_path / "ledger.json"), Settings)
    with qtbot.waitSignal(renamer.failed, timeout=30_000) as blocker:
        renamer.rename(999, {"Speaker 1": "Ada"})
    assert "removed" in blocker.args[0]
    assert renamer.wait()


def test_dialog_returns_only_changed_names(qtbot: QtBot) -> None:
    dialog = SpeakerNamesDialog("meeting.wav", ["Speaker 1", "Speaker 2", "Speaker 3"])
    qtbot.addWidget(dialog)
    dialog.edits["Speaker 1"].setText("  Ada   Lovelace ")
    dialog.edits["Speaker 2"].setText("")
    assert dialog.changes() == {"Speaker 1": "Ada Lovelace"}


def test_watched_folder_speaker_option_is_saved_and_reaches_its_jobs(
    qtbot: QtBot, store: JobStore, clock: FakeClock, tmp_path: Path, isolated_home: Path
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
    panel.speakers_box.click()
    assert load_settings(controller.settings_file)[0].watched[0].speakers == "auto"

    bridge = WatcherBridge(store, controller.settings, clock=clock)  # type: ignore[arg-type]
    try:
        bridge.start()
        write_audio(inbox / "interview.wav", noise(1.0, amplitude=0.3, seed=3))
        bridge.tick()
        clock.advance(controller.settings.ui.settle_seconds + 0.1)
        bridge.tick()
        assert [j.settings.get("speakers") for j in store.list()] == ["auto"]
    finally:
        bridge.shutdown()
        bridge.deleteLater()
    panel.speakers_box.click()
    assert load_settings(controller.settings_file)[0].watched[0].speakers is None


def test_files_added_with_speaker_labels_go_out_on_their_own_signal(qtbot: QtBot, tmp_path: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    recording = write_audio(tmp_path / "interview.wav", noise(0.5, amplitude=0.3, seed=4))
    assert window.add_speakers_action.text() == "Add files with speaker labels…"
    with qtbot.assertNotEmitted(window.filesAdded), qtbot.waitSignal(window.filesAddedWithSpeakers) as added:
        window.add_paths([recording], speakers="auto")
    assert added.args == [[recording], "auto"]
