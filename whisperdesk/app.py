"""The one composition root of the desktop app: builds the engine, the job queue's services and the window,
and wires them together.

Everything Qt-facing is created here and nowhere else, so tests build the same app with ``build_app`` (real
engine, real store, offscreen Qt). Policies live elsewhere: the runner alone owns pause state, the store
feed alone listens to and polls the job store, the core queue decides how jobs are claimed, run and queued.
Only wiring lives here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QDialog, QSystemTrayIcon, QWidget

from whisperdesk.core.engine import Engine
from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.instance import FileLock
from whisperdesk.core.jobstore import JobStore
from whisperdesk.core.library.store import TranscriptLibrary
from whisperdesk.core.models.recommend import Recommendation, for_this_machine
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.paths import AppFolderError, AppPaths
from whisperdesk.core.processor import JobProcessor
from whisperdesk.core.queue.enqueue import Enqueued
from whisperdesk.core.queue.reset import RESET_TITLE, reset_notice
from whisperdesk.core.quit import QUIT_GRACE_S, end_process
from whisperdesk.core.settings import Settings
from whisperdesk.services.engine_bridge import EngineBridge, ModelState
from whisperdesk.services.gpu_poller import GpuPoller
from whisperdesk.services.job_runner import JobRunner
from whisperdesk.services.log_bridge import LogBridge
from whisperdesk.services.model_downloads import ModelDownloads
from whisperdesk.services.model_queue_guard import ModelQueueGuard
from whisperdesk.services.notifier import QUEUE_FINISHED, Notifier
from whisperdesk.services.playback import LocatedRecordings
from whisperdesk.services.queue_summary import QueueSummaryFeed
from whisperdesk.services.settings_controller import SettingsController
from whisperdesk.services.speaker_renamer import SpeakerRenamer
from whisperdesk.services.store_feed import StoreFeed
from whisperdesk.services.transcripts import TranscriptService
from whisperdesk.services.watcher_bridge import WatcherBridge
from whisperdesk.ui.gpu_panel import GpuPanel
from whisperdesk.ui.log_view import LogView
from whisperdesk.ui.main_window import ConfirmFn, MainWindow, ask_yes_no
from whisperdesk.ui.queue_model import JobTableModel
from whisperdesk.ui.queue_view import JobQueueView
from whisperdesk.ui.settings_dialog import SettingsDialog
from whisperdesk.ui.transcript_window import TranscriptWindow, UnsavedFn, ask_save_discard
from whisperdesk.ui.tray import Tray, tray_available
from whisperdesk.ui.watched_panel import WatchedFoldersPanel
from whisperdesk.ui.workspace import Workspace

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).parent / "resources"
TRANSCRIBE_AGAIN_ACTION = "transcribe_again"
TRANSCRIBE_AGAIN_LABEL = "Transcribe again"
OPEN_TRANSCRIPT = "open_transcript"


def open_library(paths: AppPaths) -> TranscriptLibrary | None:
    """The transcript library beside the queue; None (logged) when it cannot be opened: the queue runs on."""
    try:
        return TranscriptLibrary.beside(paths.jobs_db)
    except (WhisperDeskError, OSError, sqlite3.Error) as exc:
        log.warning("the transcript library cannot be opened (%s); the transcript workspace is off", exc)
        return None


SHUTDOWN_WAIT_S = 60.0  # a shutdown that does not end the process waits for its threads (tests)


def app_icon() -> QIcon:
    icon = QIcon(str(RESOURCES / "whisperdesk.svg"))
    icon.addFile(str(RESOURCES / "whisperdesk.png"))  # where the SVG image plugin is missing
    return icon


class Desktop(QObject):
    """The whole desktop app; ``show()`` starts it, ``shutdown()`` stops everything in order (idempotent)."""

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
        ask_unsaved: UnsavedFn = ask_save_discard,
    ) -> None:
        super().__init__()
        self.paths = paths
        self._ask_unsaved = ask_unsaved  # Save / Discard / Cancel for a transcript window closed unsaved
        # The window never downloads behind the user's back: named models come through Models….
        self.engine = engine or Engine(settings.model, paths.models_dir, local_files_only=True)
        self.icon = app_icon()
        self.pool = QThreadPool(self)  # the app's own pool: waited for at shutdown, never the global one
        self.pool.setObjectName("whisperdesk-pool")
        self.bridge = EngineBridge(self.engine, self.pool, self)
        self.downloads = ModelDownloads(paths.models_dir, self.pool, self)
        self._recommendation: Recommendation | None = None  # what suits this machine, probed when needed
        self.controller = SettingsController(settings, paths.settings_file, self.engine, self)
        self.log_bridge = LogBridge(parent=self)
        self.log_view = LogView()
        use_tray = tray_available() if use_tray is None else use_tray
        self.tray = Tray(self.icon, self) if use_tray else None
        self.notifier = Notifier(
            self.tray.icon if self.tray else None, enabled=settings.ui.notify_on_finish, parent=self
        )
        self._build_queue(paths, settings, confirm, sampler, watcher_clock)
        self.window = MainWindow(
            queue_view=self.view,
            panels=[("Watched folders", self.watched_panel), ("GPU", self.gpu_panel)],
            log_view=self.log_view,
            is_busy=self.runner.is_busy,
            confirm=confirm,
            tray_available=self.tray is not None,
            close_to_tray=settings.ui.close_to_tray,
            icon=self.icon,
            layout_file=paths.window_state_file,
        )
        self._told_tray = False
        self._closed = False
        self.abandoned: list[str] = []  # what quitting left running (see shutdown)
        self._again_ids: list[int] = []  # done jobs the "Already transcribed" banner offers to run again
        self._wire_shell()
        self._wire_queue()
        self.log_bridge.install()
        self._tell_queue_reset()

    def _build_queue(
        self,
        paths: AppPaths,
        settings: Settings,
        confirm: ConfirmFn,
        sampler: object | None,
        watcher_clock: object | None,
    ) -> None:
        self.store = JobStore(paths.jobs_db)
        self.feed = StoreFeed(self.store, self)  # the one listener and poller of the job store
        self.model = JobTableModel(self.store, self, feed=self.feed)
        self.view = JobQueueView(self.model, ask=confirm)
        self.ledger = OutputLedger.default(paths)
        self.library = open_library(paths)
        self.processor = JobProcessor(
            self.store, self.engine, self.ledger, self._settings, library=self.library
        )
        self.runner = JobRunner(self.store, self.processor, self._settings, self, feed=self.feed)
        self.renamer = SpeakerRenamer(self.store, self.ledger, self._settings, self)
        # The transcript workspace: read, hear, correct and search every kept transcript.
        self.transcripts: TranscriptService | None = None
        self.workspace: Workspace | None = None
        if self.library is not None:
            self.transcripts = TranscriptService(self.store, self.library, self.ledger, self)
            self.workspace = Workspace(
                self.transcripts,
                LocatedRecordings(paths.data_dir / "located-recordings.json"),
                ask=confirm,
                ask_unsaved=self._ask_unsaved,
                parent_widget=self._window_or_none,
                parent=self,
            )
            self.view.set_library(self.transcripts)
            self.model.set_edited_jobs(self.transcripts.edited_job_ids())
            self.model.set_speaker_source(self.transcripts.speaker_names)
        self.summary = QueueSummaryFeed(self.store, self.feed, self.runner, self)
        self.watcher = WatcherBridge(
            self.store,
            settings,
            self,
            enqueue=self.runner.submit,
            clock=watcher_clock,  # type: ignore[arg-type]
        )
        self.watched_panel = WatchedFoldersPanel(self.controller, confirm=confirm)
        self.poller = GpuPoller(sampler, parent=self) if sampler is not None else GpuPoller(parent=self)
        self.gpu_panel = GpuPanel()
        self.gpu_panel.connect_poller(self.poller)

    @property
    def settings(self) -> Settings:
        return self.controller.settings

    def _window_or_none(self) -> QWidget | None:
        return getattr(self, "window", None)

    def _settings(self) -> Settings:
        return self.controller.settings

    # --- wiring --------------------------------------------------------------------------------------------
    def _wire_shell(self) -> None:
        w, bridge, controller = self.window, self.bridge, self.controller
        bridge.stateChanged.connect(w.set_model_state)
        bridge.stateChanged.connect(self._on_model_state)
        bridge.fallbackOccurred.connect(w.show_warning)
        controller.modelConfigChanged.connect(bridge.preload)
        controller.settingsChanged.connect(w.apply_settings)
        controller.settingsChanged.connect(self.notifier.apply_settings)
        controller.applyFailed.connect(w.show_error)
        w.modelFolderChosen.connect(controller.use_local_model)
        w.modelRetryRequested.connect(bridge.preload)
        w.builtinModelRequested.connect(controller.use_builtin_model)
        w.modelManagerRequested.connect(self.open_model_manager)
        w.settingsRequested.connect(self.open_settings)
        w.hiddenToTray.connect(self._on_hidden_to_tray)
        w.benchmarkRequested.connect(self._on_benchmark_requested)
        w.voicesRequested.connect(self._on_voices_requested)
        self.notifier.bannerRequested.connect(self._on_notice)
        self.log_bridge.recordEmitted.connect(self.log_view.append_record)
        self.log_view.levelChanged.connect(self.log_bridge.set_level)
        if self.tray is not None:
            self.tray.toggleWindowRequested.connect(w.toggle_visible)
            self.tray.quitRequested.connect(w.request_quit)

    def _wire_queue(self) -> None:
        window, runner, model, view = self.window, self.runner, self.model, self.view
        runner.jobProgress.connect(model.on_job_progress)
        runner.jobWaiting.connect(model.set_waiting)
        self.summary.durationProbed.connect(model.set_probed_duration)
        self.summary.queueSummary.connect(self._on_queue_summary)
        # A model problem is explained by the model banner (bridge state), never as raw text; the guard
        # resumes the queue the model problem paused once a model is ready.
        self.model_guard = ModelQueueGuard(runner, self.bridge, self)
        runner.actionFailed.connect(window.show_warning)
        runner.addFailed.connect(self._on_add_failed)
        runner.jobsAdded.connect(self.watcher.on_enqueued)
        runner.jobsAdded.connect(self._on_jobs_added)
        window.banner.actionTriggered.connect(self._on_banner_action)
        for ended in (runner.jobFinished, runner.jobFailed, runner.jobCanceled):
            ended.connect(self.notifier.job_ended)  # one policy decides what is told and when
        runner.queueDrained.connect(self._on_queue_drained)
        runner.jobStarted.connect(self._on_job_started)
        runner.jobCanceling.connect(model.mark_canceling)
        runner.busyChanged.connect(window.set_jobs_running)
        window.filesAdded.connect(runner.add_files)
        window.filesAddedWithSpeakers.connect(self._on_files_with_speakers)
        view.speakersRenamed.connect(self._on_rename_requested)
        self.renamer.renamed.connect(self._on_speakers_renamed)
        self.renamer.failed.connect(window.show_warning)
        # Pause: the runner alone holds the state; the window and the tray ask it and show its answer.
        window.pauseRequested.connect(runner.set_paused)
        window.pauseNowRequested.connect(runner.pause_now)
        runner.pausedChanged.connect(window.set_paused)
        if self.tray is not None:
            self.tray.pauseRequested.connect(runner.set_paused)
            self.tray.pauseNowRequested.connect(window.request_pause_now)  # the window shows which pause
            runner.pausedChanged.connect(self.tray.set_paused)
        view.retryRequested.connect(runner.retry)
        view.cancelRequested.connect(runner.cancel)
        view.removeRequested.connect(runner.remove)
        view.overwriteRequested.connect(runner.retry_overwrite)
        view.otherFolderChosen.connect(runner.retry_in_folder)
        view.openFailed.connect(window.show_warning)
        if self.workspace is not None and self.transcripts is not None:
            view.transcriptRequested.connect(self.workspace.open_job)
            view.transcriptReleased.connect(self.transcripts.release_job)
            self.feed.jobRemoved.connect(self.transcripts.on_job_removed)  # a running job leaves later
            self.transcripts.problem.connect(window.show_warning)
            view.previewRequested.connect(self.workspace.preview)
            self.transcripts.editedChanged.connect(model.set_edited)
            runner.jobFinished.connect(self._on_job_finished)
            self.workspace.problem.connect(window.show_warning)
            self.workspace.windowOpened.connect(self._on_transcript_window)
            self.transcripts.saved.connect(self._on_transcript_saved)
            self.workspace.exported.connect(self._on_exported)
            self.notifier.openRequested.connect(self.workspace.open_job)
            window.searchRequested.connect(self.workspace.open_search)
            window.set_quit_guard(self.workspace.close_all)  # unsaved corrections are asked about first
        else:
            window.search_action.setEnabled(False)
        self.controller.settingsChanged.connect(self.watcher.apply)
        self.watcher.statusChanged.connect(self.watched_panel.set_status)
        self.watched_panel.rescanRequested.connect(self.watcher.rescan)
        self.watched_panel.problem.connect(window.show_warning)

    # --- behaviour -----------------------------------------------------------------------------------------
    def _tell_queue_reset(self) -> None:
        notice = reset_notice(self.store)
        if notice is not None:
            log.warning("%s", notice)  # the Log view keeps it after the banner is dismissed
            self.window.show_queue_reset(RESET_TITLE, notice)

    def show(self, *, minimized: bool = False) -> None:
        """Show the window (or only the tray icon), start loading the model, then the queue and watchers."""
        if self.tray is not None:
            self.tray.show()
        self.window.restore_layout()
        if not minimized:
            self.window.show()
        elif self.tray is None:
            self.window.showMinimized()  # no tray to live in: minimised to the task bar instead
        self.bridge.preload()
        self.runner.start()
        self.watcher.start()
        self.poller.start()

    @Slot(list)
    def open_files(self, files: list[str]) -> None:
        """Files named on the command line or handed over by a second start: queue them, show the window."""
        window = self.window
        if files:
            window.add_paths(files)
        window.show()
        window.raise_()
        window.activateWindow()

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

    @Slot(str, int)
    def use_model_setting(self, compute_type: str, batch_size: int) -> None:
        """Apply a compute type and batch size (e.g. the benchmark's pick) from the next job on."""
        settings = self._settings()
        model = dataclasses.replace(settings.model, compute_type=compute_type, batch_size=batch_size)
        self.controller.apply(dataclasses.replace(settings, model=model))

    def recommendation(self) -> Recommendation:
        if self._recommendation is None:
            self._recommendation = for_this_machine()
        return self._recommendation

    @Slot()
    def open_model_manager(self) -> None:
        from whisperdesk.ui.model_manager import ModelManagerDialog

        current = self.controller.settings.model.model
        dialog = ModelManagerDialog(self.downloads, current, self.recommendation(), parent=self.window)
        dialog.modelChosen.connect(self.controller.use_model)
        dialog.exec()
        dialog.deleteLater()

    def offer_better_model(self) -> None:
        """First start with no saved choice: say in one line why this model, and offer the better one."""
        from whisperdesk.core.models.catalogue import entry

        rec = self.recommendation()
        if rec.offer:
            offered = entry(rec.offer)
            size = ""
            if offered is not None:
                mb = offered.size_bytes / 1e6
                size = f" ({mb:.0f} MB)" if mb < 1000 else f" ({mb / 1000:.1f} GB)"
            self.window.offer_model("Using the built-in model", rec.reason, f"Download {rec.offer}{size}…")

    # --- adapters between signal shapes ----------------------------------------------------------------
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

    @Slot(list, str)
    def _on_files_with_speakers(self, paths: list[object], count: str) -> None:
        from whisperdesk.core.processor import job_settings

        self.runner.add_paths(paths, job_settings(self._settings(), speakers=count or "auto"))

    @Slot(int, object)
    def _on_rename_requested(self, job_id: int, names: object) -> None:
        """The queue's "Rename speakers…": through the job's open transcript window when there is one (an
        undoable rename, then saved), so that window's corrections and next save stay valid."""
        window = self.workspace.windows.get(job_id) if self.workspace is not None else None
        if window is not None and isinstance(names, dict):
            window.rename_and_save({str(k): str(v) for k, v in names.items()})
        else:
            self.renamer.rename(job_id, names)

    @Slot(object)
    def _on_transcript_window(self, window: object) -> None:
        if isinstance(window, TranscriptWindow):
            window.speakersNamed.connect(
                self.renamer.voices_named
            )  # "Remember voices I name", as the queue's

    @Slot(int, str)
    def _on_transcript_saved(self, job_id: int, _summary: str) -> None:
        self.model.refresh_speakers(job_id)

    @Slot(int, str)
    def _on_speakers_renamed(self, job_id: int, summary: str) -> None:
        self.model.refresh_speakers(job_id)
        log.info("%s", summary)

    @Slot(str, str, str)
    def _on_notice(self, title: str, message: str, level: str) -> None:
        """In-window notices of ready transcripts offer to open the latest one (as a tray click does)."""
        if (
            self.workspace is not None
            and level == "info"
            and self.notifier.last_done_job is not None
            and ("ready" in title.lower() or "finished" in title.lower())
        ):
            self.window.banner.show_message(title, message, level, OPEN_TRANSCRIPT, "Open transcript")
        else:
            self.window.banner.show_notice(title, message, level)

    @Slot(object)
    def _on_job_finished(self, job: object) -> None:
        """A job transcribed again has a fresh, uncorrected transcript."""
        job_id = getattr(job, "id", None)
        if isinstance(job_id, int) and self.transcripts is not None:
            self.model.set_edited(job_id, self.transcripts.is_edited(job_id))
            self.model.refresh_speakers(job_id)

    @Slot(str)
    def _on_exported(self, path: str) -> None:
        self.window.statusBar().showMessage(f"Exported {path}", 8000)

    @Slot(str, float)
    def _on_queue_summary(self, text: str, fraction: float) -> None:
        self.window.set_queue_summary(text, None if fraction < 0 else fraction)
        if self.tray is not None:
            self.tray.set_status(text)

    @Slot(int)
    def _on_job_started(self, _job_id: int) -> None:
        """New work makes the last run's "Queue finished" summary stale: take it down."""
        banner = self.window.banner
        if banner.showing and banner.title == QUEUE_FINISHED:
            banner.dismiss()

    @Slot(int, int, int)
    def _on_queue_drained(self, done: int, failed: int, canceled: int) -> None:
        """Canceled jobs were the user's choice: they are not announced as failures (the notifier counts)."""
        log.info("queue finished: %d done, %d failed, %d canceled", done, failed, canceled)
        self.notifier.queue_finished()

    @Slot(int)
    def quit_on_signal(self, _number: int) -> None:
        """SIGTERM/SIGINT: quit without asking (a logout will not wait for a dialog). Transcript windows are
        closed first without asking: Qt's quit() would close them, and a window with unsaved corrections
        would ask (and could stop the quit)."""
        if self.workspace is not None:
            self.workspace.close_all(ask=False)
        self.window.quit_without_asking()

    @Slot(object)
    def _on_jobs_added(self, results: list[Enqueued]) -> None:
        """A file the user added is already transcribed: say so where it is seen, with "Transcribe again"
        (issue 17.7; it was an info line in the hidden log). Watched folders' rescans are not news."""
        done = [r.job for r in results if r.already_done and r.job is not None]
        if not done:
            return
        self._again_ids = [job.id for job in done]
        names = ", ".join(job.name for job in done[:3]) + (
            f" and {len(done) - 3} more" if len(done) > 3 else ""
        )
        text = (
            f"{names} was transcribed before (job {done[0].id}); its transcript is where it was written."
            if len(done) == 1
            else f"{len(done)} files were transcribed before: {names}."
        )
        self.window.banner.show_message(
            "Already transcribed", text, "info", TRANSCRIBE_AGAIN_ACTION, TRANSCRIBE_AGAIN_LABEL
        )

    @Slot(str)
    def _on_banner_action(self, action_id: str) -> None:
        """The one handler of the banner's button: each message names its action."""
        if action_id == OPEN_TRANSCRIPT:
            self.notifier.message_clicked()
        elif action_id == TRANSCRIBE_AGAIN_ACTION:
            again, self._again_ids = self._again_ids, []
            jobs = [job for job in map(self.store.get, again) if job is not None]
            for job in self.view.confirm_retry(jobs):  # corrections are thrown away only if the user says so
                self.runner.retry(job.id)

    @Slot(str, str)
    def _on_add_failed(self, path: str, reason: str) -> None:
        self.window.show_warning(f"{path}: {reason}")

    @Slot()
    def _on_benchmark_requested(self) -> None:
        from whisperdesk.ui.bench_dialog import BenchmarkDialog

        dialog = BenchmarkDialog(self.engine, self._settings(), parent=self.window)
        dialog.recommendationChosen.connect(self.use_model_setting)
        dialog.exec()
        dialog.deleteLater()

    @Slot()
    def _on_voices_requested(self) -> None:
        from whisperdesk.core.speakers.voices import VoiceLibrary
        from whisperdesk.ui.voices_dialog import VoicesDialog

        library = VoiceLibrary.in_folder(self.paths.data_dir)
        dialog = VoicesDialog(library, self.window, enabled=self._settings().ui.remember_voices)
        dialog.exec()
        dialog.deleteLater()

    # --- life cycle ------------------------------------------------------------------------------------
    def shutdown(self, grace_s: float = SHUTDOWN_WAIT_S) -> bool:
        """Stop in order: take no work, put running jobs back, release the engine, then the shell.

        Running jobs and model work get ``grace_s`` to stop on their own; what is still in a ``generate`` or
        a model load then (CTranslate2 cannot interrupt either) is left, its jobs put back in the queue
        without it (:meth:`JobRunner.abandon`). Returns False when work was left running: its threads still
        hold the model, so the caller must end the process rather than return into Python. Quitting the app
        passes :data:`QUIT_GRACE_S` and does end it (:func:`run_gui`, core/quit.py): quit means quit (issue
        17.5). The default, for callers that live on (tests), waits as long as before. Idempotent.
        """
        if self._closed:
            return not self.abandoned
        self._closed = True
        if self.workspace is not None:
            # The quit path asked already (the main window's quit guard); here nobody may be there to answer.
            self.workspace.close_all(ask=False)
        deadline = time.monotonic() + grace_s  # the grace is the threads', not a dialog's
        self.notifier.close()  # what finished in the last moment is still told
        self.window.save_layout()
        # A running download stops at its next chunk and resumes next time.
        for step in (lambda: self._shutdown_queue(deadline), self.bridge.shutdown, self.downloads.shutdown):
            try:
                step()
            except Exception:
                log.exception("shutdown step failed")
        if not self.pool.waitForDone(_ms_left(deadline)):
            self.abandoned.append("model work (a load or a benchmark)")
        if self.abandoned:
            log.info("quit without waiting for: %s", ", ".join(self.abandoned))
        self.log_bridge.uninstall()
        if self.tray is not None:
            self.tray.dispose()
        self.window.banner.dismiss()
        return not self.abandoned

    def _shutdown_queue(self, deadline: float) -> None:
        self.poller.stop()
        self.watcher.shutdown()
        self.runner.stop()
        # Closing the engine first fails the batch scheduler's queued work at once, so jobs waiting on a
        # batch return now; a batch already in ``generate`` is left to its daemon thread.
        close = getattr(self.engine, "close", None)
        if callable(close) and close(timeout=_ms_left(deadline) / 2000) is False:
            self.abandoned.append("a batch in the decoder")
        abandoned = self.runner.abandon(_ms_left(deadline))
        self.abandoned += [f"job {job.id} ({job.name}), queued again" for job in abandoned]
        # Renames and saves are the user's own edits (a second or two): they are waited for, not cut.
        if not self.renamer.wait():
            self.abandoned.append("renaming speakers")
        if self.transcripts is not None and not self.transcripts.wait():
            self.abandoned.append("saving a corrected transcript")
        if not self.summary.shutdown(_ms_left(deadline)):  # reading lengths from headers (a slow share)
            self.abandoned.append("reading the lengths of queued recordings")
        self.model.close()
        self.feed.close()
        if not abandoned and not self.runner.workers_done():
            self.abandoned.append("a job thread finishing its last write")
        if self.abandoned:
            # A thread still uses the store or the library (a job keeping its transcript, a save): closing a
            # SQLite connection under it crashes the process. Committed writes are durable without close,
            # and the caller ends the process without waiting.
            return
        if self.library is not None:
            self.library.close()
        self.store.close()


def _ms_left(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))


