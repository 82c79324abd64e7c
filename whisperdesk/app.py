"""Composition root of the desktop app: builds the engine, services and window and wires them together.

Everything Qt-facing is created here and nowhere else, so tests build the same app with ``build_app``
(real engine, offscreen Qt) and new pieces (queue, runner, watcher, GPU panel) are added in a few lines:

    ctx = build_app(paths, settings)
    ctx.window.set_queue_view(view); ctx.window.add_panel("GPU", panel)
    ctx.window.set_busy_check(runner.is_busy); ctx.on_shutdown(runner.shutdown)
"""

from __future__ import annotations

import dataclasses
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


class Desktop(QObject):
    """The whole desktop app: the shell (AppContext) plus the job queue, watcher and GPU gauges.

    Only wiring lives here; every piece is built elsewhere and received through its constructor.
    """

    def __init__(
        self,
        paths: AppPaths,
        settings: Settings,
        *,
        engine: Engine | None = None,
        use_tray: bool | None = None,
        confirm: ConfirmFn = ask_yes_no,
        sampler: object | None = None,
        watcher_clock: object | None = None,
    ) -> None:
        super().__init__()
        from whisperdesk.core.jobstore import JobStore
        from whisperdesk.core.outputs import OutputLedger
        from whisperdesk.core.processor import JobProcessor
        from whisperdesk.services.gpu_poller import GpuPoller
        from whisperdesk.services.job_runner import JobRunner
        from whisperdesk.services.speaker_renamer import SpeakerRenamer
        from whisperdesk.services.watcher_bridge import WatcherBridge
        from whisperdesk.ui.gpu_panel import GpuPanel
        from whisperdesk.ui.queue_model import JobTableModel
        from whisperdesk.ui.queue_view import JobQueueView
        from whisperdesk.ui.watched_panel import WatchedFoldersPanel

        self.store = JobStore(paths.jobs_db)
        self.model = JobTableModel(self.store, self)
        self.view = JobQueueView(self.model)
        self.ctx = build_app(
            paths, settings, engine=engine, use_tray=use_tray, confirm=confirm, queue_view=self.view
        )
        ctx, window = self.ctx, self.ctx.window
        self.processor = JobProcessor(self.store, ctx.engine, OutputLedger.default(paths), self._settings)
        self.runner = JobRunner(self.store, self.processor, self._settings, self)
        self.renamer = SpeakerRenamer(self.store, OutputLedger.default(paths), self._settings, self)
        self.watcher = WatcherBridge(
            self.store,
            settings,
            self,
            enqueue=self.runner.submit,
            clock=watcher_clock,  # type: ignore[arg-type]
        )
        self.watched_panel = WatchedFoldersPanel(ctx.controller, confirm=confirm)
        self.poller = GpuPoller(sampler, parent=self) if sampler is not None else GpuPoller(parent=self)
        self.gpu_panel = GpuPanel()
        self.gpu_panel.connect_poller(self.poller)
        window.add_panel("Watched folders", self.watched_panel)
        window.add_panel("GPU", self.gpu_panel)
        window.set_busy_check(self.runner.is_busy)
        self._wire()
        ctx.on_shutdown(self._shutdown_queue)

    def _settings(self) -> Settings:
        return self.ctx.controller.settings

    def _wire(self) -> None:
        ctx, window, runner, model, view = self.ctx, self.ctx.window, self.runner, self.model, self.view
        runner.jobProgress.connect(model.on_job_progress)
        runner.durationProbed.connect(model.set_probed_duration)
        runner.pausedChanged.connect(window.set_paused)
        runner.modelError.connect(window.show_error)
        runner.actionFailed.connect(window.show_warning)
        runner.addFailed.connect(self._on_add_failed)
        runner.queueSummary.connect(self._on_queue_summary)
        runner.jobFinished.connect(self._on_job_finished)
        runner.jobFailed.connect(self._on_job_failed)
        runner.queueDrained.connect(ctx.notifier.queue_drained)
        window.pauseRequested.connect(runner.set_paused)
        window.filesAdded.connect(runner.add_files)
        window.filesAddedWithSpeakers.connect(self._on_files_with_speakers)
        view.speakersRenamed.connect(self.renamer.rename)
        self.renamer.renamed.connect(self._on_speakers_renamed)
        self.renamer.failed.connect(window.show_warning)
        window.benchmarkRequested.connect(self._on_benchmark_requested)
        if ctx.tray is not None:
            ctx.tray.pauseRequested.connect(runner.set_paused)
            runner.pausedChanged.connect(ctx.tray.set_paused)
        view.retryRequested.connect(runner.retry)
        view.cancelRequested.connect(runner.cancel)
        view.removeRequested.connect(runner.remove)
        view.openFailed.connect(window.show_warning)
        ctx.controller.settingsChanged.connect(self.watcher.apply)
        self.watcher.statusChanged.connect(self.watched_panel.set_status)
        self.watched_panel.rescanRequested.connect(self.watcher.rescan)
        self.watched_panel.problem.connect(window.show_warning)

    # --- adapters between signal shapes ----------------------------------------------------------------
    @Slot(list)
    def _on_files_with_speakers(self, paths: list[object]) -> None:
        from whisperdesk.core.processor import job_settings

        self.runner.add_paths(paths, job_settings(self._settings(), speakers="auto"))

    @Slot(int, str)
    def _on_speakers_renamed(self, job_id: int, summary: str) -> None:
        self.model.refresh_speakers(job_id)
        log.info("%s", summary)

    @Slot(str, float)
    def _on_queue_summary(self, text: str, fraction: float) -> None:
        self.ctx.window.set_queue_summary(text, None if fraction < 0 else fraction)

    @Slot(object)
    def _on_job_finished(self, job: object) -> None:
        duration = getattr(job, "duration", None) or 0.0
        spent = getattr(job, "processing_time", None) or 0.0
        detail = f"{duration:.0f} s of audio in {spent:.0f} s" if duration else "transcript written"
        self.ctx.notifier.job_finished(getattr(job, "name", "job"), detail)

    @Slot(object)
    def _on_job_failed(self, job: object) -> None:
        self.ctx.notifier.job_failed(getattr(job, "name", "job"), getattr(job, "error", None) or "failed")

    @Slot(str, str)
    def _on_add_failed(self, path: str, reason: str) -> None:
        self.ctx.window.show_warning(f"{path}: {reason}")

    @Slot()
    def _on_benchmark_requested(self) -> None:
        from whisperdesk.ui.bench_dialog import BenchmarkDialog

        dialog = BenchmarkDialog(self.ctx.engine, self._settings(), parent=self.ctx.window)
        dialog.recommendationChosen.connect(self.use_model_setting)
        dialog.exec()
        dialog.deleteLater()

    @Slot(str, int)
    def use_model_setting(self, compute_type: str, batch_size: int) -> None:
        """Apply a compute type and batch size (e.g. the benchmark's pick) from the next job on."""
        settings = self._settings()
        model = dataclasses.replace(settings.model, compute_type=compute_type, batch_size=batch_size)
        self.ctx.controller.apply(dataclasses.replace(settings, model=model))

    # --- life cycle ------------------------------------------------------------------------------------
    def show(self, *, minimized: bool = False) -> None:
        self.ctx.show(minimized=minimized)
        self.runner.start()
        self.watcher.start()
        self.poller.start()

    def _shutdown_queue(self) -> None:
        """Stop taking work, put running jobs back in the queue, then release the engine's threads."""
        self.poller.stop()
        self.watcher.shutdown()
        self.runner.shutdown()
        self.renamer.wait()
        self.model.close()
        close = getattr(self.ctx.engine, "close", None)
        if callable(close):
            close()
        self.store.close()

    def shutdown(self) -> None:
        self.ctx.shutdown()


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
    desktop = Desktop(paths, settings)
    ctx = desktop.ctx
    qapp.setWindowIcon(ctx.icon)
    ctx.window.quitRequested.connect(qapp.quit)
    if problems:
        ctx.window.show_warning(
            f"Some settings in {paths.settings_file} were invalid; defaults used: " + "; ".join(problems)
        )
    desktop.show(minimized=minimized)
    try:
        return int(qapp.exec())
    finally:
        desktop.shutdown()
