"""The transcript workspace on a real transcript (jfk through real tiny.en weights, with word timestamps).

Playback is real: Qt's FFmpeg backend advances the player's clock even where no audio device exists
(checked on this machine class, PySide6 6.11 offscreen, no sound server), so these tests play the
recording and watch the highlight follow the player; nothing stands in for the player.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pysubs2
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from whisperdesk.core.jobstore import Job, JobStore
from whisperdesk.core.library.edits import edit_text, segment_at
from whisperdesk.core.library.jobs import keep_job_transcript
from whisperdesk.core.library.store import TranscriptLibrary
from whisperdesk.core.outputs import OutputLedger, write_outputs
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings
from whisperdesk.core.transcript import Transcript
from whisperdesk.devtools.speech_corpus import shared_data
from whisperdesk.services.playback import LocatedRecordings
from whisperdesk.services.transcripts import TranscriptService
from whisperdesk.ui.queue_model import Column, JobTableModel
from whisperdesk.ui.queue_view import JobQueueView
from whisperdesk.ui.transcript_model import MatchRole
from whisperdesk.ui.transcript_window import TranscriptWindow
from whisperdesk.ui.workspace import Workspace

pytestmark = pytest.mark.usefixtures("no_leaks")

ALL_FORMATS = ("txt", "srt", "vtt", "json", "docx", "md")
SETTINGS = Settings(
    decode=DecodeOptions(beam_size=1, temperature=(0.0,), word_timestamps=True),
    output=OutputOptions(formats=ALL_FORMATS),
)


def _jfk_audio(folder: Path) -> Path:
    """jfk.flac from ../shared when present, else the same sentence spoken by espeak-ng."""
    data = shared_data()
    if data is not None and (data / "jfk.flac").is_file():
        return Path(shutil.copy(data / "jfk.flac", folder / "jfk.flac"))
    import subprocess

    from whisperdesk.devtools.speech_corpus import espeak

    out = folder / "jfk.wav"
    text = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
    subprocess.run([espeak(), "-w", str(out), "-s", "150", text], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def real_transcript(tiny_en_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Transcript]:
    """jfk transcribed once by the app's own processor on real tiny.en weights, as the library keeps it."""
    from whisperdesk.core.engine import Engine

    folder = tmp_path_factory.mktemp("jfk")
    audio = _jfk_audio(folder)
    store = JobStore(folder / "jobs.sqlite3")
    library = TranscriptLibrary.beside(store.path)
    engine = Engine(
        ModelConfig(model=str(tiny_en_model), device="cpu", compute_type="int8", batch_size=1), folder
    )
    try:
        store.add(audio, job_settings(SETTINGS, output_dir=folder / "first"))
        job = store.claim_next()
        assert job is not None
        done = JobProcessor(
            store, engine, OutputLedger(folder / "ledger.json"), lambda: SETTINGS, library=library
        )
        finished = done.process(job)
        assert finished.state == "done", finished.error
        entry = library.for_job(job.id)
        assert entry is not None
        transcript = entry.transcript
    finally:
        engine.close()
        library.close()
        store.close()
    assert len(transcript.segments) >= 2 and all(s.words for s in transcript.segments)
    assert "country" in transcript.text.lower()
    return audio, transcript


@dataclasses.dataclass
class Setup:
    store: JobStore
    library: TranscriptLibrary
    service: TranscriptService
    workspace: Workspace
    job: Job
    outputs: dict[str, Path]
    audio: Path
    asked: list[str]
    answers: list[bool]
    choices: list[str]  # answers to Save / Discard / Cancel ("save", "discard", "cancel")