def build_app(
    paths: AppPaths,
    settings: Settings,
    *,
    engine: Engine | None = None,
    use_tray: bool | None = None,
    confirm: ConfirmFn = ask_yes_no,
    sampler: object | None = None,
    watcher_clock: object | None = None,
) -> Desktop:
    """Build the app around one engine (created from ``settings`` unless given). A QApplication must exist."""
    if QApplication.instance() is None:
        raise RuntimeError("build_app needs a QApplication; create one first (run_gui does)")
    return Desktop(
        paths,
        settings,
        engine=engine,
        use_tray=use_tray,
        confirm=confirm,
        sampler=sampler,
        watcher_clock=watcher_clock,
    )


def run_gui(argv: Sequence[str], minimized: bool = False, files: Sequence[str] = ()) -> int:
    """Start the desktop app, or hand ``files`` to the one already running on this data folder.

    Returns the process exit status (or ends the process: :func:`whisperdesk.core.quit.end_process`).
    """
    from whisperdesk.core.instance import window_lock
    from whisperdesk.core.logging_setup import setup_logging
    from whisperdesk.core.settings import load_settings
    from whisperdesk.services.gui_gc import GuiThreadCollector
    from whisperdesk.services.quit_signals import QuitSignals
    from whisperdesk.services.single_instance import InstanceServer

    qapp = QApplication.instance() or QApplication(list(argv))
    assert isinstance(qapp, QApplication)
    qapp.setApplicationName("WhisperDesk")
    qapp.setDesktopFileName("whisperdesk")
    qapp.setQuitOnLastWindowClosed(False)  # the window may close to the tray; quitting is explicit
    try:
        paths = AppPaths.default().ensure()
    except AppFolderError as exc:
        _cannot_start(str(exc))
        return 1
    wanted = [os.path.abspath(f) for f in files]
    lock = window_lock(paths.data_dir)
    if not lock.acquire():
        handed = _hand_over(paths, wanted, lock)
        if handed is not None:
            return handed
    collector = GuiThreadCollector(qapp)  # cycles of Qt wrappers are freed on this thread, between events
    collector.start()
    try:
        setup_logging(paths.log_dir)
        first_start = not paths.settings_file.exists()
        settings, problems = load_settings(paths.settings_file)
        desktop = build_app(paths, settings)
        server = InstanceServer(paths.data_dir, desktop)
        server.filesReceived.connect(desktop.open_files)
        if not server.listen():
            reason = "; ".join(server.problems) or "no private folder for its socket could be made"
            desktop.window.show_warning(
                f"Other starts of WhisperDesk cannot hand files to this window ({reason}). "
                "Add files from this window instead"
            )
        qapp.setWindowIcon(desktop.icon)
        desktop.window.quitRequested.connect(qapp.quit)
        desktop.window.show_settings_problem(paths.settings_file, problems)
        desktop.show(minimized=minimized and not wanted)
        if first_start:
            desktop.offer_better_model()
        if wanted:
            desktop.open_files(wanted)
        signals = QuitSignals(desktop)  # logout, kill, Ctrl+C: quit as File → Quit does
        signals.received.connect(desktop.quit_on_signal)
        try:
            code = int(qapp.exec())
        finally:
            signals.stop()
            server.close()
            clean = desktop.shutdown(QUIT_GRACE_S)
        if not clean:
            end_process(code)  # a generate or model load is still running: do not wait for it
        return code
    finally:
        lock.release()
        collector.stop()


