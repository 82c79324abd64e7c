"""Feedback that tells the truth, as a user meets it in the assembled window (real engine, store, runner).

Canceling shows at once and a cancel is counted as canceled; pausing says which pause is in force; a job
that failed on its output offers Overwrite / Choose another folder; every key column fits at 1280×720;
the layout survives a restart; new rows scroll into view; long paths elide in the middle with a tooltip.
The random-weight model is used: nothing here depends on what is recognised.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QStyleOptionViewItem
from pytestqt.qtbot import QtBot

from whisperdesk.app import Desktop
from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, QUEUED, RUNNING, Job, JobStore
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings, WatchedFolder
from whisperdesk.devtools.synth_audio import noise, write_audio
from whisperdesk.ui import queue_view
from whisperdesk.ui.main_window import MainWindow
from whisperdesk.ui.queue_model import Column, JobTableModel
from whisperdesk.ui.queue_view import JobQueueView

pytestmark = pytest.mark.usefixtures("no_leaks")

WAIT_MS = 120_000  # an upper bound for slow machines; never a timing assertion
LONG_S = 900.0  # long enough that a job is still running when the test acts on it


@pytest.fixture
def paths(isolated_home: Path) -> AppPaths:
    return AppPaths.under(isolated_home).ensure()


@pytest.fixture
def make_desktop(
    paths: AppPaths, whisper_model_dir: Path, tmp_path: Path
) -> Iterator[Callable[..., Desktop]]:
    made: list[Desktop] = []

    def make(**settings_changes: object) -> Desktop:
        settings = Settings(
            model=ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=1),
            decode=DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=8),
            output=OutputOptions(formats=("txt",), output_dir=str(tmp_path / "out")),
        ).replace(**settings_changes)  # type: ignore[arg-type]
        desktop = Desktop(paths, settings, use_tray=False, confirm=lambda *a: True)
        made.append(desktop)
        return desktop

    yield make
    while made:
        desktop = made.pop()
        desktop.window.hide()
        desktop.shutdown()
        del desktop
    # Collect the app's reference cycles now, not at a random later allocation: a collection that runs
    # while another test (or no_leaks) walks QApplication.allWidgets() would delete widgets under it.
    gc.collect()


def recording(folder: Path, name: str, seconds: float = 3.0, seed: int = 0) -> Path:
    return write_audio(folder / name, noise(seconds, amplitude=0.3, seed=seed))


def state_text(model: JobTableModel, job_id: int) -> str:
    row = model.row_of(job_id)
    return "" if row is None else str(model.index(row, int(Column.STATE)).data())


def only_job(store: JobStore) -> Job:
    jobs = store.list()
    assert len(jobs) == 1, jobs
    return jobs[0]


def start_long_job(desktop: Desktop, qtbot: QtBot, tmp_path: Path) -> Job:
    desktop.show()
    desktop.runner.add_files([recording(tmp_path / "in", "long meeting.wav", LONG_S)])
    qtbot.waitUntil(lambda: bool(desktop.store.list([RUNNING])), timeout=WAIT_MS)
    job = only_job(desktop.store)
    qtbot.waitUntil(lambda: state_text(desktop.model, job.id) == "Running", timeout=WAIT_MS)
    return job


# --- cancel ------------------------------------------------------------------------------------------------
def test_cancel_shows_canceling_at_once_and_is_counted_as_canceled(
    make_desktop: Callable[..., Desktop], qtbot: QtBot, tmp_path: Path
) -> None:
    desktop = make_desktop()
    notices: list[tuple[str, str]] = []
    desktop.notifier.notified.connect(lambda title, text: notices.append((title, text)))
    job = start_long_job(desktop, qtbot, tmp_path)
    view = desktop.view
    assert view.select_job(job.id) and view.cancel_action.isEnabled()

    view.cancel_action.trigger()
    assert state_text(desktop.model, job.id) == "Canceling…"  # before the worker has even seen the flag
    assert not view.cancel_action.isEnabled()  # asking twice would change nothing

    qtbot.waitUntil(lambda: state_text(desktop.model, job.id) == "Canceled", timeout=WAIT_MS)
    assert desktop.store.get(job.id).state == CANCELED  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: bool(notices), timeout=WAIT_MS)
    assert notices == [("Queue finished", "1 canceled")]
    qtbot.waitUntil(lambda: "canceled" in desktop.window.queue_status_text, timeout=WAIT_MS)
    assert desktop.window.queue_status_text == "Queue: finished, 0 done, 1 canceled"


# --- pause -------------------------------------------------------------------------------------------------
def test_pause_after_current_then_now_says_which_and_requeues_the_running_job(
    make_desktop: Callable[..., Desktop], qtbot: QtBot, tmp_path: Path
) -> None:
    desktop = make_desktop()
    window = desktop.window
    job = start_long_job(desktop, qtbot, tmp_path)
    assert window.pause_status_text == ""

    window.pause_action.trigger()  # the default: let the running job finish
    if not desktop.runner.is_busy():  # on a loaded machine the random model may already have finished it
        assert window.pause_status_text == "Paused: queued jobs wait until you resume"
        return
    assert window.pause_status_text == "Paused after the current job: the running job is finishing"
    assert window.pause_now_action.isEnabled()  # the user may still want it stopped now

    window.pause_now_action.trigger()
    qtbot.waitUntil(lambda: desktop.store.get(job.id).state == QUEUED, timeout=WAIT_MS)  # type: ignore[union-attr]
    back = desktop.store.get(job.id)
    assert back is not None and back.attempts == 0 and back.error is None  # not a failure, not an attempt
    qtbot.waitUntil(lambda: not desktop.runner.is_busy(), timeout=WAIT_MS)
    assert window.pause_status_text == "Paused: queued jobs wait until you resume"
    assert state_text(desktop.model, job.id) == "Queued"

    window.pause_action.trigger()  # resume: it runs again
    qtbot.waitUntil(lambda: desktop.store.get(job.id).state == RUNNING, timeout=WAIT_MS)  # type: ignore[union-attr]
    assert window.pause_status_text == ""


# --- output problems ----------------------------------------------------------------------------------------
def test_a_foreign_file_in_the_way_offers_overwrite_and_another_folder(
    make_desktop: Callable[..., Desktop], qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "talk.txt").write_text("my own notes\n")
    (out / "memo.txt").write_text("shopping list\n")
    desktop = make_desktop()
    desktop.show()
    view = desktop.view
    desktop.runner.add_files([recording(tmp_path / "in", "talk.wav", seed=1)])
    qtbot.waitUntil(lambda: [j.state for j in desktop.store.list()] == [FAILED], timeout=WAIT_MS)
    failed = only_job(desktop.store)
    qtbot.waitUntil(lambda: state_text(desktop.model, failed.id) == "Failed", timeout=WAIT_MS)
    error = desktop.model.index(desktop.model.row_of(failed.id) or 0, int(Column.ERROR)).data()
    assert error == "talk.txt is in the way: Overwrite or Choose another folder…"
    tooltip = desktop.model.index(desktop.model.row_of(failed.id) or 0, int(Column.ERROR)).data(
        Qt.ItemDataRole.ToolTipRole
    )
    assert str(out / "talk.txt") in tooltip and "--overwrite" not in tooltip
    delegate = view.table.itemDelegateForColumn(int(Column.ERROR))
    option = QStyleOptionViewItem()
    delegate.initStyleOption(
        option, desktop.model.index(desktop.model.row_of(failed.id) or 0, int(Column.ERROR))
    )
    assert option.textElideMode == Qt.TextElideMode.ElideRight  # "talk.txt is in the way" stays readable

    assert view.select_job(failed.id)
    assert view.buttons["Overwrite"].isVisibleTo(view) and view.buttons["Choose another folder…"].isVisibleTo(
        view
    )
    menu = view.context_menu()
    assert [a.text() for a in menu.actions()][:2] == ["Overwrite", "Choose another folder…"]
    menu.deleteLater()

    view.overwrite_action.trigger()
    qtbot.waitUntil(lambda: [j.state for j in desktop.store.list()] == [DONE], timeout=WAIT_MS)
    assert (out / "talk.txt").read_text() != "my own notes\n"  # replaced, as the user chose
    assert desktop.store.get(failed.id).state == DONE  # type: ignore[union-attr]  # the same row, run again

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setattr(queue_view, "ask_directory", lambda parent, caption: str(elsewhere))
    desktop.runner.add_files([recording(tmp_path / "in", "memo.wav", seed=2)])
    qtbot.waitUntil(lambda: FAILED in [j.state for j in desktop.store.list()], timeout=WAIT_MS)
    memo = next(j for j in desktop.store.list() if j.state == FAILED)
    qtbot.waitUntil(lambda: state_text(desktop.model, memo.id) == "Failed", timeout=WAIT_MS)
    assert view.select_job(memo.id)
    view.other_folder_action.trigger()
    qtbot.waitUntil(lambda: (elsewhere / "memo.txt").exists(), timeout=WAIT_MS)
    assert (out / "memo.txt").read_text() == "shopping list\n"  # the user's file is untouched
    assert not view.buttons["Overwrite"].isVisibleTo(view)


def test_output_actions_stay_hidden_for_other_failures(qtbot: QtBot, store: JobStore, tmp_path: Path) -> None:
    model = JobTableModel(store)
    view = JobQueueView(model, choose_folder=lambda parent, caption: "")
    model.setParent(view)  # the view never outlives its model
    qtbot.addWidget(view)
    try:
        job = store.add(recording(tmp_path / "in", "x.wav")).job
        store.claim_next()
        store.mark_failed(job.id, "could not decode: damaged header")
        qtbot.waitUntil(lambda: state_text(model, job.id) == "Failed")
        view.select_job(job.id)
        assert view.retry_action.isEnabled() and not view.overwrite_action.isEnabled()
        assert not view.buttons["Choose another folder…"].isVisibleTo(view)
        assert "Overwrite" not in [a.text() for a in view.context_menu().actions()]
    finally:
        model.close()


# --- layout ---------------------------------------------------------------------------------------------------
def visible_columns(view: JobQueueView) -> list[str]:
    """The headers whose whole section lies inside the table's viewport (no scrolling needed)."""
    header = view.table.horizontalHeader()
    width = view.table.viewport().width()
    return [
        str(view.table.model().headerData(c, Qt.Orientation.Horizontal))
        for c in range(header.count())
        if not header.isSectionHidden(c)
        and header.sectionViewportPosition(c) >= 0
        and header.sectionViewportPosition(c) + header.sectionSize(c) <= width
    ]


