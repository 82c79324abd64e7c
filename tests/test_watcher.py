"""The folder watcher: stability with a hand-driven clock, names it ignores, real observers, fallbacks."""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from whisperdesk.core.clock import FakeClock
from whisperdesk.core.jobstore import JobStore
from whisperdesk.core.settings import WatchedFolder
from whisperdesk.core.watcher import (
    Candidate,
    FolderStatus,
    FolderWatcher,
    Observation,
    WatchConfigError,
    WatchSpec,
    default_observer_factory,
    ignore_reason,
    is_settled,
    observe,
)

REAL_EVENT_TIMEOUT = 10.0  # generous upper bound for a real observer to deliver an event; usually ms


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "in box"
    folder.mkdir()
    return folder


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[JobStore]:
    s = JobStore(tmp_path / "jobs.sqlite3", clock=clock)
    yield s
    s.close()


@pytest.fixture
def watchers() -> Iterator[list[FolderWatcher]]:
    """Started watchers are stopped even when a test fails, so no observer thread outlives its test."""
    started: list[FolderWatcher] = []
    yield started
    for w in started:
        w.stop()


def _write(path: Path, data: bytes = b"fake audio") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _settle(w: FolderWatcher, clock: FakeClock) -> list[Candidate]:
    """Let the watcher see the current state, then let the settle time pass."""
    found = w.tick()
    clock.advance(w.settle_seconds)
    return found + w.tick()


