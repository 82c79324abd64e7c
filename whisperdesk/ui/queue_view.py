"""The queue table with a progress-bar column and the row actions (buttons and context menu).

The view only turns clicks into requests: retry/cancel/remove go out as signals (connect them to the
runner's slots); opening a transcript or its folder goes through ``QDesktopServices`` (injectable, so tests
see which URL would open). Dropping files is the main window's job, not this widget's.

A job that failed because of its output (a foreign file in the way, a folder that cannot be written)
offers the window's own answers, "Overwrite" and "Choose another folder…", in the context menu and as
buttons that appear for it. The column widths fit every key column in the default window (1280×720 with
the side panels); the user's own widths are kept through :meth:`header_state`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import (
    QByteArray,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    Qt,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QDesktopServices, QFontMetrics, QGuiApplication, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, QUEUED, RUNNING, Job
from whisperdesk.core.speakers.evidence import SpeakerEvidence
from whisperdesk.services.job_text import CHOOSE_FOLDER_LABEL, OVERWRITE_LABEL, OutputProblem, output_problem
from whisperdesk.ui.queue_model import Column, JobTableModel, ProgressRole
from whisperdesk.ui.speaker_dialog import SpeakerNamesDialog
from whisperdesk.ui.transcript_model import speaker_colour

UrlOpener = Callable[[QUrl], bool]
ChooseDirFn = Callable[[QWidget, str], str]
YesNoFn = Callable[[QWidget, str, str], bool]
KeepFn = Callable[[QWidget, str], "bool | None"]  # keep the transcript? None: do not remove after all


class LibraryInfo(Protocol):
    """What the queue needs to know about the transcript library (the transcript service provides it)."""

    def retry_discards_edits(self, job: Job) -> bool: ...

    def has_transcript(self, job_id: int) -> bool: ...

    def speaker_evidence(self, job_id: int) -> list[SpeakerEvidence]: ...


TRANSCRIPT_PREFERENCE = (".txt", ".srt", ".vtt", ".json")
COLUMN_WIDTHS = {  # sum 745 px: the error column keeps ≥ 150 px in the default window's ~930 px table
    Column.FILE: 190,
    Column.STATE: 85,
    Column.PROGRESS: 100,
    Column.DURATION: 62,
    Column.ELAPSED: 58,
    Column.ETA: 50,
    Column.SPEED: 55,
    Column.LANGUAGE: 70,
    Column.SPEAKERS: 75,
}


STATE_FIT = ("Done · edited", "Canceled", "Queued", "Running", "Failed")  # whole in the State column; a
# rarer long one ("Running (attempt 2)") is cut between words, with the whole label as the tooltip
CELL_PADDING_PX = 16  # the cell's margins and focus frame, both sides, in the styles we ship on


def state_column_width(table: QWidget) -> int:
    """Wide enough for the common state labels in this font (a larger system font widens it)."""
    widest = max(table.fontMetrics().horizontalAdvance(label) for label in STATE_FIT)
    return max(COLUMN_WIDTHS[Column.STATE], widest + CELL_PADDING_PX)


def ask_directory(parent: QWidget, caption: str) -> str:
    return QFileDialog.getExistingDirectory(parent, caption)


def ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    answer = QMessageBox.question(
        parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_keep_transcript(parent: QWidget, names: str) -> bool | None:
    """Removing jobs: keep their transcripts in the library (searchable), delete them, or cancel."""
    box = QMessageBox(
        QMessageBox.Icon.Question, "Remove from the queue", f"Remove {names} from the queue?", parent=parent
    )
    box.setInformativeText(
        "Keep the transcript in the library to find it with Search later, or delete it with the job. "
        "Transcript files on disk are left alone either way."
    )
    keep = box.addButton("Remove, keep transcript", QMessageBox.ButtonRole.AcceptRole)
    delete = box.addButton("Remove and delete transcript", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.exec()
    clicked = box.clickedButton()
    box.deleteLater()
    return True if clicked is keep else False if clicked is delete else None


EMPTY_HINT = (
    "No recordings yet.\n\nDrop audio or video files (or a folder) here, use Add files… / Add folder…, or add a "
    "watched folder on the right: new recordings there are transcribed on their own."
)


class ProgressDelegate(QStyledItemDelegate):
    """Draws the progress column as the platform's progress bar, with the percentage as its text."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        fraction = index.data(ProgressRole)
        if not isinstance(fraction, float):
            super().paint(painter, option, index)
            return
        if option.state & QStyle.StateFlag.State_Selected:  # type: ignore[operator]
            painter.fillRect(option.rect, option.palette.highlight())  # type: ignore[attr-defined]
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)  # type: ignore[attr-defined]
        bar.minimum = 0
        bar.maximum = 1000
        bar.progress = round(fraction * 1000)
        bar.text = index.data(Qt.ItemDataRole.DisplayRole) or ""
        bar.textVisible = True
        # Qt 6 reads the orientation from this flag: without it Fusion fills the bar from the bottom up.
        bar.state = option.state | QStyle.StateFlag.State_Horizontal  # type: ignore[attr-defined,operator]
        bar.palette = option.palette  # type: ignore[attr-defined]
        style = option.widget.style() if option.widget else QApplication.style()  # type: ignore[attr-defined]
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class ElideRightDelegate(QStyledItemDelegate):
    """For the error column: its start says what is wrong, so the end is what gets cut (the tooltip
    has it all); file names elsewhere elide in the middle to keep their start and extension.

    The cut falls between words (issue 17.7): "the transcripts cannot be writ…" reads as a different
    sentence, "the transcripts cannot be …" as an unfinished one. Only a first word too long for the
    column is cut inside, by Qt; every failed row's error cell has the whole reason as its tooltip."""

    def initStyleOption(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight  # type: ignore[attr-defined]
        width = option.rect.width()  # type: ignore[attr-defined]
        if width <= 0 or not option.text:  # type: ignore[attr-defined]
            return  # a size hint, not a paint: the whole text
        widget = option.widget  # type: ignore[attr-defined]
        style = widget.style() if widget is not None else QApplication.style()
        margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, widget) + 1
        option.text = elide_at_word(option.text, option.fontMetrics, width - 2 * margin)  # type: ignore[attr-defined]