def test_every_key_column_fits_at_1280x720(make_desktop: Callable[..., Desktop], qtbot: QtBot) -> None:
    desktop = make_desktop()
    window = desktop.window
    window.resize(1280, 720)
    desktop.show()
    qtbot.waitExposed(window)
    view = desktop.view
    assert visible_columns(view) == [
        "File", "State", "Progress", "Duration", "Elapsed", "ETA", "Speed", "Language", "Speakers", "Error"
    ]  # fmt: skip
    assert not view.table.horizontalScrollBar().isVisible()
    assert view.table.horizontalHeader().sectionSize(int(Column.ERROR)) >= 120  # room to read an error
    assert MainWindow.default_size() <= (1280, 720)


def test_size_docks_and_columns_survive_a_restart(
    make_desktop: Callable[..., Desktop], paths: AppPaths, qtbot: QtBot
) -> None:
    first = make_desktop()
    window = first.window
    first.show()
    qtbot.waitExposed(window)
    window.resize(790, 640)  # inside the offscreen screen (800×800): Qt fits restored geometry to it
    docks = {d.windowTitle(): d for d in window.findChildren(QDockWidget)}
    qtbot.waitUntil(lambda: window.width() == 790)
    default_dock = docks["Watched folders"].width()
    window.resizeDocks([docks["Watched folders"]], [default_dock - 20], Qt.Orientation.Horizontal)
    first.view.table.horizontalHeader().resizeSection(int(Column.FILE), 333)
    qtbot.waitUntil(lambda: docks["Watched folders"].width() != default_dock)
    dock_width = docks["Watched folders"].width()
    first.window.hide()
    first.shutdown()
    saved = json.loads(paths.window_state_file.read_text())
    assert set(saved["layout"]) == {"geometry", "docks", "queue_columns"}

    second = make_desktop()
    window = second.window
    second.show()
    qtbot.waitExposed(window)
    docks = {d.windowTitle(): d for d in window.findChildren(QDockWidget)}
    qtbot.waitUntil(lambda: (window.width(), window.height()) == (790, 640))
    assert docks["Watched folders"].width() == dock_width
    assert second.view.table.horizontalHeader().sectionSize(int(Column.FILE)) == 333