@pytest.fixture
def setup(real_transcript: tuple[Path, Transcript], tmp_path: Path, qtbot: QtBot) -> Iterator[Setup]:
    """A done job of the real transcript in a fresh queue and library, every format written."""
    audio_src, transcript = real_transcript
    audio = Path(shutil.copy(audio_src, tmp_path / audio_src.name))
    store = JobStore(tmp_path / "data" / "jobs.sqlite3")
    library = TranscriptLibrary.beside(store.path)
    ledger = OutputLedger(tmp_path / "data" / "ledger.json")
    job = store.add(audio, job_settings(SETTINGS)).job
    assert job is not None and store.claim_next() is not None
    mine = dataclasses.replace(transcript, source=str(audio))
    written = write_outputs(mine, audio, SETTINGS.output, ledger=ledger)
    keep_job_transcript(library, job, mine, written, SETTINGS.output)
    job = store.mark_done(job.id, outputs=list(written.values()))
    asked: list[str] = []
    answers: list[bool] = []

    def ask(parent: QWidget, title: str, text: str) -> bool:
        asked.append(title)
        return answers.pop(0) if answers else False

    choices: list[str] = []

    def ask_unsaved(parent: QWidget, title: str, text: str) -> str:
        asked.append(title)
        return choices.pop(0) if choices else "cancel"

    service = TranscriptService(store, library, ledger)
    workspace = Workspace(
        service, LocatedRecordings(tmp_path / "data" / "located.json"), ask=ask, ask_unsaved=ask_unsaved
    )
    yield Setup(store, library, service, workspace, job, written, audio, asked, answers, choices)
    for window in workspace.windows.values():
        window.undo_stack.setClean()  # unsaved test edits: close without asking
    assert workspace.close_all()
    service.wait()
    service.deleteLater()
    workspace.deleteLater()
    library.close()
    store.close()


def _open(s: Setup, qtbot: QtBot) -> TranscriptWindow:
    window = s.workspace.open_job(s.job.id)
    assert window is not None
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.playback.duration > 0)
    return window


def test_double_clicking_a_done_job_opens_its_transcript_with_speaker_times_and_text(
    setup: Setup, qtbot: QtBot
) -> None:
    model = JobTableModel(setup.store, poll_ms=3_600_000)
    view = JobQueueView(model, library=setup.service)
    qtbot.addWidget(view)
    view.transcriptRequested.connect(setup.workspace.open_job)
    row = model.row_of(setup.job.id)
    assert row is not None
    index = view.table.model().index(row, int(Column.FILE))
    view.table.selectRow(row)
    view.table.doubleClicked.emit(index)
    window = setup.workspace.windows[setup.job.id]
    qtbot.waitExposed(window)
    segments = window.transcript.segments
    assert window.model.rowCount() == len(segments) >= 2
    assert window.model.index(1).data() == segments[1].text.strip()
    assert "country" in " ".join(window.model.index(i).data() for i in range(len(segments))).lower()
    assert window.windowTitle().startswith("jfk")
    model.close()
    model.deleteLater()


