"""Answers before work (issue 17.6): output conflicts, unreadable files and unwritable folders are reported
before the model loads — in ``transcribe``, ``watch`` and the window.

The proof is an order of events, not a time: the model named is a folder that does not exist, so any answer
that needed the model would be the model's error instead; the answers come, and the model's error never does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from whisperdesk.cli import main
from whisperdesk.core.jobstore import CANCELED, FAILED, QUEUED, JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.queue.enqueue import enqueue
from whisperdesk.core.settings import ModelConfig, OutputOptions, Settings
from whisperdesk.devtools.synth_audio import noise, write_audio

WAIT_MS = 120_000  # an upper bound for slow machines; never a timing assertion


@pytest.fixture
def missing_model(tmp_path: Path) -> Path:
    return tmp_path / "no-such-model"  # loading it would fail: an answer that needed it would say so


def _recording(folder: Path, name: str, seed: int = 0) -> Path:
    return write_audio(folder / name, noise(1.5, amplitude=0.2, seed=seed))


def test_transcribe_into_a_conflicting_output_answers_without_the_model(
    tmp_path: Path, missing_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _recording(tmp_path, "meeting.wav")
    (tmp_path / "meeting.txt").write_text("my own notes\n", encoding="utf-8")
    code = main(["transcribe", "--model", str(missing_model), "--format", "txt", str(source)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{source}: " in err and "already exists and was not written by WhisperDesk" in err
    assert "model" not in err  # the model was never loaded: its error would be the answer otherwise
    assert (tmp_path / "meeting.txt").read_text(encoding="utf-8") == "my own notes\n"


def test_transcribe_reports_unreadable_files_and_unwritable_folders_without_the_model(
    tmp_path: Path, missing_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("this is not a recording\n", encoding="utf-8")
    gone = tmp_path / "gone.wav"
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output folder should be\n", encoding="utf-8")
    code = main(["transcribe", "--model", str(missing_model), str(text), str(gone)])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert [line.split(": ")[2] for line in err] == [str(text), str(gone)], err
    assert "model" not in " ".join(err)

    good = _recording(tmp_path, "memo.wav")
    code = main(
        ["transcribe", "--model", str(missing_model), "--output-dir", str(blocker / "out"), str(good)]
    )
    err = capsys.readouterr().err
    assert code == 1 and "cannot create" in err and "output folder" in err and "model" not in err


def test_a_file_with_an_answer_does_not_stop_the_others(
    tmp_path: Path, tiny_en_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _recording(tmp_path, "good.wav", seed=1)
    taken = _recording(tmp_path, "taken.wav", seed=2)
    (tmp_path / "taken.txt").write_text("someone else's file\n", encoding="utf-8")
    code = main(["transcribe", "--model", str(tiny_en_model), "--format", "txt", str(taken), str(good)])
    captured = capsys.readouterr()
    assert code == 1
    assert "taken.wav: " in captured.err and "already exists" in captured.err
    assert captured.out.splitlines() == [str(tmp_path / "good.txt")]


def test_watch_reports_an_unwritable_output_folder_without_the_model(
    tmp_path: Path, missing_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    blocker = tmp_path / "blocker"
    blocker.write_text("x", encoding="utf-8")
    code = main(
        [
            "watch",
            "--model",
            str(missing_model),
            "--output-dir",
            str(blocker / "out"),
            "--exit-when-idle",
            str(inbox),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "cannot create" in err and "output folder" in err and "model" not in err


def test_a_queued_job_that_cannot_be_written_fails_at_once_not_at_its_turn(
    store: JobStore, tmp_path: Path, missing_model: Path
) -> None:
    """The window and ``watch`` queue through enqueue(precheck=...): a job whose transcripts are in a foreign
    file's way fails when it is queued, with the kind that offers Overwrite — no model, no turn needed."""
    from whisperdesk.core.engine import Engine

    settings = Settings(
        model=ModelConfig(model=str(missing_model), device="cpu"), output=OutputOptions(formats=("txt",))
    )
    engine = Engine(settings.model, tmp_path / "models", local_files_only=True)
    processor = JobProcessor(store, engine, OutputLedger(tmp_path / "ledger.json"), lambda: settings)
    source = _recording(tmp_path, "interview.wav")
    (tmp_path / "interview.txt").write_text("typed by hand\n", encoding="utf-8")
    outcome = enqueue(store, source, job_settings(settings), precheck=processor.precheck)
    assert outcome.created and outcome.problem and outcome.job is not None
    assert outcome.job.state == FAILED and outcome.job.error_kind == "output_exists", outcome.job
    assert "already exists and was not written by WhisperDesk" in outcome.reason
    assert engine.load_count == 0
    fine = _recording(tmp_path, "fine.wav", seed=3)
    ok = enqueue(store, fine, job_settings(settings), precheck=processor.precheck)
    assert ok.created and not ok.problem and ok.job is not None and ok.job.state == "queued"