def test_a_damaged_layout_file_means_the_default_layout(
    make_desktop: Callable[..., Desktop], paths: AppPaths, qtbot: QtBot
) -> None:
    paths.window_state_file.write_text("{not json")
    desktop = make_desktop()
    assert not desktop.window.restore_layout()
    assert (
        desktop.view.table.horizontalHeader().sectionSize(int(Column.FILE))
        == queue_view.COLUMN_WIDTHS[Column.FILE]
    )


def test_new_rows_scroll_into_view(qtbot: QtBot, store: JobStore, tmp_path: Path) -> None:
    for i in range(30):
        store.add(recording(tmp_path / "in", f"old {i}.wav", 0.5, seed=i))
    model = JobTableModel(store)
    view = JobQueueView(model)
    model.setParent(view)  # the view never outlives its model
    qtbot.addWidget(view)
    view.resize(700, 220)
    view.show()
    qtbot.waitExposed(view)
    try:
        view.table.scrollToTop()
        new = store.add(recording(tmp_path / "in", "new.wav", 0.5, seed=99)).job
        qtbot.waitUntil(lambda: model.row_of(new.id) is not None)
        index = model.index(model.row_of(new.id) or 0, 0)
        qtbot.waitUntil(lambda: view.table.viewport().rect().contains(view.table.visualRect(index)))
    finally:
        model.close()


