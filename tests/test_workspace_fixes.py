# ruff: noqa: F811  (test_workspace's fixtures are imported by name and taken as arguments)
"""The transcript workspace's second round (issue 15 review): closing and quitting with unsaved corrections,
renames from the queue while a window is open, retries from the banner, removal order, library errors.

Built on test_workspace's real jfk transcript (real tiny.en weights) and fixtures.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot
from test_workspace import Setup, _open, _saved, real_transcript, setup  # noqa: F401  (fixtures)

from whisperdesk.app import Desktop
from whisperdesk.core.library.edits import edit_text
from whisperdesk.core.library.jobs import keep_job_transcript
from whisperdesk.core.outputs import write_outputs
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.processor import job_settings
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings, UiOptions
from whisperdesk.core.transcript import Transcript
from whisperdesk.ui.transcript_window import TranscriptWindow

pytestmark = pytest.mark.usefixtures("no_leaks")


# --- 2: Save / Discard / Cancel ---------------------------------------------------------------------------
def test_closing_unsaved_offers_save_and_save_saves_then_closes(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    window.apply("Edit text", lambda t: edit_text(t, 0, t.segments[0].text.replace("fellow", "dearest")), 0)
    setup.choices.append("cancel")
    assert not window.close() and window.isVisible() and window.dirty
    setup.choices.append("save")
    assert window.close()
    assert setup.asked == ["Save your corrections?", "Save your corrections?"]
    assert setup.workspace.windows == {}
    assert "dearest" in setup.outputs["txt"].read_text(encoding="utf-8")
    assert setup.library.is_edited(setup.job.id)


def test_discard_closes_without_saving(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    window.apply("Edit text", lambda t: edit_text(t, 0, t.segments[0].text.replace("fellow", "dearest")), 0)
    setup.choices.append("discard")
    assert window.close() and setup.workspace.windows == {}
    assert "dearest" not in setup.outputs["txt"].read_text(encoding="utf-8")
    assert not setup.library.is_edited(setup.job.id)


def test_save_that_finds_files_changed_outside_keeps_the_window_open(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    setup.outputs["srt"].write_text("1\n00:00:00,000 --> 00:00:02,000\nMine\n", encoding="utf-8")
    window.apply("Edit text", lambda t: edit_text(t, 0, t.segments[0].text.replace("fellow", "dearest")), 0)
    setup.choices.append("save")
    setup.answers.append(False)  # "Overwrite them?" No
    assert not window.close()
    assert setup.asked == ["Save your corrections?", "Files changed outside WhisperDesk"]
    assert window.isVisible() and setup.workspace.windows == {setup.job.id: window}
    assert "dearest" in setup.outputs["txt"].read_text(encoding="utf-8")  # the rest was saved


def test_save_that_fails_keeps_the_window_open(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    window.apply("Edit text", lambda t: edit_text(t, 0, "Lost if the window closed"), 0)
    entry = setup.library.for_job(setup.job.id)
    assert entry is not None
    setup.library.delete(entry.id)  # the save has nowhere to go
    setup.choices.append("save")
    assert not window.close()
    assert window.isVisible() and window.dirty and window.banner.title == "Not saved"


# --- 1: quitting ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class App:
    desktop: Desktop
    asked: list[str]
    choices: list[str]
    job_id: int
    no: list[bool]  # queued "No" answers to yes/no questions (otherwise Yes)


@pytest.fixture
def app(
    real_transcript: tuple[Path, Transcript],
    isolated_home: Path,
    whisper_model_dir: Path,
    tmp_path: Path,
) -> Iterator[App]:
    """The assembled app with one done job whose transcript is in its library (no model is loaded)."""
    audio_src, transcript = real_transcript
    paths = AppPaths.under(isolated_home).ensure()
    settings = Settings(
        model=ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=1),
        decode=DecodeOptions(beam_size=1),
        output=OutputOptions(formats=("txt", "json"), output_dir=str(tmp_path / "out")),
        ui=UiOptions(remember_voices=True),  # "Remember voices I name" (opt-in) is on here
    )
    asked: list[str] = []
    choices: list[str] = []

    no: list[bool] = []

    def confirm(parent: QWidget, title: str, text: str) -> bool:
        asked.append(title)
        return not no.pop(0) if no else True

    def ask_unsaved(parent: QWidget, title: str, text: str) -> str:
        asked.append(title)
        return choices.pop(0) if choices else "cancel"

    desktop = Desktop(paths, settings, use_tray=False, confirm=confirm, ask_unsaved=ask_unsaved)
    assert desktop.library is not None
    job = desktop.store.add(audio_src, job_settings(settings)).job
    assert job is not None and desktop.store.claim_next() is not None
    mine = dataclasses.replace(transcript, source=str(audio_src))
    written = write_outputs(mine, audio_src, settings.output, ledger=desktop.ledger)
    keep_job_transcript(desktop.library, job, mine, written, settings.output)
    desktop.store.mark_done(job.id, outputs=list(written.values()))
    yield App(desktop, asked, choices, job.id, no)
    desktop.window.hide()
    desktop.shutdown()


def _dirty_window(app: App, qtbot: QtBot) -> QWidget:
    assert app.desktop.workspace is not None
    window = app.desktop.workspace.open_job(app.job_id)
    assert window is not None
    qtbot.waitExposed(window)
    window.apply("Edit text", lambda t: edit_text(t, 0, "Unsaved words"), 0)
    return window


def test_closing_the_main_window_asks_and_cancel_keeps_the_app(app: App, qtbot: QtBot) -> None:
    window = _dirty_window(app, qtbot)
    quits: list[bool] = []
    app.desktop.window.quitRequested.connect(lambda: quits.append(True))
    app.desktop.window.show()
    app.choices.append("cancel")
    assert not app.desktop.window.close()
    assert app.asked == ["Save your corrections?"] and quits == [] and window.isVisible()
    app.choices.append("cancel")
    assert not app.desktop.window.request_quit()  # File → Quit and the tray's Quit
    assert quits == [] and window.isVisible()


def test_a_signal_quits_without_any_dialog(app: App, qtbot: QtBot) -> None:
    window = _dirty_window(app, qtbot)
    quits: list[bool] = []
    app.desktop.window.quitRequested.connect(lambda: quits.append(True))
    app.desktop.quit_on_signal(15)
    assert app.asked == [] and quits == [True] and not window.isVisible()
    assert app.desktop.workspace is not None and app.desktop.workspace.windows == {}


def test_shutdown_closes_transcript_windows_without_asking(app: App, qtbot: QtBot) -> None:
    window = _dirty_window(app, qtbot)
    assert app.desktop.shutdown()
    assert app.asked == [] and not window.isVisible()


def _edited(app: App, qtbot: QtBot) -> None:
    """Correct the job's transcript and save it, as a person does in its window."""
    assert app.desktop.workspace is not None
    window = app.desktop.workspace.open_job(app.job_id)
    assert window is not None
    window.apply("Edit text", lambda t: edit_text(t, 0, "Corrected by hand"), 0)
    with qtbot.waitSignal(window.undo_stack.cleanChanged, timeout=20_000):
        window.save_action.trigger()
    assert window.close()


