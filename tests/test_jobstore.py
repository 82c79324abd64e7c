"""The job store: exactly-once adds, atomic claims, crash recovery, migrations, change tracking."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from whisperdesk.core.clock import FakeClock
from whisperdesk.core.errors import FileDisappearedError, UnreadableFileError
from whisperdesk.core.fingerprint import CHUNK, FULL_HASH_LIMIT, fingerprint_file
from whisperdesk.core.jobstore import (
    CANCELED,
    CRASH_REASON,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    SCHEMA_VERSION,
    JobEvent,
    JobNotFoundError,
    JobStateError,
    JobStore,
    JobStoreError,
    apply_migrations,
)
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.sqlite_files import schema_version


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[JobStore]:
    s = JobStore(tmp_path / "data" / "jobs.sqlite3", clock=clock)
    yield s
    s.close()


def _write(path: Path, data: bytes = b"RIFF fake audio bytes") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_default_store_lives_in_the_app_data_dir(isolated_home: Path) -> None:
    with JobStore.default() as s:
        assert s.path == AppPaths.default().jobs_db
        assert s.path.is_relative_to(isolated_home)
        mode = sqlite3.connect(s.path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_full_lifecycle_records_everything(store: JobStore, clock: FakeClock, tmp_path: Path) -> None:
    src = _write(tmp_path / "in" / "talk.wav")
    settings = {"model": "small", "beam_size": 5, "temperature": [0.0, 0.2]}
    added = store.add(src, settings, origin="watched", watch_folder=str(src.parent))
    assert added.created and added.reason == "new"
    job = added.job
    assert (job.state, job.attempts, job.progress) == (QUEUED, 0, 0.0)
    assert job.source == src and job.size == src.stat().st_size and job.mtime_ns == src.stat().st_mtime_ns
    assert job.fingerprint.startswith("full:") and job.settings == settings
    assert (job.origin, job.watch_folder) == ("watched", str(src.parent))
    assert job.created_at == clock.time()

    clock.advance(5)
    running = store.claim_next()
    assert running is not None and running.id == job.id
    assert (running.state, running.attempts, running.started_at) == (RUNNING, 1, clock.time())
    clock.advance(3)
    assert store.mark_progress(job.id, 0.5, duration=60.0, language="de").progress == 0.5
    assert store.mark_progress(job.id, 7.0).progress == 1.0  # clamped
    clock.advance(4)
    out = [tmp_path / "in" / "talk.txt", tmp_path / "in" / "talk.srt"]
    done = store.mark_done(job.id, outputs=out)
    assert done.state == DONE and done.outputs == tuple(out) and done.progress == 1.0
    assert (done.duration, done.language, done.processing_time) == (60.0, "de", 7.0)
    assert done.finished_at == clock.time() and done.error is None and done.finished
    assert store.claim_next() is None
    assert store.counts() == {QUEUED: 0, RUNNING: 0, DONE: 1, FAILED: 0, CANCELED: 0}


def test_same_file_announced_twice_is_one_job(store: JobStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "a.wav")
    first = store.add(src)
    again = store.add(src)
    via_other_spelling = store.add(tmp_path / "." / "a.wav")
    link = tmp_path / "link.wav"
    link.symlink_to(src)
    via_symlink = store.add(link)
    assert first.created
    for result in (again, via_other_spelling, via_symlink):
        assert not result.created and result.job.id == first.job.id
        assert f"already queued as job {first.job.id}" == result.reason
    assert len(store.list()) == 1


def test_same_file_seen_while_running_or_after_done_is_not_queued(store: JobStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "a.wav")
    job = store.add(src).job
    store.claim_next()
    assert not store.add(src).created
    store.mark_done(job.id)
    os.utime(src)  # touched, same content: the fingerprint decides, not the mtime
    result = store.add(src)
    assert not result.created and result.reason == f"already done as job {job.id}"
    assert len(store.list()) == 1


def test_copy_of_a_done_file_elsewhere_gets_its_own_job_that_copies(store: JobStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "a.wav", b"same bytes")
    job = store.add(src).job
    store.claim_next()
    store.mark_done(job.id)
    copy = _write(tmp_path / "other" / "copy of a.wav", b"same bytes")
    result = store.add(copy, origin="dropped")
    assert result.created and result.job.source == copy and result.job.copy_of == job.id
    assert "same content as" in result.reason
    assert not store.add(copy).created  # the copy itself is now known
    again = store.rerun(result.job.id)  # "transcribe again" is a real transcription
    assert not again.created  # ...but not while the copy's own job is still queued
    store.mark_canceled(result.job.id)
    forced = store.rerun(result.job.id)
    assert forced.created and forced.job.copy_of is None


def test_a_copy_waits_while_the_job_it_copies_is_queued_or_running(store: JobStore, tmp_path: Path) -> None:
    first = store.add(_write(tmp_path / "a.wav", b"same")).job
    copy = store.add(_write(tmp_path / "b.wav", b"same")).job
    other = store.add(_write(tmp_path / "c.wav", b"other")).job
    assert copy.copy_of == first.id
    assert store.claim_next().id == first.id  # type: ignore[union-attr]
    assert store.claim_next().id == other.id  # type: ignore[union-attr]  # the copy is skipped meanwhile
    assert store.claim_next() is None
    store.mark_done(first.id)
    assert store.claim_next().id == copy.id  # type: ignore[union-attr]


def test_copy_of_a_failed_file_elsewhere_is_queued(store: JobStore, tmp_path: Path) -> None:
    """A file moved to another folder while queued fails as 'disappeared'; the moved copy must run."""
    src = _write(tmp_path / "a" / "x.wav", b"bytes")
    job = store.add(src).job
    store.claim_next()
    store.mark_failed(job.id, FileDisappearedError(src, f"file disappeared: {src}"))
    moved = _write(tmp_path / "b" / "x.wav", b"bytes")
    assert store.add(moved).created


def test_failed_file_is_not_retried_by_rescans_but_retry_works(store: JobStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "broken.mp3", b"not audio")
    job = store.add(src).job
    store.claim_next()
    failed = store.mark_failed(job.id, "not an audio file: broken.mp3")
    assert failed.state == FAILED and failed.error == "not an audio file: broken.mp3"
    assert not store.add(src).created  # the watcher's rescan sees it again
    retried = store.retry(job.id)
    assert (retried.state, retried.attempts, retried.error, retried.finished_at) == (QUEUED, 0, None, None)
    assert store.claim_next().id == job.id


def test_file_changed_after_done_is_queued_again(store: JobStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "memo.m4a", b"version one")
    first = store.add(src).job
    store.claim_next()
    store.mark_done(first.id)
    _write(src, b"version two, longer")
    result = store.add(src)
    assert result.created and result.reason == f"changed since job {first.id}"
    assert result.job.fingerprint != first.fingerprint
    # Same size and same mtime as before, different bytes: caught by the fingerprint, not the stat.
    st = src.stat()
    _write(src, b"version 3, longer!!")
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    store.claim_next()
    store.mark_done(result.job.id)
    third = store.add(src)
    assert third.created and len(store.list()) == 3


def test_file_changed_while_queued_updates_that_job(store: JobStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "a.wav", b"partial")
    job = store.add(src).job
    _write(src, b"partial plus the rest")
    result = store.add(src)
    assert not result.created and result.job.id == job.id
    assert result.job.size == len(b"partial plus the rest") and result.job.fingerprint != job.fingerprint
    assert len(store.list()) == 1


def test_force_reruns_a_done_file_but_never_queues_it_twice(store: JobStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "a.wav")
    job = store.add(src, {"beam_size": 5}).job
    store.claim_next()
    store.mark_done(job.id)
    again = store.rerun(job.id, {"beam_size": 1})
    assert again.created and again.reason == f"run again (was job {job.id})"
    assert again.job.settings == {"beam_size": 1}
    assert not store.add(src, force=True).created  # already queued
    assert [j.id for j in store.queued()] == [again.job.id]


def test_claims_are_fifo_and_retried_jobs_go_to_the_end(store: JobStore, tmp_path: Path) -> None:
    ids = [store.add(_write(tmp_path / f"{i}.wav", bytes([i]))).job.id for i in range(4)]
    first = store.claim_next()
    store.mark_failed(first.id, "boom")
    store.retry(first.id)
    order = []
    while (job := store.claim_next()) is not None:
        order.append(job.id)
    assert order == [*ids[1:], ids[0]]


def test_invalid_transitions_say_what_is_wrong(store: JobStore, tmp_path: Path) -> None:
    job = store.add(_write(tmp_path / "a.wav")).job
    with pytest.raises(JobStateError, match=r"cannot finish job \d+ .*a\.wav.*: it is queued"):
        store.mark_done(job.id)
    store.claim_next()
    with pytest.raises(JobStateError, match="cancel it before removing it"):
        store.remove(job.id)
    store.mark_done(job.id)
    with pytest.raises(JobStateError, match="it is done"):
        store.mark_canceled(job.id)
    with pytest.raises(JobStateError, match="it is done"):
        store.retry(job.id)
    with pytest.raises(JobNotFoundError, match="no job with id 999"):
        store.mark_failed(999, "x")
    with pytest.raises(ValueError, match="origin='usb' is invalid"):
        store.add(tmp_path / "a.wav", origin="usb")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSON-serialisable"):
        store.add(tmp_path / "a.wav", {"when": object()})
    with pytest.raises(ValueError, match="unknown job state"):
        store.list(["finished"])


def test_unreadable_sources_are_refused_clearly(store: JobStore, tmp_path: Path) -> None:
    missing = tmp_path / "gone.wav"
    with pytest.raises(FileDisappearedError, match=r"file disappeared: .*gone\.wav no longer exists"):
        store.add(missing)
    with pytest.raises(UnreadableFileError, match="is a folder"):
        store.add(tmp_path)
    assert store.list() == []


def test_cancel_release_and_progress_after_cancel(store: JobStore, tmp_path: Path) -> None:
    a = store.add(_write(tmp_path / "a.wav", b"a")).job
    b = store.add(_write(tmp_path / "b.wav", b"b")).job
    store.claim_next()
    released = store.release(a.id)  # clean shutdown mid-job: not a crash, not counted
    assert (released.state, released.attempts) == (QUEUED, 0)
    assert store.claim_next().id == a.id
    assert store.mark_canceled(a.id).state == CANCELED
    assert store.mark_progress(a.id, 0.3) is None  # the loop learns it should stop
    assert store.mark_canceled(a.id).state == CANCELED  # idempotent for the loop's own call
    assert store.mark_canceled(b.id).state == CANCELED  # queued jobs can be canceled too
    assert not store.add(tmp_path / "a.wav").created  # a canceled file is not resurrected by rescans


def test_remove_forgets_but_archive_keeps_duplicate_detection(store: JobStore, tmp_path: Path) -> None:
    a = _write(tmp_path / "a.wav", b"a")
    b = _write(tmp_path / "b.wav", b"b")
    ja, jb = store.add(a).job, store.add(b).job
    for _ in range(2):
        store.mark_done(store.claim_next().id)
    assert store.archive_finished() == 2
    assert store.list() == [] and len(store.list(include_archived=True)) == 2
    assert not store.add(a).created
    assert store.remove(jb.id) and not store.remove(jb.id)
    assert store.add(b).created
    assert [j.id for j in store.find(a)] == [ja.id]


def test_listeners_see_every_committed_change(store: JobStore, tmp_path: Path) -> None:
    events: list[JobEvent] = []
    unsubscribe = store.add_listener(events.append)
    store.add_listener(lambda e: 1 / 0)  # a broken listener must not break the store
    job = store.add(_write(tmp_path / "a.wav")).job
    store.claim_next()
    store.mark_progress(job.id, 0.25)
    store.mark_done(job.id)
    store.remove(job.id)
    assert [(e.kind, e.job_id) for e in events] == [
        ("added", job.id),
        ("changed", job.id),
        ("progress", job.id),
        ("changed", job.id),
        ("removed", job.id),
    ]
    assert events[2].job.progress == 0.25 and events[3].job.state == DONE and events[4].job is None
    unsubscribe()
    store.add(_write(tmp_path / "b.wav", b"b"))
    assert len(events) == 5


def test_another_process_sees_changes_by_polling(store: JobStore, tmp_path: Path) -> None:
    other = JobStore(store.path)  # another process's view: separate connections, no shared listeners
    try:
        v0 = other.data_version()
        assert other.changes_since(v0).jobs == []
        a = store.add(_write(tmp_path / "a.wav", b"a")).job
        b = store.add(_write(tmp_path / "b.wav", b"b")).job
        v1 = other.data_version()
        assert v1 > v0
        changes = other.changes_since(v0)
        assert [j.id for j in changes.jobs] == [a.id, b.id] and changes.version == v1
        store.claim_next()
        store.remove(b.id)
        changes = other.changes_since(v1)
        assert [(j.id, j.state) for j in changes.jobs] == [(a.id, RUNNING)] and changes.removed == [b.id]
        assert other.changes_since(changes.version).jobs == []
    finally:
        other.close()


_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from whisperdesk.core.jobstore import JobStore
    store = JobStore(sys.argv[1])
    mode = sys.argv[2]
    if mode == "crash":
        job = store.claim_next()
        print(job.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "hold":
        job = store.claim_next()
        print(job.id, flush=True)
        sys.stdin.read()
    elif mode == "drain":
        while (job := store.claim_next()) is not None:
            print(job.id, flush=True)
            store.mark_done(job.id)
    """
)


