"""The system tray icon: show/hide the window, pause/resume the queue, quit.

Only created where a tray exists (``QSystemTrayIcon.isSystemTrayAvailable()``); stock GNOME and the
offscreen platform have none, and then the app simply has no tray and notifies inside the window.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from whisperdesk.ui.main_window import PAUSE_AFTER_LABEL, PAUSE_NOW_LABEL, RESUME_LABEL


def tray_available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()


class Tray(QObject):
    """Signals: ``toggleWindowRequested()``, ``pauseRequested(bool paused)`` (after the current job /
    resume), ``pauseNowRequested()``, ``quitRequested()``. Its tooltip follows the queue's status line."""

    toggleWindowRequested = Signal()
    pauseRequested = Signal(bool)
    pauseNowRequested = Signal()
    quitRequested = Signal()

    def __init__(self, icon: QIcon, parent: QObject | None = None, *, tooltip: str = "WhisperDesk") -> None:
        super().__init__(parent)
        self._menu = QMenu()  # a QMenu cannot have a QObject parent; deleted in dispose()
        self._show_hide = QAction("Show/Hide WhisperDesk", self._menu)
        self._show_hide.triggered.connect(self._on_show_hide)
        self._pause = QAction(PAUSE_AFTER_LABEL, self._menu)
        self._pause.setCheckable(True)
        self._pause.toggled.connect(self._on_pause_toggled)
        self._pause_now = QAction(PAUSE_NOW_LABEL, self._menu)
        self._pause_now.triggered.connect(self._on_pause_now)
        quit_action = QAction("Quit", self._menu)
        quit_action.triggered.connect(self._on_quit)
        self._menu.addAction(self._show_hide)
        self._menu.addAction(self._pause)
        self._menu.addAction(self._pause_now)
        self._menu.addSeparator()
        self._menu.addAction(quit_action)
        self._title = tooltip
        self._icon = QSystemTrayIcon(icon, self)
        self._icon.setToolTip(tooltip)
        self._icon.setContextMenu(self._menu)
        self._icon.activated.connect(self._on_activated)

    @property
    def icon(self) -> QSystemTrayIcon:
        return self._icon

    @property
    def menu(self) -> QMenu:
        return self._menu

    @property
    def paused(self) -> bool:
        return self._pause.isChecked()

    def show(self) -> None:
        self._icon.show()

    def set_tooltip(self, text: str) -> None:
        self._icon.setToolTip(text)

    @Slot(str)
    def set_status(self, text: str) -> None:
        """The queue's status line (the same as the window's status bar) under the app's name."""
        self._icon.setToolTip(f"{self._title}\n{text}" if text else self._title)

    @Slot(bool)
    def set_paused(self, paused: bool) -> None:
        """Reflect the queue's state without echoing it back as a request."""
        blocked = self._pause.blockSignals(True)
        self._pause.setChecked(paused)
        self._pause.blockSignals(blocked)
        self._show_pause_actions(paused)

    def _show_pause_actions(self, paused: bool) -> None:
        self._pause.setText(RESUME_LABEL if paused else PAUSE_AFTER_LABEL)
        self._pause_now.setVisible(not paused)

    def dispose(self) -> None:
        self._icon.hide()
        self._icon.setContextMenu(None)
        self._menu.deleteLater()

    @Slot(QSystemTrayIcon.ActivationReason)
    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.toggleWindowRequested.emit()

    @Slot()
    def _on_show_hide(self) -> None:
        self.toggleWindowRequested.emit()

    @Slot(bool)
    def _on_pause_toggled(self, paused: bool) -> None:
        self._show_pause_actions(paused)
        self.pauseRequested.emit(paused)

    @Slot()
    def _on_pause_now(self) -> None:
        self.pauseNowRequested.emit()

    @Slot()
    def _on_quit(self) -> None:
        self.quitRequested.emit()