# --- 4: "Transcribe again" asks before corrections are thrown away ------------------------------------------
def test_transcribe_again_banner_asks_before_throwing_corrections_away(app: App, qtbot: QtBot) -> None:
    from whisperdesk.app import TRANSCRIBE_AGAIN_ACTION
    from whisperdesk.core.jobstore import DONE
    from whisperdesk.core.queue.enqueue import Enqueued

    _edited(app, qtbot)
    job = app.desktop.store.get(app.job_id)
    assert job is not None
    app.desktop._on_jobs_added([Enqueued(job.source, job, False, "transcribed before", already_done=True)])
    assert app.desktop.window.banner.title == "Already transcribed"
    app.no.append(True)
    app.desktop.window.banner.actionTriggered.emit(TRANSCRIBE_AGAIN_ACTION)
    assert app.asked == ["Throw away your corrections?"]
    after = app.desktop.store.get(app.job_id)
    assert after is not None and after.state == DONE and app.desktop.library is not None
    assert app.desktop.library.is_edited(app.job_id)


# --- 5: the library lets go of a transcript only once its job is removed -------------------------------------
def test_a_failed_removal_keeps_the_transcript_and_a_later_one_releases_it(
    setup: Setup, qtbot: QtBot, tmp_path: Path
) -> None:
    import shutil

    from whisperdesk.core.errors import WhisperDeskError
    from whisperdesk.core.jobstore import FAILED
    from whisperdesk.services.store_feed import StoreFeed
    from whisperdesk.ui.queue_model import JobTableModel
    from whisperdesk.ui.queue_view import JobQueueView

    entry = setup.library.for_job(setup.job.id)
    assert entry is not None
    other = Path(shutil.copy(setup.audio, tmp_path / "second.wav"))
    running = setup.store.add(other, job_settings(Settings())).job
    assert running is not None and setup.store.claim_next() is not None
    keep_job_transcript(setup.library, running, entry.transcript, {}, Settings().output)
    feed = StoreFeed(setup.store, poll_ms=3_600_000)
    feed.jobRemoved.connect(setup.service.on_job_removed)
    model = JobTableModel(setup.store, poll_ms=3_600_000)
    view = JobQueueView(model, library=setup.service, ask_keep=lambda parent, names: False)  # delete it
    qtbot.addWidget(view)
    refused: list[str] = []

    def remove(job_id: int) -> None:  # what the runner does with a running job it does not run
        try:
            setup.store.remove(job_id)
        except WhisperDeskError as exc:
            refused.append(str(exc))

    view.removeRequested.connect(remove)
    view.transcriptReleased.connect(setup.service.release_job)
    view.select_job(running.id)
    view.remove_selected()
    assert refused and setup.store.get(running.id) is not None
    assert setup.library.for_job(running.id) is not None  # the transcript is still there
    setup.store.mark_failed(running.id, "stopped")
    assert setup.store.get(running.id).state == FAILED  # type: ignore[union-attr]
    setup.store.remove(running.id)
    qtbot.waitUntil(lambda: setup.library.for_job(running.id) is None)
    feed.close()
    model.close()
    model.deleteLater()
    feed.deleteLater()


