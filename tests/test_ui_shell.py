"""The window shell, settings dialog, banner, log view and composition root, offscreen with a real engine."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import (
    QEvent,
    QMimeData,
    QObject,
    QPointF,
    Qt,
    QTimer,
    QUrl,
)
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QWidget
from pytestqt.qtbot import QtBot

from whisperdesk.app import Desktop, app_icon, build_app, run_gui
from whisperdesk.cli import build_parser
from whisperdesk.core.engine import (
    Engine,
    ResolvedDevice,
    cuda_device_count,
    default_loader,
    supported_compute_types,
)
from whisperdesk.core.jobstore import DONE, FAILED
from whisperdesk.core.logging_setup import teardown_handlers
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import (
    DecodeOptions,
    ModelConfig,
    OutputOptions,
    Settings,
    UiOptions,
    load_settings,
)
from whisperdesk.services.engine_bridge import ModelState
from whisperdesk.services.notifier import Outcome
from whisperdesk.ui.log_view import LogView
from whisperdesk.ui.main_window import MainWindow
from whisperdesk.ui.settings_dialog import LOCAL_MODEL_ITEM, SettingsDialog
from whisperdesk.ui.tray import Tray, tray_available

pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def paths(isolated_home: Path) -> AppPaths:
    return AppPaths.under(isolated_home).ensure()


def offline_engine(paths: AppPaths) -> Engine:
    """A real engine whose named model is not cached and cannot be downloaded (first run, no network)."""
    return Engine(ModelConfig(model="tiny", device="cpu"), paths.models_dir, local_files_only=True)


@pytest.fixture
def make_app(qtbot: QtBot, paths: AppPaths) -> Iterator[Any]:
    made: list[Desktop] = []

    def make(settings: Settings | None = None, **kwargs: Any) -> Desktop:
        kwargs.setdefault("use_tray", False)
        engine = kwargs.pop("engine", None) or offline_engine(paths)
        ctx = build_app(paths, settings or Settings(model=engine.config), engine=engine, **kwargs)
        qtbot.addWidget(ctx.window)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.shutdown()
        assert ctx.pool.activeThreadCount() == 0
        ctx.window.close()


def mime_for(paths: list[Path | str]) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl(str(p)) if str(p).startswith("http") else QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def drop_on(widget: QWidget, paths: list[Path | str]) -> tuple[bool, bool, bool]:
    """Send the enter/move/drop sequence a real drag produces; returns whether each was accepted."""
    mime = mime_for(paths)
    centre = widget.rect().center()  # QPoint: the drag events take integer positions, the drop a QPointF
    buttons, mods, action = (
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.DropAction.CopyAction,
    )
    enter = QDragEnterEvent(centre, action, mime, buttons, mods)
    QApplication.sendEvent(widget, enter)
    move = QDragMoveEvent(centre, action, mime, buttons, mods)
    QApplication.sendEvent(widget, move)
    drop = QDropEvent(QPointF(centre), action, mime, buttons, mods)
    QApplication.sendEvent(widget, drop)
    return enter.isAccepted(), move.isAccepted(), drop.isAccepted()


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 16)
    return path


class PaintCounter(QObject):
    def __init__(self, window: QWidget) -> None:
        super().__init__()
        self.window = window
        self.count = 0

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and isinstance(obj, QWidget) and obj.window() is self.window:
            self.count += 1
        return False


# --- start-up ------------------------------------------------------------------------------------------------
def test_window_paints_while_the_model_is_still_loading(
    qtbot: QtBot, qapp: QApplication, make_app: Any, paths: AppPaths, whisper_model_dir: Path
) -> None:
    gate = threading.Event()

    def gated_loader(config: ModelConfig, model_path: str, device: ResolvedDevice) -> Any:
        gate.wait(60)  # holds the real load on the pool thread until the window has painted
        return default_loader(config, model_path, device)

    config = ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8")
    engine = Engine(config, paths.models_dir, loader=gated_loader)
    ctx = make_app(Settings(model=config), engine=engine)
    counter = PaintCounter(ctx.window)
    qapp.installEventFilter(counter)
    try:
        ctx.show()
        qtbot.waitExposed(ctx.window)
        qtbot.waitUntil(lambda: counter.count > 0 and ctx.bridge.state.kind == "loading", timeout=10_000)
        assert engine.load_count == 0
        assert ctx.window.model_status_text == f"Model: loading {whisper_model_dir.name}…"
    finally:
        gate.set()
        qapp.removeEventFilter(counter)
    with qtbot.waitSignal(ctx.bridge.preloadFinished, timeout=60_000) as done:
        pass
    assert done.args == [True] and engine.load_count == 1
    assert ctx.window.model_status_text.startswith("Model ready: ")


def test_missing_model_offers_every_way_out_in_plain_words(
    qtbot: QtBot, make_app: Any, tmp_path: Path
) -> None:
    ctx = make_app()
    with qtbot.waitSignal(ctx.bridge.preloadFinished, timeout=30_000):
        ctx.show()
    banner = ctx.window.model_banner
    assert banner.showing and banner.level == "error" and banner.title == "No model available"
    assert banner.actions() == ["retry", "builtin", "download", "folder"]
    assert "tiny is not downloaded yet" in banner.text and "wait in the queue" in banner.text
    for raw in ("Error", "huggingface", "whisperdesk transcribe", "`", "Traceback"):
        assert raw not in banner.text
    assert ctx.window.model_status_text == "Model: tiny not available"
    not_a_model = tmp_path / "folder"
    not_a_model.mkdir()
    ctx.window.modelFolderChosen.emit(str(not_a_model))  # what the banner's folder dialog emits
    assert ctx.window.banner.level == "error" and "model.bin is missing" in ctx.window.banner.text
    assert ctx.settings.model.model == "tiny"
    with qtbot.waitSignal(ctx.bridge.preloadFinished, timeout=60_000) as done:
        qtbot.mouseClick(banner.button("builtin"), Qt.MouseButton.LeftButton)
    assert done.args == [True] and not banner.showing
    assert load_settings(ctx.paths.settings_file)[0].model.model == "builtin"
    assert ctx.window.model_status_text.startswith("Model ready: ")


def test_choosing_a_real_model_folder_loads_it(qtbot: QtBot, make_app: Any, whisper_model_dir: Path) -> None:
    ctx = make_app()
    with qtbot.waitSignal(ctx.bridge.preloadFinished, timeout=30_000):
        ctx.show()
    with qtbot.waitSignal(ctx.bridge.preloadFinished, timeout=60_000) as done:
        ctx.window.modelFolderChosen.emit(str(whisper_model_dir))
    assert done.args == [True] and ctx.engine.load_count == 1
    assert not ctx.window.model_banner.showing
    assert load_settings(ctx.paths.settings_file)[0].model.model == str(whisper_model_dir)


# --- adding work -------------------------------------------------------------------------------------------
def test_dropped_files_and_folders_emit_the_supported_files(qtbot: QtBot, tmp_path: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    a = touch(tmp_path / "a.wav")
    folder_files = [touch(tmp_path / "rec" / "x.mp3"), touch(tmp_path / "rec" / "sub" / "y.m4a")]
    touch(tmp_path / "rec" / "readme.txt")
    with qtbot.waitSignal(window.filesAdded) as added:
        accepted = drop_on(window, [a, tmp_path / "rec"])
    assert accepted == (True, True, True)
    assert added.args == [[a, *folder_files]]
    assert not window.banner.showing  # folder contents that are not audio are not worth a message


def test_dropped_unsupported_files_are_named_and_not_queued(qtbot: QtBot, tmp_path: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    doc, pdf = touch(tmp_path / "minutes.docx"), touch(tmp_path / "slides.pdf")
    with qtbot.assertNotEmitted(window.filesAdded):
        drop_on(window, [doc, pdf])
    assert window.banner.showing and window.banner.level == "warning"
    assert "minutes.docx" in window.banner.text and "slides.pdf" in window.banner.text
    wav = touch(tmp_path / "ok.wav")
    with qtbot.waitSignal(window.filesAdded) as added:
        drop_on(window, [wav, doc])
    assert added.args == [[wav]]
    assert "minutes.docx" in window.banner.text and "1 other file(s) were queued" in window.banner.text


def test_only_local_files_are_accepted(qtbot: QtBot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    with qtbot.assertNotEmitted(window.filesAdded):
        accepted = drop_on(window, ["https://example.org/talk.mp3"])
    assert accepted == (False, False, False)


def test_folder_without_recordings_says_so(qtbot: QtBot, tmp_path: Path) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    touch(tmp_path / "docs" / "a.txt")
    result = window.add_paths([tmp_path / "docs"])
    assert result.supported == []
    assert window.banner.level == "info" and "no audio or video files found in docs" in window.banner.text


# --- status bar, panels, pause ---------------------------------------------------------------------------
def test_status_bar_and_injected_panels(qtbot: QtBot) -> None:
    queue, gpu, log_view = QWidget(), QWidget(), LogView()
    window = MainWindow(queue_view=queue, panels=[("GPU", gpu)], log_view=log_view)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.queue_view is queue and queue.isVisible() and gpu.isVisible() and log_view.isVisible()
    window.set_queue_summary("2 of 5 done · ETA 03:10", 0.4)
    assert window.queue_status_text == "2 of 5 done · ETA 03:10" and window.queue_fraction == pytest.approx(
        0.4
    )
    window.set_queue_summary("Queue: empty", None)
    assert window.queue_fraction is None
    window.set_model_state(ModelState("ready", "small", "small on cpu (int8)"))
    assert window.model_status_text == "Model ready: small on cpu (int8)"
    replacement = QWidget()
    window.set_queue_view(replacement)
    assert window.queue_view is replacement and replacement.isVisible()


def test_pause_toggle_signals_and_reflects_state(qtbot: QtBot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.pauseRequested) as paused:
        window.pause_action.trigger()
    assert paused.args == [True] and window.pause_action.text() == "Resume queue"
    with qtbot.assertNotEmitted(window.pauseRequested):
        window.set_paused(False)  # the runner reporting its state is not a new request
    assert not window.pause_action.isChecked() and window.pause_action.text() == "Pause after the current job"
    with qtbot.waitSignal(window.pauseNowRequested):
        window.pause_now_action.trigger()
    with qtbot.waitSignal(window.benchmarkRequested):
        window.benchmark_action.trigger()
    with qtbot.waitSignal(window.settingsRequested):
        window.settings_action.trigger()


# --- quitting --------------------------------------------------------------------------------------------
def test_closing_while_busy_asks_and_can_be_refused(qtbot: QtBot) -> None:
    asked: list[str] = []
    answer = [False]

    def confirm(_parent: QWidget, title: str, _text: str) -> bool:
        asked.append(title)
        return answer[0]

    window = MainWindow(is_busy=lambda: True, confirm=confirm)
    qtbot.addWidget(window)
    window.show()
    with qtbot.assertNotEmitted(window.quitRequested):
        window.close()
    assert window.isVisible() and asked == ["Quit WhisperDesk?"]
    answer[0] = True
    with qtbot.waitSignal(window.quitRequested):
        assert window.request_quit()
    assert not window.isVisible() and len(asked) == 2


def test_idle_close_quits_without_asking_and_close_to_tray_needs_a_tray(qtbot: QtBot) -> None:
    def never(_p: QWidget, _t: str, _x: str) -> bool:
        raise AssertionError("must not ask when nothing runs")

    window = MainWindow(confirm=never, close_to_tray=True, tray_available=False)
    qtbot.addWidget(window)
    window.show()
    with qtbot.assertNotEmitted(window.hiddenToTray), qtbot.waitSignal(window.quitRequested):
        window.close()
    tray_window = MainWindow(confirm=never, close_to_tray=True, tray_available=True)
    qtbot.addWidget(tray_window)
    tray_window.show()
    with qtbot.assertNotEmitted(tray_window.quitRequested), qtbot.waitSignal(tray_window.hiddenToTray):
        tray_window.close()
    assert not tray_window.isVisible()


# --- settings dialog ---------------------------------------------------------------------------------------
def custom_settings(model: str = "base") -> Settings:
    return Settings(
        model=ModelConfig(
            model=model, device="cpu", compute_type="int8_float32", batch_size=12, cpu_threads=3
        ),
        decode=DecodeOptions(beam_size=3, language="de", task="translate", vad=False, vad_min_silence_ms=700),
        output=OutputOptions(formats=("srt", "json"), output_dir="/tmp/transcripts", max_line_length=60),
        ui=UiOptions(close_to_tray=False, notify_on_finish=False),
    )


def test_settings_dialog_offers_only_cpu_compute_types_and_round_trips(qtbot: QtBot) -> None:
    settings = custom_settings()
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert set(dialog.compute_types()) == supported_compute_types("cpu")
    assert dialog.result_settings() == settings
    dialog.batch_spin.setValue(16)
    dialog.language_combo.setCurrentText("auto")
    dialog.format_checks["txt"].setChecked(True)
    dialog.output_edit.setText("")
    edited = dialog.result_settings()
    assert edited.model.batch_size == 16 and edited.decode.language is None
    assert edited.output.formats == ("txt", "srt", "json") and edited.output.output_dir is None
    assert edited.model.cpu_threads == 3 and edited.decode.temperature == settings.decode.temperature


def test_settings_dialog_replaces_a_compute_type_the_device_lacks(qtbot: QtBot) -> None:
    settings = Settings(model=ModelConfig(device="cpu", compute_type="float16"))
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert dialog.compute_combo.currentText() == "int8"
    assert "float16 is not supported on cpu" in dialog.compute_note.text()
    assert dialog.result_settings().model.compute_type == "int8"


def _fake_model_folder(folder: Path) -> Path:
    """The files a faster-whisper folder must have, for the dialog's check (nothing loads them)."""
    folder.mkdir(exist_ok=True)
    for name in ("config.json", "tokenizer.json"):
        (folder / name).write_text("{}", encoding="utf-8")
    (folder / "vocabulary.txt").write_text("a\n", encoding="utf-8")
    (folder / "model.bin").write_bytes(b"\0" * 1_100_000)
    return folder