def _tick_until(w: FolderWatcher, predicate: Callable[[], bool], timeout: float = REAL_EVENT_TIMEOUT) -> None:
    """Wait (real time) for a real observer's events to reach the watcher; the fake clock stays put."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; pending={w.pending()} statuses={w.statuses()}")
        time.sleep(0.02)
        w.tick()


# --- the stability rule, driven by hand ---------------------------------------------------------------
def test_observe_is_a_pure_stability_step() -> None:
    first = observe(None, 10, 100, now=5.0)
    assert first == Observation(10, 100, 5.0)
    assert observe(first, 10, 100, now=9.0) is first
    assert observe(first, 11, 100, now=9.0) == Observation(11, 100, 9.0)
    assert observe(first, 10, 101, now=9.0) == Observation(10, 101, 9.0)
    assert not is_settled(first, 6.9, 2.0) and is_settled(first, 7.0, 2.0)


def test_file_growing_for_ten_seconds_becomes_one_candidate_after_it_settles(
    inbox: Path, clock: FakeClock
) -> None:
    w = FolderWatcher([WatchSpec(inbox)], clock=clock)
    rec = inbox / "lecture.wav"
    with rec.open("wb") as fh:
        for _ in range(10):  # a slow copy: a chunk every second for 10 s
            fh.write(os.urandom(4096))
            fh.flush()
            w.notify(rec)
            assert w.tick() == []
            clock.advance(1.0)
        assert w.tick() == []  # still open by the writer; unchanged for 1 s since the last chunk
    clock.advance(0.9)
    assert w.tick() == []
    assert w.busy and w.pending() == [rec]
    clock.advance(0.1)
    (found,) = w.tick()
    assert (found.path, found.folder, found.size, found.readable) == (rec, inbox, 40960, True)
    w.notify(rec)
    clock.advance(10)
    assert w.tick() == [] and not w.busy
    assert w.quiet_for() >= 10


def test_rename_into_place_is_one_candidate(inbox: Path, clock: FakeClock) -> None:
    w = FolderWatcher([WatchSpec(inbox)], clock=clock)
    part = _write(inbox / "call.mp3.part", b"x" * 1000)
    w.notify(part)
    assert _settle(w, clock) == []
    final = inbox / "call.mp3"
    part.rename(final)
    w.notify(part)
    w.notify(final)
    found = _settle(w, clock)
    assert [c.path for c in found] == [final]
    assert _settle(w, clock) == []


def test_same_file_announced_twice_is_one_candidate_and_one_job(
    inbox: Path, clock: FakeClock, store: JobStore
) -> None:
    w = FolderWatcher([WatchSpec(inbox)], clock=clock)
    rec = _write(inbox / "a.wav")
    w.notify(rec)
    w.notify(rec)
    w.scan()
    found = _settle(w, clock)
    assert [c.path for c in found] == [rec]
    w.notify(rec)
    w.scan()
    assert _settle(w, clock) == []
    os.utime(rec, ns=(0, rec.stat().st_mtime_ns + 10**9))  # touched: the watcher hands it on again
    w.notify(rec)
    again = _settle(w, clock)
    assert [c.path for c in again] == [rec]
    results = [store.add(c.path, origin="watched", watch_folder=str(c.folder)) for c in found + again]
    assert [r.created for r in results] == [True, False]
    assert len(store.list()) == 1


def test_burst_of_500_files_gives_500_jobs_each_exactly_once(
    inbox: Path, clock: FakeClock, store: JobStore
) -> None:
    w = FolderWatcher([WatchSpec(inbox)], clock=clock)
    files = [_write(inbox / f"rec {i:03}.wav", f"audio {i}".encode()) for i in range(500)]
    for f in files:
        w.notify(f)
        w.notify(f)
    w.scan()
    found = _settle(w, clock)
    assert sorted(c.path for c in found) == files
    w.scan()
    assert _settle(w, clock) == []
    for c in found + found:
        store.add(c.path, origin="watched")
    assert len(store.list()) == 500 and store.counts()["queued"] == 500
    claimed = []
    while (job := store.claim_next()) is not None:
        claimed.append(job.source)
        store.mark_done(job.id)
    assert sorted(claimed) == files


def test_file_changed_after_done_is_queued_again(inbox: Path, clock: FakeClock, store: JobStore) -> None:
    w = FolderWatcher([WatchSpec(inbox)], clock=clock)
    rec = _write(inbox / "memo.m4a", b"first take")
    w.scan()
    (c,) = _settle(w, clock)
    job = store.add(c.path, origin="watched").job
    store.mark_done(store.claim_next().id)
    _write(rec, b"second take, re-recorded")
    w.notify(rec)
    (c2,) = _settle(w, clock)
    result = store.add(c2.path, origin="watched")
    assert result.created and result.reason == f"changed since job {job.id}"


def test_vanished_before_settling_is_dropped(inbox: Path, clock: FakeClock) -> None:
    w = FolderWatcher([WatchSpec(inbox)], clock=clock)
    rec = _write(inbox / "a.wav")
    w.notify(rec)
    w.tick()
    rec.unlink()
    assert _settle(w, clock) == [] and w.pending() == []


def test_unopenable_file_waits_then_is_handed_on_for_its_job_to_report(inbox: Path, clock: FakeClock) -> None:
    w = FolderWatcher([WatchSpec(inbox)], clock=clock, unreadable_grace_seconds=30)
    rec = _write(inbox / "locked.wav")
    rec.chmod(0)
    try:
        try:
            rec.open("rb").close()
            pytest.skip("file permissions are not enforced for this user (root, or a platform without modes)")
        except PermissionError:
            pass
        w.notify(rec)
        assert _settle(w, clock) == []
        clock.advance(29)
        assert w.tick() == []
        clock.advance(1)
        (found,) = w.tick()
        assert found.path == rec and not found.readable
    finally:
        rec.chmod(0o644)


# --- which names count ----------------------------------------------------------------------------
IGNORED = [
    ".hidden.wav",
    "~$meeting.wav",
    "talk.wav.part",
    "talk.mp3.crdownload",
    "talk.wav.download",
    "talk.wav.partial",
    "talk.tmp",
    "talk.wav.tmp",
    ".syncthing.talk.wav.tmp",
    "~syncthing~talk.wav.tmp",
    ".~lock.talk.wav#",
    "talk.wav.!sync",
    "talk.m4a.filepart",
    ".talk.txt.Ab12.wdtmp",
    "talk.txt",
    "talk.srt",
    "talk.json",
    "talk.wav~",
    "no-extension",
]


def test_temporary_hidden_and_non_audio_names_are_ignored(inbox: Path, clock: FakeClock) -> None:
    for name in IGNORED:
        _write(inbox / name)
    good = [_write(inbox / "Good Take.WAV"), _write(inbox / "clip.mp4"), _write(inbox / "voice.opus")]
    w = FolderWatcher([WatchSpec(inbox)], clock=clock)
    w.scan()
    for name in IGNORED:
        w.notify(inbox / name)
    assert sorted(c.path for c in _settle(w, clock)) == sorted(good)


def test_ignore_reason_names_the_rule() -> None:
    root = os.path.join(os.sep, "w")

    def why(rel: str, **kw: object) -> str | None:
        return ignore_reason(os.path.join(root, rel), root, recursive=kw.pop("recursive", True), **kw)  # type: ignore[arg-type]

    assert why("a.wav") is None and why(os.path.join("sub", "a.flac")) is None
    assert why(os.path.join("sub", "a.wav"), recursive=False) == (
        "in a subfolder, and the folder is not watched recursively"
    )
    assert why(os.path.join(".git", "a.wav")) == "in the hidden folder '.git'"
    assert why(os.path.join("$RECYCLE.BIN", "a.wav")) == "in the system folder '$RECYCLE.BIN'"
    assert why(os.path.join("out", "a.wav"), excluded=[os.path.join(root, "out")]) == (
        f"in the excluded folder {os.path.join(root, 'out')}"
    )
    assert why("a.wav.crdownload") == "a partial download or temporary file"
    assert why("~$a.wav") == "a temporary or lock file"
    assert why(".a.wav") == "hidden"
    assert why("a.docx") == "not an audio or video file (.docx)"
    assert why("a.ogg", extensions={".wav"}) == "not an audio or video file (.ogg)"
    assert ignore_reason(os.path.join(os.sep, "elsewhere", "a.wav"), root, recursive=True) == (
        "outside the watched folder"
    )


def test_subfolders_only_when_recursive_and_excluded_folders_never(inbox: Path, clock: FakeClock) -> None:
    top = _write(inbox / "top.wav")
    deep = _write(inbox / "2024" / "march" / "deep.wav")
    _write(inbox / "done" / "already.wav")
    _write(inbox / "transcripts" / "stray.wav")
    _write(inbox / ".cache" / "hidden.wav")
    flat = FolderWatcher([WatchSpec(inbox)], clock=clock)
    flat.scan()
    assert [c.path for c in _settle(flat, clock)] == [top]
    spec = WatchSpec.from_settings(WatchedFolder(path=str(inbox), recursive=True, after_processing="move"))
    deep_watcher = FolderWatcher([spec], clock=clock, output_dirs=[inbox / "transcripts"])
    deep_watcher.scan()
    assert sorted(c.path for c in _settle(deep_watcher, clock)) == sorted([top, deep])


def test_output_folder_inside_a_recursive_watched_folder_is_refused_unless_excluded(inbox: Path) -> None:
    out = inbox / "transcripts"
    with pytest.raises(WatchConfigError, match=r"output folder .*transcripts is inside the watched folder"):
        FolderWatcher([WatchSpec(inbox, recursive=True)], output_dirs=[out], exclude_outputs=False)
    FolderWatcher([WatchSpec(inbox, recursive=True)], output_dirs=[out], exclude_outputs=True)
    FolderWatcher([WatchSpec(inbox, recursive=True)], output_dirs=[inbox], exclude_outputs=False)
    FolderWatcher([WatchSpec(inbox)], output_dirs=[out], exclude_outputs=False)  # subfolders not watched
    not_a_folder = _write(inbox / "a.wav")
    with pytest.raises(WatchConfigError, match="is a file, not a folder"):
        FolderWatcher([WatchSpec(not_a_folder)])


def test_unicode_and_space_paths(tmp_path: Path, clock: FakeClock, store: JobStore) -> None:
    folder = tmp_path / "Meine Aufnahmen ü" / "日本語 フォルダ"
    rec = _write(folder / "Interview – Zoë (final take).m4a")
    w = FolderWatcher([WatchSpec(tmp_path / "Meine Aufnahmen ü", recursive=True)], clock=clock)
    w.scan()
    (c,) = _settle(w, clock)
    assert c.path == rec
    assert store.add(c.path, origin="watched", watch_folder=str(c.folder)).job.source == rec


# --- real observers -------------------------------------------------------------------------------
def test_startup_scan_and_native_events(inbox: Path, clock: FakeClock, watchers: list[FolderWatcher]) -> None:
    before = _write(inbox / "arrived while closed.wav")
    w = FolderWatcher([WatchSpec(inbox)], clock=clock)
    watchers.append(w)
    w.start()
    assert [s.mode for s in w.statuses()] == ["watching"]
    assert [c.path for c in _settle(w, clock)] == [before]

    part = _write(inbox / "new.wav.part", b"y" * 5000)  # written under a temp name, then renamed
    final = inbox / "new.wav"
    part.rename(final)
    _tick_until(w, lambda: final in w.pending())
    clock.advance(2)
    assert [c.path for c in w.tick()] == [final]


def test_burst_of_500_files_through_a_real_observer(
    inbox: Path, clock: FakeClock, store: JobStore, watchers: list[FolderWatcher]
) -> None:
    w = FolderWatcher([WatchSpec(inbox)], clock=clock)
    watchers.append(w)
    w.start()
    w.tick()
    files = {_write(inbox / f"burst {i:03}.wav", f"burst {i}".encode()) for i in range(500)}
    _tick_until(w, lambda: len(w.pending()) == 500)
    clock.advance(2)
    found = w.tick()
    w.scan()  # a rescan after the burst finds nothing new
    found += _settle(w, clock)
    assert sorted(c.path for c in found) == sorted(files)
    created = [store.add(c.path, origin="watched").created for c in found]
    assert created.count(True) == 500 and len(store.list()) == 500


def test_folder_moved_in_with_recordings_inside(
    tmp_path: Path, inbox: Path, clock: FakeClock, watchers: list[FolderWatcher]
) -> None:
    staging = tmp_path / "staging"
    recs = [_write(staging / "day 1" / "a.wav"), _write(staging / "day 1" / "b.wav")]
    w = FolderWatcher([WatchSpec(inbox, recursive=True)], clock=clock)
    watchers.append(w)
    w.start()
    w.tick()
    (staging / "day 1").rename(inbox / "day 1")
    expected = {inbox / "day 1" / r.name for r in recs}
    _tick_until(w, lambda: set(w.pending()) == expected)
    clock.advance(2)
    assert {c.path for c in w.tick()} == expected


def test_native_watching_failure_falls_back_to_polling(
    inbox: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture, watchers: list[FolderWatcher]
) -> None:
    def factory(polling: bool):  # the real observers, with the kernel's limit error injected for native
        if not polling:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return default_observer_factory(True, polling_interval=0.05)

    statuses: list[FolderStatus] = []
    w = FolderWatcher([WatchSpec(inbox)], clock=clock, observer_factory=factory, on_status=statuses.append)
    watchers.append(w)
    with caplog.at_level(logging.WARNING, logger="whisperdesk.core.watcher"):
        w.start()
    (status,) = w.statuses()
    assert status.mode == "polling" and "errno 28" in status.reason and "max_user_watches" in status.reason
    assert statuses == [status]
    assert any("by polling" in r.getMessage() and "errno 28" in r.getMessage() for r in caplog.records)
    w.tick()
    rec = _write(inbox / "polled.wav")
    _tick_until(w, lambda: rec in w.pending())
    clock.advance(2)
    assert [c.path for c in w.tick()] == [rec]


def test_polling_chosen_per_folder(inbox: Path, clock: FakeClock, watchers: list[FolderWatcher]) -> None:
    w = FolderWatcher([WatchSpec(inbox, polling=True)], clock=clock, polling_interval=0.05)
    watchers.append(w)
    w.start()
    assert w.statuses() == [FolderStatus(inbox, "polling", "polling was chosen for this folder")]


def test_dead_observer_is_noticed_and_restarted(
    inbox: Path, clock: FakeClock, watchers: list[FolderWatcher]
) -> None:
    w = FolderWatcher([WatchSpec(inbox)], clock=clock, health_seconds=10)
    watchers.append(w)
    w.start()
    w.tick()
    (folder,) = w._folders
    dead = folder.observer
    dead.stop()
    dead.join(REAL_EVENT_TIMEOUT)
    assert not dead.is_alive()
    clock.advance(10)
    w.tick()
    assert folder.observer is not dead and folder.observer.is_alive()
    assert [s.mode for s in w.statuses()] == ["watching"]
    rec = _write(inbox / "after restart.wav")
    _tick_until(w, lambda: rec in w.pending())
    clock.advance(2)
    assert [c.path for c in w.tick()] == [rec]


def test_missing_folder_is_an_error_until_it_appears(
    tmp_path: Path, clock: FakeClock, watchers: list[FolderWatcher]
) -> None:
    usb = tmp_path / "usb stick" / "recorder"
    w = FolderWatcher([WatchSpec(usb)], clock=clock, health_seconds=5)
    watchers.append(w)
    w.start()
    (status,) = w.statuses()
    assert status.mode == "error" and "folder not found" in status.reason
    assert w.tick() == []
    rec = _write(usb / "plugged in.wav")
    clock.advance(5)
    w.tick()
    assert [s.mode for s in w.statuses()] == ["watching"]
    assert [c.path for c in _settle(w, clock)] == [rec]


def test_periodic_rescan_catches_missed_events(
    inbox: Path, clock: FakeClock, watchers: list[FolderWatcher]
) -> None:
    # A polling observer that never polls during the test: every event is "lost".
    w = FolderWatcher(
        [WatchSpec(inbox)],
        clock=clock,
        rescan_seconds=300,
        health_seconds=10_000,
        observer_factory=lambda polling: default_observer_factory(True, polling_interval=3600),
    )
    watchers.append(w)
    w.start()
    w.tick()
    rec = _write(inbox / "missed.wav")
    assert _settle(w, clock) == []
    clock.advance(300)
    assert [c.path for c in _settle(w, clock)] == [rec]


def test_run_loop_delivers_candidates_until_stopped(inbox: Path) -> None:
    import threading

    rec = _write(inbox / "a.wav")
    got: list[Candidate] = []
    stop = threading.Event()
    w = FolderWatcher([WatchSpec(inbox)], settle_seconds=0)

    def collect(found: list[Candidate]) -> None:
        got.extend(found)
        stop.set()

    t = threading.Thread(target=w.run, args=(collect, stop, 0.01))
    t.start()
    t.join(REAL_EVENT_TIMEOUT)
    assert not t.is_alive()
    assert [c.path for c in got] == [rec]
    assert [s.mode for s in w.statuses()] == ["stopped"]