# --- 6: library errors are logged and said in one plain sentence -------------------------------------------
def test_a_broken_library_is_said_plainly_and_never_escapes_a_slot(
    setup: Setup, qtbot: QtBot, caplog: pytest.LogCaptureFixture
) -> None:
    with sqlite3.connect(setup.library.path) as raw:  # the table the app reads is gone (a damaged file)
        raw.execute("ALTER TABLE entries RENAME TO entries_gone")
    problems: list[str] = []
    setup.workspace.problem.connect(problems.append)
    assert setup.workspace.open_job(setup.job.id) is None
    assert problems and problems[0].startswith(f"The transcript of {setup.audio.name} cannot be opened")
    assert "entries" not in problems[0] and "sqlite" not in problems[0].lower()
    assert "no such table" in caplog.text  # the details are in the log
    assert setup.service.is_edited(setup.job.id) is False
    assert setup.service.speaker_names(setup.job.id) == []
    setup.service.release_job(setup.job.id, True)  # removed already? no: waits for the removal
    setup.store.remove(setup.job.id)
    said: list[str] = []
    setup.service.problem.connect(said.append)
    setup.service.on_job_removed(setup.job.id)
    assert said and "could not be kept" in said[0]
    with sqlite3.connect(setup.library.path) as raw:
        raw.execute("ALTER TABLE entries_gone RENAME TO entries")


def _with_speakers(app: App, qtbot: QtBot) -> TranscriptWindow:
    """The job's window, its two segments said by Speaker 1 and Speaker 2, saved."""
    assert app.desktop.workspace is not None
    window = app.desktop.workspace.open_job(app.job_id)
    assert window is not None
    qtbot.waitExposed(window)
    window.set_segment_speaker(0, "Speaker 1")
    window.set_segment_speaker(1, "Speaker 2")
    with qtbot.waitSignal(window.undo_stack.cleanChanged, timeout=20_000):
        window.save_action.trigger()
    return window


