"""The model manager window and its download service against the loopback hub, plus the queue guard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QThreadPool
from pytestqt.qtbot import QtBot
from test_models_download import NAME, REPO

from whisperdesk.app import Desktop
from whisperdesk.core.jobstore import DONE
from whisperdesk.core.models.recommend import recommend
from whisperdesk.core.models.store import installed_path, partial_bytes
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings
from whisperdesk.devtools.loopback_hub import LoopbackHub
from whisperdesk.devtools.synth_audio import speech_like
from whisperdesk.services.model_downloads import ModelDownloads
from whisperdesk.ui.model_manager import ModelManagerDialog

pytestmark = pytest.mark.usefixtures("no_leaks")
CPU = recommend(0, None)


@pytest.fixture
def hub(tiny_en_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackHub]:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with LoopbackHub({REPO: tiny_en_model}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture
def downloads(qapp: object) -> Iterator[ModelDownloads]:
    pool = QThreadPool()
    service = ModelDownloads(AppPaths.default().models_dir, pool)
    yield service
    service.shutdown()
    pool.waitForDone(60_000)


def _dialog(qtbot: QtBot, downloads: ModelDownloads, **kwargs: object) -> ModelManagerDialog:
    dialog = ModelManagerDialog(downloads, "builtin", CPU, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    return dialog


def _row_status(dialog: ModelManagerDialog, name: str) -> str:
    for r in range(dialog.table.rowCount()):
        if dialog.table.item(r, 0).text() == name:
            return dialog.table.item(r, 5).text()
    raise AssertionError(name)


def test_dialog_lists_the_catalogue_with_facts_and_the_recommendation(
    qtbot: QtBot, downloads: ModelDownloads
) -> None:
    dialog = _dialog(qtbot, downloads)
    assert dialog.table.item(0, 0).text() == "Built-in (base, multilingual)"
    assert dialog.table.item(0, 4).text() == "recommended"
    assert _row_status(dialog, "Built-in (base, multilingual)") == "included, in use"
    assert _row_status(dialog, "tiny.en") == "not downloaded"
    assert "No NVIDIA GPU" in dialog.reason_label.text()
    assert dialog.selected_name() == "small"  # the better-but-slower offer is preselected
    assert "free on that disk" in dialog.disk_label.text()


def test_download_shows_progress_then_the_model_can_be_used(
    qtbot: QtBot, downloads: ModelDownloads, hub: LoopbackHub
) -> None:
    hub.faults.bytes_per_second = 40_000_000
    dialog = _dialog(qtbot, downloads)
    dialog.select(NAME)
    assert not dialog.use_button.isEnabled() and "Download this model first" in dialog.use_button.toolTip()
    assert "damaged or incomplete" in dialog.verify_button.toolTip()  # what Check is for
    texts: list[str] = []
    downloads.progressChanged.connect(lambda _p: texts.append(dialog.progress_label.text()))
    with qtbot.waitSignal(downloads.downloadFinished, timeout=120_000):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
        assert dialog.cancel_button.isEnabled() and not dialog.download_button.isEnabled()
    assert any(" of " in t and "/s" in t and "left" in t for t in texts), texts
    assert _row_status(dialog, NAME) == "downloaded"
    assert "downloaded and checked" in dialog.message_label.text()
    with qtbot.waitSignal(downloads.verified, timeout=60_000) as checked:
        qtbot.mouseClick(dialog.verify_button, Qt.MouseButton.LeftButton)
    assert checked.args[1] is True
    with qtbot.waitSignal(dialog.modelChosen) as chosen:
        qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert chosen.args == [NAME]
    assert _row_status(dialog, NAME) == "downloaded, in use" and not dialog.delete_button.isEnabled()
    assert not dialog.use_button.isEnabled() and "already using" in dialog.use_button.toolTip()


def test_cancel_then_resume_then_delete(qtbot: QtBot, downloads: ModelDownloads, hub: LoopbackHub) -> None:
    hub.faults.bytes_per_second = 5_000_000
    dialog = _dialog(qtbot, downloads, confirm=lambda *_a: True)
    dialog.select(NAME)
    with qtbot.waitSignal(downloads.downloadCancelled, timeout=60_000):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: partial_bytes(NAME, downloads.models_dir) > 2_000_000, timeout=60_000)
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert _row_status(dialog, NAME).startswith("partly downloaded")
    assert dialog.download_button.text() == "Resume download"
    assert "continues where it stopped" in dialog.message_label.text()
    hub.faults.bytes_per_second = 0
    with qtbot.waitSignal(downloads.downloadFinished, timeout=120_000):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    assert [s for s in hub.served if s.file == "model.bin"][-1].start > 0
    dialog.select(NAME)
    qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    assert (
        installed_path(NAME, downloads.models_dir) is None and _row_status(dialog, NAME) == "not downloaded"
    )


def test_a_failed_download_is_one_plain_sentence(
    qtbot: QtBot, downloads: ModelDownloads, hub: LoopbackHub
) -> None:
    hub.faults.corrupt = {"model.bin"}
    dialog = _dialog(qtbot, downloads)
    dialog.select(NAME)
    with qtbot.waitSignal(downloads.downloadFailed, timeout=120_000):
        qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    text = dialog.message_label.text()
    assert "is damaged" in text and "Try again" in text and "Error" not in text
    assert not dialog.progress_bar.isVisible()


def test_add_model_folder_is_validated(
    qtbot: QtBot, downloads: ModelDownloads, tmp_path: Path, tiny_en_model: Path
) -> None:
    picks = iter([str(tmp_path), str(tiny_en_model)])
    dialog = _dialog(qtbot, downloads, choose_folder=lambda _parent: next(picks))
    with qtbot.assertNotEmitted(dialog.modelChosen):
        qtbot.mouseClick(dialog.folder_button, Qt.MouseButton.LeftButton)
    assert "model.bin is missing" in dialog.message_label.text()
    with qtbot.waitSignal(dialog.modelChosen) as chosen:
        qtbot.mouseClick(dialog.folder_button, Qt.MouseButton.LeftButton)
    assert chosen.args == [str(tiny_en_model)]


@pytest.mark.slow
def test_jobs_added_while_the_model_is_missing_start_once_a_model_is_ready(
    qtbot: QtBot, isolated_home: Path, tmp_path: Path
) -> None:
    """The issue's queue rule: a model problem never leaves the queue paused once a model is ready."""
    audio = speech_like("Please transcribe this short note.", tmp_path / "note.wav")
    if audio is None:
        pytest.skip("espeak-ng is not installed")
    settings = Settings(
        model=ModelConfig(model="small", device="cpu", batch_size=1),  # not downloaded, and offline
        decode=DecodeOptions(beam_size=1, temperature=(0.0,)),
        output=OutputOptions(formats=("txt",), output_dir=str(tmp_path / "out")),
    )
    app = Desktop(AppPaths.under(isolated_home).ensure(), settings, use_tray=False, confirm=lambda *a: True)
    try:
        app.show()
        window = app.window
        qtbot.waitUntil(lambda: window.model_banner.showing, timeout=60_000)
        app.runner.add_files([audio])
        qtbot.waitUntil(lambda: app.runner.paused, timeout=60_000)  # the job met the missing model
        assert app.store.counts().get(DONE, 0) == 0
        assert "not downloaded yet" in window.model_banner.text and "Error" not in window.model_banner.text
        qtbot.mouseClick(window.model_banner.button("builtin"), Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: app.store.counts().get(DONE, 0) == 1, timeout=180_000)
        assert not app.runner.paused and not window.model_banner.showing
        assert "note" in (tmp_path / "out" / "note.txt").read_text(encoding="utf-8").lower()
    finally:
        app.window.hide()
        app.shutdown()