def _cannot_start(reason: str) -> None:
    """Before there is a window, a problem is a dialog (started from a menu, nobody reads stderr) and a line
    on stderr (started from a terminal)."""
    import sys

    from PySide6.QtWidgets import QMessageBox

    print(f"whisperdesk: error: {reason}", file=sys.stderr)
    QMessageBox.critical(None, "WhisperDesk cannot start", reason[:1].upper() + reason[1:])


# An old window that is closing ends within about 2 s (issue 17.5); the rest is a busy machine's margin.
HAND_OVER_WAIT_S = 20.0
HAND_OVER_PAUSE_S = 0.2


def _hand_over(paths: AppPaths, files: list[str], lock: FileLock) -> int | None:
    """A window holds this data folder: give it the files (or just show it) and return the exit status.

    None when the lock became ours meanwhile (the old window was closing): the caller opens its window, with
    the files. A window that neither answers nor closes within :data:`HAND_OVER_WAIT_S` (hung), or a socket
    that is not this user's, gets the files straight into its job queue instead: files given are never
    dropped, and the window (or the next start) runs them.
    """
    from whisperdesk.services.single_instance import hand_over

    deadline = time.monotonic() + HAND_OVER_WAIT_S
    told = False
    while True:
        result = hand_over(paths.data_dir, files, timeout_ms=2000)
        if result.handed:
            if files:
                print(f"whisperdesk: {len(files)} file(s) handed to the running window", file=sys.stderr)
            return 0
        if result.refused:
            print(
                f"whisperdesk: warning: not handing files to {result.refused}; another user may be trying to "
                "receive them. Nothing was sent",
                file=sys.stderr,
            )
            break
        if lock.acquire():
            if told:
                print("whisperdesk: the old window has closed; opening WhisperDesk", file=sys.stderr)
            return None
        if time.monotonic() >= deadline:
            break
        if not told:
            told = True
            print(
                f"whisperdesk: a WhisperDesk window on {paths.data_dir} is closing or starting; waiting for it…",
                file=sys.stderr,
            )
        time.sleep(HAND_OVER_PAUSE_S)
    return _queue_directly(paths, files)


