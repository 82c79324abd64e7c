"""The Voices page: the voices WhisperDesk remembers, to rename, merge or forget (Tools → Voices…).

Why a page of its own: a remembered voice is personal data kept on this computer; the user must see what is
kept and be able to delete it. Forgetting removes the voice's embedding from the library file. The library is
one small JSON file, so its edits run here directly; they are too small to need a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.speakers.voices import Voice, VoiceLibrary

EMPTY_TEXT = (
    "No voices are remembered. With “Remember voices I name” on (Settings → App), renaming a speaker keeps "
    "that voice, and later recordings of it are labelled with its name."
)


class VoicesDialog(QDialog):
    def __init__(self, library: VoiceLibrary, parent: QWidget | None = None, *, enabled: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Voices")
        self.resize(520, 360)
        self._library = library
        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels(["Name", "Speech heard", "Last changed"])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.rename_button = QPushButton("Rename…", self)
        self.merge_button = QPushButton("Merge", self)
        self.merge_button.setToolTip("The selected voices are one person: keep one voice from them")
        self.forget_button = QPushButton("Forget", self)
        self.forget_button.setToolTip("Delete the selected voices; later recordings will not know them")
        self.rename_button.clicked.connect(self.rename_selected)
        self.merge_button.clicked.connect(self.merge_selected)
        self.forget_button.clicked.connect(self.forget_selected)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        note = QLabel(
            "Kept on this computer only. "
            + ("" if enabled else "Remembering new voices is off (Settings → App → Remember voices I name)."),
            self,
        )
        note.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.rename_button, self.merge_button, self.forget_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addWidget(note)
        layout.addWidget(close)
        self.refresh()

    def voices(self) -> list[Voice]:
        return list(self._voices)

    def refresh(self) -> None:
        try:
            self._voices = self._library.voices()
        except WhisperDeskError as exc:
            self._voices = []
            self.message.setText(str(exc))
        else:
            self.message.setText("" if self._voices else EMPTY_TEXT)
        self.table.setRowCount(len(self._voices))
        for row, voice in enumerate(self._voices):
            changed = time.strftime("%Y-%m-%d %H:%M", time.localtime(voice.updated)) if voice.updated else ""
            for col, text in enumerate((voice.name, f"{voice.seconds:.0f} s", changed)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, voice.id)
                self.table.setItem(row, col, item)
        self._update_buttons()

    def selected(self) -> list[Voice]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self._voices[r] for r in rows if r < len(self._voices)]

    def select(self, *names: str) -> None:
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QTableWidget.SelectionMode.MultiSelection)
        for row, voice in enumerate(self._voices):
            if voice.name in names:
                self.table.selectRow(row)
        self.table.setSelectionMode(mode)

    @Slot()
    def _update_buttons(self) -> None:
        count = len(self.selected())
        self.rename_button.setEnabled(count == 1)
        self.merge_button.setEnabled(count >= 2)
        self.forget_button.setEnabled(count >= 1)

    # --- actions (the *_to methods take the answer, for the buttons' dialogs and for tests) ---------------
    @Slot()
    def rename_selected(self) -> None:
        chosen = self.selected()
        if len(chosen) != 1:
            return
        name, ok = QInputDialog.getText(self, "Rename voice", "Name:", text=chosen[0].name)
        if ok:
            self.rename_to(chosen[0], name)

    def rename_to(self, voice: Voice, name: str) -> None:
        self._run(lambda: self._library.rename(voice.id, name))

    @Slot()
    def merge_selected(self) -> None:
        chosen = self.selected()
        if len(chosen) < 2:
            return
        names = [v.name for v in chosen]
        name, ok = QInputDialog.getItem(self, "Merge voices", "These are one person, called:", names, 0, True)
        if ok:
            self.merge_to(chosen, name)

    def merge_to(self, voices: list[Voice], name: str) -> None:
        self._run(lambda: self._library.merge([v.id for v in voices], name))

    @Slot()
    def forget_selected(self) -> None:
        chosen = self.selected()
        if not chosen:
            return
        names = ", ".join(v.name for v in chosen)
        answer = QMessageBox.question(
            self, "Forget voices", f"Forget {names}? Later recordings will not be labelled with these names."
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.forget(chosen)

    def forget(self, voices: list[Voice]) -> None:
        def run() -> None:
            for voice in voices:
                self._library.forget(voice.id)

        self._run(run)

    def _run(self, action: Callable[[], object]) -> None:
        try:
            action()
        except WhisperDeskError as exc:
            self.refresh()
            self.message.setText(str(exc))
            return
        self.refresh()
