"""The strip above the queue that says what is wrong with the model and offers every way out.

A model problem is the one error that stops all work, so it gets its own banner with four buttons instead
of one line of text: try again, fall back to the built-in model, download a model, or pick a folder. The
same strip carries the first-start recommendation ("this GPU can run large-v3-turbo: Download…").
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

RETRY, BUILTIN, DOWNLOAD, FOLDER = "retry", "builtin", "download", "folder"
_LABELS = {
    RETRY: "Retry",
    BUILTIN: "Use built-in model",
    DOWNLOAD: "Download…",
    FOLDER: "Choose folder…",
}
_STYLES = {
    "info": "QFrame#modelBanner { background:#e3f2fd; color:#0d3c61; border:1px solid #90caf9; }",
    "error": "QFrame#modelBanner { background:#fdecea; color:#611a15; border:1px solid #e57373; }",
}


class ModelBanner(QFrame):
    """``actionTriggered(str)`` carries one of RETRY, BUILTIN, DOWNLOAD, FOLDER."""

    actionTriggered = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelBanner")
        self._level = "info"
        self._title = QLabel(self)
        self._title.setTextFormat(Qt.TextFormat.PlainText)
        font = self._title.font()
        font.setBold(True)
        self._title.setFont(font)
        self._text = QLabel(self)
        self._text.setTextFormat(Qt.TextFormat.PlainText)
        self._text.setWordWrap(True)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        row.addStretch(1)
        for action_id, label in _LABELS.items():
            button = QPushButton(label, self)
            button.setObjectName(f"modelBanner_{action_id}")
            button.setProperty("action_id", action_id)
            button.clicked.connect(self._on_button)
            row.addWidget(button)
            self._buttons[action_id] = button
        close = QToolButton(self)
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.dismiss)
        head = QHBoxLayout()
        head.addWidget(self._title, 1)
        head.addWidget(close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 6)
        layout.addLayout(head)
        layout.addWidget(self._text)
        layout.addLayout(row)
        self.hide()

    # --- what tests and the window read ---------------------------------------------------------------
    @property
    def showing(self) -> bool:
        return not self.isHidden()

    @property
    def level(self) -> str:
        return self._level

    @property
    def title(self) -> str:
        return self._title.text()

    @property
    def text(self) -> str:
        return self._text.text()

    def actions(self) -> list[str]:
        """The buttons on offer right now, in order."""
        return [a for a, b in self._buttons.items() if not b.isHidden()]

    def button(self, action_id: str) -> QPushButton:
        return self._buttons[action_id]

    # --- showing --------------------------------------------------------------------------------------
    def show_problem(self, title: str, text: str, actions: list[str]) -> None:
        self._show("error", title, text, actions)

    def show_offer(
        self, title: str, text: str, actions: list[str], labels: dict[str, str] | None = None
    ) -> None:
        """``labels`` names a button for this offer ("Download small (486 MB)…" rather than "Download…")."""
        self._show("info", title, text, actions, labels)

    def _show(
        self, level: str, title: str, text: str, actions: list[str], labels: dict[str, str] | None = None
    ) -> None:
        self._level = level
        self.setStyleSheet(_STYLES[level])
        self._title.setText(title)
        self._text.setText(text)
        for action_id, button in self._buttons.items():
            button.setText((labels or {}).get(action_id, _LABELS[action_id]))
            button.setVisible(action_id in actions)
        self.show()

    @Slot()
    def dismiss(self) -> None:
        self.hide()

    @Slot()
    def _on_button(self) -> None:
        button = self.sender()
        action_id = str(button.property("action_id")) if button is not None else ""
        if action_id:
            self.actionTriggered.emit(action_id)
