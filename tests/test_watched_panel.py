"""Watched folders: the bridge turns settled files into jobs; the panel edits Settings.watched and shows status.

The watcher runs with real observers on real folders and an injected clock, so "settled" is decided by
advancing the clock, never by sleeping.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot
from watchdog.observers.api import BaseObserver

from whisperdesk.core.clock import FakeClock
from whisperdesk.core.engine import Engine
from whisperdesk.core.jobstore import JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.processor import JobProcessor
from whisperdesk.core.settings import ModelConfig, Settings, UiOptions, WatchedFolder, load_settings
from whisperdesk.core.watcher import default_observer_factory
from whisperdesk.devtools.synth_audio import noise, write_audio
from whisperdesk.services.job_runner import JobRunner
from whisperdesk.services.settings_controller import SettingsController
from whisperdesk.services.watcher_bridge import WatcherBridge
from whisperdesk.ui.watched_panel import WatchedFoldersPanel

SETTLE = 2.0
WAIT_MS = 30_000


pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def settings_with(*folders: WatchedFolder) -> Settings:
    return Settings(watched=folders, ui=UiOptions(settle_seconds=SETTLE))


@pytest.fixture
def make_bridge(qtbot: QtBot, store: JobStore, clock: FakeClock) -> Iterator[Callable[..., WatcherBridge]]:
    made: list[WatcherBridge] = []

    def make(settings: Settings, **kwargs: object) -> WatcherBridge:
        kwargs.setdefault("clock", clock)
        bridge = WatcherBridge(store, settings, **kwargs)  # type: ignore[arg-type]
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        bridge.shutdown()
        assert [t for t in bridge.timers() if t.isActive()] == []
        bridge.deleteLater()


class StatusLog(QObject):
    def __init__(self, bridge: WatcherBridge) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, str]] = []
        bridge.statusChanged.connect(self.on_status)

    @Slot(str, str, str)
    def on_status(self, path: str, mode: str, reason: str) -> None:
        self.seen.append((path, mode, reason))


def recording(folder: Path, name: str, seed: int = 0) -> Path:
    return write_audio(folder / name, noise(1.0, amplitude=0.3, seed=seed))


# --- bridge -------------------------------------------------------------------------------------------
def test_a_settled_file_is_queued_once_with_its_folder_options(
    make_bridge: Callable[..., WatcherBridge], store: JobStore, clock: FakeClock, inbox: Path, tmp_path: Path
) -> None:
    out = tmp_path / "transcripts"
    folder = WatchedFolder(path=str(inbox), output_dir=str(out), after_processing="move")
    early = recording(inbox, "before-start.wav", seed=1)
    bridge = make_bridge(settings_with(folder))
    log = StatusLog(bridge)
    bridge.start()
    assert bridge.state_of(str(inbox)) is not None and bridge.state_of(str(inbox)).mode == "watching"  # type: ignore[union-attr]
    assert (str(inbox), "watching", "") in log.seen

    assert bridge.tick() == []  # seen by the startup scan, not settled yet
    late = recording(inbox, "while-running.wav", seed=2)
    bridge.watcher.notify(late)  # type: ignore[union-attr]
    bridge.tick()
    clock.advance(SETTLE + 0.1)
    found = bridge.tick()
    assert sorted(c.path.name for c in found) == ["before-start.wav", "while-running.wav"]
    jobs = store.list()
    assert sorted(j.source for j in jobs) == sorted([early, late])
    for job in jobs:
        assert job.origin == "watched" and job.watch_folder == str(inbox)
        assert job.settings["after_processing"] == "move"
        assert job.settings["output"]["output_dir"] == str(out)
    clock.advance(SETTLE * 3)
    assert bridge.tick() == [] and len(store.list()) == 2  # announced once


def test_a_file_still_being_written_waits_until_it_settles(
    make_bridge: Callable[..., WatcherBridge], store: JobStore, clock: FakeClock, inbox: Path
) -> None:
    bridge = make_bridge(settings_with(WatchedFolder(path=str(inbox))))
    bridge.start()
    bridge.tick()
    growing = inbox / "copying.wav"
    growing.write_bytes(recording(inbox.parent, "src.wav").read_bytes()[:2000])
    bridge.watcher.notify(growing)  # type: ignore[union-attr]
    bridge.tick()
    clock.advance(SETTLE - 0.5)
    with growing.open("ab") as fh:  # more bytes arrive before the settle time is over
        fh.write(b"\0" * 4000)
    assert bridge.tick() == []
    clock.advance(SETTLE - 0.5)
    assert bridge.tick() == [] and store.list() == []
    clock.advance(1.0)
    assert [c.path for c in bridge.tick()] == [growing]


def test_folders_that_cannot_be_watched_say_why_and_do_not_stop_the_others(
    make_bridge: Callable[..., WatcherBridge], inbox: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "unplugged-drive"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder", encoding="utf-8")
    folders = (
        WatchedFolder(path=str(missing)),
        WatchedFolder(path=str(a_file)),
        WatchedFolder(path=str(tmp_path / "off"), enabled=False),
        WatchedFolder(path=str(inbox)),
    )
    bridge = make_bridge(settings_with(*folders))
    bridge.start()
    states = {s.path: s for s in bridge.states()}
    assert states[str(missing)].mode == "error" and "folder not found" in states[str(missing)].reason
    assert states[str(a_file)].mode == "error" and "is a file, not a folder" in states[str(a_file)].reason
    assert states[str(tmp_path / "off")].mode == "disabled"
    assert states[str(inbox)].mode == "watching"


def test_native_events_unavailable_falls_back_to_polling_with_the_reason(
    make_bridge: Callable[..., WatcherBridge], store: JobStore, clock: FakeClock, inbox: Path
) -> None:
    def factory(polling: bool) -> BaseObserver:
        if not polling:  # what inotify does when fs.inotify.max_user_watches is exhausted
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return default_observer_factory(True, polling_interval=0.1)

    bridge = make_bridge(settings_with(WatchedFolder(path=str(inbox))), observer_factory=factory)
    bridge.start()
    state = bridge.state_of(str(inbox))
    assert state is not None and state.mode == "polling" and "max_user_watches" in state.reason
    recording(inbox, "polled.wav", seed=3)
    bridge.rescan()
    bridge.tick()
    clock.advance(SETTLE + 0.1)
    assert [c.path.name for c in bridge.tick()] == ["polled.wav"]
    assert len(store.list()) == 1


def test_apply_rebuilds_the_watch_set(make_bridge: Callable[..., WatcherBridge], inbox: Path) -> None:
    bridge = make_bridge(settings_with(WatchedFolder(path=str(inbox))))
    log = StatusLog(bridge)
    bridge.start()
    assert bridge.watcher is not None
    bridge.apply(settings_with(WatchedFolder(path=str(inbox), enabled=False)))
    assert bridge.watcher is None and not any(t.isActive() for t in bridge.timers())
    assert log.seen[-1] == (str(inbox), "disabled", "watching is turned off for this folder")
    bridge.apply(settings_with(WatchedFolder(path=str(inbox), recursive=True)))
    assert bridge.watcher is not None and bridge.watcher.folders[0].recursive
    assert log.seen[-1][:2] == (str(inbox), "watching")


def test_adds_go_through_the_runner_pool_when_given(
    qtbot: QtBot,
    make_bridge: Callable[..., WatcherBridge],
    store: JobStore,
    clock: FakeClock,
    inbox: Path,
    tmp_path: Path,
) -> None:
    settings = settings_with(WatchedFolder(path=str(inbox)))
    engine = Engine(ModelConfig(model="tiny", device="cpu"), tmp_path / "models", local_files_only=True)
    processor = JobProcessor(store, engine, OutputLedger(tmp_path / "ledger.json"), lambda: settings)
    runner = JobRunner(store, processor, lambda: settings)  # not started: only its adding is used here
    try:
        bridge = make_bridge(settings, enqueue=runner.submit)
        bridge.start()
        recording(inbox, "pooled.wav", seed=4)
        bridge.rescan()
        bridge.tick()
        clock.advance(SETTLE + 0.1)
        with qtbot.waitSignal(runner.jobsAdded, timeout=WAIT_MS) as blocker:
            assert len(bridge.tick()) == 1
        results = blocker.args[0]  # type: ignore[index]
        assert [r.job.source.name for r in results] == ["pooled.wav"] and results[0].created
        assert results[0].job.origin == "watched"
    finally:
        assert runner.shutdown(WAIT_MS)
        runner.deleteLater()


# --- panel --------------------------------------------------------------------------------------------
class Chooser:
    """Stands in for the user picking in the folder dialog (a modal dialog cannot run offscreen)."""

    def __init__(self) -> None:
        self.answers: list[str] = []

    def __call__(self, parent: QWidget, caption: str) -> str:
        return self.answers.pop(0) if self.answers else ""


class Confirm:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def __call__(self, parent: QWidget, title: str, text: str) -> bool:
        self.asked.append(text)
        return self.answer


@pytest.fixture
def controller(tmp_path: Path, isolated_home: Path) -> SettingsController:
    engine = Engine(ModelConfig(model="tiny", device="cpu"), isolated_home / "models", local_files_only=True)
    return SettingsController(settings_with(), tmp_path / "settings.json", engine)


def make_panel(
    qtbot: QtBot, controller: SettingsController, confirm: Confirm | None = None
) -> tuple[WatchedFoldersPanel, Chooser]:
    chooser = Chooser()
    panel = WatchedFoldersPanel(controller, confirm=confirm or Confirm(True), choose_folder=chooser)
    qtbot.addWidget(panel)
    return panel, chooser


def saved(controller: SettingsController) -> tuple[WatchedFolder, ...]:
    return load_settings(controller.settings_file)[0].watched


def test_adding_and_editing_a_folder_saves_settings_and_shows_live_status(
    qtbot: QtBot,
    controller: SettingsController,
    make_bridge: Callable[..., WatcherBridge],
    inbox: Path,
    tmp_path: Path,
) -> None:
    panel, chooser = make_panel(qtbot, controller)
    bridge = make_bridge(controller.settings)
    controller.settingsChanged.connect(bridge.apply)
    bridge.statusChanged.connect(panel.set_status)
    bridge.start()

    chooser.answers = [str(inbox)]
    panel.add_button.click()
    assert saved(controller) == (WatchedFolder(path=str(inbox)),)
    assert panel.table.rowCount() == 1 and panel.selected_folder() == WatchedFolder(path=str(inbox))
    assert panel.status_text(str(inbox)) == "Watching"

    panel.recursive_box.click()
    out = tmp_path / "texts"
    out.mkdir()
    chooser.answers = [str(out)]
    panel.output_button.click()
    panel.policy_box.setCurrentIndex(panel.policy_box.findData("move"))
    expected = WatchedFolder(path=str(inbox), recursive=True, output_dir=str(out), after_processing="move")
    assert saved(controller) == (expected,)
    assert bridge.watcher is not None and bridge.watcher.folders[0].recursive
    assert [panel.table.item(0, c).text() for c in (2, 3, 4)] == ["yes", str(out), "move to done/"]

    panel.output_clear.click()
    panel.enabled_box.click()
    assert saved(controller)[0].output_dir is None and not saved(controller)[0].enabled
    assert panel.status_text(str(inbox)) == "Disabled"

    panel.remove_button.click()
    assert saved(controller) == () and panel.table.rowCount() == 0
    assert not panel.details.isEnabled()


def test_choosing_delete_asks_first(qtbot: QtBot, controller: SettingsController, inbox: Path) -> None:
    refuse = Confirm(False)
    panel, _ = make_panel(qtbot, controller, refuse)
    assert panel.add_folder(str(inbox))
    panel.policy_box.setCurrentIndex(panel.policy_box.findData("delete"))
    assert refuse.asked and "deleted permanently" in refuse.asked[0] and str(inbox) in refuse.asked[0]
    assert saved(controller)[0].after_processing == "leave"
    assert panel.policy_box.currentData() == "leave"  # the combo shows the policy still in force

    refuse.answer = True
    panel.policy_box.setCurrentIndex(panel.policy_box.findData("delete"))
    assert saved(controller)[0].after_processing == "delete"
    assert panel.table.item(0, 4).text() == "delete"


def test_bad_choices_are_explained_and_change_nothing(
    qtbot: QtBot, controller: SettingsController, inbox: Path, tmp_path: Path
) -> None:
    panel, _ = make_panel(qtbot, controller)
    problems: list[str] = []
    panel.problem.connect(problems.append)  # same thread: a plain callable is fine here
    a_file = tmp_path / "song.mp3"
    a_file.write_bytes(b"x")
    assert not panel.add_folder(str(a_file))
    assert panel.add_folder(str(inbox))
    assert not panel.add_folder(str(inbox) + "/")
    assert problems == [
        f"{a_file} is not a folder; choose a folder that holds recordings",
        f"{inbox}/ is already watched",
    ]
    assert panel.message.isVisibleTo(panel) and "already watched" in panel.message.text()
    assert saved(controller) == (WatchedFolder(path=str(inbox)),)


def test_error_status_is_shown_with_its_reason(
    qtbot: QtBot, controller: SettingsController, tmp_path: Path
) -> None:
    panel, _ = make_panel(qtbot, controller)
    gone = tmp_path / "share"
    gone.mkdir()
    assert panel.add_folder(str(gone))
    panel.set_status(str(gone), "error", "folder not found: the share is offline")
    assert panel.status_text(str(gone)) == "Error: folder not found: the share is offline"
    assert panel.table.item(0, 1).toolTip() == "folder not found: the share is offline"
    panel.set_status(str(gone), "polling", "native file events are unavailable")
    assert panel.status_text(str(gone)) == "Polling"