def test_settings_dialog_refuses_invalid_values_and_bad_model_folders(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = SettingsDialog(custom_settings())
    qtbot.addWidget(dialog)
    for box in dialog.format_checks.values():
        box.setChecked(False)
    dialog.accept()
    assert dialog.result() != QDialog.DialogCode.Accepted and "formats" in dialog._error.text()
    assert not dialog.set_local_model(str(tmp_path))
    assert "model.bin is missing" in dialog._error.text() and dialog.model_combo.currentText() == "base"
    _fake_model_folder(tmp_path)
    assert dialog.set_local_model(str(tmp_path))
    assert dialog.result_settings().model.model == str(tmp_path)


def test_settings_dialog_offers_docx_and_markdown(qtbot: QtBot) -> None:
    dialog = SettingsDialog(custom_settings())
    qtbot.addWidget(dialog)
    assert [box.text() for box in dialog.format_checks.values()] == [
        "TXT",
        "SRT",
        "VTT",
        "JSON",
        "DOCX",
        "MD",
    ]
    for name, box in dialog.format_checks.items():
        box.setChecked(name in ("docx", "md"))
    assert dialog.result_settings().output.formats == ("docx", "md")


def test_local_model_item_asks_for_a_folder(qtbot: QtBot, tmp_path: Path) -> None:
    model = _fake_model_folder(tmp_path / "faster-whisper-small")
    picks = iter([str(model), ""])  # what the user picks in the folder dialog: a folder, then Cancel
    dialog = SettingsDialog(Settings(), choose_directory=lambda _parent, _caption: next(picks))
    qtbot.addWidget(dialog)
    for _ in range(2):
        index = dialog.model_combo.findText(LOCAL_MODEL_ITEM)
        dialog.model_combo.setCurrentIndex(index)
        dialog.model_combo.activated.emit(index)
    assert dialog.model_combo.currentText() == str(model)  # cancelling keeps the folder chosen before
    assert dialog.result_settings().model.model == str(model)


@pytest.mark.skipif(cuda_device_count() > 0, reason="checks the no-CUDA path")
def test_settings_dialog_cannot_be_accepted_with_cuda_on_a_machine_without_it(qtbot: QtBot) -> None:
    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    dialog.device_combo.setCurrentText("cuda")
    assert dialog.compute_types() == [] and "no usable CUDA device" in dialog.compute_note.text()
    assert not dialog._buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    dialog.device_combo.setCurrentText("auto")
    assert set(dialog.compute_types()) == supported_compute_types("cpu")
    assert dialog._buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()


def test_settings_dialog_keeps_close_to_tray_where_there_is_no_tray(qtbot: QtBot) -> None:
    settings = Settings(ui=UiOptions(close_to_tray=True))
    dialog = SettingsDialog(settings, tray_available=False)
    qtbot.addWidget(dialog)
    assert not dialog.tray_check.isEnabled()
    assert dialog.result_settings().ui.close_to_tray


def test_settings_from_the_window_are_saved_and_reach_the_engine(qtbot: QtBot, make_app: Any) -> None:
    ctx = make_app(Settings(model=ModelConfig(model="tiny", device="cpu")))

    def edit_and_accept() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, SettingsDialog)
        dialog.batch_spin.setValue(3)
        dialog.compute_combo.setCurrentText("float32")
        dialog.accept()

    QTimer.singleShot(0, edit_and_accept)
    with qtbot.waitSignal(ctx.controller.settingsChanged, timeout=10_000):
        ctx.window.settings_action.trigger()
    assert ctx.engine.config.batch_size == 3 and ctx.engine.config.compute_type == "float32"
    assert load_settings(ctx.paths.settings_file)[0].model == ctx.engine.config
    qtbot.waitUntil(lambda: not ctx.bridge.preloading, timeout=30_000)  # the model change triggered a preload


