"""A read-only, capped view of warnings and errors (and optionally info) from every part of the app."""

from __future__ import annotations

import logging

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QColor, QTextCharFormat
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

DEFAULT_MAX_LINES = 2000
_COLOURS = {logging.ERROR: "#c62828", logging.WARNING: "#a66300"}


class LogView(QWidget):
    """Shows ``(levelno, text)`` records; ``levelChanged(int)`` asks the log bridge for more or fewer."""

    levelChanged = Signal(int)

    def __init__(
        self, max_lines: int = DEFAULT_MAX_LINES, *, show_info: bool = False, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self._text = QPlainTextEdit(self)
        self._text.setReadOnly(True)
        self._text.setMaximumBlockCount(max_lines)  # Qt drops the oldest lines: memory stays bounded
        self._text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self._text.setPlaceholderText("Warnings and errors appear here.")
        self._info = QCheckBox("Show info messages", self)
        self._info.setChecked(show_info)
        self._info.toggled.connect(self._on_info_toggled)
        clear = QPushButton("Clear", self)
        clear.clicked.connect(self._text.clear)
        bar = QHBoxLayout()
        bar.addWidget(self._info)
        bar.addStretch(1)
        bar.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._text)
        layout.addLayout(bar)

    @property
    def level(self) -> int:
        return logging.INFO if self._info.isChecked() else logging.WARNING

    def set_show_info(self, show: bool) -> None:
        self._info.setChecked(show)

    def lines(self) -> list[str]:
        return self._text.toPlainText().splitlines()

    @Slot(int, str)
    def append_record(self, levelno: int, text: str) -> None:
        if levelno < self.level:  # a record already queued before the level was raised
            return
        fmt = QTextCharFormat()
        colour = next((c for lvl, c in sorted(_COLOURS.items(), reverse=True) if levelno >= lvl), None)
        if colour:
            fmt.setForeground(QColor(colour))
        cursor = self._text.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        if not self._text.document().isEmpty():
            cursor.insertBlock()
        cursor.insertText(text, fmt)
        self._text.verticalScrollBar().setValue(self._text.verticalScrollBar().maximum())

    @Slot(bool)
    def _on_info_toggled(self, checked: bool) -> None:
        self.levelChanged.emit(logging.INFO if checked else logging.WARNING)