def test_the_window_answers_a_conflict_while_the_queue_is_paused(
    qtbot: QtBot, tmp_path: Path, missing_model: Path
) -> None:
    """A file added while the queue waits (paused here; busy with a long recording alike) does not wait
    for its turn or for a model to say its transcript cannot be written: its row fails at once and offers
    the fix (the kind behind Overwrite / Choose another folder)."""
    from whisperdesk.app import Desktop
    from whisperdesk.core.paths import AppPaths

    settings = Settings(
        model=ModelConfig(model=str(missing_model), device="cpu"), output=OutputOptions(formats=("txt",))
    )
    desktop = Desktop(AppPaths.default().ensure(), settings, use_tray=False, confirm=lambda *a: True)
    try:
        desktop.runner.set_paused(True)
        desktop.show()
        source = _recording(tmp_path / "in", "call.wav")
        (tmp_path / "in" / "call.txt").write_text("typed by hand\n", encoding="utf-8")
        with qtbot.waitSignal(desktop.runner.jobFailed, timeout=WAIT_MS) as failed:
            desktop.window.add_paths([source])
        (job,) = desktop.store.find(source)
        assert failed.args == [job]  # told like any failed job: its row, the notification, the counts
        assert job.state == FAILED and job.error_kind == "output_exists", job
        assert "already exists" in (job.error or "")
        assert desktop.runner.paused and desktop.engine.load_count == 0
    finally:
        desktop.window.hide()
        desktop.shutdown()


def test_watch_answers_queued_jobs_before_it_loads_the_model(
    tmp_path: Path, missing_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job left queued (a previous run, another start) whose transcript has a foreign file in its way:
    ``watch`` says so first, then that the model cannot load — the answer did not wait for the model."""
    from whisperdesk.core.paths import AppPaths

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = _recording(tmp_path / "elsewhere", "left over.wav")
    (source.parent / "left over.txt").write_text("not WhisperDesk's\n", encoding="utf-8")
    paths = AppPaths.default().ensure()
    settings = Settings(output=OutputOptions(formats=("txt",)))
    with JobStore(paths.jobs_db) as queued:
        job = enqueue(queued, source, job_settings(settings)).job
    assert job is not None and job.state == "queued"
    code = main(["watch", "--model", str(missing_model), "--exit-when-idle", str(inbox)])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err[0].startswith(f"whisperdesk: error: {source}: ") and "already exists" in err[0], err
    assert "model" in err[-1] and "model" not in err[0]
    with JobStore(paths.jobs_db) as store:
        assert store.require(job.id).state == FAILED


def test_a_canceled_recording_added_again_by_hand_is_queued_again_but_not_by_a_rescan(tmp_path: Path) -> None:
    """Adding a canceled recording again did nothing at all (no row, no word); by hand it is the user
    asking for it, so it runs again. A watched folder's rescan never undoes the user's cancel."""
    source = _recording(tmp_path, "lecture.wav")
    with JobStore(tmp_path / "jobs.sqlite3") as store:
        first = store.add(source, {}).job
        store.mark_canceled(first.id)
        rescan = enqueue(store, source, {}, origin="watched", watch_folder=str(tmp_path))
        assert not rescan.created and store.require(first.id).state == CANCELED
        again = enqueue(store, source, {}, origin="dropped")
        assert again.created and again.job is not None and again.job.state == QUEUED
        assert "canceled" in again.reason and [j.state for j in store.find(source)] == [QUEUED]


def test_transcribe_a_mistyped_file_name_says_no_such_file(
    tmp_path: Path, missing_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name that never existed is a typo to fix, not a file that "disappeared ... add it again"."""
    code = main(["transcribe", "--model", str(missing_model), str(tmp_path / "nothere.wav")])
    err = capsys.readouterr().err
    assert code == 1
    assert "nothere.wav: no such file; check the name and the folder" in err and "disappeared" not in err
    assert "no-such-model" not in err  # answered before the model