# --- notifications and log --------------------------------------------------------------------------------
def test_without_a_tray_notifications_show_in_the_window(qtbot: QtBot, make_app: Any) -> None:
    ctx = make_app()
    assert ctx.tray is None
    with qtbot.waitSignal(ctx.notifier.notified) as note:
        ctx.notifier.record(Outcome(DONE, "interview.m4a", "done in 0:42"))
    assert note.args == ["Transcript ready", "interview.m4a: done in 0:42"]
    banner = ctx.window.banner
    assert banner.showing and banner.title == "Transcript ready" and "interview.m4a" in banner.text


def test_tray_menu_signals_and_pause_state(qtbot: QtBot) -> None:
    tray = Tray(app_icon())
    actions = {a.text(): a for a in tray.menu.actions() if a.text()}
    assert set(actions) == {
        "Show/Hide WhisperDesk",
        "Pause after the current job",
        "Pause now (running job goes back to the queue)",
        "Quit",
    }
    with qtbot.waitSignal(tray.toggleWindowRequested):
        actions["Show/Hide WhisperDesk"].trigger()
    with qtbot.waitSignal(tray.pauseRequested) as paused:
        actions["Pause after the current job"].trigger()
    assert paused.args == [True] and tray.paused
    assert actions["Pause after the current job"].text() == "Resume queue"
    assert not actions["Pause now (running job goes back to the queue)"].isVisible()
    with qtbot.assertNotEmitted(tray.pauseRequested):
        tray.set_paused(False)
    assert not tray.paused
    with qtbot.waitSignal(tray.pauseNowRequested):
        actions["Pause now (running job goes back to the queue)"].trigger()
    tray.set_status("Queue: finished, 0 done, 1 canceled")
    assert tray.icon.toolTip() == "WhisperDesk\nQueue: finished, 0 done, 1 canceled"
    with qtbot.waitSignal(tray.quitRequested):
        actions["Quit"].trigger()
    tray.dispose()


