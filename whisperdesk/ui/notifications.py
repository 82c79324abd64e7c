"""An in-window message strip: where there is no system tray, and for problems that need an action.

Info messages hide themselves after a while; warnings and errors stay until closed, because they name
files the user has to do something about. One optional action button (e.g. "Choose local model folder…")
reports its id through ``actionTriggered``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

LEVELS = ("info", "warning", "error")
_STYLES = {
    "info": "background:#e3f2fd; color:#0d3c61; border:1px solid #90caf9;",
    "warning": "background:#fff4e5; color:#663c00; border:1px solid #ffb74d;",
    "error": "background:#fdecea; color:#611a15; border:1px solid #e57373;",
}
INFO_TIMEOUT_MS = 8000


class NotificationBanner(QFrame):
    """``show_message(title, text, level, action_id, action_label)``; the newest message replaces the last."""

    actionTriggered = Signal(str)
    closed = Signal()

    def __init__(self, parent: QWidget | None = None, *, info_timeout_ms: int = INFO_TIMEOUT_MS) -> None:
        super().__init__(parent)
        self.setObjectName("notificationBanner")
        self._level = "info"
        self._action_id = ""
        self._info_timeout_ms = info_timeout_ms
        self._title = QLabel(self)
        self._title.setTextFormat(Qt.TextFormat.PlainText)
        font = self._title.font()
        font.setBold(True)
        self._title.setFont(font)
        self._text = QLabel(self)
        self._text.setTextFormat(Qt.TextFormat.PlainText)  # file names are data, never markup
        self._text.setWordWrap(True)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._action = QPushButton(self)
        self._action.clicked.connect(self._on_action)
        close = QToolButton(self)
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self._title)
        layout.addWidget(self._text, 1)
        layout.addWidget(self._action)
        layout.addWidget(close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        self.hide()

    @property
    def level(self) -> str:
        return self._level

    @property
    def title(self) -> str:
        return self._title.text()

    @property
    def text(self) -> str:
        return self._text.text()

    @property
    def action_id(self) -> str:
        return self._action_id

    @property
    def showing(self) -> bool:
        """Shown in its window (even while the window itself is hidden in the tray)."""
        return not self.isHidden()

    def show_message(
        self, title: str, text: str, level: str = "info", action_id: str = "", action_label: str = ""
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown notification level {level!r}; use one of {', '.join(LEVELS)}")
        self._level = level
        self._action_id = action_id
        self._title.setText(title)
        self._title.setVisible(bool(title))
        self._text.setText(text)
        self._action.setText(action_label)
        self._action.setVisible(bool(action_id))
        self.setStyleSheet(f"#notificationBanner {{{_STYLES[level]}}} QLabel {{border:none;}}")
        self._timer.stop()
        if level == "info" and not action_id and self._info_timeout_ms > 0:
            self._timer.start(self._info_timeout_ms)
        self.show()

    @Slot(str, str, str)
    def show_notice(self, title: str, text: str, level: str) -> None:
        """Slot for ``Notifier.bannerRequested``."""
        self.show_message(title, text, level)

    @Slot()
    def dismiss(self) -> None:
        self._timer.stop()
        if not self.isHidden():
            self.hide()
            self.closed.emit()

    @Slot()
    def _on_action(self) -> None:
        action = self._action_id
        self.dismiss()
        if action:
            self.actionTriggered.emit(action)