def _child(db: Path, mode: str, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db), mode], stdout=subprocess.PIPE, text=True, env=env, **kw
    )


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_crash_recovery_requeues_then_fails_after_three_crashes(store: JobStore, tmp_path: Path) -> None:
    job = store.add(_write(tmp_path / "crashy.wav")).job
    for attempt in (1, 2, 3):
        proc = _child(store.path, "crash")
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == -9 and out.strip() == str(job.id)
        assert store.get(job.id).state == RUNNING  # left behind by the killed process
        recovery = store.recover_after_crash()
        if attempt < 3:
            assert [j.id for j in recovery.requeued] == [job.id] and recovery.failed == []
            assert store.get(job.id).state == QUEUED and store.get(job.id).attempts == attempt
        else:
            assert recovery.requeued == [] and [j.id for j in recovery.failed] == [job.id]
    final = store.get(job.id)
    assert (final.state, final.error) == (FAILED, CRASH_REASON)
    assert CRASH_REASON == "crashed 3 times while transcribing; retry it from the Jobs list"
    assert store.retry(job.id).attempts == 0


@pytest.mark.skipif(os.name != "posix", reason="uses a child process holding a job")
def test_recovery_never_steals_a_job_from_a_live_process(store: JobStore, tmp_path: Path) -> None:
    job = store.add(_write(tmp_path / "long.wav")).job
    proc = _child(store.path, "hold", stdin=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == str(job.id)
        recovery = store.recover_after_crash()
        assert [j.id for j in recovery.still_running] == [job.id] and recovery.requeued == []
        assert store.get(job.id).state == RUNNING
    finally:
        proc.communicate(input="", timeout=60)
    assert [j.id for j in store.recover_after_crash().requeued] == [job.id]


def test_concurrent_adds_and_claims_never_double_claim(store: JobStore, tmp_path: Path) -> None:
    files = [_write(tmp_path / "burst" / f"f{i:03}.wav", f"content {i}".encode()) for i in range(120)]
    claimed: list[int] = []
    claimed_lock = threading.Lock()
    errors: list[BaseException] = []
    adding_done = threading.Event()

    def adder(part: list[Path]) -> None:
        try:
            for f in part:
                store.add(f, origin="watched")
                store.add(f, origin="watched")  # every file announced twice, from two threads
        except BaseException as exc:
            errors.append(exc)

    def claimer() -> None:
        try:
            while True:
                job = store.claim_next()
                if job is None:
                    if adding_done.is_set() and store.counts()[QUEUED] == 0:
                        return
                    continue
                with claimed_lock:
                    claimed.append(job.id)
                store.mark_done(job.id)
        except BaseException as exc:
            errors.append(exc)

    adders = [threading.Thread(target=adder, args=(files[i::3],)) for i in range(3)]
    adders += [threading.Thread(target=adder, args=(files[::-1][i::3],)) for i in range(3)]
    claimers = [threading.Thread(target=claimer) for _ in range(4)]
    for t in adders + claimers:
        t.start()
    for t in adders:
        t.join()
    adding_done.set()
    for t in claimers:
        t.join()
    assert errors == []
    assert len(claimed) == len(set(claimed)) == len(files)
    assert store.counts()[DONE] == len(files) and len(store.list()) == len(files)


@pytest.mark.skipif(os.name != "posix", reason="child processes share the store via fork-free Popen only")
def test_processes_claiming_together_each_get_distinct_jobs(store: JobStore, tmp_path: Path) -> None:
    ids = {store.add(_write(tmp_path / f"{i}.wav", bytes([i]))).job.id for i in range(60)}
    procs = [_child(store.path, "drain") for _ in range(3)]
    seen: list[int] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        seen += [int(line) for line in out.split()]
    assert sorted(seen) == sorted(ids)
    assert store.counts()[DONE] == 60


def test_migration_from_schema_version_1(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    assert apply_migrations(conn, target=1) == 1
    src = _write(tmp_path / "old recording.wav")
    conn.execute(
        "INSERT INTO jobs (source, source_key, size, mtime_ns, fingerprint, state, settings, outputs, "
        "queue_seq, created_at, attempts) VALUES (?, ?, ?, ?, ?, 'queued', ?, '[]', 1, 1.0, 0)",
        (str(src), os.path.normcase(os.path.realpath(src)), 1, 2, "full:abc", json.dumps({"model": "tiny"})),
    )
    conn.close()

    with JobStore(db) as store:
        conn = sqlite3.connect(db)
        assert schema_version(conn) == SCHEMA_VERSION == 4
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [
            1,
            2,
            3,
            4,
        ]
        conn.close()
        (job,) = store.list()
        assert (job.source, job.settings, job.origin, job.progress, job.watch_folder) == (
            src,
            {"model": "tiny"},
            "dropped",
            0.0,
            None,
        )
        assert store.claim_next().id == job.id
        assert store.changes_since(0).jobs[0].id == job.id


def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite3"
    JobStore(db).close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)")
    conn.close()
    with pytest.raises(JobStoreError, match="schema version 99, newer than this WhisperDesk understands"):
        JobStore(db)


def test_unreadable_database_is_kept_aside_and_a_new_one_started(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    db.write_bytes(b"this is not sqlite at all" * 100)
    with JobStore(db) as store:
        assert store.recovered_from is not None and store.recovered_from.read_bytes().startswith(
            b"this is not"
        )
        assert store.list() == []
        assert store.add(_write(tmp_path / "a.wav")).created


def test_unicode_and_space_paths(store: JobStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "my recordings ü" / "Interview – Zoë 日本語 (final).wav", b"unicode")
    job = store.add(src, {"language": "ja"}).job
    assert store.get(job.id).source == src
    assert [j.id for j in store.find(src)] == [job.id]
    assert not store.add(Path(str(src))).created
    store.claim_next()
    out = src.with_suffix(".srt")
    assert store.mark_done(job.id, outputs=[out]).outputs == (out,)


def test_fingerprint_samples_large_files_and_sees_their_changes(tmp_path: Path) -> None:
    small = _write(tmp_path / "small.wav", b"x" * 1000)
    assert fingerprint_file(small).digest.startswith("full:")
    big = tmp_path / "big.mkv"
    data = bytearray(os.urandom(FULL_HASH_LIMIT + 3 * CHUNK))
    big.write_bytes(data)
    fp = fingerprint_file(big)
    assert fp.digest.startswith("sampled:") and fp.size == len(data)
    for offset in (10, len(data) // 2, len(data) - 10):  # header, middle, trailer
        changed = bytearray(data)
        changed[offset] ^= 0xFF
        big.write_bytes(changed)
        assert fingerprint_file(big).digest != fp.digest
    big.write_bytes(data)
    assert fingerprint_file(big).digest == fp.digest


def test_zero_byte_database_is_damaged_not_new(tmp_path: Path) -> None:
    """A database truncated to nothing (a full disk, a sync tool) is a lost queue, not a first start."""
    db = tmp_path / "jobs.sqlite3"
    db.write_bytes(b"")
    with JobStore(db) as store:
        assert store.recovered_from is not None and store.recovered_from.exists()
        assert "empty (0 bytes)" in store.recovery_reason
        assert not store.started_new  # the window and the CLI say it was recovered, not "first start"


def test_two_recoveries_in_one_second_keep_both_copies(tmp_path: Path) -> None:
    db = tmp_path / "jobs.sqlite3"
    kept = []
    for text in (b"first damaged queue" * 50, b"second damaged queue" * 50):
        db.write_bytes(text)
        with JobStore(db) as store:
            assert store.recovered_from is not None
            kept.append(store.recovered_from)
    assert kept[0] != kept[1]
    assert kept[0].read_bytes().startswith(b"first") and kept[1].read_bytes().startswith(b"second")


def test_a_missing_database_is_a_new_one(tmp_path: Path) -> None:
    with JobStore(tmp_path / "jobs.sqlite3") as store:
        assert store.started_new and store.recovered_from is None
    with JobStore(tmp_path / "jobs.sqlite3") as store:
        assert not store.started_new


def test_the_database_is_private_to_the_user(tmp_path: Path) -> None:
    """It lists the path of every recording: 0600 whatever the umask, its WAL too; an older 0644 one is
    tightened on open."""
    db = tmp_path / "jobs.sqlite3"
    with JobStore(db) as store:
        store.add(_write(tmp_path / "a.wav"))
        for path in (db, Path(f"{db}-wal")):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    db.chmod(0o644)
    JobStore(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
