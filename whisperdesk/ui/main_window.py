"""The main window: actions, drag-and-drop intake, status bar, and the panels the app injects.

It composes widgets it is given (queue view, watched folders, GPU panel, log view) and reports what the
user asks for through signals; it never talks to the engine, the store or the runner itself, so each panel
is tested on its own and the composition root (whisperdesk.app) decides the wiring.

The default size fits a 1280×720 screen with every key column of the queue visible; the user's size,
dock sizes and column widths are kept in ``layout_file`` (see :mod:`whisperdesk.ui.window_state`).
Pausing offers both meanings the user may have: "after the current job" (the default: nothing is lost)
and "now" (the running job goes back to the queue); the status bar says which one is in force.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, Signal, SignalInstance, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.core.audio import SUPPORTED_EXTENSIONS
from whisperdesk.core.intake import IntakeResult, describe_rejections, expand_paths
from whisperdesk.core.models.builtin import is_builtin
from whisperdesk.services.engine_bridge import ModelState
from whisperdesk.ui.model_banner import BUILTIN, DOWNLOAD, FOLDER, RETRY, ModelBanner
from whisperdesk.ui.notifications import NotificationBanner
from whisperdesk.ui.speaker_count import ask_speaker_count
from whisperdesk.ui.window_state import load_layout, save_layout

CHOOSE_MODEL_ACTION = "choose_model_folder"
ConfirmFn = Callable[[QWidget, str, str], bool]
DEFAULT_SIZE = (1280, 720)
SIDE_PANEL_WIDTH = 330  # the docks on the right; the queue keeps the rest
LOG_HEIGHT = 120
PAUSE_AFTER_CURRENT = "after_current"  # which pause the user asked for (the runner only knows paused)
PAUSE_NOW = "now"
PAUSE_AFTER_LABEL = "Pause after the current job"
PAUSE_NOW_LABEL = "Pause now (running job goes back to the queue)"
RESUME_LABEL = "Resume queue"


def pause_text(mode: str, jobs_running: bool) -> str:
    """The status bar's pause line: which pause is in force and what the running job does meanwhile."""
    if not mode:
        return ""
    if jobs_running:
        if mode == PAUSE_NOW:
            return "Pausing now: the running job is going back to the queue"
        return "Paused after the current job: the running job is finishing"
    return "Paused: queued jobs wait until you resume"


def settings_problem_text(path: Path, problems: Sequence[str]) -> str:
    """Words for a settings file that was reset or partly ignored (the log keeps the technical details)."""
    if any("is not valid settings" in p for p in problems):
        return (
            f"The settings file {path} could not be read, so WhisperDesk started with its default settings. "
            f"The damaged file was kept as {path.name}.bak; the log has the details. "
            "Open Settings… to set things up again."
        )
    return (
        f"Some settings in {path} could not be used, so their defaults apply: "
        + "; ".join(problems)
        + ". Open Settings… to check them."
    )


def ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    answer = QMessageBox.question(
        parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    )
    return answer == QMessageBox.StandardButton.Yes


