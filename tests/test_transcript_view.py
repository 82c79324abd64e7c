"""The transcript list on a long transcript: rows laid out in batches, jumps that wait for the layout, and
edits that touch only the rows they change. Geometry and model signals only: nothing here is about what a
model heard, so the transcript is built by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QModelIndex
from pytestqt.qtbot import QtBot

from whisperdesk.core.library.edits import merge_with_next, split_segment
from whisperdesk.core.transcript import Segment, Transcript, Word
from whisperdesk.services.playback import Playback
from whisperdesk.ui.transcript_model import TranscriptModel
from whisperdesk.ui.transcript_window import TranscriptWindow

pytestmark = pytest.mark.usefixtures("no_leaks")


def _long(segments: int = 2000) -> Transcript:
    out = []
    for i in range(segments):
        start = i * 3.6
        words = tuple(
            Word(start + j * 0.3, start + j * 0.3 + 0.25, f" w{j}", 0.9, "Speaker 1") for j in range(10)
        )
        out.append(Segment(start, start + 3.4, "".join(w.text for w in words), words, f"Speaker {i % 2 + 1}"))
    return Transcript("/nowhere/long.wav", out, "en", 1.0, segments * 3.6, "base", "int8", "cpu")


@pytest.fixture
def window(qtbot: QtBot) -> Iterator[TranscriptWindow]:
    playback = Playback()
    win = TranscriptWindow(1, "long.wav", _long(), playback)
    playback.setParent(win)
    qtbot.addWidget(win)
    yield win
    win.undo_stack.setClean()
    win.close()


def test_a_jump_right_after_opening_reaches_a_row_the_layout_has_not_reached_yet(
    window: TranscriptWindow, qtbot: QtBot
) -> None:
    window.show()
    qtbot.waitExposed(window)
    target = window.transcript.segments[1900]
    window.seek_to(target.start)
    viewport = window.list.viewport().rect()
    qtbot.waitUntil(
        lambda: viewport.intersects(window.list.visualRect(window.model.index(1900))), timeout=10_000
    )
    assert window.model.current_row == 1900


def test_an_edit_signals_only_the_rows_it_changes(qtbot: QtBot) -> None:
    transcript = _long(50)
    model = TranscriptModel(transcript)
    events: list[tuple[str, int, int]] = []
    model.rowsInserted.connect(lambda p, a, b: events.append(("inserted", a, b)))
    model.rowsRemoved.connect(lambda p, a, b: events.append(("removed", a, b)))
    model.modelReset.connect(lambda: events.append(("reset", 0, 0)))
    model.dataChanged.connect(lambda a, b, roles=(): events.append(("changed", a.row(), b.row())))
    split = split_segment(transcript, 20, transcript.segments[20].text.index(" w5"))
    model.set_transcript(split)
    assert events == [("inserted", 21, 21), ("changed", 20, 20)]
    events.clear()
    model.set_transcript(merge_with_next(split, 20))
    assert events == [("removed", 21, 21), ("changed", 20, 20)]
    assert model.rowCount(QModelIndex()) == 50
