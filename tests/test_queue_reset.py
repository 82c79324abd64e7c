"""A job list that was damaged, emptied or deleted is said out loud, and the watched folders do not turn it into
duplicate work: the outputs ledger knows which recordings already have transcripts (issue 18, point 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from whisperdesk.cli import main
from whisperdesk.core.jobstore import QUEUED, JobStore
from whisperdesk.core.outputs import OutputLedger, output_paths
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.queue.enqueue import enqueue
from whisperdesk.core.queue.reset import reset_notice
from whisperdesk.core.settings import OutputOptions
from whisperdesk.devtools.synth_audio import tone, write_audio


@pytest.fixture
def paths(isolated_home: Path) -> AppPaths:
    return AppPaths.under(isolated_home).ensure()


def _transcribed(ledger: OutputLedger, recording: Path) -> None:
    """What a finished job leaves: its transcripts on disk, recorded in the ledger after the recording."""
    written = {}
    for target in output_paths(recording, OutputOptions(formats=("txt",))).values():
        target.write_text("hello\n")
        written[target] = "0" * 64
    ledger.record(written, recording)


def test_after_a_damaged_queue_watched_recordings_with_transcripts_are_not_queued_again(
    paths: AppPaths, tmp_path: Path
) -> None:
    ledger = OutputLedger.default(paths)
    watched = tmp_path / "watched"
    done = write_audio(watched / "done.wav", tone(200.0, 1.0))
    changed = write_audio(watched / "changed.wav", tone(300.0, 1.0))
    new = write_audio(watched / "new.wav", tone(400.0, 1.0))
    for recording in (done, changed):
        _transcribed(ledger, recording)
    later = changed.stat().st_mtime + 60  # re-recorded after its transcript was written
    os.utime(changed, (later, later))
    paths.jobs_db.write_bytes(b"\0" * 4096 + b"damaged")
    with JobStore(paths.jobs_db) as store:
        notice = reset_notice(store)
        assert notice is not None and str(store.recovered_from) in notice
        assert "are not queued again" in notice
        outcomes = {
            p.name: enqueue(store, p, {}, origin="watched", watch_folder=str(watched), ledger=ledger)
            for p in (done, changed, new)
        }
        assert (
            not outcomes["done.wav"].created
            and "already transcribed (done.txt)" in outcomes["done.wav"].reason
        )
        assert outcomes["changed.wav"].created and outcomes["new.wav"].created
        # Adding it by hand is the user agreeing: it is queued.
        assert enqueue(store, done, {}, origin="dropped", ledger=ledger).created
        assert sorted(j.source.name for j in store.list([QUEUED])) == ["changed.wav", "done.wav", "new.wav"]


def test_a_missing_queue_is_reported_only_when_transcripts_were_written_before(
    paths: AppPaths, tmp_path: Path
) -> None:
    ledger = OutputLedger.default(paths)
    with JobStore(paths.jobs_db) as store:
        assert reset_notice(store) is None  # a first start
    _transcribed(ledger, write_audio(tmp_path / "a.wav", tone(200.0, 1.0)))
    with JobStore(paths.jobs_db) as store:
        assert reset_notice(store) is None  # the same queue, opened again
    for suffix in ("", "-wal", "-shm"):
        Path(f"{paths.jobs_db}{suffix}").unlink(missing_ok=True)
    with JobStore(paths.jobs_db) as store:
        notice = reset_notice(store)
        assert notice is not None and "was not found" in notice and str(paths.jobs_db) in notice


def test_transcripts_written_before_any_job_list_existed_are_no_reset(
    paths: AppPaths, tmp_path: Path
) -> None:
    """``whisperdesk transcribe`` writes transcripts (and the ledger) without a job list: opening the window
    afterwards is a first start, not a lost queue (a newcomer was told their job list was lost)."""
    ledger = OutputLedger.default(paths)
    _transcribed(ledger, write_audio(tmp_path / "a.wav", tone(200.0, 1.0)))
    assert ledger.has_entries() and not paths.jobs_db.exists()
    with JobStore(paths.jobs_db) as store:
        assert store.started_new and reset_notice(store) is None


def test_the_cli_warns_of_a_zero_byte_queue_naming_where_it_was_kept(
    paths: AppPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    paths.jobs_db.write_bytes(b"")
    assert main(["jobs"]) == 0
    err = capsys.readouterr().err
    kept = sorted(paths.data_dir.glob("jobs.sqlite3.corrupt-*"))
    assert len(kept) == 1
    assert (
        err.startswith("whisperdesk: warning: the job list")
        and "empty (0 bytes)" in err
        and str(kept[0]) in err
    )


@pytest.mark.usefixtures("no_leaks")
def test_the_window_shows_a_banner_for_a_damaged_queue(
    paths: AppPaths, qtbot: QtBot, whisper_model_dir: Path
) -> None:
    from whisperdesk.app import Desktop
    from whisperdesk.core.settings import ModelConfig, Settings

    paths.jobs_db.write_bytes(b"not a database" * 300)
    settings = Settings(model=ModelConfig(model=str(whisper_model_dir), device="cpu"))
    app = Desktop(paths, settings, use_tray=False, confirm=lambda *a: True)
    try:
        banner = app.window.queue_reset_banner
        assert banner.showing and banner.level == "warning"
        assert str(app.store.recovered_from) in banner.text and banner.text.startswith("The job list")
    finally:
        app.shutdown()