def _local_paths(event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> list[Path]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class MainWindow(QMainWindow):
    """Signals: filesAdded(list[Path]), pauseRequested(bool) (after the current job / resume),
    pauseNowRequested(), settingsRequested(), benchmarkRequested(), modelFolderChosen(str),
    modelRetryRequested(), builtinModelRequested(), modelManagerRequested(), quitRequested(), hiddenToTray()."""

    filesAdded = Signal(list)
    # the same, with speaker labels: paths, and the speaker count ("auto", "3", "2-4")
    filesAddedWithSpeakers = Signal(list, str)
    pauseRequested = Signal(bool)
    pauseNowRequested = Signal()
    settingsRequested = Signal()
    benchmarkRequested = Signal()
    voicesRequested = Signal()  # Tools → Voices…: the remembered voices
    modelFolderChosen = Signal(str)
    modelRetryRequested = Signal()
    builtinModelRequested = Signal()
    modelManagerRequested = Signal()
    quitRequested = Signal()
    hiddenToTray = Signal()
    searchRequested = Signal()  # Ctrl+K: search every kept transcript

    def __init__(
        self,
        *,
        queue_view: QWidget | None = None,
        panels: Sequence[tuple[str, QWidget]] = (),
        log_view: QWidget | None = None,
        is_busy: Callable[[], bool] | None = None,
        confirm: ConfirmFn = ask_yes_no,
        tray_available: bool = False,
        close_to_tray: bool = False,
        icon: QIcon | None = None,
        layout_file: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("WhisperDesk")
        if icon is not None:
            self.setWindowIcon(icon)
        self.setAcceptDrops(True)
        self._layout_file = layout_file
        self._pause_mode = ""
        self._paused = False
        self._jobs_running = False
        self.resize(*self.default_size())
        self.setDockNestingEnabled(True)
        self._is_busy = is_busy or (lambda: False)
        self._quit_guard: Callable[[], bool] = lambda: True
        self._confirm = confirm
        self._tray_available = tray_available
        self._close_to_tray = close_to_tray
        self._quitting = False
        self._model_banner = False
        self._banner = NotificationBanner(self)
        self._banner.actionTriggered.connect(self._on_banner_action)
        self._settings_banner = NotificationBanner(self)  # its own strip: notifications must not hide it
        self._settings_banner.setObjectName("settingsBanner")
        self._reset_banner = NotificationBanner(self)  # the job list was reset: until the user dismisses it
        self._reset_banner.setObjectName("queueResetBanner")
        self._model_banner_widget = ModelBanner(self)
        self._model_banner_widget.actionTriggered.connect(self._on_model_banner_action)
        self._drop_hint = QLabel("Drop recordings or folders here, or use Add files… / Add folder…", self)
        self._drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._drop_hint.setEnabled(False)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self._settings_banner)
        layout.addWidget(self._reset_banner)
        layout.addWidget(self._model_banner_widget)
        layout.addWidget(self._banner)
        layout.addWidget(self._drop_hint, 1)
        self._central_layout = layout
        self._queue_view: QWidget | None = None
        self.setCentralWidget(central)
        if queue_view is not None:
            self.set_queue_view(queue_view)
        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        for title, widget in panels:
            self.add_panel(title, widget)
        if log_view is not None:
            self.add_panel("Log", log_view, Qt.DockWidgetArea.BottomDockWidgetArea)

    # --- construction ---------------------------------------------------------------------------------
    def _action(
        self,
        text: str,
        slot: Callable[[], object] | SignalInstance,
        shortcut: QKeySequence | str | None = None,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        self.add_files_action = self._action("Add files…", self.choose_files, QKeySequence.StandardKey.Open)
        self.add_folder_action = self._action("Add folder…", self.choose_folder, "Ctrl+Shift+O")
        self.add_speakers_action = self._action(
            "Add files with speaker labels…", self.choose_files_with_speakers
        )
        self.settings_action = self._action(
            "Settings…", self.settingsRequested, QKeySequence.StandardKey.Preferences
        )
        self.benchmark_action = self._action("Benchmark…", self.benchmarkRequested)
        self.model_folder_action = self._action("Choose local model folder…", self.choose_model_folder)
        self.models_action = self._action("Models…", self.modelManagerRequested)
        self.voices_action = self._action("Voices…", self.voicesRequested)
        self.quit_action = self._action("Quit", self.request_quit, QKeySequence.StandardKey.Quit)
        self.search_action = self._action("Search transcripts…", self.searchRequested, "Ctrl+K")
        self.search_action.setToolTip("Find words in every transcript and jump to the moment they were said")
        self.pause_action = QAction(PAUSE_AFTER_LABEL, self)  # checked: paused (either way)
        self.pause_action.setIconText("Pause")
        self.pause_action.setCheckable(True)
        self.pause_action.setShortcut(QKeySequence("Ctrl+P"))
        self.pause_action.setToolTip("Finish the running job, then start no new one")
        self.pause_action.toggled.connect(self._on_pause_toggled)
        self.pause_now_action = self._action(PAUSE_NOW_LABEL, self.request_pause_now, "Ctrl+Shift+P")
        self.pause_now_action.setToolTip("Stop now; the running job resumes from its last finished window")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.add_files_action, self.add_speakers_action, self.add_folder_action])
        file_menu.addSeparator()
        file_menu.addAction(self.search_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        bar.addMenu("&Queue").addActions([self.pause_action, self.pause_now_action])
        tools = bar.addMenu("&Tools")
        tools.addActions([self.models_action, self.benchmark_action, self.model_folder_action])
        tools.addAction(self.voices_action)
        tools.addSeparator()
        tools.addAction(self.settings_action)
        self._view_menu = bar.addMenu("&View")
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolBar")
        toolbar.setMovable(False)
        toolbar.addActions([self.add_files_action, self.add_folder_action])
        self.pause_button = QToolButton(self)  # click: pause after the current job; arrow: pause now
        self.pause_button.setDefaultAction(self.pause_action)
        self.pause_button.addAction(self.pause_now_action)
        self.pause_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.pause_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addWidget(self.pause_button)
        toolbar.addAction(self.settings_action)
        toolbar.addAction(self.search_action)

    def _build_status_bar(self) -> None:
        self._model_label = QLabel("Model: not loaded yet", self)
        self._queue_label = QLabel("Queue: empty", self)
        self._pause_label = QLabel(self)
        self._pause_label.setObjectName("pauseStatus")
        self._pause_label.hide()
        self._progress = QProgressBar(self)
        self._progress.setRange(0, 1000)
        self._progress.setMaximumWidth(180)
        self._progress.setTextVisible(False)
        self._progress.hide()
        status = self.statusBar()
        status.addWidget(self._model_label, 1)
        status.addPermanentWidget(self._pause_label)
        status.addPermanentWidget(self._queue_label)
        status.addPermanentWidget(self._progress)

    def set_queue_view(self, view: QWidget) -> None:
        """Put the queue view in the centre (replacing the drop hint or an earlier view)."""
        old = self._queue_view or self._drop_hint
        self._central_layout.replaceWidget(old, view)
        old.hide()
        if old is not self._drop_hint:
            old.deleteLater()
        view.show()
        self._queue_view = view

    def set_busy_check(self, is_busy: Callable[[], bool]) -> None:
        """What quitting asks: True while jobs run (the runner's is_busy)."""
        self._is_busy = is_busy

    def add_panel(
        self, title: str, widget: QWidget, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea
    ) -> QDockWidget:
        """Dock a panel (watched folders, GPU, log); the View menu gets a toggle for it."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable | QDockWidget.DockWidgetFeature.DockWidgetMovable
        )
        self.addDockWidget(area, dock)
        if area == Qt.DockWidgetArea.BottomDockWidgetArea:  # the queue keeps most of the height
            self.resizeDocks([dock], [LOG_HEIGHT], Qt.Orientation.Vertical)
        elif area == Qt.DockWidgetArea.RightDockWidgetArea:  # the queue keeps most of the width
            self.resizeDocks([dock], [SIDE_PANEL_WIDTH], Qt.Orientation.Horizontal)
        self._view_menu.addAction(dock.toggleViewAction())
        return dock

    # --- state shown -----------------------------------------------------------------------------------
    @property
    def banner(self) -> NotificationBanner:
        return self._banner

    @property
    def model_banner(self) -> ModelBanner:
        return self._model_banner_widget

    @property
    def queue_view(self) -> QWidget | None:
        return self._queue_view

    @property
    def model_status_text(self) -> str:
        return self._model_label.text()

    @property
    def queue_status_text(self) -> str:
        return self._queue_label.text()

    @property
    def pause_status_text(self) -> str:
        return self._pause_label.text() if not self._pause_label.isHidden() else ""

    @property
    def settings_banner(self) -> NotificationBanner:
        return self._settings_banner

    @property
    def queue_reset_banner(self) -> NotificationBanner:
        return self._reset_banner

    def show_queue_reset(self, title: str, text: str) -> None:
        """The job list was damaged or missing and started empty: where the old one was kept, and that
        watched recordings with transcripts are not queued again."""
        self._reset_banner.show_message(title, text[:1].upper() + text[1:], "warning")

    @property
    def queue_fraction(self) -> float | None:
        return None if self._progress.isHidden() else self._progress.value() / 1000

    def set_queue_summary(self, text: str, fraction: float | None) -> None:
        """Overall queue line for the status bar (e.g. "3 of 7 done · ETA 04:12"); None hides the bar."""
        self._queue_label.setText(text)
        if fraction is None:
            self._progress.hide()
        else:
            self._progress.setValue(round(min(1.0, max(0.0, fraction)) * 1000))
            self._progress.show()

    @Slot(object)
    def set_model_state(self, state: ModelState) -> None:
        """The status-bar line always; the model banner with every way out while the model cannot load."""
        self._model_label.setText(state.status_text())
        self._model_label.setToolTip(state.message)
        banner = self._model_banner_widget
        if state.kind == "error":
            self._model_banner = True
            actions = (
                [RETRY, DOWNLOAD, FOLDER] if is_builtin(state.model) else [RETRY, BUILTIN, DOWNLOAD, FOLDER]
            )
            title = "No model available" if state.needs_model else "The model could not be loaded"
            waiting = " Recordings you add wait in the queue and start as soon as a model is ready."
            banner.show_problem(title, state.message + waiting, actions)
        elif state.kind == "ready" and self._model_banner:
            self._model_banner = False
            banner.dismiss()

    def offer_model(self, title: str, text: str, download_label: str | None = None) -> None:
        """A suggestion, not a problem (e.g. a better model for this machine): Download… and dismiss.
        ``download_label`` names what the button fetches, so nobody clicks into an unknown download."""
        if not self._model_banner:
            labels = {DOWNLOAD: download_label} if download_label else None
            self._model_banner_widget.show_offer(title, text, [DOWNLOAD], labels)

    @Slot(str)
    def show_warning(self, text: str) -> None:
        self._banner.show_message("", text, "warning")

    @Slot(str)
    def show_error(self, text: str) -> None:
        self._banner.show_message("", text, "error")

    def show_settings_problem(self, path: Path, problems: Sequence[str]) -> None:
        """A settings file that was reset or partly ignored: said in the window until dismissed."""
        if problems:
            self._settings_banner.show_message(
                "Settings reset", settings_problem_text(path, problems), "warning"
            )

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        """Reflect the queue's state (from the runner) without echoing it back as a request."""
        blocked = self.pause_action.blockSignals(True)
        self.pause_action.setChecked(paused)
        self.pause_action.blockSignals(blocked)
        self._paused = paused
        self._update_pause_actions()
        if not paused:
            self.set_pause_mode("")
        elif not self._pause_mode:
            self.set_pause_mode(PAUSE_AFTER_CURRENT)

    @Slot(str)
    def set_pause_mode(self, mode: str) -> None:
        """ "" (running), PAUSE_AFTER_CURRENT or PAUSE_NOW: which pause the status bar describes."""
        self._pause_mode = mode
        self._update_pause_label()

    @Slot()
    def request_pause_now(self) -> None:
        """Ask for "pause now" (from the menu, the toolbar or the tray) and say so in the status bar."""
        self.set_pause_mode(PAUSE_NOW)
        self.pauseNowRequested.emit()

    @Slot(bool)
    def set_jobs_running(self, running: bool) -> None:
        """Connect to ``JobRunner.busyChanged``: whether a job is still running while paused."""
        self._jobs_running = running
        self._update_pause_label()

    def _update_pause_label(self) -> None:
        text = pause_text(self._pause_mode, self._jobs_running)
        self._pause_label.setText(text)
        self._pause_label.setVisible(bool(text))
        self._update_pause_actions()

    def _update_pause_actions(self) -> None:
        """Pause now stays offered while paused after the current job and that job still runs."""
        paused = self._paused
        self.pause_action.setText(RESUME_LABEL if paused else PAUSE_AFTER_LABEL)
        self.pause_action.setIconText("Resume" if paused else "Pause")
        now_helps = not paused or (self._pause_mode != PAUSE_NOW and self._jobs_running)
        self.pause_now_action.setEnabled(now_helps)
        self.pause_now_action.setVisible(now_helps)

    # --- layout between runs --------------------------------------------------------------------------
    @staticmethod
    def default_size() -> tuple[int, int]:
        """1280×720, or less on a smaller screen."""
        width, height = DEFAULT_SIZE
        screen = QApplication.primaryScreen()
        if screen is not None:
            available = screen.availableGeometry()
            width, height = min(width, available.width()), min(height, available.height())
        return width, height

    def layout_state(self) -> dict[str, bytes]:
        """Geometry, docks and the queue's columns as opaque blobs (see :mod:`whisperdesk.ui.window_state`)."""
        state = {
            "geometry": bytes(self.saveGeometry().data()),
            "docks": bytes(self.saveState().data()),
        }
        header_state = getattr(self._queue_view, "header_state", None)
        if callable(header_state):
            state["queue_columns"] = header_state()
        return state

    def restore_layout(self) -> bool:
        """Apply the layout saved by the last run (call after every panel is added, before showing)."""
        if self._layout_file is None:
            return False
        saved = load_layout(self._layout_file)
        restored = False
        if "geometry" in saved:
            restored = self.restoreGeometry(QByteArray(saved["geometry"])) or restored
        if "docks" in saved:
            restored = self.restoreState(QByteArray(saved["docks"])) or restored
        restore_header = getattr(self._queue_view, "restore_header_state", None)
        if "queue_columns" in saved and callable(restore_header):
            restored = bool(restore_header(saved["queue_columns"])) or restored
        return restored

    def save_layout(self) -> bool:
        if self._layout_file is None:
            return False
        return save_layout(self._layout_file, self.layout_state())

    def set_tray_available(self, available: bool) -> None:
        self._tray_available = available

    @Slot(object)
    def apply_settings(self, settings: object) -> None:
        """Follow ``Settings.ui.close_to_tray`` (connected to the settings controller)."""
        self._close_to_tray = bool(settings.ui.close_to_tray)  # type: ignore[attr-defined]

    # --- adding work -----------------------------------------------------------------------------------
    def add_paths(self, paths: Iterable[Path | str], *, speakers: str | None = None) -> IntakeResult:
        """Queue what can be queued and name what cannot; returns what happened (for callers and tests).
        ``speakers``: None, or the speaker count to label them with ("auto", "3", "2-4")."""
        paths = list(paths)
        result = expand_paths(paths)
        if result.supported and speakers:
            self.filesAddedWithSpeakers.emit(list(result.supported), speakers)
        elif result.supported:
            self.filesAdded.emit(list(result.supported))
        rejected = describe_rejections(result)
        if rejected:
            queued = f" {len(result.supported)} other file(s) were queued." if result.supported else ""
            self._banner.show_message("Not queued", f"{rejected}.{queued}", "warning")
        elif not result.supported and paths:
            names = ", ".join(Path(p).name for p in paths[:5])
            self._banner.show_message("Nothing to add", f"no audio or video files found in {names}", "info")
        return result

    @Slot()
    def choose_files(self, *, speakers: bool = False) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(SUPPORTED_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(
            self, "Add recordings", "", f"Audio and video ({patterns});;All files (*)"
        )
        count = ask_speaker_count(self) if files and speakers else None  # auto, N or a range
        if files and (count or not speakers):
            self.add_paths(files, speakers=count)

    @Slot()
    def choose_files_with_speakers(self) -> None:
        """Meetings and interviews: the transcripts say who spoke (the user gives the count or lets it be found)."""
        self.choose_files(speakers=True)

    @Slot()
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of recordings")
        if folder:
            self.add_paths([folder])

    @Slot()
    def choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a faster-whisper (CTranslate2) model folder")
        if folder:
            self.modelFolderChosen.emit(folder)

    # --- drag and drop: accept in enter AND move, local files only -------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _local_paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if _local_paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = _local_paths(event)
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_paths(paths)

    # --- quitting ----------------------------------------------------------------------------------------
    def set_quit_guard(self, guard: Callable[[], bool]) -> None:
        """Asked first when quitting: False keeps the app open (transcript windows with unsaved corrections
        ask the person, and one they keep open stops the quit)."""
        self._quit_guard = guard

    def _confirm_quit(self) -> bool:
        if not self._quit_guard():
            return False
        if not self._is_busy():
            return True
        return self._confirm(
            self,
            "Quit WhisperDesk?",
            "Transcription is still running. Quit now?\n\nThe queue is saved: unfinished jobs start again "
            "the next time WhisperDesk opens.",
        )

    @Slot()
    def request_quit(self) -> bool:
        if self._quitting:
            return True
        if not self._confirm_quit():
            return False
        self._quitting = True
        self.quitRequested.emit()
        self.close()
        return True

    @Slot()
    def quit_without_asking(self) -> None:
        """A signal (logout, kill) quits: no dialog, since nobody may be there to answer it (Qt's quit()
        would close this window, and its close event would ask while jobs run)."""
        self._quitting = True
        self.quitRequested.emit()
        self.close()

    @Slot()
    def toggle_visible(self) -> None:
        if self.isVisible() and not self.isMinimized():
            self.hide()
        else:
            self.showNormal()
            self.raise_()
            self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._quitting:
            if self._close_to_tray and self._tray_available:
                event.ignore()
                self.hide()
                self.hiddenToTray.emit()
                return
            if not self._confirm_quit():
                event.ignore()
                return
            self._quitting = True
            self.quitRequested.emit()
        self.save_layout()
        self._banner.dismiss()
        self._settings_banner.dismiss()
        event.accept()

    # --- action handlers ---------------------------------------------------------------------------------
    @Slot(str)
    def _on_banner_action(self, action_id: str) -> None:
        if action_id == CHOOSE_MODEL_ACTION:
            self.choose_model_folder()

    @Slot(str)
    def _on_model_banner_action(self, action_id: str) -> None:
        if action_id == RETRY:
            self.modelRetryRequested.emit()
        elif action_id == BUILTIN:
            self.builtinModelRequested.emit()
        elif action_id == DOWNLOAD:
            self.modelManagerRequested.emit()
        elif action_id == FOLDER:
            self.choose_model_folder()

    @Slot(bool)
    def _on_pause_toggled(self, paused: bool) -> None:
        self._paused = paused
        self.set_pause_mode(PAUSE_AFTER_CURRENT if paused else "")
        self.pauseRequested.emit(paused)
