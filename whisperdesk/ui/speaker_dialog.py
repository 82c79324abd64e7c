"""A small dialog to give a job's speakers real names ("Speaker 1" → "Ada")."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QWidget


class SpeakerNamesDialog(QDialog):
    """One line edit per speaker, prefilled with the current name; :meth:`changes` gives old → new."""

    def __init__(self, file_name: str, names: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Speakers in {file_name}")
        self.edits: dict[str, QLineEdit] = {}
        form = QFormLayout(self)
        for name in names:
            edit = QLineEdit(name, self)
            edit.setPlaceholderText(name)
            self.edits[name] = edit
            form.addRow(f"{name}:", edit)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, parent=self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def changes(self) -> dict[str, str]:
        """Names the user changed (blank fields keep the old name)."""
        out = {}
        for old, edit in self.edits.items():
            new = " ".join(edit.text().split())
            if new and new != old:
                out[old] = new
        return out
