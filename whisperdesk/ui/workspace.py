"""Opens transcript windows (one per job, raised again when already open) and the search window.

Every way into a transcript comes here: a double-click on a done job, a search result, a click on a "done"
notification. Each window gets its own playback (its own recording); where recordings were found after
a move is shared, so locating a file once serves every later opening.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QWidget

from whisperdesk.services.playback import LocatedRecordings, Playback
from whisperdesk.services.transcripts import OpenedTranscript, TranscriptService
from whisperdesk.ui.search_dialog import SearchDialog
from whisperdesk.ui.transcript_window import (
    AskFn,
    ChooseFileFn,
    TranscriptWindow,
    UnsavedFn,
    _ask,
    _choose_save,
    ask_save_discard,
)


class Workspace(QObject):
    """Signals: problem(str) for the main window's banner; windowOpened(object TranscriptWindow)."""

    problem = Signal(str)
    windowOpened = Signal(object)
    exported = Signal(str)

    def __init__(
        self,
        service: TranscriptService,
        located: LocatedRecordings | None,
        *,
        ask: AskFn = _ask,
        ask_unsaved: UnsavedFn = ask_save_discard,
        choose_save: ChooseFileFn = _choose_save,
        parent_widget: Callable[[], QWidget | None] = lambda: None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._service = service
        self._located = located
        self._ask = ask
        self._ask_unsaved = ask_unsaved
        self._choose_save = choose_save
        self._parent_widget = parent_widget
        self.windows: dict[int, TranscriptWindow] = {}
        self._preview: Playback | None = None  # plays evidence lines of jobs with no window open
        self.search_dialog: SearchDialog | None = None
        service.exported.connect(self._on_exported)
        service.exportFailed.connect(self.problem)

    @Slot(int)
    def open_job(self, job_id: int) -> TranscriptWindow | None:
        return self.open_at(job_id, None)

    def open_at(self, job_id: int, seconds: float | None, *, play: bool = False) -> TranscriptWindow | None:
        """Show job ``job_id``'s transcript (at ``seconds``, playing from there if ``play``)."""
        window = self.windows.get(job_id)
        if window is None:
            opened = self._service.open_job(job_id)  # library errors come back as a sentence
            if isinstance(opened, str):
                self.problem.emit(opened)
                return None
            window = self._make_window(opened)
        window.show()
        window.raise_()
        window.activateWindow()
        if seconds is not None:
            window.seek_to(seconds, play=play)
        return window

    @Slot(int, float)
    def open_and_play(self, job_id: int, seconds: float) -> None:
        self.open_at(job_id, seconds, play=True)

    def _make_window(self, opened: OpenedTranscript) -> TranscriptWindow:
        playback = Playback(self._located)
        playback.open(opened.recording)
        window = TranscriptWindow(
            opened.job_id,
            opened.name,
            opened.transcript,
            playback,
            ask=self._ask,
            ask_unsaved=self._ask_unsaved,
            choose_save=self._choose_save,
        )
        playback.setParent(window)
        window.export_folder = opened.output_folder
        window.saveRequested.connect(self._service.save)
        window.exportRequested.connect(self._service.export)
        self._service.saved.connect(window.on_saved)
        self._service.conflicts.connect(window.on_conflicts)
        self._service.failed.connect(window.on_save_failed)
        self._service.exported.connect(window.on_exported)
        window.closed.connect(self._on_closed)
        self.windows[opened.job_id] = window
        self.windowOpened.emit(window)
        return window

    @Slot(int)
    def _on_closed(self, job_id: int) -> None:
        window = self.windows.pop(job_id, None)
        if window is not None:
            self._service.saved.disconnect(window.on_saved)
            self._service.conflicts.disconnect(window.on_conflicts)
            self._service.failed.disconnect(window.on_save_failed)
            self._service.exported.disconnect(window.on_exported)
            window.playback.close()
            window.deleteLater()

    @Slot(int, float, float)
    def preview(self, job_id: int, start: float, end: float) -> None:
        """Play ``start``..``end`` of a job's recording (a speaker's line in the queue's rename dialog)."""
        window = self.windows.get(job_id)
        if window is not None:
            window.playback.play_range(start, end)
            return
        recording = self._service.recording_of(job_id)
        if recording is None:
            return
        if self._preview is None:
            self._preview = Playback(self._located, self)
            self._preview.sourceMissing.connect(self._on_preview_missing)
        if self._preview.open(recording):
            self._preview.play_range(start, end)

    @Slot(str)
    def _on_preview_missing(self, tried: str) -> None:
        self.problem.emit(
            f"The recording was not found at {tried}, so its lines cannot be played; open its transcript to "
            "locate it."
        )

    @Slot(str)
    def _on_exported(self, path: str) -> None:
        self.exported.emit(path)

    @Slot()
    def open_search(self) -> SearchDialog:
        if self.search_dialog is None:
            self.search_dialog = SearchDialog(self._search, self._service.speakers, self._parent_widget())
            self.search_dialog.openRequested.connect(self.open_and_play)
        else:
            self.search_dialog.refresh_speakers()
        self.search_dialog.show()
        self.search_dialog.raise_()
        self.search_dialog.activateWindow()
        self.search_dialog.focus_query()
        return self.search_dialog

    def _search(self, query: str, speaker: str | None, order: str) -> object:
        return self._service.search(query, speaker=speaker, order=order)

    def close_all(self, *, ask: bool = True) -> bool:
        """Close every transcript window; False if one stays open. Each window with unsaved corrections asks
        (Save / Discard / Cancel) unless ``ask`` is False: the app is shutting down and nobody may answer
        (a logout), so they are dropped, and the log says so."""
        if self._preview is not None:
            self._preview.close()
        for window in list(self.windows.values()):
            if not ask:
                window.discard_and_close()
            elif not window.close():
                return False
        if self.search_dialog is not None:
            self.search_dialog.close()
            self.search_dialog.deleteLater()
            self.search_dialog = None
        return True