def test_long_paths_elide_in_the_middle_with_the_full_path_as_tooltip(
    make_desktop: Callable[..., Desktop], qtbot: QtBot, tmp_path: Path
) -> None:
    deep = tmp_path / "Recordings" / "2026" / "customer interviews" / "north region" / "Recorder watch"
    deep.mkdir(parents=True)
    desktop = make_desktop(watched=(WatchedFolder(path=str(deep)),))
    desktop.show()
    qtbot.waitExposed(desktop.window)
    panel = desktop.watched_panel
    assert panel.table.textElideMode() == Qt.TextElideMode.ElideMiddle
    item = panel.table.item(0, 0)
    assert item.text() == str(deep) and item.toolTip().splitlines()[0] == str(deep)
    shown = panel.table.fontMetrics().elidedText(
        item.text(), panel.table.textElideMode(), panel.table.columnWidth(0) - 8
    )
    assert shown != str(deep) and shown.endswith("Recorder watch")  # the folder's own name stays readable
    assert shown.startswith(str(tmp_path)[:4])
    assert all(panel.table.isColumnHidden(c) for c in (2, 3, 4))  # details are in the form below

    long_name = "a very long name of a recording from the quarterly planning meeting of march.wav"
    desktop.runner.add_files([recording(deep, long_name)])
    qtbot.waitUntil(lambda: desktop.model.rowCount() == 1, timeout=WAIT_MS)
    view = desktop.view
    assert view.table.textElideMode() == Qt.TextElideMode.ElideMiddle
    index = desktop.model.index(0, int(Column.FILE))
    assert index.data() == long_name and index.data(Qt.ItemDataRole.ToolTipRole) == str(deep / long_name)


# --- settings problems --------------------------------------------------------------------------------------
def test_a_reset_settings_file_is_said_in_the_window(qtbot: QtBot, paths: AppPaths) -> None:
    from whisperdesk.core.settings import load_settings

    paths.settings_file.write_text("{ this is not json")
    _, problems = load_settings(paths.settings_file)
    window = MainWindow()
    qtbot.addWidget(window)
    window.show_settings_problem(paths.settings_file, problems)
    banner = window.settings_banner
    assert banner.showing and banner.level == "warning" and banner.title == "Settings reset"
    assert "could not be read" in banner.text and "settings.json.bak" in banner.text
    assert "Expecting" not in banner.text  # the parser's words stay in the log
    window.show_warning("something else happened")  # another message does not hide it
    assert banner.showing and window.banner.showing
    banner.dismiss()
    assert not banner.showing


def test_the_status_line_while_running_says_failed_and_canceled_apart(
    store: JobStore, tmp_path: Path
) -> None:
    from whisperdesk.core.queue_stats import summarize

    jobs = [store.add(recording(tmp_path / "in", f"r{i}.wav", 0.5, seed=i)).job for i in range(4)]
    for _ in range(4):
        store.claim_next()
    store.mark_canceled(jobs[0].id)
    store.mark_failed(jobs[1].id, "could not decode: damaged header")
    store.mark_done(jobs[2].id, outputs=[], duration=0.5, language="en", processing_time=0.1)
    text = summarize(store.list(), store.clock.time()).text()
    assert text.startswith("Queue: 1 of 4 done · 1 failed · 1 canceled · 1 running")