def elide_at_word(text: str, metrics: QFontMetrics, width: int) -> str:
    """``text`` if it fits in ``width`` pixels, else its longest run of whole words that fits with "…"."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    words = text.split(" ")
    for count in range(len(words) - 1, 0, -1):
        candidate = " ".join(words[:count]).rstrip(",;:") + " …"
        if metrics.horizontalAdvance(candidate) <= width:
            return candidate
    return text  # not even one word fits: Qt cuts it (the tooltip has it all)


def transcript_of(job: Job) -> Path | None:
    """The transcript to open: the first existing output in txt, srt, vtt, json order."""
    existing = [p for p in job.outputs if p.exists()]
    for suffix in TRANSCRIPT_PREFERENCE:
        for path in existing:
            if path.suffix.lower() == suffix:
                return path
    return existing[0] if existing else None


def folder_of(job: Job) -> Path:
    """The folder to show: where the transcripts are once done, else where the recording is."""
    transcript = transcript_of(job)
    return transcript.parent if transcript is not None else job.source.parent


class JobQueueView(QWidget):
    """Signals: retryRequested(int), cancelRequested(int), removeRequested(int), openFailed(str),
    overwriteRequested(int), otherFolderChosen(int, str)."""

    retryRequested = Signal(int)
    cancelRequested = Signal(int)
    removeRequested = Signal(int)
    openFailed = Signal(str)  # why a transcript or folder could not be opened
    overwriteRequested = Signal(int)  # run again, replacing the files in the way (runner.retry_overwrite)
    otherFolderChosen = Signal(int, str)  # run again, writing to this folder (runner.retry_in_folder)
    speakersRenamed = Signal(int, object)  # job id, {old name: new name}
    transcriptRequested = Signal(int)  # open the job's transcript in the workspace
    transcriptReleased = Signal(int, bool)  # after removeRequested: keep the transcript in the library?
    previewRequested = Signal(int, float, float)  # play a stretch of a job's recording (rename evidence)

    def __init__(
        self,
        model: JobTableModel,
        parent: QWidget | None = None,
        *,
        open_url: UrlOpener = QDesktopServices.openUrl,
        choose_folder: ChooseDirFn | None = None,
        library: LibraryInfo | None = None,
        ask: YesNoFn = ask_yes_no,
        ask_keep: KeepFn = ask_keep_transcript,
    ) -> None:
        super().__init__(parent)
        self._model = model
        self._library = library
        self._ask = ask
        self._ask_keep = ask_keep
        self._open_url = open_url
        self._choose_folder = choose_folder
        self.table = QTableView(self)
        self.table.setObjectName("jobTable")
        self.table.setModel(model)
        self.table.setItemDelegateForColumn(int(Column.PROGRESS), ProgressDelegate(self.table))
        self.table.setItemDelegateForColumn(int(Column.ERROR), ElideRightDelegate(self.table))
        self.table.setItemDelegateForColumn(
            int(Column.STATE), ElideRightDelegate(self.table)
        )  # never "…dited"
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._on_context_menu)
        self.table.doubleClicked.connect(self._on_double_clicked)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)  # the error message gets the room that is left
        header.setMinimumSectionSize(40)
        for column, width in COLUMN_WIDTHS.items():
            header.resizeSection(int(column), width)
        header.resizeSection(int(Column.STATE), state_column_width(self.table))
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep a file name's start and extension
        self._scroll_to: QPersistentModelIndex | None = None
        model.rowsInserted.connect(self._on_rows_inserted)

        self.open_action = self._action("Open transcript", self.open_transcript, "Return")
        self.folder_action = self._action("Show in folder", self.open_folder)
        self.retry_action = self._action("Retry", self.retry_selected, "Ctrl+R")
        self.cancel_action = self._action("Cancel", self.cancel_selected)
        self.remove_action = self._action("Remove", self.remove_selected, QKeySequence.StandardKey.Delete)
        self.overwrite_action = self._action(OVERWRITE_LABEL, self.overwrite_selected)
        self.overwrite_action.setToolTip("Transcribe again and replace the files that are in the way")
        self.other_folder_action = self._action(CHOOSE_FOLDER_LABEL, self.choose_other_folder)
        self.other_folder_action.setToolTip("Transcribe again and write the transcripts to another folder")
        self.rename_speakers_action = self._action("Rename speakers…", self.rename_speakers)
        self.error_action = self._action("Why it failed…", self.show_error)
        self.error_dialog: QMessageBox | None = None  # while the failure's dialog is open (tests click it)
        self.rename_dialog: SpeakerNamesDialog | None = None  # while the rename dialog is open
        self.actions_in_order = (
            self.open_action,
            self.folder_action,
            self.retry_action,
            self.cancel_action,
            self.remove_action,
            self.overwrite_action,
            self.other_folder_action,
        )
        self.output_actions = (self.overwrite_action, self.other_folder_action)

        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        self.buttons: dict[str, QPushButton] = {}
        for action in self.actions_in_order:
            button = QPushButton(action.text(), self)
            button.clicked.connect(action.trigger)
            buttons.addWidget(button)
            self.buttons[action.text()] = button
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self.table.selectionModel().selectionChanged.connect(self.update_actions)
        model.dataChanged.connect(self.update_actions)
        model.rowsInserted.connect(self.update_actions)
        model.rowsRemoved.connect(self.update_actions)
        self.update_actions()

        # An empty table of column headers tells a newcomer nothing: say what to do instead.
        self.empty_hint = QLabel(EMPTY_HINT, self.table.viewport())
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setEnabled(False)  # drawn in the palette's muted text colour
        self.empty_hint.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        hint_layout = QVBoxLayout(self.table.viewport())
        hint_layout.setContentsMargins(60, 20, 60, 20)
        hint_layout.addWidget(self.empty_hint)
        for signal in (model.rowsInserted, model.rowsRemoved, model.modelReset, model.layoutChanged):
            signal.connect(self._update_empty_hint)
        self._update_empty_hint()

    def _action(
        self, text: str, slot: Callable[[], None], shortcut: str | QKeySequence.StandardKey | None = None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    # --- selection ----------------------------------------------------------------------------------
    def selected_jobs(self) -> list[Job]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self._model.job_at(row) for row in rows if row < self._model.rowCount()]

    def select_job(self, job_id: int) -> bool:
        row = self._model.row_of(job_id)
        if row is None:
            return False
        self.table.selectRow(row)
        return True

    @Slot()
    def update_actions(self) -> None:
        jobs = self.selected_jobs()
        states = {j.state for j in jobs}
        in_library = self._library is not None
        self.open_action.setEnabled(any(j.state == DONE and (in_library or transcript_of(j)) for j in jobs))
        self.folder_action.setEnabled(bool(jobs))
        self.retry_action.setEnabled(bool(states & {DONE, FAILED, CANCELED}))
        self.remove_action.setEnabled(bool(jobs))
        self.cancel_action.setEnabled(any(self._cancelable(j) for j in jobs))
        problems = {output_problem(j) for j in jobs}
        self.overwrite_action.setEnabled(OutputProblem.IN_THE_WAY in problems)
        self.other_folder_action.setEnabled(bool(problems - {OutputProblem.NONE}))
        self.rename_speakers_action.setEnabled(len(jobs) == 1 and bool(self._model.speaker_names(jobs[0])))
        self.error_action.setEnabled(len(jobs) == 1 and jobs[0].state == FAILED)
        for action in self.actions_in_order:
            self.buttons[action.text()].setEnabled(action.isEnabled())
        for action in self.output_actions:  # only there when they help, so the bar stays short
            self.buttons[action.text()].setVisible(action.isEnabled())

    def _cancelable(self, job: Job) -> bool:
        return job.state == QUEUED or (job.state == RUNNING and not self._model.is_canceling(job.id))

    # --- actions ------------------------------------------------------------------------------------
    def set_library(self, library: LibraryInfo | None) -> None:
        """With a library, "Open transcript" opens the workspace and retry/remove ask about kept edits."""
        self._library = library
        self.update_actions()

    @Slot()
    def open_transcript(self) -> None:
        for job in self.selected_jobs():
            if self._library is not None and job.state == DONE:
                self.transcriptRequested.emit(job.id)
                continue
            path = transcript_of(job)
            if path is None:
                if job.state == DONE:
                    self.openFailed.emit(f"the transcripts of {job.name} are no longer on disk")
                continue
            self._open(path)

    @Slot()
    def open_folder(self) -> None:
        folders = dict.fromkeys(folder_of(job) for job in self.selected_jobs())
        for folder in folders:
            if not folder.is_dir():
                self.openFailed.emit(f"the folder {folder} no longer exists")
                continue
            self._open(folder)

    @Slot()
    def retry_selected(self) -> None:
        jobs = [j for j in self.selected_jobs() if j.state in (DONE, FAILED, CANCELED)]
        for job in self.confirm_retry(jobs):
            self.retryRequested.emit(job.id)

    def confirm_retry(self, jobs: list[Job]) -> list[Job]:
        """The jobs to run again: those whose corrections a retry would throw away only if the person says
        so. Every way to transcribe again asks here (the queue's Retry, the "Transcribe again" banner)."""
        edited = [j for j in jobs if self._library is not None and self._library.retry_discards_edits(j)]
        if edited:
            names = edited[0].name if len(edited) == 1 else f"{len(edited)} recordings"
            if not self._ask(
                self,
                "Throw away your corrections?",
                f"You corrected the transcript of {names}. Transcribing again replaces it and its files, and "
                "your corrections are lost. Transcribe again anyway?",
            ):
                jobs = [j for j in jobs if j not in edited]
        return jobs

    @Slot()
    def cancel_selected(self) -> None:
        for job in self.selected_jobs():
            if self._cancelable(job):
                self._model.mark_canceling(job.id)  # shown at once; the job stops at its next window
                self.cancelRequested.emit(job.id)
        self.update_actions()

    @Slot()
    def overwrite_selected(self) -> None:
        for job in self.selected_jobs():
            if output_problem(job) is OutputProblem.IN_THE_WAY:
                self.overwriteRequested.emit(job.id)

    @Slot()
    def choose_other_folder(self) -> None:
        jobs = [j for j in self.selected_jobs() if output_problem(j) is not OutputProblem.NONE]
        if not jobs:
            return
        names = jobs[0].name if len(jobs) == 1 else f"{len(jobs)} recordings"
        choose = self._choose_folder or ask_directory
        folder = choose(self, f"Folder for the transcripts of {names}")
        if not folder:
            return
        for job in jobs:
            self.otherFolderChosen.emit(job.id, folder)

    # --- layout ---------------------------------------------------------------------------------------
    def header_state(self) -> bytes:
        """Column widths and order, for the window-state file."""
        return bytes(self.table.horizontalHeader().saveState().data())

    def restore_header_state(self, state: bytes) -> bool:
        header = self.table.horizontalHeader()
        if not state or not header.restoreState(QByteArray(state)):
            return False
        header.setStretchLastSection(True)
        return True

    @Slot()
    def _update_empty_hint(self) -> None:
        self.empty_hint.setVisible(self._model.rowCount() == 0)

    @Slot(QModelIndex, int, int)
    def _on_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        """New work shows where the user can see it (rows are added at the end, usually out of view).

        Scrolled once the table has laid out the new rows: its scroll range does not include them yet."""
        self._scroll_to = QPersistentModelIndex(self._model.index(last, 0))
        QTimer.singleShot(0, self, self._on_scroll_to_new_row)

    @Slot()
    def _on_scroll_to_new_row(self) -> None:
        if self._scroll_to is not None and self._scroll_to.isValid():
            self.table.scrollTo(QModelIndex(self._scroll_to), QAbstractItemView.ScrollHint.EnsureVisible)
        self._scroll_to = None

    @Slot()
    def remove_selected(self) -> None:
        jobs = self.selected_jobs()
        kept = [j for j in jobs if self._library is not None and self._library.has_transcript(j.id)]
        keep: bool | None = True
        if kept:
            keep = self._ask_keep(self, kept[0].name if len(kept) == 1 else f"{len(kept)} recordings")
            if keep is None:
                return
        for job in jobs:
            self.removeRequested.emit(job.id)
            if job in kept:  # after: the library lets go of the transcript only once the job is removed
                self.transcriptReleased.emit(job.id, bool(keep))

    def _open(self, path: Path) -> None:
        if not self._open_url(QUrl.fromLocalFile(str(path))):
            self.openFailed.emit(f"no application could open {path}")

    @Slot(QPoint)
    def _on_context_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if index.isValid() and not self.table.selectionModel().isRowSelected(index.row()):
            self.table.selectRow(index.row())
        if not self.selected_jobs():
            return
        menu = self.context_menu()
        menu.exec(self.table.viewport().mapToGlobal(pos))
        menu.deleteLater()

    def context_menu(self) -> QMenu:
        """The row menu for the selection: output fixes first when the job failed on its output, then why it
        failed."""
        menu = QMenu(self)
        first = [a for a in (*self.output_actions, self.error_action) if a.isEnabled()]
        if first:
            menu.addActions(first)
            menu.addSeparator()
        menu.addActions([self.open_action, self.folder_action])
        if self.rename_speakers_action.isEnabled():
            menu.addAction(self.rename_speakers_action)
        menu.addSeparator()
        menu.addActions([self.retry_action, self.cancel_action, self.remove_action])
        return menu

    @Slot()
    def rename_speakers(self) -> None:
        """Ask for new speaker names; the app's SpeakerRenamer rewrites the transcripts."""
        jobs = self.selected_jobs()
        names = self._model.speaker_names(jobs[0]) if len(jobs) == 1 else []
        if not names:
            return
        evidence = self._library.speaker_evidence(jobs[0].id) if self._library is not None else []
        dialog = SpeakerNamesDialog(
            jobs[0].name, names, self, evidence=evidence, colour=speaker_colour(names)
        )
        job_id = jobs[0].id

        def preview(start: float, end: float) -> None:
            self.previewRequested.emit(job_id, start, end)

        dialog.playRequested.connect(preview)
        self.rename_dialog = dialog
        accepted = dialog.exec() == SpeakerNamesDialog.DialogCode.Accepted
        changes = dialog.changes()
        self.rename_dialog = None
        dialog.deleteLater()
        if accepted and changes:
            self.speakersRenamed.emit(jobs[0].id, changes)

    @Slot(QModelIndex)
    def _on_double_clicked(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        state = self._model.job_at(index.row()).state
        if state == DONE:
            self.open_transcript()
        elif state == FAILED:
            self.show_error()

    def error_box(self, job: Job) -> QMessageBox:
        """The whole reason a recording failed (the Error column cuts it off), with Retry and Copy.

        The reason is already in plain words (which file, what is wrong, what to do); the technical detail
        stays in the log panel."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Why this recording failed")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setText(f"{job.name} could not be transcribed.")
        reason = job.error or "No reason was recorded."
        box.setInformativeText(
            f"{reason[:1].upper()}{reason[1:]}\n\nFile: {job.source}\n\n"
            "The Log panel (View → Log) has the technical details."
        )
        box.addButton("Retry", QMessageBox.ButtonRole.AcceptRole).setObjectName("errorRetry")
        box.addButton("Copy", QMessageBox.ButtonRole.ActionRole).setObjectName("errorCopy")
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Close))
        return box

    @Slot()
    def show_error(self) -> None:
        jobs = self.selected_jobs()
        if len(jobs) != 1 or jobs[0].state != FAILED:
            return
        job = jobs[0]
        box = self.error_box(job)
        self.error_dialog = box
        try:
            box.exec()
        finally:
            self.error_dialog = None
        clicked = box.clickedButton()
        name = clicked.objectName() if clicked is not None else ""
        if name == "errorRetry":
            self.retryRequested.emit(job.id)
        elif name == "errorCopy":
            QGuiApplication.clipboard().setText(f"{job.source}\n{job.error or ''}")
        box.deleteLater()
