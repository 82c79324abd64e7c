"""A team's job queue on PostgreSQL (psycopg 3): the one module that talks to the database server.

Why it looks like this (the issue's design study chose PostgreSQL; Procrastinate, PgQueuer and Oban use the
same pattern):

* **Claims never collide.** One statement picks queued rows ``FOR UPDATE SKIP LOCKED`` and makes them
  running under a lease: an expiry time on the *server's* clock (workers' clocks may disagree) and a fresh
  random token per claim. Two workers claiming at once get different jobs without waiting on each other.
* **A lost worker loses its jobs, and only then.** A worker renews its leases (:meth:`heartbeat`); anyone
  may call :meth:`requeue_expired`, which puts the jobs of expired leases back (or fails them after the
  crash limit the desktop uses, :data:`~whisperdesk.core.jobstore.MAX_CRASHES`). Every write of a running
  job names its token, so a worker that was frozen past its lease and wakes up has its late completion
  refused (:class:`~whisperdesk.core.queue.protocol.StaleLeaseError`): nothing is recorded twice.
* **Nothing twice on adding.** A unique key (the file's absolute path and its content fingerprint, the
  desktop's "same path, same content" rule) and ``INSERT … ON CONFLICT DO NOTHING``: several watchers
  adding one file at once make one job.
* **Fair share.** Claims take the highest lane first (live before backfill), and within a lane alternate
  between submitters: each submitter's n-th queued job is in turn n, and a turn goes first to the submitter
  served longest ago. One person's hundred files do not hold back another's three.
* **Observable.** Every transaction that changes jobs takes the next change number from a one-row counter;
  its row lock is held to commit, so numbers are committed in order and :meth:`changes_since` misses
  nothing (a bare sequence could commit 11 before 10). This serialises writers; at a team's rate of claims
  and progress writes (a few per second) that is cheap, and it is what makes polling exact.

psycopg is imported here and nowhere else (an import-linter contract): it is the optional ``team`` extra.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from whisperdesk.core.fingerprint import fingerprint_file
from whisperdesk.core.jobstore import (
    CANCELED,
    CRASH_REASON,
    DONE,
    FAILED,
    MAX_CRASHES,
    QUEUED,
    RUNNING,
    JobNotFoundError,
    JobStateError,
    JobStoreError,
)
from whisperdesk.core.queue.protocol import (
    LIVE,
    AddOutcome,
    Lease,
    QueueChanges,
    QueueJob,
    Requeued,
    StaleLeaseError,
)

log = logging.getLogger(__name__)

DEFAULT_SCHEMA = "whisperdesk"
_LISTEN_SLICE_S = 1.0  # the longest a waiting feed takes to notice close()
_MIGRATION_LOCK = 0x5744_5131  # pg_advisory_xact_lock key: two workers starting together migrate once

# Append-only, like the SQLite store's: a released migration is never edited, a new one is added at the end.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "jobs with leases, submitters for fair share, change tracking",
        (
            "CREATE SEQUENCE queue_seq",
            "CREATE SEQUENCE claim_seq",
            """CREATE TABLE jobs (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                source TEXT NOT NULL,
                dedupe_key TEXT NOT NULL UNIQUE,
                fingerprint TEXT NOT NULL,
                size BIGINT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('queued','running','done','failed','canceled')),
                attempts INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                settings JSONB NOT NULL DEFAULT '{}',
                outputs JSONB NOT NULL DEFAULT '[]',
                progress DOUBLE PRECISION NOT NULL DEFAULT 0,
                submitter TEXT NOT NULL,
                priority INTEGER NOT NULL,
                queue_seq BIGINT NOT NULL DEFAULT nextval('queue_seq'),
                worker TEXT,
                lease_token TEXT,
                lease_expires_at TIMESTAMPTZ,
                created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                started_at TIMESTAMPTZ,
                finished_at TIMESTAMPTZ,
                changed_seq BIGINT NOT NULL
            )""",
            # The claim's scan: queued rows by lane, submitter and age, nothing else.
            "CREATE INDEX jobs_claim ON jobs (submitter, priority DESC, queue_seq) WHERE state = 'queued'",
            "CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'running'",
            "CREATE INDEX jobs_changed ON jobs (changed_seq)",
            "CREATE TABLE submitters (name TEXT PRIMARY KEY, last_claim BIGINT NOT NULL DEFAULT 0)",
            "CREATE TABLE removed_jobs (id BIGINT PRIMARY KEY, changed_seq BIGINT NOT NULL)",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO meta (key, value) VALUES ('change_seq', 1)",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

_FIELDS = [
    "id",
    "source",
    "state",
    "attempts",
    "progress",
    "settings",
    "outputs",
    "error",
    "submitter",
    "priority",
    "changed_seq",
    "worker",
    "lease_token",
]


def _columns(table: str = "") -> str:
    """The columns a job view is made from, qualified by ``table`` where a statement joins."""
    prefix = f"{table}." if table else ""
    return ", ".join(prefix + f for f in _FIELDS) + (
        f", EXTRACT(EPOCH FROM {prefix}lease_expires_at)::float8 AS expires_at"
    )


_COLUMNS = _columns()
# The claim, one statement. Candidates: each submitter's first ``depth`` queued jobs (by lane, then age),
# read through the jobs_claim index, so the cost grows with the number of people, not of queued jobs. No
# job outside them can be among the first ``limit``: a submitter's k-th job is preceded by its k-1 earlier
# ones. Rank candidates by lane, then turn within their submitter (the submitter served longest ago first),
# lock the first ``limit`` that no concurrent claim holds, and make them running under a lease. ``depth``
# exceeds ``limit`` so that rows locked by concurrent claims leave enough others to take.
CLAIM_SQL = f"""
WITH ranked AS (
    SELECT c.id, c.priority, c.queue_seq, s.last_claim AS served,
           row_number() OVER (PARTITION BY s.name, c.priority ORDER BY c.queue_seq) AS turn
    FROM submitters AS s CROSS JOIN LATERAL (
        SELECT j.id, j.priority, j.queue_seq FROM jobs AS j
        WHERE j.state = 'queued' AND j.submitter = s.name
        ORDER BY j.priority DESC, j.queue_seq
        LIMIT %(depth)s
    ) AS c
), ordered AS (
    SELECT id, row_number() OVER (ORDER BY priority DESC, turn, served, queue_seq) AS pos
    FROM ranked
), picked AS (
    SELECT j.id, o.pos FROM jobs AS j JOIN ordered AS o ON o.id = j.id
    WHERE j.state = 'queued' AND j.id = ANY(ARRAY(SELECT id FROM ordered))  -- by key, not a table scan
    ORDER BY o.pos
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE jobs SET state = 'running', attempts = attempts + 1, worker = %(worker)s,
    lease_token = gen_random_uuid()::text,
    lease_expires_at = clock_timestamp() + make_interval(secs => %(lease)s),
    started_at = clock_timestamp(), finished_at = NULL, error = NULL, progress = 0,
    changed_seq = %(seq)s
FROM picked WHERE jobs.id = picked.id
RETURNING {_columns("jobs")}, picked.pos
"""

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _view(row: Mapping[str, Any]) -> QueueJob:
    return QueueJob(
        id=int(row["id"]),
        source=Path(row["source"]),
        state=row["state"],
        attempts=int(row["attempts"]),
        progress=float(row["progress"]),
        settings=dict(row["settings"]),
        outputs=tuple(Path(p) for p in row["outputs"]),
        error=row["error"],
        submitter=row["submitter"],
        priority=int(row["priority"]),
        version=int(row["changed_seq"]),
        worker=row["worker"],
    )


def _lease(row: Mapping[str, Any]) -> Lease:
    return Lease(_view(row), str(row["lease_token"]), float(row["expires_at"]))


def _default_submitter() -> str:
    try:
        return os.getlogin()
    except OSError:
        import getpass

        return getpass.getuser()


class PostgresJobQueue:
    """:class:`~whisperdesk.core.queue.protocol.JobQueue` on a PostgreSQL database.

    ``dsn`` is a libpq connection string or ``postgresql://`` URL; ``schema`` keeps WhisperDesk's tables
    together (created on first use, then migrated). Thread-safe: one connection, one transaction at a time
    (a worker's heartbeat thread and its job thread share it).
    """

    fair_share = True

    def __init__(self, dsn: str, *, schema: str = DEFAULT_SCHEMA, submitter: str | None = None) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"schema {schema!r}: use lower-case letters, digits and _ (a SQL identifier)")
        self.dsn = dsn
        self.schema = schema
        self.submitter = submitter or _default_submitter()
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._closed = False
        self._listen_lock = threading.Lock()
        self._listener: psycopg.Connection[dict[str, Any]] | None = None  # LISTENs: wait_for_change
        try:
            self._migrate()
        except BaseException:
            self.close()  # a refused or unreachable queue leaves no connection behind
            raise

    # -- connection and transactions ------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        if self._closed:
            raise JobStoreError("the team queue connection is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                log.warning("team queue: connection lost; connecting again")
            try:
                self._conn = psycopg.connect(
                    self.dsn, autocommit=True, row_factory=dict_row, application_name="whisperdesk"
                )
            except psycopg.OperationalError as exc:
                raise JobStoreError(
                    f"cannot reach the team queue database: {str(exc).strip()}; check the queue address, "
                    "that the database server runs and that this machine may connect to it"
                ) from exc
            self._conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            self._conn.execute(f"SET search_path TO {self.schema}")
        return self._conn

    @contextlib.contextmanager
    def _tx(self, *, snapshot: bool = False) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """One transaction. A connection lost on the way (the server restarted, the network dropped) is
        a JobStoreError in plain words; nothing of the transaction was committed, and the next call
        connects again, so a worker can wait and carry on."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    if snapshot:
                        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    yield cur
            except psycopg.OperationalError as exc:
                if not conn.broken and not conn.closed:
                    raise
                raise JobStoreError(
                    f"lost the connection to the team queue database ({str(exc).strip()}); nothing of the "
                    "last change was saved, and the next attempt connects again"
                ) from exc

    @property
    def _channel(self) -> str:
        return f"whisperdesk_{self.schema}"

    def _next_change(self, cur: psycopg.Cursor[dict[str, Any]]) -> int:
        """This transaction's change number; the counter row stays locked to commit (see module docstring).
        Listeners are notified at commit (a rolled-back change notifies no one)."""
        row = cur.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'change_seq' RETURNING value"
        ).fetchone()
        assert row is not None
        cur.execute("SELECT pg_notify(%s, %s)", (self._channel, str(row["value"])))
        return int(row["value"])

    def _migrate(self) -> None:
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())"
            )
            row = cur.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").fetchone()
            current = int(row["v"]) if row else 0
            if current > SCHEMA_VERSION:
                raise JobStoreError(
                    f"the team queue (schema {self.schema}) has version {current}, newer than this "
                    f"WhisperDesk understands ({SCHEMA_VERSION}); update WhisperDesk on this machine"
                )
            for version, description, statements in MIGRATIONS:
                if version > current:
                    for sql in statements:
                        cur.execute(sql)  # type: ignore[arg-type]  # fixed text from MIGRATIONS
                    cur.execute(
                        "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                        (version, description),
                    )
                    log.info("team queue: applied migration %d (%s)", version, description)

    def close(self) -> None:
        self._closed = True  # first: a feed waiting in wait_for_change sees it within one slice and returns
        with self._lock:
            if self._conn is not None:
                self._conn.close()
        with self._listen_lock:
            if self._listener is not None:
                self._listener.close()

    def __enter__(self) -> PostgresJobQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- adding -----------------------------------------------------------------------------------------
    def add(
        self,
        source: Path | str,
        settings: Mapping[str, Any] | None = None,
        *,
        submitter: str | None = None,
        priority: int = LIVE,
    ) -> AddOutcome:
        """Queue ``source`` (read here to fingerprint it) unless the same path with the same content is
        known in any state; a concurrent add of the same file by another watcher makes no second job."""
        path = os.path.abspath(os.fspath(source))
        fp = fingerprint_file(path)
        key = f"{fp.digest} {os.path.normcase(os.path.realpath(path))}"  # digest first: it has no space
        who = submitter or self.submitter
        with self._tx() as cur:
            cur.execute("INSERT INTO submitters (name) VALUES (%s) ON CONFLICT DO NOTHING", (who,))
            seq = self._next_change(cur)
            row = cur.execute(
                "INSERT INTO jobs (source, dedupe_key, fingerprint, size, state, settings, submitter, priority, "
                f"changed_seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING "
                f"RETURNING {_COLUMNS}",
                (path, key, fp.digest, fp.size, QUEUED, Jsonb(dict(settings or {})), who, int(priority), seq),
            ).fetchone()
            if row is not None:
                return AddOutcome(_view(row), True, "new")
            known = cur.execute(f"SELECT {_COLUMNS} FROM jobs WHERE dedupe_key = %s", (key,)).fetchone()
        if known is None:  # removed between the conflict and the read: let the caller add it again
            raise JobStoreError(f"{path} was removed from the team queue while being added; add it again")
        return AddOutcome(_view(known), False, f"already {known['state']} as job {known['id']}")

    # -- a worker's side --------------------------------------------------------------------------------
    def claim(self, worker: str, *, lease_s: float, limit: int = 1) -> builtins.list[Lease]:
        """Up to ``limit`` jobs in one statement, by lane, then alternating between submitters."""
        with self._tx() as cur:
            seq = self._next_change(cur)
            rows = cur.execute(
                CLAIM_SQL,
                {
                    "limit": max(1, int(limit)),
                    "depth": 2 * max(1, int(limit)) + 16,
                    "worker": worker,
                    "lease": float(lease_s),
                    "seq": seq,
                },
            ).fetchall()
            rows.sort(key=lambda r: int(r["pos"]))  # the claim's order: lanes, then turns
            for row in rows:  # served now: the next turn goes to someone else first
                cur.execute(
                    "UPDATE submitters SET last_claim = nextval('claim_seq') WHERE name = %s",
                    (row["submitter"],),
                )
        return [_lease(r) for r in rows]

    def _held(
        self, cur: psycopg.Cursor[dict[str, Any]], lease: Lease, sql: str, args: Sequence[Any]
    ) -> dict[str, Any]:
        """Run ``sql`` (an UPDATE ending in ``WHERE id = %s AND state = 'running' AND lease_token = %s``,
        returning the columns) for the lease's job; StaleLeaseError when the lease is no longer the job's."""
        row = cur.execute(sql, (*args, lease.job_id, lease.token)).fetchone()
        if row is not None:
            return row
        now = cur.execute("SELECT state FROM jobs WHERE id = %s", (lease.job_id,)).fetchone()
        if now is None:
            raise StaleLeaseError(lease.job_id, "it was removed")
        if now["state"] == RUNNING:
            raise StaleLeaseError(lease.job_id, "its lease ran out and another worker took it")
        raise StaleLeaseError(lease.job_id, f"its lease ran out or it was stopped; it is {now['state']} now")

    _HELD = "WHERE id = %s AND state = 'running' AND lease_token = %s"

    def heartbeat(self, lease: Lease, *, lease_s: float) -> Lease:
        """Renew the lease from now. A lease past its expiry that no one has requeued yet is renewed too:
        the job was never given to anyone else, so the work is still good."""
        with self._tx() as cur:
            row = self._held(
                cur,
                lease,
                "UPDATE jobs SET lease_expires_at = clock_timestamp() + make_interval(secs => %s) "
                f"{self._HELD} RETURNING {_COLUMNS}",
                (float(lease_s),),
            )
        return _lease(row)

    def progress(self, lease: Lease, fraction: float) -> bool:
        fraction = min(1.0, max(0.0, float(fraction)))
        try:
            with self._tx() as cur:
                seq = self._next_change(cur)
                self._held(
                    cur,
                    lease,
                    f"UPDATE jobs SET progress = %s, changed_seq = %s {self._HELD} RETURNING id",
                    (fraction, seq),
                )
        except StaleLeaseError:
            return False
        return True

    def _finish(self, lease: Lease, state: str, *, outputs: str = "[]", error: str | None = None) -> QueueJob:
        with self._tx() as cur:
            seq = self._next_change(cur)
            row = self._held(
                cur,
                lease,
                "UPDATE jobs SET state = %s, outputs = %s::jsonb, error = %s, "
                "progress = CASE WHEN %s = 'done' THEN 1 ELSE progress END, finished_at = clock_timestamp(), "
                "worker = NULL, lease_token = NULL, lease_expires_at = NULL, changed_seq = %s "
                f"{self._HELD} RETURNING {_COLUMNS}",
                (state, outputs, error, state, seq),
            )
        return _view(row)

    def complete(self, lease: Lease, outputs: Iterable[Path | str] = ()) -> QueueJob:
        return self._finish(lease, DONE, outputs=json.dumps([os.fspath(p) for p in outputs]))

    def fail(self, lease: Lease, error: str) -> QueueJob:
        return self._finish(lease, FAILED, error=error)

    def release(self, lease: Lease) -> QueueJob:
        """Back to the queue in its old place, the attempt not counted (a clean shutdown)."""
        with self._tx() as cur:
            seq = self._next_change(cur)
            row = self._held(
                cur,
                lease,
                "UPDATE jobs SET state = 'queued', attempts = GREATEST(attempts - 1, 0), progress = 0, "
                "started_at = NULL, worker = NULL, lease_token = NULL, lease_expires_at = NULL, "
                f"changed_seq = %s {self._HELD} RETURNING {_COLUMNS}",
                (seq,),
            )
        return _view(row)

    def requeue_expired(self) -> Requeued:
        """Jobs whose lease ran out go back to their old place in the queue; after ``MAX_CRASHES`` lost
        attempts a job fails with the desktop's crash message instead of taking down worker after worker."""
        with self._tx() as cur:
            seq = self._next_change(cur)
            rows = cur.execute(
                "UPDATE jobs SET state = CASE WHEN attempts >= %(max)s THEN 'failed' ELSE 'queued' END, "
                "error = CASE WHEN attempts >= %(max)s THEN %(reason)s ELSE NULL END, "
                "finished_at = CASE WHEN attempts >= %(max)s THEN clock_timestamp() ELSE NULL END, "
                "progress = 0, started_at = NULL, worker = NULL, lease_token = NULL, lease_expires_at = NULL, "
                "changed_seq = %(seq)s "
                "WHERE state = 'running' AND lease_expires_at < clock_timestamp() RETURNING id, state",
                {"max": MAX_CRASHES, "reason": CRASH_REASON, "seq": seq},
            ).fetchall()
        requeued = sorted(int(r["id"]) for r in rows if r["state"] == QUEUED)
        failed = sorted(int(r["id"]) for r in rows if r["state"] == FAILED)
        for job_id in requeued:
            log.warning("team queue: job %d lost its worker (lease ran out); queued again", job_id)
        return Requeued(requeued, failed)

    # -- the user's side --------------------------------------------------------------------------------
    def _require(
        self, cur: psycopg.Cursor[dict[str, Any]], job_id: int, allowed: tuple[str, ...], verb: str
    ) -> str:
        row = cur.execute("SELECT state, source FROM jobs WHERE id = %s FOR UPDATE", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        if row["state"] not in allowed:
            raise JobStateError(
                f"cannot {verb} job {job_id} ({row['source']}): it is {row['state']}; "
                f"only {' or '.join(allowed)} jobs can be asked to {verb}"
            )
        return str(row["state"])

    def cancel(self, job_id: int) -> QueueJob:
        """Cancel a queued or running job; a running one's lease is void at once (its worker's next
        heartbeat or completion is refused). Canceling a canceled job is a no-op, as on the desktop."""
        with self._tx() as cur:
            if self._require(cur, job_id, (QUEUED, RUNNING, CANCELED), "cancel") != CANCELED:
                seq = self._next_change(cur)
                cur.execute(
                    "UPDATE jobs SET state = 'canceled', finished_at = clock_timestamp(), worker = NULL, "
                    "lease_token = NULL, lease_expires_at = NULL, changed_seq = %s WHERE id = %s",
                    (seq, job_id),
                )
            row = cur.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = %s", (job_id,)).fetchone()
        assert row is not None
        return _view(row)

    def retry(self, job_id: int) -> QueueJob:
        """A failed or canceled job goes to the end of the queue with a fresh crash count."""
        with self._tx() as cur:
            self._require(cur, job_id, (FAILED, CANCELED), "retry")
            seq = self._next_change(cur)
            row = cur.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, error = NULL, progress = 0, started_at = NULL, "
                "finished_at = NULL, queue_seq = nextval('queue_seq'), changed_seq = %s WHERE id = %s "
                f"RETURNING {_COLUMNS}",
                (seq, job_id),
            ).fetchone()
        assert row is not None
        return _view(row)

    def get(self, job_id: int) -> QueueJob | None:
        with self._tx() as cur:
            row = cur.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = %s", (job_id,)).fetchone()
        return None if row is None else _view(row)

    def list(self, states: Sequence[str] | None = None) -> builtins.list[QueueJob]:
        with self._tx() as cur:
            if states is None:
                rows = cur.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY id").fetchall()
            else:
                rows = cur.execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE state = ANY(%s) ORDER BY id", (list(states),)
                ).fetchall()
        return [_view(r) for r in rows]

    def data_version(self) -> int:
        with self._tx() as cur:
            row = cur.execute("SELECT value FROM meta WHERE key = 'change_seq'").fetchone()
        assert row is not None
        return int(row["value"])

    def wait_for_change(self, version: int, timeout: float) -> int:
        """Sleep on LISTEN until a change past ``version`` commits, or ``timeout`` passes. The listening
        connection is opened (and after a loss re-opened) *before* the version is read, so a change
        committed in between is still heard; a lost connection is a JobStoreError like any other call.
        It also re-reads the version every :data:`_LISTEN_SLICE_S`, a poll fallback should a notification
        ever be lost."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._listen_lock:
            if self._closed:
                raise JobStoreError("the team queue connection is closed")
            if self._listener is None or self._listener.closed or self._listener.broken:
                try:
                    self._listener = psycopg.connect(
                        self.dsn, autocommit=True, row_factory=dict_row, application_name="whisperdesk-feed"
                    )
                    self._listener.execute(f"LISTEN {self._channel}")
                except psycopg.OperationalError as exc:
                    raise JobStoreError(
                        f"cannot reach the team queue database to follow its changes: {str(exc).strip()}"
                    ) from exc
            listener = self._listener
            while True:
                now = self.data_version()
                left = deadline - time.monotonic()
                if now > version or left <= 0:
                    return now
                if self._closed:
                    raise JobStoreError("the team queue connection is closed")
                try:  # in slices, so close() from another thread is noticed promptly
                    for _note in listener.notifies(timeout=min(left, _LISTEN_SLICE_S), stop_after=1):
                        pass
                except psycopg.OperationalError as exc:
                    raise JobStoreError(
                        f"lost the connection that follows the team queue's changes ({str(exc).strip()})"
                    ) from exc

    def changes_since(self, version: int) -> QueueChanges:
        """Jobs changed and ids removed after ``version``, read in one snapshot."""
        with self._tx(snapshot=True) as cur:
            now = cur.execute("SELECT value FROM meta WHERE key = 'change_seq'").fetchone()
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE changed_seq > %s ORDER BY id", (version,)
            ).fetchall()
            removed = cur.execute(
                "SELECT id FROM removed_jobs WHERE changed_seq > %s ORDER BY id", (version,)
            ).fetchall()
        assert now is not None
        return QueueChanges(int(now["value"]), [_view(r) for r in rows], [int(r["id"]) for r in removed])