def _queue_directly(paths: AppPaths, files: list[str]) -> int:
    """The running window cannot be reached: put ``files`` in the job queue it shares (its store feed sees
    new jobs from other processes, as it does ``whisperdesk watch``'s), with the saved settings."""

    from whisperdesk.core.intake import describe_rejections, expand_paths
    from whisperdesk.core.jobstore import JobStore
    from whisperdesk.core.processor import job_settings
    from whisperdesk.core.queue.enqueue import enqueue
    from whisperdesk.core.settings import load_settings

    if not files:
        print(
            f"whisperdesk: error: a WhisperDesk window is running on {paths.data_dir} but does not answer; "
            "close it (or end the process) and start WhisperDesk again",
            file=sys.stderr,
        )
        return 1
    intake = expand_paths(files)
    options = job_settings(load_settings(paths.settings_file)[0])
    with JobStore(paths.jobs_db) as store:
        results = [enqueue(store, path, options) for path in intake.supported]
    queued = [r for r in results if not r.problem]
    for r in results:
        if r.problem:
            print(f"whisperdesk: error: {r.path}: {r.reason}", file=sys.stderr)
    rejected = describe_rejections(intake)
    if rejected:
        print(f"whisperdesk: error: {rejected}", file=sys.stderr)
    print(
        f"whisperdesk: the WhisperDesk window on {paths.data_dir} does not answer; {len(queued)} file(s) added "
        "to its queue: it transcribes them when it answers again, or the next start does",
        file=sys.stderr,
    )
    return 0 if len(queued) == len(results) and not rejected else 1
