"""The job table model and queue view: rows follow the store in place, live progress, row actions.

The end-to-end test runs real files through the runner and the real engine; the others drive the store
directly, including from a second JobStore on the same file (what another process does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, QUrl, Slot
from pytestqt.qtbot import QtBot

from whisperdesk.core.engine import Engine
from whisperdesk.core.jobstore import CANCELED, DONE, RUNNING, Job, JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.processor import JobProcessor
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings
from whisperdesk.devtools.synth_audio import noise, write_audio
from whisperdesk.services.job_runner import JobRunner
from whisperdesk.services.queue_summary import QueueSummaryFeed
from whisperdesk.ui.queue_model import HEADERS, Column, JobIdRole, JobTableModel, ProgressRole
from whisperdesk.ui.queue_view import JobQueueView, transcript_of

FAST = DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=16)
WAIT_MS = 60_000  # an upper bound for slow CI machines; never a timing assertion


class ModelWatch(QObject):
    """Records what the model tells its views; a reset would throw away selection and scroll position."""

    def __init__(self, model: JobTableModel) -> None:
        super().__init__()
        self.model = model
        self.resets = 0
        self.inserted: list[int] = []
        self.removed: list[int] = []
        self.changed_rows: list[int] = []
        self.progress: dict[int, list[float]] = {}
        model.modelReset.connect(self.on_reset)
        model.rowsInserted.connect(self.on_inserted)
        model.rowsAboutToBeRemoved.connect(self.on_removed)
        model.dataChanged.connect(self.on_changed)

    @Slot()
    def on_reset(self) -> None:
        self.resets += 1

    @Slot(QModelIndex, int, int)
    def on_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        self.inserted += [self.model.job_at(r).id for r in range(first, last + 1)]

    @Slot(QModelIndex, int, int)
    def on_removed(self, parent: QModelIndex, first: int, last: int) -> None:
        self.removed += [self.model.job_at(r).id for r in range(first, last + 1)]

    @Slot(QModelIndex, QModelIndex, "QList<int>")
    def on_changed(self, top: QModelIndex, bottom: QModelIndex, roles: list[int]) -> None:
        for row in range(top.row(), bottom.row() + 1):
            self.changed_rows.append(row)
            if top.column() <= Column.PROGRESS <= bottom.column():
                job = self.model.job_at(row)
                self.progress.setdefault(job.id, []).append(
                    self.model.index(row, Column.PROGRESS).data(ProgressRole)
                )


pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def make_model(qtbot: QtBot, store: JobStore) -> Iterator[Callable[..., JobTableModel]]:
    made: list[JobTableModel] = []

    def make(**kwargs: object) -> JobTableModel:
        model = JobTableModel(store, **kwargs)  # type: ignore[arg-type]
        made.append(model)
        return model

    yield make
    for model in made:
        model.close()
        assert [t for t in model.timers() if t.isActive()] == []
        model.deleteLater()


def audio(folder: Path, name: str, seconds: float = 3.0, seed: int = 0) -> Path:
    return write_audio(folder / name, noise(seconds, amplitude=0.3, seed=seed))


def cell(
    model: JobTableModel, job_id: int, column: Column, role: int = Qt.ItemDataRole.DisplayRole
) -> object:
    row = model.row_of(job_id)
    assert row is not None, f"job {job_id} has no row"
    return model.index(row, int(column)).data(role)


# --- end to end ---------------------------------------------------------------------------------------
def test_files_added_appear_run_to_100_percent_and_finish_with_outputs(
    qtbot: QtBot,
    store: JobStore,
    make_model: Callable[..., JobTableModel],
    whisper_model_dir: Path,
    tmp_path: Path,
) -> None:
    config = ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=1)
    settings = Settings(model=config, decode=FAST, output=OutputOptions(formats=("txt", "srt")))
    engine = Engine(config, tmp_path / "models")
    processor = JobProcessor(store, engine, OutputLedger(tmp_path / "ledger.json"), lambda: settings)
    model = make_model()
    runner = JobRunner(store, processor, lambda: settings, feed=model.feed)
    summary = QueueSummaryFeed(store, model.feed, runner)
    watch = ModelWatch(model)
    view = JobQueueView(model)
    runner.jobProgress.connect(model.on_job_progress)
    summary.durationProbed.connect(model.set_probed_duration)
    try:
        files = [audio(tmp_path / "in", f"rec{i}.wav", 2.0 + 2 * i, seed=i) for i in range(3)]
        runner.start()
        runner.add_files(files)  # what MainWindow.filesAdded delivers
        qtbot.waitUntil(lambda: model.rowCount() == 3, timeout=WAIT_MS)
        assert [model.job_at(r).source for r in range(3)] == files
        assert [cell(model, j.id, Column.FILE) for j in model.jobs()] == [f.name for f in files]
        qtbot.waitUntil(lambda: all(j.state == DONE for j in model.jobs()), timeout=WAIT_MS)
    finally:
        assert runner.shutdown(WAIT_MS) and summary.shutdown(WAIT_MS)
        runner.deleteLater()
        summary.deleteLater()
    assert watch.resets == 0
    assert len(watch.inserted) == 3
    for job in model.jobs():
        assert cell(model, job.id, Column.STATE) == "Done"
        assert cell(model, job.id, Column.PROGRESS) == "100 %"
        assert cell(model, job.id, Column.PROGRESS, ProgressRole) == 1.0
        assert cell(model, job.id, Column.DURATION) == f"0:0{round(job.duration or 0)}"
        assert str(cell(model, job.id, Column.SPEED)).endswith("×")
        assert cell(model, job.id, Column.ELAPSED) != ""
        assert cell(model, job.id, Column.ERROR) == ""
        seen = watch.progress[job.id]
        assert seen[-1] == 1.0 and seen == sorted(seen)  # the bar only ever moved forward
        assert all(p.is_file() for p in job.outputs) and {p.suffix for p in job.outputs} == {".txt", ".srt"}
        assert transcript_of(job) == job.source.with_suffix(".txt")
    view.table.resize(900, 300)
    assert not view.grab().isNull()  # paints every column, the progress bars included
    view.deleteLater()


# --- other processes and ordering ---------------------------------------------------------------------
def test_rows_follow_changes_made_by_another_process(
    qtbot: QtBot, store: JobStore, make_model: Callable[..., JobTableModel], tmp_path: Path
) -> None:
    first = store.add(audio(tmp_path, "existing.wav", seed=1)).job
    model = make_model(poll_ms=20)
    watch = ModelWatch(model)
    assert [j.id for j in model.jobs()] == [first.id]

    other = JobStore(store.path)  # its changes reach this process only through the file
    try:
        second = other.add(audio(tmp_path, "from-cli.wav", seed=2), origin="cli").job
        qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=WAIT_MS)
        claimed = other.claim_next()
        assert claimed is not None and claimed.id == first.id
        other.mark_progress(first.id, 0.4, duration=3.0, language="en")
        qtbot.waitUntil(lambda: cell(model, first.id, Column.PROGRESS) == "40 %", timeout=WAIT_MS)
        assert cell(model, first.id, Column.STATE) == "Running"
        assert cell(model, first.id, Column.DURATION) == "0:03"
        assert cell(model, first.id, Column.LANGUAGE) == "en"
        other.mark_failed(first.id, "could not decode: damaged header\nmore detail")
        qtbot.waitUntil(lambda: cell(model, first.id, Column.STATE) == "Failed", timeout=WAIT_MS)
        assert cell(model, first.id, Column.ERROR) == "could not decode: damaged header"
        assert cell(model, first.id, Column.PROGRESS) == ""  # no bar: a full one would read as success
        assert cell(model, first.id, Column.PROGRESS, ProgressRole) is None
        assert "more detail" in str(cell(model, first.id, Column.ERROR, Qt.ItemDataRole.ToolTipRole))
        other.remove(second.id)
        qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=WAIT_MS)
    finally:
        other.close()
    assert watch.resets == 0
    assert watch.inserted == [second.id] and watch.removed == [second.id]
    assert model.row_of(second.id) is None


def test_store_events_of_this_process_update_rows_without_polling(
    qtbot: QtBot, store: JobStore, make_model: Callable[..., JobTableModel], tmp_path: Path
) -> None:
    model = make_model(poll_ms=3_600_000)  # only the listener can deliver
    a = store.add(audio(tmp_path, "a.wav", seed=3)).job
    b = store.add(audio(tmp_path, "b.wav", seed=4)).job
    qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=WAIT_MS)
    done_in_thread = threading.Thread(target=lambda: store.mark_canceled(b.id))  # like a pool thread
    done_in_thread.start()
    done_in_thread.join()
    qtbot.waitUntil(lambda: cell(model, b.id, Column.STATE) == "Canceled", timeout=WAIT_MS)
    assert cell(model, b.id, Column.PROGRESS) == "stopped at 0 %"
    assert cell(model, a.id, Column.STATE) == "Queued"
    store.archive_finished()
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=WAIT_MS)
    assert model.row_of(b.id) is None


def test_an_older_record_never_overwrites_a_newer_one(
    qtbot: QtBot, store: JobStore, make_model: Callable[..., JobTableModel], tmp_path: Path
) -> None:
    job = store.add(audio(tmp_path, "order.wav", seed=5)).job
    model = make_model(poll_ms=3_600_000)
    stale: Job = store.require(job.id)
    store.mark_canceled(job.id)
    qtbot.waitUntil(lambda: cell(model, job.id, Column.STATE) == "Canceled", timeout=WAIT_MS)
    model.apply(stale)  # an event that was posted earlier but arrives late
    assert model.job(job.id) is not None and model.job(job.id).state == CANCELED  # type: ignore[union-attr]
    store.remove(job.id)
    qtbot.waitUntil(lambda: model.rowCount() == 0, timeout=WAIT_MS)
    model.apply(stale)  # a removed job never comes back
    assert model.rowCount() == 0


def test_live_progress_moves_the_bar_between_store_writes(
    qtbot: QtBot, store: JobStore, make_model: Callable[..., JobTableModel], tmp_path: Path
) -> None:
    now = [1_000_000.0]
    job = store.add(audio(tmp_path, "live.wav", seed=6)).job
    model = make_model(poll_ms=3_600_000, clock=lambda: now[0])
    running = store.claim_next()
    assert running is not None
    qtbot.waitUntil(lambda: cell(model, job.id, Column.STATE) == "Running", timeout=WAIT_MS)
    started = model.job(job.id).started_at  # type: ignore[union-attr]
    assert started is not None
    now[0] = started + 10.0
    model.on_job_progress(job.id, 30.0, 120.0)  # 30 s of audio in 10 s: 3× realtime
    assert cell(model, job.id, Column.PROGRESS) == "25 %"
    assert cell(model, job.id, Column.PROGRESS, ProgressRole) == pytest.approx(0.25)
    assert cell(model, job.id, Column.DURATION) == "2:00"
    assert cell(model, job.id, Column.ELAPSED) == "0:10"
    assert cell(model, job.id, Column.SPEED) == "3.0×"
    assert cell(model, job.id, Column.ETA) == "0:30"
    store.mark_done(job.id, duration=120.0, processing_time=40.0)
    qtbot.waitUntil(lambda: cell(model, job.id, Column.STATE) == "Done", timeout=WAIT_MS)
    assert cell(model, job.id, Column.PROGRESS) == "100 %" and cell(model, job.id, Column.ETA) == ""


def test_probed_duration_fills_the_column_before_the_job_starts(
    store: JobStore, make_model: Callable[..., JobTableModel], tmp_path: Path
) -> None:
    job = store.add(audio(tmp_path, "queued.wav", seed=7)).job
    model = make_model(poll_ms=3_600_000)
    assert cell(model, job.id, Column.DURATION) == ""
    model.set_probed_duration(job.id, 75.0)
    assert cell(model, job.id, Column.DURATION) == "1:15"
    assert cell(model, job.id, Column.FILE, JobIdRole) == job.id
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in Column] == list(HEADERS.values())


# --- the view's row actions ---------------------------------------------------------------------------
class Requests(QObject):
    def __init__(self, view: JobQueueView) -> None:
        super().__init__()
        self.retry: list[int] = []
        self.cancel: list[int] = []
        self.remove: list[int] = []
        self.problems: list[str] = []
        view.retryRequested.connect(self.on_retry)
        view.cancelRequested.connect(self.on_cancel)
        view.removeRequested.connect(self.on_remove)
        view.openFailed.connect(self.on_problem)

    @Slot(int)
    def on_retry(self, job_id: int) -> None:
        self.retry.append(job_id)

    @Slot(int)
    def on_cancel(self, job_id: int) -> None:
        self.cancel.append(job_id)

    @Slot(int)
    def on_remove(self, job_id: int) -> None:
        self.remove.append(job_id)

    @Slot(str)
    def on_problem(self, message: str) -> None:
        self.problems.append(message)


def test_row_actions_follow_the_selection_and_open_the_right_places(
    qtbot: QtBot, store: JobStore, make_model: Callable[..., JobTableModel], tmp_path: Path
) -> None:
    done_src = audio(tmp_path / "done", "talk.wav", seed=8)
    queued_src = audio(tmp_path / "waiting", "next.wav", seed=9)
    done = store.add(done_src).job
    queued = store.add(queued_src).job
    claimed = store.claim_next()
    assert claimed is not None and claimed.id == done.id
    out = tmp_path / "out"
    out.mkdir()
    (out / "talk.srt").write_text("1\n", encoding="utf-8")
    (out / "talk.txt").write_text("text\n", encoding="utf-8")
    store.mark_done(done.id, outputs=[out / "talk.srt", out / "talk.txt"], duration=3.0)

    opened: list[QUrl] = []

    def opener(url: QUrl) -> bool:
        opened.append(url)
        return True

    model = make_model(poll_ms=3_600_000)
    view = JobQueueView(model, open_url=opener)
    qtbot.addWidget(view)
    requests = Requests(view)

    assert view.select_job(done.id)
    assert view.open_action.isEnabled() and view.retry_action.isEnabled()
    assert not view.cancel_action.isEnabled()
    view.open_transcript()
    view.open_folder()
    assert [Path(u.toLocalFile()) for u in opened] == [out / "talk.txt", out]
    view.retry_action.trigger()
    assert requests.retry == [done.id] and requests.cancel == []

    assert view.select_job(queued.id)
    assert view.cancel_action.isEnabled() and not view.open_action.isEnabled()
    assert not view.retry_action.isEnabled() and view.buttons["Cancel"].isEnabled()
    view.buttons["Cancel"].click()
    view.buttons["Remove"].click()
    assert requests.cancel == [queued.id] and requests.remove == [queued.id]
    view.open_folder()
    assert Path(opened[-1].toLocalFile()) == queued_src.parent

    (out / "talk.txt").unlink()
    (out / "talk.srt").unlink()
    view.select_job(done.id)
    view.open_transcript()
    assert requests.problems == ["the transcripts of talk.wav are no longer on disk"]

    view.table.clearSelection()
    assert not any(a.isEnabled() for a in view.actions_in_order)


def test_running_rows_are_repainted_each_tick_without_a_reset(
    qtbot: QtBot, store: JobStore, make_model: Callable[..., JobTableModel], tmp_path: Path
) -> None:
    store.add(audio(tmp_path, "idle.wav", seed=10))
    job = store.add(audio(tmp_path, "tick.wav", seed=11)).job
    model = make_model(poll_ms=3_600_000)
    watch = ModelWatch(model)
    model.poll()
    assert watch.changed_rows == []  # nothing running, nothing changed: a tick costs nothing
    store.claim_next()
    store.claim_next()
    qtbot.waitUntil(lambda: cell(model, job.id, Column.STATE) == "Running", timeout=WAIT_MS)
    watch.changed_rows.clear()
    model.poll()
    assert sorted(set(watch.changed_rows)) == [0, 1] and watch.resets == 0
    assert all(model.job_at(r).state == RUNNING for r in range(2))


def test_index_helpers_ignore_invalid_indexes(
    store: JobStore, make_model: Callable[..., JobTableModel]
) -> None:
    model = make_model(poll_ms=3_600_000)
    assert model.rowCount() == 0
    assert model.data(QModelIndex()) is None
    assert model.data(QPersistentModelIndex()) is None
    assert model.rowCount(model.index(0, 0)) == 0


def test_an_empty_queue_says_what_to_do_and_the_hint_leaves_with_the_first_row(
    qtbot: QtBot, store: JobStore, make_model: Callable[..., JobTableModel], tmp_path: Path
) -> None:
    model = make_model(poll_ms=3_600_000)
    view = JobQueueView(model)
    qtbot.addWidget(view)
    assert view.empty_hint.isVisibleTo(view) and "Drop audio or video files" in view.empty_hint.text()
    job = store.add(audio(tmp_path, "a.wav", seed=5)).job
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=WAIT_MS)
    assert not view.empty_hint.isVisibleTo(view)
    assert store.remove(job.id)
    qtbot.waitUntil(lambda: model.rowCount() == 0, timeout=WAIT_MS)
    assert view.empty_hint.isVisibleTo(view)


def test_a_failed_row_shows_its_whole_reason_with_retry_and_copy(
    qtbot: QtBot, store: JobStore, make_model: Callable[..., JobTableModel], tmp_path: Path
) -> None:
    """The Error column cuts a long reason off; double-click (or "Why it failed…") shows all of it."""
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QPushButton

    source = audio(tmp_path, "interview.wav", seed=3)
    job = store.add(source).job
    assert store.claim_next() is not None
    reason = (
        f"{source}: the file ends in the middle of its audio (it may still be copying, or the download was cut "
        "short); wait until it is complete, then choose Retry"
    )
    store.mark_failed(job.id, reason)
    model = make_model(poll_ms=3_600_000)
    view = JobQueueView(model, open_url=lambda _u: True)
    qtbot.addWidget(view)
    requests = Requests(view)
    assert not view.error_action.isEnabled()
    assert view.select_job(job.id)
    assert view.error_action.isEnabled() and view.error_action in view.context_menu().actions()

    box = view.error_box(store.get(job.id))
    assert reason in box.informativeText() and box.text() == "interview.wav could not be transcribed."
    assert "Traceback" not in box.informativeText()
    box.deleteLater()

    def press(name: str) -> None:
        dialog = view.error_dialog
        assert dialog is not None and dialog.isVisible()
        dialog.findChild(QPushButton, name).click()

    QTimer.singleShot(50, lambda: press("errorCopy"))
    row = model.row_of(job.id)
    assert row is not None
    view.show()
    qtbot.waitExposed(view)
    cell_rect = view.table.visualRect(model.index(row, int(Column.FILE)))
    # a real double-click: the view only reacts to the second click on the row the first one pressed
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=cell_rect.center())
    qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=cell_rect.center())
    assert QGuiApplication.clipboard().text() == f"{source}\n{reason}"
    assert requests.retry == []
    QTimer.singleShot(50, lambda: press("errorRetry"))
    view.error_action.trigger()
    assert requests.retry == [job.id] and view.error_dialog is None