def test_a_tray_icon_where_no_tray_exists_falls_back_to_the_banner(qtbot: QtBot, make_app: Any) -> None:
    ctx = make_app(use_tray=True)  # forced: offscreen has no system tray to show it in
    ctx.show()
    assert ctx.tray is not None and not tray_available()
    with qtbot.waitSignal(ctx.notifier.notified):
        ctx.notifier.record(Outcome(FAILED, "x.wav", "not an audio file"))
    assert ctx.notifier.last_route == "banner" and ctx.window.banner.level == "error"
    qtbot.waitUntil(lambda: not ctx.bridge.preloading, timeout=30_000)


def test_log_view_shows_a_warning_logged_on_a_worker_thread(qtbot: QtBot, make_app: Any) -> None:
    ctx = make_app()
    worker = threading.Thread(target=lambda: logging.getLogger("whisperdesk.worker").warning("file vanished"))
    with qtbot.waitSignal(ctx.log_bridge.recordEmitted, timeout=2000):
        worker.start()
        worker.join()
    qtbot.waitUntil(lambda: any("file vanished" in line for line in ctx.log_view.lines()), timeout=2000)
    ctx.log_view.set_show_info(True)
    assert ctx.log_bridge.level == logging.INFO


def test_log_view_caps_its_length(qtbot: QtBot) -> None:
    view = LogView(max_lines=5)
    qtbot.addWidget(view)
    for i in range(20):
        view.append_record(logging.WARNING, f"line {i}")
    view.append_record(logging.INFO, "hidden at WARNING")
    assert view.lines() == [f"line {i}" for i in range(15, 20)]


# --- entry points -------------------------------------------------------------------------------------------
def test_gui_command_is_the_default_and_takes_minimized() -> None:
    parser = build_parser()
    args = parser.parse_args(["gui", "--minimized"])
    assert args.minimized and args.func.__module__ == "whisperdesk.commands.gui"
    assert parser.parse_args(["gui"]).minimized is False


def test_minimized_without_a_tray_starts_minimised(qtbot: QtBot, make_app: Any) -> None:
    ctx = make_app()
    with qtbot.waitSignal(ctx.bridge.preloadFinished, timeout=30_000):
        ctx.show(minimized=True)
    assert ctx.window.windowState() & Qt.WindowState.WindowMinimized


def test_run_gui_opens_the_window_and_quits_cleanly(qtbot: QtBot, qapp: QApplication) -> None:
    seen: list[MainWindow] = []

    def quit_from_the_window() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        seen.extend(windows)
        for w in windows:
            w.request_quit()

    QTimer.singleShot(200, quit_from_the_window)
    try:
        assert run_gui(["whisperdesk"]) == 0
    finally:
        qapp.setQuitOnLastWindowClosed(True)
        teardown_handlers()
    assert len(seen) == 1 and not seen[0].isVisible()
    seen[0].deleteLater()
