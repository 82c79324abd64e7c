"""The model manager dialog: pick, download, check and remove models without a terminal.

The table shows the same rows as `whisperdesk models list`. Downloads and checks run in the ModelDownloads
service on the app's pool, so closing this dialog does not stop a download and the queue keeps running on
the current model; "Use this model" switches from the next job on.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.core.models.builtin import is_builtin
from whisperdesk.core.models.catalogue import repo_id_for
from whisperdesk.core.models.download import DownloadProgress
from whisperdesk.core.models.overview import ModelRow, rows
from whisperdesk.core.models.recommend import Recommendation
from whisperdesk.core.models.store import local_folder_problems, remove_model
from whisperdesk.core.units import format_size
from whisperdesk.services.model_downloads import ModelDownloads

COLUMNS = ("Model", "Size", "Languages", "Speed / quality", "This computer", "Status")
ChooseFolderFn = Callable[[QWidget], str]
ConfirmFn = Callable[[QWidget, str, str], bool]


def _ask_folder(parent: QWidget) -> str:
    return QFileDialog.getExistingDirectory(parent, "Choose a faster-whisper (CTranslate2) model folder")


def _ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    return QMessageBox.question(parent, title, text, buttons) == QMessageBox.StandardButton.Yes


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def progress_text(p: DownloadProgress) -> str:
    """ "120.0 MB of 486.0 MB · 5.2 MB/s · about 1:10 left" """
    text = f"{format_size(p.done_bytes)} of {format_size(p.total_bytes)}"
    if p.bytes_per_second > 0:
        text += f" · {format_size(p.bytes_per_second)}/s"
    if p.eta_seconds is not None and p.done_bytes < p.total_bytes:
        text += f" · about {_clock(p.eta_seconds)} left"
    return text


CHECK_TIP = (
    "Check the downloaded files against the sizes and checksums recorded when they were fetched: "
    "finds a damaged or incomplete copy (which Delete and Download then replace)."
)


class ModelManagerDialog(QDialog):
    """``modelChosen(str)``: the settings value to use from the next job on."""

    modelChosen = Signal(str)

    def __init__(
        self,
        downloads: ModelDownloads,
        current_model: str,
        recommendation: Recommendation | None,
        *,
        choose_folder: ChooseFolderFn = _ask_folder,
        confirm: ConfirmFn = _ask_yes_no,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(980, 560)
        self._downloads = downloads
        self._current = current_model
        self._recommendation = recommendation
        self._choose_folder = choose_folder
        self._confirm = confirm
        self._rows: list[ModelRow] = []
        self._build()
        downloads.progressChanged.connect(self._on_progress)
        downloads.downloadFinished.connect(self._on_finished)
        downloads.downloadFailed.connect(self._on_failed)
        downloads.downloadCancelled.connect(self._on_cancelled)
        downloads.verified.connect(self._on_verified)
        self.refresh()
        offer = recommendation.offer if recommendation else None
        if is_builtin(current_model) and offer:  # a new user opened it to fetch the better model
            self.select(offer)
        if downloads.last_progress is not None and downloads.active:
            self._on_progress(downloads.last_progress)

    # --- construction ---------------------------------------------------------------------------------
    def _build(self) -> None:
        self.reason_label = QLabel(self._recommendation.reason if self._recommendation else "", self)
        self.reason_label.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 1000)
        self.progress_label = QLabel(self)
        self.message_label = QLabel(self)
        self.message_label.setWordWrap(True)
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)
        self.disk_label = QLabel(self)
        self.download_button = self._button("Download", self._on_download)
        self.cancel_button = self._button("Cancel download", self._downloads.cancel)
        self.delete_button = self._button("Delete", self._on_delete)
        self.verify_button = self._button("Check", self._on_verify)
        self.use_button = self._button("Use this model", self._on_use)
        self.folder_button = self._button("Add model folder…", self._on_add_folder)
        close = self._button("Close", self.accept)
        buttons = QHBoxLayout()
        for button in (self.download_button, self.cancel_button, self.delete_button, self.verify_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        for button in (self.folder_button, self.use_button, close):
            buttons.addWidget(button)
        progress = QHBoxLayout()
        progress.addWidget(self.progress_bar, 1)
        progress.addWidget(self.progress_label)
        layout = QVBoxLayout(self)
        layout.addWidget(self.reason_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(progress)
        layout.addWidget(self.message_label)
        layout.addWidget(self.disk_label)
        layout.addLayout(buttons)
        self._show_progress(False)

    def _button(self, text: str, slot: Callable[[], object]) -> QPushButton:
        button = QPushButton(text, self)
        button.clicked.connect(slot)
        return button

    # --- state shown ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read what is on disk and redraw the table, keeping the selection."""
        selected = self.selected_name()
        self._rows = rows(self._downloads.models_dir, self._current, self._recommendation)
        self.table.setRowCount(len(self._rows))
        for r, row in enumerate(self._rows):
            cells = (
                row.entry.label,
                format_size(row.entry.size_bytes),
                row.entry.languages,
                row.entry.hint,
                row.recommended,
                self._status(row),
            )
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.select(selected or self._current)
        self._show_disk()
        self._update_buttons()

    def _status(self, row: ModelRow) -> str:
        if row.entry.name == self._downloads.active:
            return "downloading…"
        return row.status

    def _show_disk(self) -> None:
        folder = self._downloads.models_dir
        probe = folder
        while not probe.exists():
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        self.disk_label.setText(f"Models are kept in {folder} · {format_size(free)} free on that disk")

    def _show_progress(self, visible: bool) -> None:
        self.progress_bar.setVisible(visible)
        self.progress_label.setVisible(visible)

    def say(self, text: str) -> None:
        self.message_label.setText(text)

    def selected_name(self) -> str | None:
        row = self.table.currentRow()
        return self._rows[row].entry.name if 0 <= row < len(self._rows) else None

    def select(self, name: str) -> None:
        for r, row in enumerate(self._rows):
            if row.entry.name == name or (is_builtin(name) and is_builtin(row.entry.name)):
                self.table.selectRow(r)
                return

    def _selected_row(self) -> ModelRow | None:
        name = self.selected_name()
        return next((r for r in self._rows if r.entry.name == name), None)

    @Slot()
    def _update_buttons(self) -> None:
        row = self._selected_row()
        busy = self._downloads.active is not None
        builtin = row is not None and is_builtin(row.entry.name)
        installed = row is not None and row.installed
        self.download_button.setEnabled(row is not None and not builtin and not installed and not busy)
        self.download_button.setText("Resume download" if row is not None and row.partial else "Download")
        self.cancel_button.setEnabled(busy)
        deletable = row is not None and not builtin and not row.in_use and (installed or row.partial > 0)
        self.delete_button.setEnabled(deletable)
        self.verify_button.setEnabled(installed)
        self.verify_button.setToolTip(CHECK_TIP)
        in_use = row is not None and row.in_use
        self.use_button.setEnabled(installed and not in_use)
        # a greyed-out button says why, so nobody wonders what is missing
        if row is None:
            self.use_button.setToolTip("Choose a model in the list first.")
        elif in_use:
            self.use_button.setToolTip("WhisperDesk is already using this model.")
        elif not installed:
            self.use_button.setToolTip("Download this model first; then you can switch to it here.")
        else:
            self.use_button.setToolTip("Transcribe with this model from the next recording on.")

    # --- actions --------------------------------------------------------------------------------------
    @Slot()
    def _on_download(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        probe = self._downloads.models_dir
        while not probe.exists():
            probe = probe.parent
        needed = max(0, row.entry.size_bytes - row.partial)
        free = shutil.disk_usage(probe).free
        if needed > free:
            self.say(
                f"Not enough disk space for {row.entry.label}: it needs about {format_size(needed)}, "
                f"and {format_size(free)} is free. Free some space or delete models you do not use."
            )
            return
        if self._downloads.start(row.entry.name):
            self.say(f"Downloading {row.entry.label}. The queue keeps working with the current model.")
            self.progress_bar.setValue(0)
            self.progress_label.setText("starting…")
            self._show_progress(True)
            self.refresh()

    @Slot()
    def _on_delete(self) -> None:
        row = self._selected_row()
        if row is None:
            return
        if row.in_use:
            self.say(f"{row.entry.label} is in use. Choose another model first, then delete this one.")
            return
        if row.entry.name == self._downloads.active:
            self.say("Cancel the download first.")
            return
        question = f"Delete {row.entry.label} ({format_size(row.entry.size_bytes)}) from this computer?"
        if not self._confirm(self, "Delete model", question):
            return
        remove_model(row.entry.name, self._downloads.models_dir, repo_id_for(row.entry.name))
        self.say(f"{row.entry.label} was deleted.")
        self.refresh()

    @Slot()
    def _on_verify(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.say(f"Checking {name}…")
            self._downloads.verify(name)

    @Slot()
    def _on_use(self) -> None:
        name = self.selected_name()
        if name is not None:
            self._use(name)

    def _use(self, value: str) -> None:
        self._current = value
        self.modelChosen.emit(value)
        self.say("The new model is used from the next recording on; a running one finishes as it is.")
        self.refresh()

    @Slot()
    def _on_add_folder(self) -> None:
        folder = self._choose_folder(self)
        if not folder:
            return
        problems = local_folder_problems(folder)
        if problems:
            self.say(
                f"The folder {folder} cannot be used: {'; '.join(problems)}. Choose a faster-whisper "
                "(CTranslate2) model folder."
            )
            return
        self._use(folder)

    # --- from the download service --------------------------------------------------------------------
    @Slot(object)
    def _on_progress(self, progress: object) -> None:
        if not isinstance(progress, DownloadProgress):
            return
        self._show_progress(True)
        self.progress_bar.setValue(round(progress.fraction * 1000))
        self.progress_label.setText(progress_text(progress))

    @Slot(str, str)
    def _on_finished(self, name: str, _folder: str) -> None:
        self._show_progress(False)
        self.say(f"{name} is downloaded and checked. Choose “Use this model” to switch to it.")
        self.refresh()
        self.select(name)

    @Slot(str, str)
    def _on_failed(self, name: str, message: str) -> None:
        self._show_progress(False)
        self.say(message)
        self.refresh()

    @Slot(str)
    def _on_cancelled(self, name: str) -> None:
        self._show_progress(False)
        self.say(f"The download of {name} was stopped. “Resume download” continues where it stopped.")
        self.refresh()

    @Slot(str, bool, str)
    def _on_verified(self, name: str, ok: bool, detail: str) -> None:
        self.say(f"{name}: {detail}" if ok else f"{name} is not usable: {detail}")
        self.refresh()