# --- 3: the queue's rename while the job's window is open ---------------------------------------------------
def test_queue_rename_with_the_window_open_goes_through_the_window(app: App, qtbot: QtBot) -> None:
    window = _with_speakers(app, qtbot)
    assert app.desktop.transcripts is not None
    with qtbot.waitSignal(app.desktop.transcripts.saved, timeout=20_000):  # renamed and saved
        app.desktop.view.speakersRenamed.emit(app.job_id, {"Speaker 1": "Ada"})
    assert not window.dirty
    assert "Ada" in window.transcript.speakers and window.undo_stack.undoText() == "Rename speakers"
    window.apply("Edit text", lambda t: edit_text(t, 0, "Corrected after the rename"), 0)
    with qtbot.waitSignal(window.undo_stack.cleanChanged, timeout=20_000):
        window.save_action.trigger()
    assert window.banner.title != "Not saved"  # not refused as changed elsewhere
    assert app.desktop.library is not None
    saved = app.desktop.library.for_job(app.job_id)
    assert saved is not None and saved.transcript.segments[0].text.strip() == "Corrected after the rename"
    assert saved.transcript.segments[0].speaker == "Ada"
    assert (
        app.desktop.transcripts is not None and app.desktop.transcripts.speaker_names(app.job_id)[0] == "Ada"
    )
    window.close()


# --- 12: naming a speaker in the window remembers the voice, as the queue's dialog does ---------------------
def test_naming_a_speaker_in_the_window_remembers_the_voice(app: App, qtbot: QtBot) -> None:
    import numpy as np

    from whisperdesk.core.speakers.diarize import Voiceprint
    from whisperdesk.core.speakers.saved import save_job_transcript
    from whisperdesk.core.speakers.voices import VoiceLibrary

    window = _with_speakers(app, qtbot)
    rng = np.random.default_rng(7)
    prints = {f"Speaker {i}": Voiceprint(rng.standard_normal(192).astype(np.float32), 6.0) for i in (1, 2)}
    save_job_transcript(app.job_id, window.transcript, voiceprints=prints)  # as a diarized job keeps them
    window.rename_everywhere("Speaker 2", "Grace")
    window.rename_everywhere("Speaker 1", "Ada")
    window.undo_stack.undo()  # Ada was a slip: only Grace is named
    with qtbot.waitSignal(app.desktop.renamer.renamed, timeout=20_000):
        window.save_action.trigger()
    library = VoiceLibrary.for_settings(app.desktop.settings)
    assert library is not None
    assert [v.name for v in library.voices()] == ["Grace"]
    kept = library.voices()[0].embedding
    expected = prints["Speaker 2"].embedding / np.linalg.norm(prints["Speaker 2"].embedding)
    assert float(np.dot(kept, expected)) > 0.999
    window.close()


# --- 11: a stale "Queue finished" banner goes when new work starts -----------------------------------------
def test_queue_finished_banner_is_taken_down_when_new_work_starts(app: App, qtbot: QtBot) -> None:
    from whisperdesk.services.notifier import QUEUE_FINISHED

    banner = app.desktop.window.banner
    app.desktop._on_notice(QUEUE_FINISHED, "2 done, 1 failed.", "warning")
    assert banner.showing and banner.title == QUEUE_FINISHED
    app.desktop.runner.jobStarted.emit(app.job_id)
    assert not banner.showing
    app.desktop.window.show_warning("Something else to read")
    app.desktop.runner.jobStarted.emit(app.job_id)
    assert banner.showing  # other news stays


# --- 9: the State column shows "Done · edited" whole --------------------------------------------------------
def test_state_column_has_room_for_done_edited_and_a_tooltip(setup: Setup, qtbot: QtBot) -> None:
    from PySide6.QtCore import Qt

    from whisperdesk.ui.queue_model import Column, JobTableModel
    from whisperdesk.ui.queue_view import JobQueueView

    model = JobTableModel(setup.store, poll_ms=3_600_000)
    model.set_edited(setup.job.id, True)
    view = JobQueueView(model, library=setup.service)
    qtbot.addWidget(view)
    row = model.row_of(setup.job.id)
    assert row is not None
    index = model.index(row, int(Column.STATE))
    text = index.data()
    assert text == "Done · edited"
    option_width = view.table.columnWidth(int(Column.STATE))
    needed = view.table.fontMetrics().horizontalAdvance(text)
    margin = 2 * (view.table.style().pixelMetric(view.table.style().PixelMetric.PM_FocusFrameHMargin) + 1)
    assert option_width >= needed + margin
    assert "corrections" in index.data(Qt.ItemDataRole.ToolTipRole)
    model.close()
    model.deleteLater()


