"""The assembled desktop app (real engine, store, runner, watcher, GPU gauges) as a user drives it."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from test_ui_shell import drop_on

from whisperdesk.app import Desktop
from whisperdesk.core.jobstore import DONE
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import (
    DecodeOptions,
    ModelConfig,
    OutputOptions,
    Settings,
    UiOptions,
    WatchedFolder,
)
from whisperdesk.devtools.synth_audio import noise, tone, write_audio
from whisperdesk.ui.gpu_panel import NO_GPU_TEXT

pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def desktop(isolated_home: Path, whisper_model_dir: Path, tmp_path: Path) -> Iterator[Desktop]:
    paths = AppPaths.under(isolated_home).ensure()
    settings = Settings(
        model=ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=1),
        decode=DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=16),
        output=OutputOptions(formats=("txt", "json"), output_dir=str(tmp_path / "out")),
    )
    app = Desktop(paths, settings, use_tray=False, confirm=lambda *a: True)
    yield app
    app.window.hide()
    app.shutdown()


def _recordings(folder: Path, count: int, seconds: float = 8.0) -> list[Path]:
    return [
        write_audio(
            folder / f"recording {i}.wav",
            noise(seconds, amplitude=0.2, seed=i) + tone(300 + 50 * i, seconds, amplitude=0.2),
        )
        for i in range(count)
    ]


def test_dropped_recordings_are_transcribed_with_live_progress(
    desktop: Desktop, qtbot: QtBot, tmp_path: Path
) -> None:
    desktop.show()
    qtbot.waitExposed(desktop.window)
    files = _recordings(tmp_path / "in", 3)
    progress: list[tuple[int, float, float, float]] = []
    desktop.runner.jobProgress.connect(lambda i, d, t: progress.append((i, d, t, time.monotonic())))
    notices: list[tuple[str, str]] = []
    desktop.notifier.notified.connect(lambda title, text: notices.append((title, text)))
    summaries: list[str] = []
    desktop.summary.queueSummary.connect(lambda text, f: summaries.append(text))

    assert drop_on(desktop.window, files) == (True, True, True)

    qtbot.waitUntil(lambda: desktop.store.counts().get(DONE, 0) == 3, timeout=120_000)
    qtbot.waitUntil(
        lambda: any("queue" in t.lower() or "done" in t.lower() for t, _ in notices), timeout=10_000
    )
    assert desktop.model.rowCount() == 3
    for job in desktop.store.list():
        assert job.state == DONE and job.progress == 1.0
        assert {p.suffix for p in job.outputs} == {".txt", ".json"}
        assert all(p.exists() for p in job.outputs)
    jobs = {j.id for j in desktop.store.list()}
    assert {i for i, *_ in progress} == jobs
    for job_id in jobs:
        mine = [(d, t, at) for i, d, t, at in progress if i == job_id]
        assert [d for d, _, _ in mine] == sorted(d for d, _, _ in mine)
        assert mine[-1][0] == mine[-1][1]  # reaches 100 %
        gaps = [b[2] - a[2] for a, b in itertools.pairwise(mine)]
        # throttled to about 10 updates a second; the final 100 % is flushed at once when the job ends
        assert all(gap >= 0.08 for gap in gaps[:-1])
    assert summaries  # the status bar was told about the queue
    assert any(files[0].name in text or "finished" in title.lower() for title, text in notices)


def test_compute_type_change_applies_to_the_next_job(desktop: Desktop, qtbot: QtBot, tmp_path: Path) -> None:
    desktop.show()
    first, second = _recordings(tmp_path / "in", 2, seconds=4.0)
    desktop.runner.add_paths([first])
    qtbot.waitUntil(lambda: desktop.store.counts().get(DONE, 0) == 1, timeout=60_000)
    settings = desktop.controller.settings
    desktop.controller.apply(
        dataclasses.replace(settings, model=dataclasses.replace(settings.model, compute_type="float32"))
    )
    desktop.runner.add_paths([second])
    qtbot.waitUntil(lambda: desktop.store.counts().get(DONE, 0) == 2, timeout=60_000)
    by_name = {j.name: j for j in desktop.store.list()}
    compute = {
        name: json.loads(next(p for p in job.outputs if p.suffix == ".json").read_text())["compute_type"]
        for name, job in by_name.items()
    }
    assert compute[first.name].startswith("int8")
    assert compute[second.name] == "float32"


def test_gpu_panel_says_why_there_are_no_gpu_figures(desktop: Desktop, qtbot: QtBot) -> None:
    desktop.show()
    qtbot.waitUntil(
        lambda: desktop.gpu_panel.status_text() == NO_GPU_TEXT or bool(desktop.gpu_panel.cards()),
        timeout=10_000,
    )
    if not desktop.gpu_panel.cards():
        assert "running on CPU" in desktop.gpu_panel.status_label.toolTip()  # the reason, for who asks


def test_benchmark_pick_is_applied_like_a_settings_change(desktop: Desktop) -> None:
    desktop.use_model_setting("float32", 2)
    assert desktop.controller.settings.model.compute_type == "float32"
    assert desktop.controller.settings.model.batch_size == 2
    assert desktop.engine.config.compute_type == "float32"
    saved = json.loads(desktop.paths.settings_file.read_text(encoding="utf-8"))
    assert saved["model"]["compute_type"] == "float32" and saved["model"]["batch_size"] == 2


def test_pause_is_held_by_the_runner_and_shown_by_window_and_tray(
    isolated_home: Path, whisper_model_dir: Path, qtbot: QtBot
) -> None:
    paths = AppPaths.under(isolated_home).ensure()
    settings = Settings(model=ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8"))
    app = Desktop(paths, settings, use_tray=True, confirm=lambda *a: True)  # forced: offscreen has no tray
    try:
        assert app.tray is not None
        app.window.pause_action.trigger()  # from the window
        assert app.runner.paused and app.tray.paused and app.window.pause_action.isChecked()
        app.tray.pauseRequested.emit(False)  # from the tray
        assert not app.runner.paused and not app.tray.paused and not app.window.pause_action.isChecked()
        app.runner.pause_now()  # from the runner itself (a model error pauses the same way)
        assert app.tray.paused and app.window.pause_action.isChecked()
    finally:
        app.shutdown()


def test_files_handed_over_are_queued_and_the_window_comes_forward(
    desktop: Desktop, qtbot: QtBot, tmp_path: Path
) -> None:
    desktop.show()
    (recording,) = _recordings(tmp_path / "in", 1, seconds=2.0)
    desktop.window.hide()
    desktop.open_files([str(recording), str(tmp_path / "notes.docx")])  # what a second start sends
    assert desktop.window.isVisible()
    assert desktop.window.banner.showing and "notes.docx" in desktop.window.banner.text  # named, not queued
    qtbot.waitUntil(lambda: desktop.store.counts().get(DONE, 0) == 1, timeout=60_000)
    assert [j.source for j in desktop.store.list()] == [recording]


def test_a_renamed_copy_in_a_watched_folder_gets_its_own_copied_transcripts(
    isolated_home: Path, whisper_model_dir: Path, qtbot: QtBot, tmp_path: Path
) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    paths = AppPaths.under(isolated_home).ensure()
    settings = Settings(
        model=ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=1),
        decode=DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=16),
        output=OutputOptions(formats=("txt", "json"), output_dir=str(out)),
        watched=(WatchedFolder(str(inbox)),),
        ui=UiOptions(settle_seconds=0.2),
    )
    app = Desktop(paths, settings, use_tray=False, confirm=lambda *a: True)
    try:
        app.show()
        (original,) = _recordings(inbox, 1, seconds=3.0)
        qtbot.waitUntil(lambda: app.store.counts().get(DONE, 0) == 1, timeout=60_000)
        shutil.copyfile(original, inbox / "renamed copy.wav")
        qtbot.waitUntil(lambda: app.store.counts().get(DONE, 0) == 2, timeout=60_000)
        first, copy = app.store.list()
        assert copy.source == inbox / "renamed copy.wav" and copy.copy_of == first.id
        assert copy.processing_time == 0.0  # copied: no second transcription
        assert app.model.rowCount() == 2  # its own row
        assert (out / "renamed copy.txt").read_bytes() == (out / f"{original.stem}.txt").read_bytes()
    finally:
        app.window.hide()
        app.shutdown()


def test_a_finished_job_opens_in_the_workspace_from_the_queue_the_notice_and_search(
    desktop: Desktop, qtbot: QtBot, tmp_path: Path
) -> None:
    """Wiring only (random-weight model: nothing about the text is asserted)."""
    from whisperdesk.app import OPEN_TRANSCRIPT

    desktop.show()
    qtbot.waitExposed(desktop.window)
    files = _recordings(tmp_path / "in", 1, seconds=3.0)
    assert drop_on(desktop.window, files) == (True, True, True)
    qtbot.waitUntil(lambda: desktop.store.counts().get(DONE, 0) == 1, timeout=120_000)
    job = desktop.store.list()[0]
    assert desktop.workspace is not None and desktop.transcripts is not None
    qtbot.waitUntil(lambda: desktop.transcripts.has_transcript(job.id), timeout=10_000)  # type: ignore[union-attr]
    banner = desktop.window.banner
    qtbot.waitUntil(lambda: banner.action_id == OPEN_TRANSCRIPT, timeout=15_000)  # "ready", with Open
    banner.actionTriggered.emit(OPEN_TRANSCRIPT)
    window = desktop.workspace.windows[job.id]
    qtbot.waitExposed(window)
    window.close()
    assert job.id not in desktop.workspace.windows
    view = desktop.view
    view.select_job(job.id)
    view.open_action.trigger()  # the queue's "Open transcript" (and a double-click) open the workspace
    qtbot.waitExposed(desktop.workspace.windows[job.id])
    desktop.window.search_action.trigger()
    assert desktop.workspace.search_dialog is not None and desktop.workspace.search_dialog.isVisible()
    desktop.workspace.close_all()
