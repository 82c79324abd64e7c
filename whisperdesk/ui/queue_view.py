"""The queue table with a progress-bar column and the row actions (buttons and context menu).

The view only turns clicks into requests: retry/cancel/remove go out as signals (connect them to the
runner's slots); opening a transcript or its folder goes through ``QDesktopServices`` (injectable, so tests
see which URL would open). Dropping files is the main window's job, not this widget's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QMenu,
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
from whisperdesk.ui.queue_model import Column, JobTableModel, ProgressRole
from whisperdesk.ui.speaker_dialog import SpeakerNamesDialog

UrlOpener = Callable[[QUrl], bool]
TRANSCRIPT_PREFERENCE = (".txt", ".srt", ".vtt", ".json")
COLUMN_WIDTHS = {
    Column.FILE: 220,
    Column.STATE: 80,
    Column.PROGRESS: 120,
    Column.DURATION: 70,
    Column.ELAPSED: 70,
    Column.ETA: 60,
    Column.SPEED: 60,
    Column.LANGUAGE: 70,
}


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
        bar.state = option.state  # type: ignore[attr-defined]
        bar.palette = option.palette  # type: ignore[attr-defined]
        style = option.widget.style() if option.widget else QApplication.style()  # type: ignore[attr-defined]
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


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
    """Signals: retryRequested(int), cancelRequested(int), removeRequested(int), openFailed(str)."""

    retryRequested = Signal(int)
    cancelRequested = Signal(int)
    removeRequested = Signal(int)
    openFailed = Signal(str)  # why a transcript or folder could not be opened
    speakersRenamed = Signal(int, object)  # job id, {old name: new name}

    def __init__(
        self,
        model: JobTableModel,
        parent: QWidget | None = None,
        *,
        open_url: UrlOpener = QDesktopServices.openUrl,
    ) -> None:
        super().__init__(parent)
        self._model = model
        self._open_url = open_url
        self.table = QTableView(self)
        self.table.setObjectName("jobTable")
        self.table.setModel(model)
        self.table.setItemDelegateForColumn(int(Column.PROGRESS), ProgressDelegate(self.table))
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
        for column, width in COLUMN_WIDTHS.items():
            header.resizeSection(int(column), width)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep a file name's start and extension

        self.open_action = self._action("Open transcript", self.open_transcript, "Return")
        self.folder_action = self._action("Open containing folder", self.open_folder)
        self.retry_action = self._action("Retry", self.retry_selected, "Ctrl+R")
        self.cancel_action = self._action("Cancel", self.cancel_selected)
        self.remove_action = self._action("Remove", self.remove_selected, QKeySequence.StandardKey.Delete)
        self.rename_speakers_action = self._action("Rename speakers…", self.rename_speakers)
        self.actions_in_order = (
            self.open_action,
            self.folder_action,
            self.retry_action,
            self.cancel_action,
            self.remove_action,
        )

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
        self.open_action.setEnabled(any(j.state == DONE and transcript_of(j) for j in jobs))
        self.folder_action.setEnabled(bool(jobs))
        self.retry_action.setEnabled(bool(states & {DONE, FAILED, CANCELED}))
        self.cancel_action.setEnabled(bool(states & {QUEUED, RUNNING}))
        self.remove_action.setEnabled(bool(jobs))
        self.rename_speakers_action.setEnabled(len(jobs) == 1 and bool(self._model.speaker_names(jobs[0])))
        for action in self.actions_in_order:
            self.buttons[action.text()].setEnabled(action.isEnabled())

    # --- actions ------------------------------------------------------------------------------------
    @Slot()
    def open_transcript(self) -> None:
        for job in self.selected_jobs():
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
        for job in self.selected_jobs():
            if job.state in (DONE, FAILED, CANCELED):
                self.retryRequested.emit(job.id)

    @Slot()
    def cancel_selected(self) -> None:
        for job in self.selected_jobs():
            if job.state in (QUEUED, RUNNING):
                self.cancelRequested.emit(job.id)

    @Slot()
    def remove_selected(self) -> None:
        for job in self.selected_jobs():
            self.removeRequested.emit(job.id)

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
        menu = QMenu(self)
        menu.addActions(list(self.actions_in_order[:2]))
        if self.rename_speakers_action.isEnabled():
            menu.addAction(self.rename_speakers_action)
        menu.addSeparator()
        menu.addActions(list(self.actions_in_order[2:]))
        menu.exec(self.table.viewport().mapToGlobal(pos))
        menu.deleteLater()

    @Slot()
    def rename_speakers(self) -> None:
        """Ask for new speaker names; the app's SpeakerRenamer rewrites the transcripts."""
        jobs = self.selected_jobs()
        names = self._model.speaker_names(jobs[0]) if len(jobs) == 1 else []
        if not names:
            return
        dialog = SpeakerNamesDialog(jobs[0].name, names, self)
        accepted = dialog.exec() == SpeakerNamesDialog.DialogCode.Accepted
        changes = dialog.changes()
        dialog.deleteLater()
        if accepted and changes:
            self.speakersRenamed.emit(jobs[0].id, changes)

    @Slot(QModelIndex)
    def _on_double_clicked(self, index: QModelIndex) -> None:
        if index.isValid() and self._model.job_at(index.row()).state == DONE:
            self.open_transcript()
