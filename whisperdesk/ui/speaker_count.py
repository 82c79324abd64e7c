"""How many speakers to expect: automatic, exactly N, or between MIN and MAX, as a small reusable editor.

Why in the window and not only in the CLI: a wrong automatic count is the most common complaint about speaker
labels, and the user often knows the answer ("an interview: 2"). The editor gives the same text the CLI and
settings take ("auto", "3", "2-4"), so one parser (core/speakers/count.py) checks all of them.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.core.speakers.count import MAX_SPEAKERS, SpeakerCount, parse_speaker_count

MODES = (("auto", "Find automatically"), ("exact", "Exactly"), ("range", "Between"))


class SpeakerCountEdit(QWidget):
    """Signals: changed(str) with the count text ("auto", "3" or "2-4") after every edit by the user."""

    changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = QComboBox(self)
        for key, label in MODES:
            self.mode.addItem(label, key)
        self.low = QSpinBox(self)
        self.high = QSpinBox(self)
        for box in (self.low, self.high):
            box.setRange(1, MAX_SPEAKERS)
        self.low.setValue(2)
        self.high.setValue(4)
        self.and_label = QLabel("and", self)
        self.mode.setToolTip(
            "Give the number when you know it: automatic counting can take a change of language or of "
            "pitch for a new speaker, or miss someone who says little"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.mode, self.low, self.and_label, self.high):
            layout.addWidget(widget)
        layout.addStretch(1)
        self._loading = False
        self.mode.currentIndexChanged.connect(self._on_edit)
        self.low.valueChanged.connect(self._on_edit)
        self.high.valueChanged.connect(self._on_edit)
        self._show_fields()

    def value(self) -> str:
        mode = self.mode.currentData()
        if mode == "exact":
            return str(self.low.value())
        if mode == "range":
            low, high = sorted((self.low.value(), self.high.value()))
            return str(SpeakerCount(low, high))
        return "auto"

    def set_value(self, text: str | None) -> None:
        """Show ``text`` ("auto", "3", "2-4"); unreadable or None shows automatic."""
        try:
            count = parse_speaker_count(text or "auto")
        except ValueError:
            count = SpeakerCount()
        self._loading = True
        try:
            if str(count) == "auto":
                self.mode.setCurrentIndex(0)
            elif count.exact is not None:
                self.mode.setCurrentIndex(1)
                self.low.setValue(count.exact)
            else:
                self.mode.setCurrentIndex(2)
                self.low.setValue(count.minimum)
                self.high.setValue(count.maximum)
        finally:
            self._loading = False
        self._show_fields()

    def _show_fields(self) -> None:
        mode = self.mode.currentData()
        self.low.setVisible(mode in ("exact", "range"))
        self.and_label.setVisible(mode == "range")
        self.high.setVisible(mode == "range")

    @Slot()
    def _on_edit(self) -> None:
        self._show_fields()
        if not self._loading:
            self.changed.emit(self.value())


class SpeakerCountDialog(QDialog):
    """Asked when files are added with speaker labels: how many people speak in them."""

    def __init__(self, parent: QWidget | None = None, initial: str = "auto") -> None:
        super().__init__(parent)
        self.setWindowTitle("Speakers")
        self.edit = SpeakerCountEdit(self)
        self.edit.set_value(initial)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, parent=self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("How many people speak in these recordings?", self))
        layout.addWidget(self.edit)
        layout.addWidget(buttons)


def ask_speaker_count(parent: QWidget | None, initial: str = "auto") -> str | None:
    """The count text the user chose, or None when they canceled."""
    dialog = SpeakerCountDialog(parent, initial)
    try:
        return dialog.edit.value() if dialog.exec() == QDialog.DialogCode.Accepted else None
    finally:
        dialog.deleteLater()
