"""Visible outcomes (issue 17.7), in the assembled window: a file already done says so with "Transcribe
again"; a watched file that failed before is not announced again at every start; the queue-finished message
counts a copied transcript; the Error column is cut between words, with the whole reason as its tooltip.
The random-weight model is used: nothing here depends on what is recognised.
"""

from __future__ import annotations

import gc
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QStyleOptionViewItem
from pytestqt.qtbot import QtBot

from whisperdesk.app import TRANSCRIBE_AGAIN_LABEL, Desktop
from whisperdesk.core.jobstore import DONE, FAILED, QUEUED, RUNNING
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings, UiOptions
from whisperdesk.devtools.synth_audio import noise, write_audio
from whisperdesk.ui.queue_model import Column

pytestmark = pytest.mark.usefixtures("no_leaks")

WAIT_MS = 120_000  # an upper bound for slow machines; never a timing assertion


@pytest.fixture
def make_desktop(
    isolated_home: Path, whisper_model_dir: Path, tmp_path: Path
) -> Iterator[Callable[..., Desktop]]:
    made: list[Desktop] = []

    def make(*, notify: bool = False) -> Desktop:
        settings = Settings(
            model=ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=1),
            decode=DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=8),
            output=OutputOptions(formats=("txt",), output_dir=str(tmp_path / "out")),
            ui=UiOptions(notify_on_finish=notify),
        )
        desktop = Desktop(
            AppPaths.under(isolated_home).ensure(), settings, use_tray=False, confirm=lambda *a: True
        )
        made.append(desktop)
        return desktop

    yield make
    while made:
        desktop = made.pop()
        desktop.window.hide()
        desktop.shutdown()
        del desktop
    gc.collect()


def recording(folder: Path, name: str, seed: int = 0) -> Path:
    return write_audio(folder / name, noise(2.0, amplitude=0.3, seed=seed))


def test_adding_a_file_already_done_says_so_and_offers_transcribe_again(
    make_desktop: Callable[..., Desktop], qtbot: QtBot, tmp_path: Path
) -> None:
    desktop = make_desktop()
    desktop.show()
    memo = recording(tmp_path / "in", "memo.wav")
    desktop.window.add_paths([memo])
    qtbot.waitUntil(lambda: [j.state for j in desktop.store.find(memo)] == [DONE], timeout=WAIT_MS)
    banner = desktop.window.banner
    banner.dismiss()

    with qtbot.waitSignal(desktop.runner.jobsAdded, timeout=WAIT_MS):
        desktop.window.add_paths([memo])  # the same file again
    assert banner.showing and banner.title == "Already transcribed"
    assert "memo.wav was transcribed before" in banner.text
    assert banner.action_id and banner._action.text() == TRANSCRIBE_AGAIN_LABEL

    banner._action.click()
    qtbot.waitUntil(lambda: len(desktop.store.find(memo)) == 2, timeout=WAIT_MS)
    first, again = desktop.store.find(memo)
    assert first.state == DONE and again.state in (QUEUED, RUNNING, DONE)


def test_a_watched_file_that_failed_before_is_not_announced_again(
    make_desktop: Callable[..., Desktop], qtbot: QtBot, tmp_path: Path
) -> None:
    desktop = make_desktop()
    broken = tmp_path / "in" / "broken.wav"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"RIFF" + b"\0" * 400)
    job = desktop.store.add(broken).job
    desktop.store.mark_failed(job.id, "this WAV file is damaged")
    told: list[str] = []
    desktop.runner.addFailed.connect(lambda path, reason: told.append(reason))

    with qtbot.waitSignal(desktop.runner.jobsAdded, timeout=WAIT_MS) as added:
        desktop.runner.add_paths([broken], origin="watched", watch_folder=str(broken.parent))  # a rescan
    (outcome,) = added.args[0]  # type: ignore[index]
    assert outcome.problem and outcome.old_news and told == []

    with qtbot.waitSignal(desktop.runner.jobsAdded, timeout=WAIT_MS):
        desktop.runner.add_paths([broken])  # the user adds it again: told why it is not transcribed
    assert len(told) == 1 and "failed earlier" in told[0]


def test_queue_finished_counts_a_copied_transcript(
    make_desktop: Callable[..., Desktop], qtbot: QtBot, tmp_path: Path
) -> None:
    desktop = make_desktop(notify=True)
    notices: list[tuple[str, str]] = []
    desktop.notifier.notified.connect(lambda title, text: notices.append((title, text)))
    desktop.show()
    original = recording(tmp_path / "in", "interview.wav", seed=4)
    twin = tmp_path / "in" / "interview copy.wav"
    shutil.copyfile(original, twin)
    desktop.window.add_paths([original, twin])
    qtbot.waitUntil(lambda: any(title == "Queue finished" for title, _ in notices), timeout=WAIT_MS)
    (finished,) = [text for title, text in notices if title == "Queue finished"]
    assert finished.startswith("2 transcripts ready (1 copied): "), finished
    assert "interview.wav" in finished and "interview copy.wav" in finished


def test_the_error_column_is_cut_between_words_with_the_whole_reason_as_tooltip(
    make_desktop: Callable[..., Desktop], qtbot: QtBot, tmp_path: Path
) -> None:
    desktop = make_desktop()
    source = recording(tmp_path / "in", "call.wav")
    job = desktop.store.add(source).job
    reason = (
        "the recording could not be decoded because its audio track uses a codec this build of FFmpeg "
        "does not know; convert it to WAV or FLAC with another program and add it again"
    )
    desktop.store.mark_failed(job.id, reason)
    qtbot.waitUntil(lambda: desktop.model.row_of(job.id) is not None, timeout=WAIT_MS)
    index = desktop.model.index(desktop.model.row_of(job.id) or 0, int(Column.ERROR))
    assert desktop.store.require(job.id).state == FAILED
    full = str(index.data())
    delegate = desktop.view.table.itemDelegateForColumn(int(Column.ERROR))
    for width in (90, 160, 240, 400):
        option = QStyleOptionViewItem()
        option.rect = QRect(0, 0, width, 24)
        option.widget = desktop.view.table
        delegate.initStyleOption(option, index)
        shown = option.text
        if shown == full:
            continue
        assert shown.endswith(" …"), shown
        kept = shown[: -len(" …")].split(" ")
        assert kept == full.split(" ")[: len(kept)], (width, shown)  # whole words only
        assert option.fontMetrics.horizontalAdvance(shown) <= width
    assert index.data(Qt.ItemDataRole.ToolTipRole).startswith(full.rstrip("."))
