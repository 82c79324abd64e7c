"""Composition root of the desktop app: builds the engine, services and window and wires them together.

Everything Qt-facing is created here and nowhere else, so tests build the same app with ``build_app``
(real engine, offscreen Qt) and new pieces (queue, runner, watcher, GPU panel) are added in a few lines:

    ctx = build_app(paths, settings)
    ctx.window.set_queue_view(view); ctx.window.add_panel("GPU", panel)
    ctx.window.set_busy_check(runner.is_busy); ctx.on_shutdown(runner.shutdown)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QDialog, QSystemTrayIcon, QWidget

from whisperdesk.core.engine import Engine
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import Settings
from whisperdesk.services.engine_bridge import EngineBridge, ModelState
from whisperdesk.services.log_bridge import LogBridge
from whisperdesk.services.notifier import Notifier
from whisperdesk.services.settings_controller import SettingsController
from whisperdesk.ui.log_view import LogView
from whisperdesk.ui.main_window import ConfirmFn, MainWindow, ask_yes_no
from whisperdesk.ui.settings_dialog import SettingsDialog
from whisperdesk.ui.tray import Tray, tray_available

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).parent / "resources"
SHUTDOWN_WAIT_MS = 30_000


def app_icon() -> QIcon:
    icon = QIcon(str(RESOURCES / "whisperdesk.svg"))
    icon.addFile(str(RESOURCES / "whisperdesk.png"))  # where the SVG image plugin is missing
    return icon


class AppContext(QObject):
    """Owns the app's objects and their wiring; ``shutdown()`` stops them in order (idempotent)."""

    def __init__(
        self,
        paths: AppPaths,
        settings: Settings,
        engine: Engine,
        *,
        use_tray: bool,
        is_busy: Callable[[], bool] | None,
        confirm: ConfirmFn,
        queue_view: QWidget | None,
        panels: Sequence[tuple[str, QWidget]],
    ) -> None:
        super().__init__()
        self.paths = paths
        self.engine = engine
        self.icon = app_icon()
        self.pool = QThreadPool(self)  # the app's own pool: waited for at shutdown, never the global one
        self.pool.setObjectName("whisperdesk-pool")
        self.bridge = EngineBridge(engine, self.pool, self)
        self.controller = SettingsController(settings, paths.settings_file, engine, self)
        self.log_bridge = LogBridge(parent=self)
        self.log_view = LogView()
        self.tray = Tray(self.icon, self) if use_tray else None
        self.notifier = Notifier(
            self.tray.icon if self.tray else None, enabled=settings.ui.notify_on_finish, parent=self
        )
        self.window = MainWindow(
            queue_view=queue_view,
            panels=panels,
            log_view=self.log_view,
            is_busy=is_busy,
            confirm=confirm,
            tray_available=self.tray is not None,
            close_to_tray=settings.ui.close_to_tray,
            icon=self.icon,
        )
        self._shutdown_hooks: list[Callable[[], None]] = []
        self._told_tray = False
        self._closed = False
        self._wire()
        self.log_bridge.install()

    def _wire(self) -> None:
        w, bridge, controller = self.window, self.bridge, self.controller
        bridge.stateChanged.connect(w.set_model_state)
        bridge.stateChanged.connect(self._on_model_state)
        bridge.fallbackOccurred.connect(w.show_warning)
        controller.modelConfigChanged.connect(bridge.preload)
        controller.settingsChanged.connect(w.apply_settings)
        controller.settingsChanged.connect(self.notifier.apply_settings)
        controller.applyFailed.connect(w.show_error)
        w.modelFolderChosen.connect(controller.use_local_model)
        w.settingsRequested.connect(self.open_settings)
        w.hiddenToTray.connect(self._on_hidden_to_tray)
        self.notifier.bannerRequested.connect(w.banner.show_notice)
        self.log_bridge.recordEmitted.connect(self.log_view.append_record)
        self.log_view.levelChanged.connect(self.log_bridge.set_level)
        if self.tray is not None:
            self.tray.toggleWindowRequested.connect(w.toggle_visible)
            self.tray.quitRequested.connect(w.request_quit)
            self.tray.pauseRequested.connect(w.set_paused)  # keep both pause toggles in step
            w.pauseRequested.connect(self.tray.set_paused)

    # --- extension points for the queue, runner and GPU pieces -------------------------------------------
    def on_shutdown(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` at shutdown before the pool is waited for (last added runs first)."""
        self._shutdown_hooks.append(hook)

    @property
    def settings(self) -> Settings:
        return self.controller.settings

    # --- behaviour -----------------------------------------------------------------------------------------
    def show(self, *, minimized: bool = False) -> None:
        """Show the window (or only the tray icon), then start loading the model in the background."""
        if self.tray is not None:
            self.tray.show()
        if not minimized:
            self.window.show()
        elif self.tray is None:
            self.window.showMinimized()  # no tray to live in: minimised to the task bar instead
        self.bridge.preload()

    @Slot()
    def open_settings(self) -> None:
        dialog = SettingsDialog(
            self.controller.settings, tray_available=self.tray is not None, parent=self.window
        )
        try:
            if dialog.exec() == QDialog.DialogCode.Accepted:
                self.controller.apply(dialog.result_settings())
        finally:
            dialog.deleteLater()

    @Slot(object)
    def _on_model_state(self, state: ModelState) -> None:
        """Started in the tray, the window's banner is unseen: say in the tray that the model is missing."""
        if state.kind == "error" and self.tray is not None and not self.window.isVisible():
            self.tray.icon.showMessage(
                "WhisperDesk cannot load its model",
                "Open the window to see why and to choose a local model folder.",
                QSystemTrayIcon.MessageIcon.Critical,
            )

    @Slot()
    def _on_hidden_to_tray(self) -> None:
        if self._told_tray or self.tray is None or not QSystemTrayIcon.supportsMessages():
            return
        self._told_tray = True
        self.tray.icon.showMessage(
            "WhisperDesk is still running", "The queue keeps going; quit from the tray menu."
        )

    def shutdown(self) -> None:
        """Stop services in order: hooks (runner, watcher, samplers), engine listener, pool, log, tray."""
        if self._closed:
            return
        self._closed = True
        for hook in reversed(self._shutdown_hooks):
            try:
                hook()
            except Exception:
                log.exception("shutdown step failed")
        self.bridge.shutdown()
        if not self.pool.waitForDone(SHUTDOWN_WAIT_MS):
            log.warning("background work still running after %d s at shutdown", SHUTDOWN_WAIT_MS // 1000)
        self.log_bridge.uninstall()
        if self.tray is not None:
            self.tray.dispose()
        self.window.banner.dismiss()


def build_app(
    paths: AppPaths,
    settings: Settings,
    *,
    engine: Engine | None = None,
    use_tray: bool | None = None,
    is_busy: Callable[[], bool] | None = None,
    confirm: ConfirmFn = ask_yes_no,
    queue_view: QWidget | None = None,
    panels: Sequence[tuple[str, QWidget]] = (),
) -> AppContext:
    """Build the app around one engine (created from ``settings`` unless given). A QApplication must exist."""
    if QApplication.instance() is None:
        raise RuntimeError("build_app needs a QApplication; create one first (run_gui does)")
    engine = engine or Engine(settings.model, paths.models_dir)
    return AppContext(
        paths,
        settings,
        engine,
        use_tray=tray_available() if use_tray is None else use_tray,
        is_busy=is_busy,
        confirm=confirm,
        queue_view=queue_view,
        panels=panels,
    )


def run_gui(argv: Sequence[str], minimized: bool = False) -> int:
    """Start the desktop app; returns the process exit status."""
    from whisperdesk.core.logging_setup import setup_logging
    from whisperdesk.core.settings import load_settings

    qapp = QApplication.instance() or QApplication(list(argv))
    assert isinstance(qapp, QApplication)
    qapp.setApplicationName("WhisperDesk")
    qapp.setDesktopFileName("whisperdesk")
    qapp.setQuitOnLastWindowClosed(False)  # the window may close to the tray; quitting is explicit
    paths = AppPaths.default().ensure()
    setup_logging(paths.log_dir)
    settings, problems = load_settings(paths.settings_file)
    ctx = build_app(paths, settings)
    qapp.setWindowIcon(ctx.icon)
    ctx.window.quitRequested.connect(qapp.quit)
    if problems:
        ctx.window.show_warning(
            f"Some settings in {paths.settings_file} were invalid; defaults used: " + "; ".join(problems)
        )
    ctx.show(minimized=minimized)
    try:
        return int(qapp.exec())
    finally:
        ctx.shutdown()
