"""One contract, two backends: the desktop's SQLite job store (through its adapter) and a team's PostgreSQL
queue (a real server, started by the ``postgres_server`` fixture) must behave the same to a worker.

Where they differ by design it is said: a SQLite lease is the owning process (it "expires" when that
process is gone), a PostgreSQL lease is a time on the server's clock; fair share needs submitters, which
one person's SQLite queue does not have.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from whisperdesk.core.jobstore import CRASH_REASON, MAX_CRASHES, JobStateError, JobStore
from whisperdesk.core.queue.protocol import (
    BACKFILL,
    CANCELED,
    DONE,
    FAILED,
    LIVE,
    QUEUED,
    RUNNING,
    JobQueue,
    Lease,
    StaleLeaseError,
)
from whisperdesk.core.queue.sqlite import SqliteJobQueue


@dataclass
class Backend:
    queue: JobQueue
    lose_holder: Callable[[Lease], None]  # the lease's holder is gone: killed, frozen past its lease, cut off
    open_another: Callable[[], JobQueue]  # a second client of the same queue (another worker)


def _sqlite_backend(tmp_path: Path) -> Iterator[Backend]:
    db = tmp_path / "jobs.sqlite3"
    queue = SqliteJobQueue(JobStore(db))
    others: list[SqliteJobQueue] = []

    def lose_holder(lease: Lease) -> None:
        # The SQLite lease is its owner process: record it as a process on a host that is not this one,
        # which the store's owner check treats as gone, exactly as it treats a killed process.
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE jobs SET owner = 'gone.invalid|1|0.000' WHERE id = ?", (lease.job_id,))
        conn.close()

    def open_another() -> JobQueue:
        others.append(SqliteJobQueue(JobStore(db)))
        return others[-1]

    yield Backend(queue, lose_holder, open_another)
    for q in [queue, *others]:
        q.close()


def _postgres_backend(server: object) -> Iterator[Backend]:
    import psycopg

    from whisperdesk.core.queue.postgres import PostgresJobQueue

    dsn = server.dsn  # type: ignore[attr-defined]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    queue = PostgresJobQueue(dsn, schema=schema, submitter="alice")
    others: list[PostgresJobQueue] = []

    def lose_holder(lease: Lease) -> None:
        # Move the lease's expiry into the past on the server's clock, as if its worker had stopped renewing
        # it long enough ago (a real short lease running out is its own test below).
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                f"UPDATE {schema}.jobs SET lease_expires_at = clock_timestamp() - interval '1 second' "
                "WHERE id = %s",
                (lease.job_id,),
            )

    def open_another() -> JobQueue:
        others.append(PostgresJobQueue(dsn, schema=schema, submitter="alice"))
        return others[-1]

    yield Backend(queue, lose_holder, open_another)
    for q in [queue, *others]:
        q.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield from _sqlite_backend(tmp_path)
    else:
        yield from _postgres_backend(request.getfixturevalue("postgres_server"))


@pytest.fixture
def files(tmp_path: Path) -> Callable[[int], list[Path]]:
    """``files(n)``: n small recordings with distinct content (the queue only reads and hashes them)."""
    made: list[Path] = []

    def make(n: int) -> list[Path]:
        out = []
        for _ in range(n):
            path = tmp_path / "in" / f"rec{len(made):04d}.wav"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(f"recording {len(made)}".encode() * 50)
            made.append(path)
            out.append(path)
        return out

    return make


def test_both_backends_satisfy_the_protocol(backend: Backend) -> None:
    assert isinstance(backend.queue, JobQueue)


def test_add_queues_a_file_once(backend: Backend, files: Callable[[int], list[Path]]) -> None:
    q = backend.queue
    a, b = files(2)
    first = q.add(a, {"language": "en"})
    assert first.created and first.job.state == QUEUED and first.job.settings == {"language": "en"}
    again = q.add(a)
    assert not again.created and again.job.id == first.job.id and "already queued" in again.reason
    other = backend.open_another().add(a)  # another watcher sees the same file
    assert not other.created and other.job.id == first.job.id
    second = q.add(b)
    assert second.created and second.job.id != first.job.id
    assert [j.id for j in q.list()] == [first.job.id, second.job.id]


def test_a_done_file_is_not_queued_again(backend: Backend, files: Callable[[int], list[Path]]) -> None:
    q = backend.queue
    (a,) = files(1)
    q.add(a)
    (lease,) = q.claim("w1", lease_s=60)
    q.complete(lease, ["/out/a.txt"])
    again = q.add(a)
    assert not again.created and again.job.state == DONE and "already done" in again.reason


def test_claim_takes_each_job_once_with_a_lease(backend: Backend, files: Callable[[int], list[Path]]) -> None:
    q = backend.queue
    ids = [q.add(p).job.id for p in files(3)]
    first = q.claim("w1", lease_s=60)
    assert len(first) == 1 and first[0].job.state == RUNNING and first[0].job.attempts == 1
    assert first[0].token
    rest = backend.open_another().claim("w2", lease_s=60, limit=5)  # a batch: everything left
    assert sorted([first[0].job_id] + [lease.job_id for lease in rest]) == ids
    assert q.claim("w1", lease_s=60) == []
    assert {j.state for j in q.list()} == {RUNNING}


def test_heartbeat_and_progress_of_a_held_lease(backend: Backend, files: Callable[[int], list[Path]]) -> None:
    q = backend.queue
    q.add(files(1)[0])
    (lease,) = q.claim("w1", lease_s=30)
    renewed = q.heartbeat(lease, lease_s=60)
    assert renewed.token == lease.token and renewed.job.state == RUNNING
    if lease.expires_at is not None:  # a time lease moves forward; a process lease has no end
        assert renewed.expires_at is not None and renewed.expires_at > lease.expires_at
    before = q.data_version()
    assert q.progress(lease, 0.25)
    job = q.get(lease.job_id)
    assert job is not None and job.progress == 0.25 and job.version > before


def test_a_held_lease_is_not_requeued(backend: Backend, files: Callable[[int], list[Path]]) -> None:
    q = backend.queue
    q.add(files(1)[0])
    (lease,) = q.claim("w1", lease_s=60)
    assert backend.open_another().requeue_expired().requeued == []
    job = q.get(lease.job_id)
    assert job is not None and job.state == RUNNING


def test_a_lost_holders_job_is_requeued_and_its_late_completion_refused(
    backend: Backend, files: Callable[[int], list[Path]]
) -> None:
    q = backend.queue
    q.add(files(1)[0])
    (stale,) = q.claim("w1", lease_s=60)
    backend.lose_holder(stale)
    result = backend.open_another().requeue_expired()
    assert result.requeued == [stale.job_id] and result.failed == []
    job = q.get(stale.job_id)
    assert job is not None and job.state == QUEUED
    assert not q.progress(stale, 0.5)
    with pytest.raises(StaleLeaseError):
        q.heartbeat(stale, lease_s=60)

    (fresh,) = q.claim("w2", lease_s=60)  # the next worker takes it
    assert fresh.job_id == stale.job_id and fresh.token != stale.token and fresh.job.attempts == 2
    with pytest.raises(StaleLeaseError, match="not recorded"):
        q.complete(stale, ["/out/stale.txt"])  # the frozen worker wakes up: refused
    with pytest.raises(StaleLeaseError):
        q.fail(stale, "late failure")
    done = q.complete(fresh, ["/out/fresh.txt"])
    assert done.state == DONE and done.outputs == (Path("/out/fresh.txt"),)


def test_a_job_whose_holders_keep_dying_fails(backend: Backend, files: Callable[[int], list[Path]]) -> None:
    q = backend.queue
    q.add(files(1)[0])
    for _ in range(MAX_CRASHES):
        (lease,) = q.claim("w", lease_s=60)
        backend.lose_holder(lease)
        result = q.requeue_expired()
    assert result.failed == [lease.job_id] and result.requeued == []
    job = q.get(lease.job_id)
    assert job is not None and job.state == FAILED and job.error == CRASH_REASON
    assert q.claim("w", lease_s=60) == []


def test_cancel_voids_the_lease_and_retry_queues_again(
    backend: Backend, files: Callable[[int], list[Path]]
) -> None:
    q = backend.queue
    a, b = files(2)
    queued = q.add(a).job
    assert q.cancel(queued.id).state == CANCELED
    assert q.cancel(queued.id).state == CANCELED  # the loop and the user may both cancel
    q.add(b)
    (lease,) = q.claim("w1", lease_s=60)
    assert lease.job.source == b
    assert q.cancel(lease.job_id).state == CANCELED
    with pytest.raises(StaleLeaseError):
        q.complete(lease, ["/out/b.txt"])

    retried = q.retry(lease.job_id)
    assert retried.state == QUEUED and retried.attempts == 0
    with pytest.raises(JobStateError):
        q.retry(lease.job_id)  # only failed or canceled jobs
    (again,) = q.claim("w1", lease_s=60)
    assert again.job_id == lease.job_id
    with pytest.raises(StaleLeaseError):  # the canceled run's lease stays void after the retry
        q.complete(lease, ["/out/b.txt"])
    assert q.complete(again, ["/out/b.txt"]).state == DONE


def test_fail_then_retry(backend: Backend, files: Callable[[int], list[Path]]) -> None:
    q = backend.queue
    q.add(files(1)[0])
    (lease,) = q.claim("w1", lease_s=60)
    failed = q.fail(lease, "the file is not audio; check it plays")
    assert failed.state == FAILED and failed.error == "the file is not audio; check it plays"
    assert q.retry(failed.id).state == QUEUED
    assert [lease.job_id for lease in q.claim("w1", lease_s=60)] == [failed.id]


def test_release_gives_the_job_back_uncounted(backend: Backend, files: Callable[[int], list[Path]]) -> None:
    q = backend.queue
    first, _second = (q.add(p).job for p in files(2))
    (lease,) = q.claim("w1", lease_s=60)
    released = q.release(lease)
    assert released.state == QUEUED and released.attempts == 0
    with pytest.raises(StaleLeaseError):
        q.complete(lease)
    (again,) = q.claim("w2", lease_s=60)
    assert again.job_id == first.id  # back in its old place, ahead of the job queued after it


def test_changes_since_sees_every_change(backend: Backend, files: Callable[[int], list[Path]]) -> None:
    q = backend.queue
    other = backend.open_another()
    start = other.data_version()
    a, b = (q.add(p).job for p in files(2))
    changes = other.changes_since(start)
    assert [j.id for j in changes.jobs] == [a.id, b.id] and changes.version > start
    (lease,) = q.claim("w1", lease_s=60)
    later = other.changes_since(changes.version)
    assert [(j.id, j.state) for j in later.jobs] == [(lease.job_id, RUNNING)]
    assert other.changes_since(later.version).jobs == []


def test_wait_for_change_wakes_on_another_clients_change(
    backend: Backend, files: Callable[[int], list[Path]]
) -> None:
    q = backend.queue
    start = q.data_version()
    assert q.wait_for_change(start, timeout=0.2) == start  # nothing happened: back after the timeout
    woke: list[int] = []
    # An hour's timeout: returning at all within the join's guard means the change woke it.
    waiter = threading.Thread(target=lambda: woke.append(q.wait_for_change(start, timeout=3600)), daemon=True)
    waiter.start()
    added = backend.open_another().add(files(1)[0]).job  # another client (a watcher on another host)
    waiter.join(timeout=120)
    assert not waiter.is_alive(), "the change did not wake the waiting client"
    assert woke and woke[0] >= added.version > start
    assert [j.id for j in q.changes_since(start).jobs] == [added.id]


# --- fair share and lanes (submitters exist only on a shared queue) -------------------------------------
def _needs_fair_share(backend: Backend) -> None:
    if not backend.queue.fair_share:
        pytest.skip("one person's SQLite queue has no submitters or lanes: first in, first out")


def test_fair_share_a_second_persons_few_files_are_claimed_early(
    backend: Backend, files: Callable[[int], list[Path]]
) -> None:
    _needs_fair_share(backend)
    q = backend.queue
    for path in files(100):
        q.add(path, submitter="alice")
    bobs = {q.add(path, submitter="bob").job.id for path in files(3)}
    order = []
    while leases := q.claim("w1", lease_s=60):  # one worker, one job at a time, each finished
        order.append(leases[0].job)
        q.complete(leases[0])
    assert len(order) == 103
    assert [j.submitter for j in order[:6]] == ["alice", "bob"] * 3  # claims alternate
    assert {j.id for j in order[:6] if j.submitter == "bob"} == bobs


def test_fair_share_in_one_batch_claim(backend: Backend, files: Callable[[int], list[Path]]) -> None:
    _needs_fair_share(backend)
    q = backend.queue
    for path in files(10):
        q.add(path, submitter="alice")
    for path in files(2):
        q.add(path, submitter="bob")
    batch = q.claim("w1", lease_s=60, limit=4)
    assert sorted(lease.job.submitter for lease in batch) == ["alice", "alice", "bob", "bob"]


def test_live_work_overtakes_the_backfill_lane(backend: Backend, files: Callable[[int], list[Path]]) -> None:
    _needs_fair_share(backend)
    q = backend.queue
    archive = [q.add(p, submitter="archivist", priority=BACKFILL).job.id for p in files(5)]
    live = q.add(files(1)[0], submitter="carol", priority=LIVE).job.id
    claimed = [lease.job_id for lease in q.claim("w1", lease_s=60, limit=3)]
    assert claimed == [live, *archive[:2]]


# --- PostgreSQL only: real time leases and concurrent workers ------------------------------------------
@pytest.fixture
def pg_queue(postgres_server: object) -> Iterator[Callable[[], JobQueue]]:
    from whisperdesk.core.queue.postgres import PostgresJobQueue

    schema = f"t_{uuid.uuid4().hex[:12]}"
    opened: list[PostgresJobQueue] = []

    def open_queue() -> JobQueue:
        opened.append(PostgresJobQueue(postgres_server.dsn, schema=schema))  # type: ignore[attr-defined]
        return opened[-1]

    yield open_queue
    for q in opened:
        q.close()


def test_postgres_a_short_lease_runs_out_on_the_servers_clock(
    pg_queue: Callable[[], JobQueue], files: Callable[[int], list[Path]]
) -> None:
    q = pg_queue()
    q.add(files(1)[0])
    (lease,) = q.claim("w1", lease_s=0.2)
    assert q.requeue_expired().requeued == []
    time.sleep(0.4)  # no renewal: the worker "froze"
    assert q.requeue_expired().requeued == [lease.job_id]
    with pytest.raises(StaleLeaseError):
        q.heartbeat(lease, lease_s=60)


def test_postgres_concurrent_workers_never_share_a_job(
    pg_queue: Callable[[], JobQueue], files: Callable[[int], list[Path]]
) -> None:
    q = pg_queue()
    ids = {q.add(p).job.id for p in files(40)}
    workers = [pg_queue() for _ in range(4)]
    claimed: list[list[int]] = [[] for _ in workers]
    start = threading.Barrier(len(workers))

    def work(i: int) -> None:
        start.wait()
        while leases := workers[i].claim(f"w{i}", lease_s=60, limit=3):
            for lease in leases:
                claimed[i].append(lease.job_id)
                workers[i].complete(lease)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [job_id for got in claimed for job_id in got]
    assert sorted(everything) == sorted(ids)  # each exactly once
    assert {j.state for j in q.list()} == {DONE}


def test_postgres_migrations_run_once_and_a_newer_schema_is_refused(
    postgres_server: object, pg_queue: Callable[[], JobQueue]
) -> None:
    import psycopg

    from whisperdesk.core.jobstore import JobStoreError
    from whisperdesk.core.queue.postgres import SCHEMA_VERSION, PostgresJobQueue

    q = pg_queue()
    schema = q.schema  # type: ignore[attr-defined]
    pg_queue()  # a second worker starting: nothing applied twice
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:  # type: ignore[attr-defined]
        rows = conn.execute(f"SELECT version FROM {schema}.schema_migrations ORDER BY version").fetchall()
        assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
        conn.execute(f"INSERT INTO {schema}.schema_migrations (version, description) VALUES (999, 'future')")
    with pytest.raises(JobStoreError, match="newer than this WhisperDesk"):
        PostgresJobQueue(postgres_server.dsn, schema=schema)  # type: ignore[attr-defined]


def test_postgres_a_restarted_server_is_reconnected_and_nothing_half_done(
    postgres_server: object, pg_queue: Callable[[], JobQueue], files: Callable[[int], list[Path]]
) -> None:
    from whisperdesk.core.jobstore import JobStoreError

    q = pg_queue()
    a, b = (q.add(p).job.id for p in files(2))
    (lease,) = q.claim("w1", lease_s=60)
    postgres_server.stop("immediate")  # type: ignore[attr-defined]  # a crash, as far as the database knows
    try:
        with pytest.raises(JobStoreError, match="lost the connection"):
            q.complete(lease, ["/out/a.txt"])
    finally:
        postgres_server.start()  # type: ignore[attr-defined]
    job = q.get(lease.job_id)  # connects again
    assert job is not None and job.state == RUNNING  # the failed completion left no trace
    assert q.complete(lease, ["/out/a.txt"]).state == DONE  # the lease survived the restart
    assert [x.job_id for x in q.claim("w1", lease_s=60)] == [b if lease.job_id == a else a]


def test_postgres_every_change_is_announced_with_its_version(
    postgres_server: object, pg_queue: Callable[[], JobQueue], files: Callable[[int], list[Path]]
) -> None:
    """The waiting feed wakes on NOTIFY (its one-second slices are only the fallback): each committed change
    is announced on the queue's channel with its change number, in commit order."""
    import psycopg

    q = pg_queue()
    with psycopg.connect(postgres_server.dsn, autocommit=True) as listener:  # type: ignore[attr-defined]
        listener.execute(f"LISTEN whisperdesk_{q.schema}")  # type: ignore[attr-defined]
        added = q.add(files(1)[0]).job
        (lease,) = q.claim("w1", lease_s=60)
        heard = [n.payload for n in listener.notifies(timeout=30, stop_after=2)]
    assert heard == [str(added.version), str(lease.job.version)]