# --- 7: export from the view --------------------------------------------------------------------------------
def test_export_starts_in_the_outputs_folder_adds_the_extension_and_says_where(
    setup: Setup, qtbot: QtBot, tmp_path: Path
) -> None:
    from whisperdesk.services.playback import LocatedRecordings
    from whisperdesk.ui.workspace import Workspace

    offered: list[tuple[str, str]] = []
    chosen = tmp_path / "exported" / "for the minutes"  # typed without an extension
    chosen.parent.mkdir()

    def choose_save(parent: QWidget, caption: str, path: str, filters: str) -> str:
        offered.append((path, filters))
        return str(chosen)

    workspace = Workspace(setup.service, LocatedRecordings(tmp_path / "l.json"), choose_save=choose_save)
    window = workspace.open_job(setup.job.id)
    assert window is not None
    qtbot.waitExposed(window)
    with qtbot.waitSignal(setup.service.exported, timeout=20_000):
        window.export("srt")
    ((suggested, filters),) = offered
    assert Path(suggested).parent == setup.outputs["srt"].parent and suggested.endswith(".srt")
    assert filters == "SRT subtitles (*.srt)"
    written = chosen.with_name("for the minutes.srt")
    assert written.is_file() and "country" in written.read_text(encoding="utf-8").lower()
    assert window.statusBar().currentMessage() == f"Exported to {written}"
    assert workspace.close_all()
    workspace.deleteLater()


# --- 8: no sound device is said in the player -------------------------------------------------------------
def test_the_player_says_when_there_is_no_sound_device(setup: Setup, qtbot: QtBot) -> None:
    from PySide6.QtMultimedia import QMediaDevices

    window = _open(setup, qtbot)
    silent = not QMediaDevices.audioOutputs()  # offscreen on a machine without a sound server: none
    assert window.playback.silent is silent
    assert window.no_sound.isVisible() is silent
    assert window.no_sound.text().startswith("No sound device found: playback runs silently")


# --- 10: a search hit that wraps gets the height of its lines -----------------------------------------------
def test_a_search_hit_that_wraps_is_shown_whole(setup: Setup, qtbot: QtBot) -> None:
    dialog = setup.workspace.open_search()
    qtbot.waitExposed(dialog)
    dialog.resize(560, 400)
    dialog.query.setText("country")
    dialog.run_search()
    assert dialog.model.rowCount() >= 1
    index = dialog.model.index(0, 4)
    qtbot.waitUntil(lambda: dialog.results.columnWidth(4) < 220)
    line = dialog.results.fontMetrics().height()
    height = dialog.results.visualRect(index).height()
    assert height >= 2 * line  # the snippet wraps at this width: every line is in the row
    dialog.resize(1400, 400)
    qtbot.waitUntil(lambda: dialog.results.visualRect(dialog.model.index(0, 4)).height() < height)
    dialog.close()


def test_a_job_waiting_for_the_model_says_so_briefly_with_the_whole_story_as_tooltip(
    setup: Setup, qtbot: QtBot, tmp_path: Path
) -> None:
    import shutil

    from PySide6.QtCore import Qt

    from whisperdesk.ui.queue_model import Column, JobTableModel
    from whisperdesk.ui.queue_view import JobQueueView

    other = Path(shutil.copy(setup.audio, tmp_path / "second.wav"))
    running = setup.store.add(other, job_settings(Settings())).job
    assert running is not None and setup.store.claim_next() is not None
    model = JobTableModel(setup.store, poll_ms=3_600_000)
    view = JobQueueView(model)
    qtbot.addWidget(view)
    model.set_waiting(running.id, True)
    row = model.row_of(running.id)
    assert row is not None
    index = model.index(row, int(Column.STATE))
    needed = view.table.fontMetrics().horizontalAdvance(index.data())
    assert view.table.columnWidth(int(Column.STATE)) >= needed + 6  # whole, not "Waiting for …"
    assert "waiting for the model" in index.data(Qt.ItemDataRole.ToolTipRole)
    model.close()
    model.deleteLater()
