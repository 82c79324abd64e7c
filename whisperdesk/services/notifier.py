"""Tell the user when a job finishes or fails and when the queue drains, with or without a system tray.

Linux desktops without an XEmbed/StatusNotifier tray (stock GNOME) have no tray messages, so every
notification goes to exactly one place: the tray balloon when the tray can show one, otherwise the
in-window banner (``bannerRequested``). ``notified`` fires for every notification whichever the route,
which is what tests and the log observe.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QSystemTrayIcon

log = logging.getLogger(__name__)

TRAY_MESSAGE_MS = 6000
_TRAY_ICONS = {
    "info": QSystemTrayIcon.MessageIcon.Information,
    "warning": QSystemTrayIcon.MessageIcon.Warning,
    "error": QSystemTrayIcon.MessageIcon.Critical,
}


class Notifier(QObject):
    notified = Signal(str, str)  # title, message
    bannerRequested = Signal(str, str, str)  # title, message, level ("info" | "warning" | "error")

    def __init__(
        self, tray: QSystemTrayIcon | None = None, *, enabled: bool = True, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._tray = tray
        self._enabled = enabled
        self.last_route: str | None = None  # "tray" | "banner": where the latest notification went

    @property
    def enabled(self) -> bool:
        return self._enabled

    @Slot(bool)
    def set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled

    @Slot(object)
    def apply_settings(self, settings: object) -> None:
        """Follow ``Settings.ui.notify_on_finish`` (connected to the settings controller)."""
        self._enabled = bool(settings.ui.notify_on_finish)  # type: ignore[attr-defined]

    def set_tray(self, tray: QSystemTrayIcon | None) -> None:
        self._tray = tray

    def tray_usable(self) -> bool:
        tray = self._tray
        return (
            tray is not None
            and tray.isVisible()
            and QSystemTrayIcon.isSystemTrayAvailable()
            and QSystemTrayIcon.supportsMessages()
        )

    @Slot(str, str, str)
    def notify(self, title: str, message: str, level: str = "info") -> None:
        if not self._enabled:
            return
        if level not in _TRAY_ICONS:
            raise ValueError(f"unknown notification level {level!r}; use one of {', '.join(_TRAY_ICONS)}")
        if self.tray_usable():
            assert self._tray is not None
            self._tray.showMessage(title, message, _TRAY_ICONS[level], TRAY_MESSAGE_MS)
            self.last_route = "tray"
        else:
            self.bannerRequested.emit(title, message, level)
            self.last_route = "banner"
        log.info("notification: %s: %s", title, message)
        self.notified.emit(title, message)

    @Slot(str, str)
    def job_finished(self, name: str, detail: str) -> None:
        self.notify("Transcript ready", f"{name}: {detail}" if detail else name, "info")

    @Slot(str, str)
    def job_failed(self, name: str, reason: str) -> None:
        self.notify("Transcription failed", f"{name}: {reason}", "error")

    @Slot(int, int)
    def queue_drained(self, done: int, failed: int) -> None:
        jobs = f"{done} job{'s' if done != 1 else ''} done"
        tail = f", {failed} failed" if failed else ""
        self.notify("Queue finished", jobs + tail, "warning" if failed else "info")
