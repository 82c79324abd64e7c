"""Watched folders: add, remove, enable, recursive, output folder, after-processing policy, live status.

The panel edits ``Settings.watched`` only through the settings controller, which validates, saves and
announces the new settings (the watcher bridge follows ``settingsChanged``), so there is one path for a
change whether it comes from here or from the settings file. Deleting recordings after transcribing is
irreversible, so choosing it asks first.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.core.settings import Settings, WatchedFolder
from whisperdesk.services.settings_controller import SettingsController
from whisperdesk.ui.speaker_count import SpeakerCountEdit

ConfirmFn = Callable[[QWidget, str, str], bool]
ChooseDirFn = Callable[[QWidget, str], str]

POLICIES: tuple[tuple[str, str], ...] = (  # short: the panel is a narrow side dock
    ("leave", "Leave it where it is"),
    ("move", 'Move it to a "done" subfolder'),
    ("delete", "Delete the recording"),
)
POLICY_SHORT = {"leave": "leave", "move": "move to done/", "delete": "delete"}
MODE_LABELS = {
    "watching": "Watching",
    "polling": "Polling",
    "error": "Error",
    "stopped": "Stopped",
    "disabled": "Disabled",
}
COLUMNS = ("Folder", "Status", "Subfolders", "Output folder", "After processing")
DETAIL_COLUMNS = (2, 3, 4)  # hidden in the narrow side panel


def ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    answer = QMessageBox.question(
        parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_directory(parent: QWidget, caption: str) -> str:
    return QFileDialog.getExistingDirectory(parent, caption)


def _same_folder(a: str, b: str) -> bool:
    def norm(p: str) -> str:
        return os.path.normcase(os.path.realpath(os.path.expanduser(p)))

    return norm(a) == norm(b)


DEFAULT_OUTPUT_TIP = "As in Settings: beside each recording, unless Settings names a transcripts folder"


class WatchedFoldersPanel(QWidget):
    """Signals: rescanRequested() (connect to ``WatcherBridge.rescan``), problem(str) for messages."""

    rescanRequested = Signal()
    problem = Signal(str)

    def __init__(
        self,
        controller: SettingsController,
        parent: QWidget | None = None,
        *,
        confirm: ConfirmFn = ask_yes_no,
        choose_folder: ChooseDirFn = ask_directory,
    ) -> None:
        super().__init__(parent)
        self._controller = controller
        self._confirm = confirm
        self._choose_folder = choose_folder
        self._folders: tuple[WatchedFolder, ...] = ()
        self._status: dict[str, tuple[str, str]] = {}
        self._loading = False

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("watchedTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in DETAIL_COLUMNS:  # shown in the form below for the selected folder, and as a tooltip
            self.table.setColumnHidden(column, True)
        self.table.setWordWrap(False)
        # Middle: "/home/ann/…/Recorder sync" keeps where the folder is and its name; the tooltip is whole.
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.itemSelectionChanged.connect(self._on_selection)

        self.add_button = QPushButton("Add folder…", self)
        self.remove_button = QPushButton("Remove", self)
        self.rescan_button = QPushButton("Rescan now", self)
        self.add_button.clicked.connect(self.choose_and_add)
        self.remove_button.clicked.connect(self.remove_selected)
        self.rescan_button.clicked.connect(self.rescanRequested)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for button in (self.add_button, self.remove_button, self.rescan_button):
            row.addWidget(button)
        row.addStretch(1)

        self.enabled_box = QCheckBox("Watch this folder", self)
        self.recursive_box = QCheckBox("Include subfolders", self)
        self.polling_box = QCheckBox("Poll for changes", self)
        self.polling_box.setToolTip(
            "For network shares and removable drives, where the system does not report new files"
        )
        self.speakers_box = QCheckBox("Label speakers", self)
        self.speakers_box.setToolTip("Who said what; give the number of speakers when you know it")
        self.speaker_count = SpeakerCountEdit(self)  # auto, exactly N or a range, per folder
        self.output_edit = QLineEdit(self)
        self.output_edit.setReadOnly(True)
        # Short enough for the narrow panel (the long form was cut mid-word); the tooltip says it all.
        self.output_edit.setPlaceholderText("as in Settings")
        self.output_button = QPushButton("Choose…", self)
        self.output_clear = QPushButton("Use default", self)
        self.policy_box = QComboBox(self)
        self.policy_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.policy_box.setMinimumContentsLength(14)  # the panel stays narrow; the open list shows it all
        for key, label in POLICIES:
            self.policy_box.addItem(label, key)
        self.enabled_box.toggled.connect(self._on_enabled)
        self.recursive_box.toggled.connect(self._on_recursive)
        self.polling_box.toggled.connect(self._on_polling)
        self.speakers_box.toggled.connect(self._on_speakers)
        self.speaker_count.changed.connect(self._on_speaker_count)
        self.output_button.clicked.connect(self.choose_output)
        self.output_clear.clicked.connect(self.clear_output)
        self.policy_box.currentIndexChanged.connect(self._on_policy)
        output_row = QHBoxLayout()  # under the folder field: the path gets the panel's whole width
        output_row.addStretch(1)
        output_row.addWidget(self.output_button)
        output_row.addWidget(self.output_clear)
        self.details = QWidget(self)
        form = QFormLayout(self.details)
        form.setContentsMargins(0, 0, 0, 0)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # labels above fields when narrow
        form.addRow(self.enabled_box)
        form.addRow(self.recursive_box)
        form.addRow(self.polling_box)
        form.addRow(self.speakers_box)
        form.addRow(self.speaker_count)
        form.addRow("Transcripts go to", self.output_edit)
        form.addRow(output_row)
        form.addRow("After transcribing", self.policy_box)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.hide()

        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.details)
        layout.addWidget(self.message)
        controller.settingsChanged.connect(self.set_settings)
        controller.applyFailed.connect(self._on_apply_failed)
        self.set_settings(controller.settings)

    # --- showing ------------------------------------------------------------------------------------
    @property
    def folders(self) -> tuple[WatchedFolder, ...]:
        return self._folders

    def selected_index(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def selected_folder(self) -> WatchedFolder | None:
        index = self.selected_index()
        return None if index is None or index >= len(self._folders) else self._folders[index]

    def select_folder(self, path: str) -> bool:
        for i, folder in enumerate(self._folders):
            if folder.path == path:
                self.table.selectRow(i)
                return True
        return False

    def status_text(self, path: str) -> str:
        """The status cell's text for a folder (what the user reads)."""
        for i, folder in enumerate(self._folders):
            if folder.path == path:
                item = self.table.item(i, 1)
                return item.text() if item is not None else ""
        return ""

    @Slot(object)
    def set_settings(self, settings: Settings) -> None:
        """Show ``settings.watched`` (connected to ``SettingsController.settingsChanged``)."""
        selected = self.selected_folder()
        self._folders = tuple(settings.watched)
        self._loading = True
        try:
            self.table.setRowCount(len(self._folders))
            for i, folder in enumerate(self._folders):
                self._fill_row(i, folder)
        finally:
            self._loading = False
        kept = selected is not None and self.select_folder(selected.path)
        if not kept and self._folders and self.selected_index() is None:
            self.table.selectRow(0)
        self._on_selection()

    @Slot(str, str, str)
    def set_status(self, path: str, mode: str, reason: str) -> None:
        """Connect to ``WatcherBridge.statusChanged``."""
        self._status[path] = (mode, reason)
        for i, folder in enumerate(self._folders):
            if folder.path == path:
                self._fill_status(i, folder)

    def _fill_row(self, row: int, folder: WatchedFolder) -> None:
        path_item = QTableWidgetItem(folder.path)
        path_item.setToolTip(
            f"{folder.path}\nSubfolders: {'yes' if folder.recursive else 'no'}"
            f"\nTranscripts go to: {folder.output_dir or 'the default output folder'}"
            f"\nAfter transcribing: {POLICY_SHORT.get(folder.after_processing, 'leave')}"
        )
        self.table.setItem(row, 0, path_item)
        self._fill_status(row, folder)
        self.table.setItem(row, 2, QTableWidgetItem("yes" if folder.recursive else "no"))
        self.table.setItem(row, 3, QTableWidgetItem(folder.output_dir or "default"))
        self.table.setItem(row, 4, QTableWidgetItem(POLICY_SHORT.get(folder.after_processing, "leave")))

    def _fill_status(self, row: int, folder: WatchedFolder) -> None:
        mode, reason = self._status.get(folder.path, ("disabled" if not folder.enabled else "stopped", ""))
        if not folder.enabled:
            mode, reason = "disabled", ""
        label = MODE_LABELS.get(mode, mode)
        text = f"{label}: {reason}" if mode == "error" and reason else label
        item = QTableWidgetItem(text)
        if reason:
            item.setToolTip(reason)
        if mode == "error":
            item.setForeground(QBrush(QColor(200, 40, 40)))
        self.table.setItem(row, 1, item)

    @Slot()
    def _on_selection(self) -> None:
        folder = self.selected_folder()
        self.details.setEnabled(folder is not None)
        self.remove_button.setEnabled(folder is not None)
        self.rescan_button.setEnabled(any(f.enabled for f in self._folders))
        if folder is None:
            return
        self._loading = True
        try:
            self.enabled_box.setChecked(folder.enabled)
            self.recursive_box.setChecked(folder.recursive)
            self.polling_box.setChecked(folder.polling)
            self.speakers_box.setChecked(folder.speakers is not None)
            self.speaker_count.set_value(folder.speakers)
            self.speaker_count.setEnabled(folder.speakers is not None)
            self.output_edit.setText(folder.output_dir or "")
            self.output_edit.setToolTip(folder.output_dir or DEFAULT_OUTPUT_TIP)
            index = self.policy_box.findData(folder.after_processing)
            self.policy_box.setCurrentIndex(max(0, index))
        finally:
            self._loading = False

    # --- editing ------------------------------------------------------------------------------------
    @Slot()
    def choose_and_add(self) -> None:
        folder = self._choose_folder(self, "Watch a folder for new recordings")
        if folder:
            self.add_folder(folder)

    def add_folder(self, path: str) -> bool:
        path = os.fspath(path)
        if not os.path.isdir(os.path.expanduser(path)):
            return self._tell(f"{path} is not a folder; choose a folder that holds recordings")
        if any(_same_folder(path, f.path) for f in self._folders):
            return self._tell(f"{path} is already watched")
        ok = self._save((*self._folders, WatchedFolder(path=path)))
        if ok:
            self.select_folder(path)
        return ok

    @Slot()
    def remove_selected(self) -> bool:
        index = self.selected_index()
        if index is None:
            return False
        return self._save(self._folders[:index] + self._folders[index + 1 :])

    @Slot()
    def choose_output(self) -> None:
        folder = self._choose_folder(self, "Folder for the transcripts of this watched folder")
        if folder:
            self.set_output_dir(folder)

    @Slot()
    def clear_output(self) -> None:
        self.set_output_dir(None)

    def set_output_dir(self, path: str | None) -> bool:
        return self._edit(output_dir=path or None)

    def set_policy(self, policy: str) -> bool:
        """Change the after-processing policy of the selected folder; "delete" asks first."""
        folder = self.selected_folder()
        if folder is None or policy == folder.after_processing:
            return False
        if policy == "delete" and not self._confirm(
            self,
            "Delete recordings after transcribing?",
            f"Recordings that arrive in {folder.path} will be deleted permanently once their transcripts "
            "are written. They do not go to the trash.\n\nDelete recordings after transcribing?",
        ):
            self._on_selection()  # back to the policy still in force
            return False
        return self._edit(after_processing=policy)

    @Slot(bool)
    def _on_enabled(self, checked: bool) -> None:
        if not self._loading:
            self._edit(enabled=checked)

    @Slot(bool)
    def _on_recursive(self, checked: bool) -> None:
        if not self._loading:
            self._edit(recursive=checked)

    @Slot(bool)
    def _on_polling(self, checked: bool) -> None:
        if not self._loading:
            self._edit(polling=checked)

    @Slot(bool)
    def _on_speakers(self, checked: bool) -> None:
        self.speaker_count.setEnabled(checked)
        if not self._loading:
            self._edit(speakers=self.speaker_count.value() if checked else None)

    @Slot(str)
    def _on_speaker_count(self, count: str) -> None:
        if not self._loading and self.speakers_box.isChecked():
            self._edit(speakers=count)

    @Slot(int)
    def _on_policy(self, index: int) -> None:
        if not self._loading and index >= 0:
            self.set_policy(str(self.policy_box.itemData(index)))

    def _edit(self, **changes: object) -> bool:
        index = self.selected_index()
        if index is None:
            return False
        updated = dataclasses.replace(self._folders[index], **changes)  # type: ignore[arg-type]
        folders = list(self._folders)
        folders[index] = updated
        return self._save(tuple(folders))

    def _save(self, folders: tuple[WatchedFolder, ...]) -> bool:
        self.message.hide()
        ok = self._controller.apply(self._controller.settings.replace(watched=folders))
        if not ok:
            self.set_settings(self._controller.settings)  # show what is really in force
        return ok

    @Slot(str)
    def _on_apply_failed(self, message: str) -> None:
        self._tell(message)

    def _tell(self, message: str) -> bool:
        self.message.setText(message)
        self.message.show()
        self.problem.emit(message)
        return False