def test_clicking_a_segment_moves_the_player_there(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    second = window.transcript.segments[1]
    rect = window.list.visualRect(window.model.index(1))
    qtbot.mouseClick(
        window.list.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.left() + 20, rect.center().y())
    )
    qtbot.waitUntil(lambda: abs(window.playback.position - second.start) < 0.05)
    assert window.model.current_row == 1
    # a click on a word seeks to that word: find the third word's place in the painted row
    word = second.words[2]
    text_rect = window.list.delegate._text_rect(rect)
    for x in range(text_rect.left(), text_rect.right(), 3):
        point = QPoint(x, text_rect.top() + 4)
        if window.list.delegate.word_at_point(window.model.index(1), rect, point) == 2:
            break
    else:
        pytest.fail("the third word was not found in the painted row")
    qtbot.mouseClick(window.list.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.waitUntil(lambda: abs(window.playback.position - word.start) < 0.05)


def test_during_real_playback_the_highlight_follows_the_player(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    segments = window.transcript.segments
    seen: list[tuple[float, int | None, int | None]] = []

    def record(seconds: float) -> None:
        seen.append((seconds, window.model.current_row, window.model.current_word))

    window.playback.positionChanged.connect(record)
    window.playback.set_rate(2.0)
    window.playback.play_from(0.0)
    qtbot.waitUntil(lambda: window.playback.position > segments[1].start + 0.3, timeout=20_000)
    window.playback.pause()
    assert window.playback.position > segments[1].start
    rows = [row for _, row, _ in seen]
    assert 0 in rows and 1 in rows
    for seconds, row, _ in seen:  # at every position the player reported, the highlight was its segment
        assert row == segment_at(segments, seconds)
    assert len({word for _, row, word in seen if row == 0}) > 2  # the current word moved along too


def test_edits_and_undo_redo(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    original = window.transcript
    first = original.segments[0]
    assert window.apply(
        "Edit text", lambda t: edit_text(t, 0, first.text.replace("Americans", "citizens")), 0
    )
    assert "citizens" in window.model.index(0).data()
    assert window.set_segment_speaker(1, "Narrator")
    assert window.transcript.segments[1].speaker == "Narrator"
    assert window.rename_everywhere("Narrator", "JFK")
    assert window.transcript.speakers == ["JFK"]
    window.list.setCurrentIndex(window.model.index(0))
    window.merge_selected()
    assert window.model.rowCount() == len(original.segments) - 1
    assert window.dirty and window.windowTitle().startswith("*")
    for _ in range(4):
        window.undo_stack.undo()
    assert window.transcript == original and not window.dirty
    window.undo_stack.redo()
    assert "citizens" in window.model.index(0).data()


def test_split_at_the_cursor_of_the_in_place_editor(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    before = len(window.transcript.segments)
    window.list.setCurrentIndex(window.model.index(0))
    window.edit_action.trigger()
    opened = window.list.delegate.open_editor()
    assert opened is not None
    row, editor = opened
    assert row == 0
    text = editor.toPlainText()
    cut = text.lower().index("ask")
    cursor = editor.textCursor()
    cursor.setPosition(cut)
    editor.setTextCursor(cursor)
    window.split_action.trigger()
    assert len(window.transcript.segments) == before + 1
    left, right = window.transcript.segments[0], window.transcript.segments[1]
    assert right.text.strip().lower().startswith("ask") and left.end <= right.start
    assert left.words and right.words and right.words[0].text.strip().lower().startswith("ask")
    window.undo_stack.undo()
    assert len(window.transcript.segments) == before


def _saved(window: TranscriptWindow, qtbot: QtBot) -> None:
    with qtbot.waitSignal(window.undo_stack.cleanChanged, timeout=20_000):
        window.save_action.trigger()


def test_save_rewrites_every_format_and_the_files_parse_back(setup: Setup, qtbot: QtBot) -> None:
    import docx

    window = _open(setup, qtbot)
    window.apply("Edit text", lambda t: edit_text(t, 0, t.segments[0].text.replace("fellow", "dearest")), 0)
    _saved(window, qtbot)
    out = setup.outputs
    assert "dearest" in out["txt"].read_text(encoding="utf-8")
    assert "dearest" in " ".join(e.plaintext for e in pysubs2.load(str(out["srt"])))
    assert "dearest" in " ".join(e.plaintext for e in pysubs2.load(str(out["vtt"])))
    data = json.loads(out["json"].read_text(encoding="utf-8"))
    assert data["edited"] is True and "dearest" in data["segments"][0]["text"]
    assert "dearest" in "\n".join(p.text for p in docx.Document(str(out["docx"])).paragraphs)
    assert "dearest" in out["md"].read_text(encoding="utf-8")
    assert setup.library.is_edited(setup.job.id)


def test_an_output_changed_outside_the_app_is_not_overwritten_without_asking(
    setup: Setup, qtbot: QtBot
) -> None:
    window = _open(setup, qtbot)
    hand_made = "1\n00:00:00,000 --> 00:00:02,000\nMy own subtitle\n"
    setup.outputs["srt"].write_text(hand_made, encoding="utf-8")
    window.apply("Edit text", lambda t: edit_text(t, 0, t.segments[0].text.replace("fellow", "dearest")), 0)
    setup.answers.append(False)  # "Overwrite them?" No
    _saved(window, qtbot)
    assert setup.asked == ["Files changed outside WhisperDesk"]
    assert setup.outputs["srt"].read_text(encoding="utf-8") == hand_made
    assert "dearest" in setup.outputs["vtt"].read_text(encoding="utf-8")  # the others follow the record
    window.apply("Edit text", lambda t: edit_text(t, 0, t.segments[0].text.replace("dearest", "good")), 0)
    setup.answers.append(True)  # this time: Yes, overwrite
    with qtbot.waitSignal(setup.service.saved, timeout=20_000):
        window.save_action.trigger()
    qtbot.waitUntil(lambda: "good" in setup.outputs["srt"].read_text(encoding="utf-8"), timeout=20_000)


def test_search_finds_the_edited_word_and_opens_there_playing(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    last = len(window.transcript.segments) - 1
    window.apply("Edit text", lambda t: edit_text(t, last, t.segments[last].text + " Zanzibar"), last)
    _saved(window, qtbot)
    window.close()
    dialog = setup.workspace.open_search()
    qtbot.keyClicks(dialog.query, "zanzi*")
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 1)
    hit = dialog.hit_at(0)
    assert hit is not None and hit.job_id == setup.job.id and hit.segment_index == last
    assert "<b" in dialog.model.index(0, 4).data(Qt.ItemDataRole.UserRole + 2)
    qtbot.keyClick(dialog.query, Qt.Key.Key_Return)
    reopened = setup.workspace.windows[setup.job.id]
    qtbot.waitUntil(lambda: reopened.playback.playing, timeout=10_000)
    assert reopened.model.current_row == last
    assert reopened.playback.position >= hit.start - 0.05
    reopened.playback.pause()
    dialog.query.clear()
    qtbot.keyClicks(dialog.query, "Zanzibarr")
    dialog.run_search()
    assert dialog.model.rowCount() == 0


def test_queue_marks_edited_jobs_and_asks_before_a_retry_throws_edits_away(
    setup: Setup, qtbot: QtBot
) -> None:
    window = _open(setup, qtbot)
    window.apply("Edit text", lambda t: edit_text(t, 0, "Hello there"), 0)
    model = JobTableModel(setup.store, poll_ms=3_600_000)
    setup.service.editedChanged.connect(model.set_edited)
    _saved(window, qtbot)
    qtbot.waitUntil(lambda: model.is_edited(setup.job.id))
    row = model.row_of(setup.job.id)
    assert row is not None and model.index(row, int(Column.STATE)).data() == "Done · edited"
    view = JobQueueView(model, library=setup.service, ask=lambda p, t, x: setup.asked.append(t) or False)
    qtbot.addWidget(view)
    retried: list[int] = []
    view.retryRequested.connect(retried.append)
    view.select_job(setup.job.id)
    view.retry_selected()
    assert setup.asked[-1] == "Throw away your corrections?" and retried == []
    model.close()
    model.deleteLater()


def test_a_missing_recording_still_opens_and_can_be_located(
    setup: Setup, qtbot: QtBot, tmp_path: Path
) -> None:
    moved = tmp_path / "moved" / setup.audio.name
    moved.parent.mkdir()
    setup.audio.rename(moved)
    window = setup.workspace.open_job(setup.job.id)
    assert window is not None
    qtbot.waitExposed(window)
    assert window.model.rowCount() >= 2
    assert window.banner.title == "Recording not found" and str(setup.audio) in window.banner.text
    assert not window.player_bar.isEnabled()
    window._choose_open = lambda *a: str(moved)  # the person picks the file in the dialog
    window.banner.actionTriggered.emit("locate")
    assert window.player_bar.isEnabled() and window.playback.source == moved
    window.close()
    again = setup.workspace.open_job(setup.job.id)  # remembered for the next opening
    assert again is not None and again.playback.source == moved


def test_export_from_the_view_writes_every_format_that_parses_back(
    setup: Setup, qtbot: QtBot, tmp_path: Path
) -> None:
    import docx

    window = _open(setup, qtbot)
    window.apply("Edit text", lambda t: edit_text(t, 0, t.segments[0].text.replace("fellow", "dearest")), 0)
    folder = tmp_path / "exported"
    folder.mkdir()
    for fmt in ("txt", "srt", "vtt", "json", "docx", "md"):
        with qtbot.waitSignal(setup.service.exported, timeout=20_000):
            window.export(fmt, str(folder / f"talk.{fmt}"))
    assert "dearest" in (folder / "talk.txt").read_text(encoding="utf-8")
    assert "dearest" in pysubs2.load(str(folder / "talk.srt"))[0].plaintext
    assert "dearest" in pysubs2.load(str(folder / "talk.vtt"))[0].plaintext
    assert "dearest" in json.loads((folder / "talk.json").read_text(encoding="utf-8"))["segments"][0]["text"]
    assert "dearest" in "\n".join(p.text for p in docx.Document(str(folder / "talk.docx")).paragraphs)
    assert "dearest" in (folder / "talk.md").read_text(encoding="utf-8")
    assert "dearest" not in setup.outputs["txt"].read_text(encoding="utf-8")  # export is not save


def test_keyboard_space_plays_and_pauses_and_arrows_seek_five_seconds(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    window.activateWindow()
    window.list.setFocus()
    menus = {a.text(): a.shortcut().toString() for a in window.findChildren(type(window.play_action))}
    assert menus["Play/Pause"] == "Space" and menus["Back 5 s"] == "Left" and menus["Forward 5 s"] == "Right"
    assert menus["Find…"] == "Ctrl+F" and menus["Save"] == "Ctrl+S"
    qtbot.keyClick(window.list, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: abs(window.playback.position - 5.0) < 0.05)
    qtbot.keyClick(window.list, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: window.playback.position < 0.05)
    qtbot.keyClick(window.list, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.playback.playing)
    qtbot.keyClick(window.list, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not window.playback.playing)
    qtbot.keyClick(window.list, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.find_bar.isVisible()
    qtbot.keyClicks(window.find_edit, "country")
    rows = window.model.rowCount()
    marked = [i for i in range(rows) if window.model.index(i).data(MatchRole) == "country"]
    assert marked and window.find_count.text() == f"{len(marked)} found"
    qtbot.keyClick(window.find_edit, Qt.Key.Key_Return)
    assert window.selected_row() == marked[0]


def test_speaker_list_shows_evidence_and_plays_exactly_that_stretch(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    assert window.set_segment_speaker(0, "Speaker 1") and window.set_segment_speaker(1, "Speaker 2")
    blocks = window.speakers.blocks
    assert list(blocks) == ["Speaker 1", "Speaker 2"]
    segments = window.transcript.segments
    total = sum(s.end - s.start for s in segments[:2])
    share = blocks["Speaker 2"].findChild(QWidget, "talkShare")
    assert (
        share is not None and f"{(segments[1].end - segments[1].start) / total * 100:.0f} %" in share.text()
    )
    window.playback.set_rate(2.0)
    blocks["Speaker 2"].play_buttons[0].click()
    qtbot.waitUntil(lambda: window.playback.playing, timeout=10_000)
    assert window.playback.position >= segments[1].start - 0.05
    qtbot.waitUntil(lambda: not window.playback.playing, timeout=20_000)  # it stops at the line's end
    assert window.playback.position >= segments[1].end - 0.05
    assert window.playback.position < segments[1].end + 0.5


def test_a_click_on_a_done_notification_opens_that_transcript(setup: Setup, qtbot: QtBot) -> None:
    from whisperdesk.services.notifier import Notifier

    notifier = Notifier(None, enabled=False)
    notifier.openRequested.connect(setup.workspace.open_job)
    done = setup.store.get(setup.job.id)
    assert done is not None
    notifier.job_ended(done)
    notifier.message_clicked()
    window = setup.workspace.windows[setup.job.id]
    qtbot.waitExposed(window)
    notifier.close()
    notifier.deleteLater()


@pytest.mark.parametrize("keep", [True, False], ids=["keep", "delete"])
def test_removing_a_job_asks_whether_to_keep_its_transcript(setup: Setup, qtbot: QtBot, keep: bool) -> None:
    model = JobTableModel(setup.store, poll_ms=3_600_000)
    asked: list[str] = []

    def ask_keep(parent: QWidget, names: str) -> bool:
        asked.append(names)
        return keep

    view = JobQueueView(model, library=setup.service, ask_keep=ask_keep)
    qtbot.addWidget(view)
    view.transcriptReleased.connect(setup.service.release_job)
    view.removeRequested.connect(setup.store.remove)
    view.select_job(setup.job.id)
    view.remove_selected()
    assert asked == [setup.audio.name]
    assert setup.store.get(setup.job.id) is None and setup.library.for_job(setup.job.id) is None
    found = setup.service.search("country")
    assert isinstance(found, list) and bool(found) is keep
    model.close()
    model.deleteLater()


def test_search_filters_by_speaker_and_orders_results(setup: Setup, qtbot: QtBot) -> None:
    window = _open(setup, qtbot)
    window.set_segment_speaker(0, "Kennedy")
    window.set_segment_speaker(1, "Crowd")
    _saved(window, qtbot)
    dialog = setup.workspace.open_search()
    assert [dialog.speaker_box.itemText(i) for i in range(dialog.speaker_box.count())] == [
        "All speakers",
        "Crowd",
        "Kennedy",
    ]
    dialog.query.setText("country")
    dialog.run_search()
    everyone = dialog.model.rowCount()
    dialog.speaker_box.setCurrentText("Crowd")
    assert 0 < dialog.model.rowCount() < everyone or everyone == 1
    assert {dialog.hit_at(i).speaker for i in range(dialog.model.rowCount())} == {"Crowd"}  # type: ignore[union-attr]
    dialog.speaker_box.setCurrentIndex(0)
    newest = [dialog.hit_at(i) for i in range(dialog.model.rowCount())]
    dialog.order_box.setCurrentIndex(1)  # best match first: the same hits, by bm25 score
    best = [dialog.hit_at(i) for i in range(dialog.model.rowCount())]
    assert sorted(best, key=lambda h: h.segment_index) == newest  # type: ignore[union-attr]
    assert [h.score for h in best] == sorted(h.score for h in best)  # type: ignore[union-attr]


def test_queue_rename_dialog_shows_evidence_and_plays_a_line(setup: Setup, qtbot: QtBot) -> None:
    from PySide6.QtCore import QTimer

    window = _open(setup, qtbot)
    window.set_segment_speaker(0, "Speaker 1")
    window.set_segment_speaker(1, "Speaker 2")
    _saved(window, qtbot)
    second = window.transcript.segments[1]
    window.close()
    model = JobTableModel(setup.store, poll_ms=3_600_000)
    model.set_speaker_source(setup.service.speaker_names)
    view = JobQueueView(model, library=setup.service)
    qtbot.addWidget(view)
    view.previewRequested.connect(setup.workspace.preview)
    view.select_job(setup.job.id)
    seen: dict[str, object] = {}

    def in_dialog() -> None:
        dialog = view.rename_dialog
        assert dialog is not None
        seen["blocks"] = list(dialog.blocks)
        dialog.blocks["Speaker 2"].play_buttons[0].click()
        preview = setup.workspace._preview
        assert preview is not None
        qtbot.waitUntil(lambda: preview.playing, timeout=10_000)
        seen["at"] = preview.position
        dialog.reject()

    QTimer.singleShot(0, in_dialog)
    view.rename_speakers()
    assert seen["blocks"] == ["Speaker 1", "Speaker 2"]
    assert second.start - 0.05 <= float(seen["at"]) <= second.end  # type: ignore[arg-type]
    model.close()
    model.deleteLater()


def test_main_window_offers_search_on_ctrl_k(qtbot: QtBot) -> None:
    from whisperdesk.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    assert window.search_action.shortcut().toString() == "Ctrl+K"
    with qtbot.waitSignal(window.searchRequested):
        window.search_action.trigger()


def test_typing_in_the_in_place_editor_keeps_space_and_arrows_for_the_text(
    setup: Setup, qtbot: QtBot
) -> None:
    window = _open(setup, qtbot)
    window.activateWindow()
    window.list.setCurrentIndex(window.model.index(0))
    window.edit_action.trigger()
    opened = window.list.delegate.open_editor()
    assert opened is not None
    _, editor = opened
    editor.setFocus()
    qtbot.waitUntil(editor.hasFocus)
    start = editor.textCursor().position()
    qtbot.keyClick(editor, Qt.Key.Key_Left)
    qtbot.keyClick(editor, Qt.Key.Key_Space)
    qtbot.keyClicks(editor, "indeed")
    assert editor.textCursor().position() == start - 1 + len(" indeed")
    assert not window.playback.playing and window.playback.position == 0.0  # no play, no seek
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert window.list.delegate.open_editor() is None
    assert " indeed" in window.model.index(0).data() and window.undo_stack.undoText() == "Edit text"


def test_quitting_asks_about_unsaved_corrections_first(setup: Setup, qtbot: QtBot) -> None:
    from whisperdesk.ui.main_window import MainWindow

    window = _open(setup, qtbot)
    window.apply("Edit text", lambda t: edit_text(t, 0, "Unsaved words"), 0)
    main = MainWindow()
    qtbot.addWidget(main)
    main.set_quit_guard(setup.workspace.close_all)
    quits: list[bool] = []
    main.quitRequested.connect(lambda: quits.append(True))
    setup.choices.append("cancel")  # "Save your corrections?" Cancel
    assert not main.request_quit()
    assert setup.asked == ["Save your corrections?"] and quits == [] and window.isVisible()
    setup.choices.append("discard")
    assert main.request_quit() and quits == [True]
    assert setup.workspace.windows == {}
