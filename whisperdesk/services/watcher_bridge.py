"""Watched folders in the GUI: one core ``FolderWatcher`` for the enabled folders, ticked by a QTimer.

``FolderWatcher.tick`` only drains an event inbox and stats pending files (watchdog's threads just append
to that inbox), so ticking it on the GUI thread is cheap and keeps every status callback on the GUI thread.
Settled files become jobs with their folder's output folder and after-processing policy, through the core's
one :func:`enqueue` rule. Adding hashes the file, so in the app the adds are handed to ``JobRunner.submit``
(its pool) and the outcomes come back through :meth:`on_enqueued` (connect ``JobRunner.jobsAdded``);
without a runner they are queued at once (tests, tools). A file that cannot be read yet is forgotten by the
watcher, so its next event or the next rescan tries again — the same policy as ``whisperdesk watch``.

A folder that cannot be watched (not a folder, gone, over inotify limits) gets an ``error`` or ``polling``
status with the reason, and never stops the other folders from being watched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from whisperdesk.core.clock import Clock
from whisperdesk.core.jobstore import JobStore
from whisperdesk.core.processor import job_settings
from whisperdesk.core.queue.enqueue import Enqueued, enqueue
from whisperdesk.core.settings import Settings, WatchedFolder
from whisperdesk.core.watcher import (
    Candidate,
    FolderStatus,
    FolderWatcher,
    ObserverFactory,
    WatchConfigError,
    WatchSpec,
)
from whisperdesk.services.job_runner import AddRequest

log = logging.getLogger(__name__)

TICK_MS = 500
DISABLED = "disabled"

Enqueue = Callable[[Sequence[AddRequest]], None]


@dataclass(frozen=True)
class WatchState:
    """What the panel shows for one configured folder."""

    path: str  # as configured
    mode: str  # watching | polling | error | stopped | disabled
    reason: str = ""


def _key(path: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.realpath(os.path.expanduser(os.fspath(path))))


class WatcherBridge(QObject):
    """``statusChanged(path, mode, reason)`` per folder; ``queued(int)`` files handed on per tick."""

    statusChanged = Signal(str, str, str)
    queued = Signal(int)

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        parent: QObject | None = None,
        *,
        enqueue: Enqueue | None = None,
        tick_ms: int = TICK_MS,
        clock: Clock | None = None,
        observer_factory: ObserverFactory | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._enqueue = enqueue or self._add_now
        self._clock = clock
        self._factory = observer_factory
        self._settings = settings
        self._watcher: FolderWatcher | None = None
        self._folders: dict[str, WatchedFolder] = {}  # normalised path -> its settings
        self._states: dict[str, WatchState] = {}  # configured path -> state, in settings order
        self._timer = QTimer(self)
        self._timer.setObjectName("WatcherBridge.tick")
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self.tick)
        self._started = False

    # --- state --------------------------------------------------------------------------------------
    @property
    def watcher(self) -> FolderWatcher | None:
        return self._watcher

    def states(self) -> list[WatchState]:
        return list(self._states.values())

    def state_of(self, path: str) -> WatchState | None:
        return self._states.get(path)

    def timers(self) -> list[QTimer]:
        return self.findChildren(QTimer)

    # --- control ------------------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        """Watch the enabled folders of the settings given at construction (or last applied)."""
        self._started = True
        self._rebuild()

    @Slot(object)
    def apply(self, settings: Settings) -> None:
        """Follow new settings (connect ``SettingsController.settingsChanged``); rebuilds the watch set only
        when the watched folders or the settle/rescan times changed."""
        old = self._settings
        self._settings = settings
        if not self._started:
            return
        if (old.watched, old.ui.settle_seconds, old.ui.rescan_minutes, old.output.output_dir) != (
            settings.watched,
            settings.ui.settle_seconds,
            settings.ui.rescan_minutes,
            settings.output.output_dir,
        ):
            self._rebuild()

    @Slot()
    def rescan(self) -> None:
        if self._watcher is not None:
            self._watcher.scan()

    def shutdown(self) -> None:
        """Stop the timer and the watcher's observer threads (idempotent)."""
        self._started = False
        self._timer.stop()
        self._stop_watcher()

    @Slot()
    def tick(self) -> list[Candidate]:
        """Hand settled files on as jobs; returns them (for tests and tools)."""
        watcher = self._watcher
        if watcher is None:
            return []
        try:
            found = watcher.tick()
        except Exception:  # a watcher bug must not take the GUI down: log it and keep ticking
            log.exception("watching folders failed")
            return []
        if found:
            self._hand_on(found)
        return found

    # --- internals ----------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        self._stop_watcher()
        settings = self._settings
        self._folders = {}
        self._states = {}
        specs: list[WatchSpec] = []
        for folder in settings.watched:
            if not folder.enabled:
                self._set_state(WatchState(folder.path, DISABLED, "watching is turned off for this folder"))
                continue
            path = Path(folder.path).expanduser()
            if path.exists() and not path.is_dir():
                self._set_state(
                    WatchState(
                        folder.path,
                        "error",
                        f"{path} is a file, not a folder; choose the folder that holds it",
                    )
                )
                continue
            key = _key(path)
            if key in self._folders:
                self._set_state(WatchState(folder.path, "error", "this folder is already in the list"))
                continue
            self._folders[key] = folder
            specs.append(WatchSpec.from_settings(folder))
        if not specs:
            self._timer.stop()
            return
        outputs = [f.output_dir for f in self._folders.values() if f.output_dir]
        if settings.output.output_dir:
            outputs.append(settings.output.output_dir)
        try:
            watcher = FolderWatcher(
                specs,
                settle_seconds=settings.ui.settle_seconds,
                rescan_seconds=settings.ui.rescan_minutes * 60,
                output_dirs=outputs,
                clock=self._clock,
                observer_factory=self._factory,
                on_status=self._on_status,
            )
        except (WatchConfigError, ValueError) as exc:
            for folder in self._folders.values():
                self._set_state(WatchState(folder.path, "error", str(exc)))
            self._folders = {}
            return
        self._watcher = watcher
        for folder in self._folders.values():  # before start, so each folder shows a state at once
            self._set_state(WatchState(folder.path, "stopped", "starting"))
        watcher.start()
        self._timer.start()

    def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _folder_for(self, path: Path) -> WatchedFolder | None:
        return self._folders.get(_key(path))

    def _on_status(self, status: FolderStatus) -> None:
        folder = self._folder_for(status.folder)
        if folder is None or (self._watcher is None and status.mode == "stopped"):
            return
        self._set_state(WatchState(folder.path, status.mode, status.reason or ""))

    def _set_state(self, state: WatchState) -> None:
        if self._states.get(state.path) == state:
            return
        self._states[state.path] = state
        if state.mode == "error":
            log.warning("watched folder %s: %s", state.path, state.reason)
        self.statusChanged.emit(state.path, state.mode, state.reason)

    def _hand_on(self, found: list[Candidate]) -> None:
        requests = []
        for candidate in found:
            folder = self._folder_for(candidate.folder)
            if folder is None:
                continue
            options = job_settings(
                self._settings,
                output_dir=folder.output_dir,
                after_processing=folder.after_processing,
                speakers=folder.speakers,
            )
            requests.append(AddRequest(candidate.path, options, "watched", folder.path))
        if requests:
            log.info("%d new recording(s) in watched folders", len(requests))
            self._enqueue(requests)
            self.queued.emit(len(requests))

    @Slot(object)
    def on_enqueued(self, outcomes: list[Enqueued]) -> None:
        """Files that could not be read yet are tried again at their next event or the next rescan."""
        watcher = self._watcher
        if watcher is None:
            return
        for outcome in outcomes:
            if outcome.retry_later:
                watcher.forget(outcome.path)

    def _add_now(self, requests: Sequence[AddRequest]) -> None:
        outcomes = [
            enqueue(self._store, r.path, r.settings, origin="watched", watch_folder=r.watch_folder)
            for r in requests
        ]
        for outcome in outcomes:
            if outcome.problem:
                log.warning("not queued: %s: %s", outcome.path, outcome.reason)
        self.on_enqueued(outcomes)
