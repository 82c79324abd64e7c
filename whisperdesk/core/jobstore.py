"""The persistent job queue: one SQLite file (WAL) shared by the GUI, ``whisperdesk watch`` and ``jobs``.

Why it looks like this:

* **Nothing lost.** Every state change is one committed transaction (``synchronous=FULL``), so a SIGKILL
  or power cut leaves each job in its last committed state. Jobs left ``running`` by a dead process go back
  to ``queued`` on the next start (:meth:`JobStore.recover_after_crash`); after ``MAX_CRASHES`` crashed
  attempts the job is ``failed`` with :data:`CRASH_REASON` instead of crashing the app forever.
* **Nothing twice.** :meth:`JobStore.add` refuses a file it already knows: same path and same content
  fingerprint (in any state, so a corrupt file is not retried by every rescan), or the same content at
  another path that is queued, running or done (a copy dropped in again). A file whose content changed
  after it ran is queued again. Only ``force=True`` (the user's "run again") bypasses this.
* **Several writers.** Threads each get their own connection; writes take ``BEGIN IMMEDIATE`` so
  check-then-insert and claim are atomic, also across processes (``busy_timeout`` waits for the lock).
  Running jobs record their owner process, so a second process starting up never steals live jobs.
* **Observable.** In-process listeners get a :class:`JobEvent` after each commit; other processes poll
  :meth:`JobStore.data_version` (one indexed read) and fetch :meth:`JobStore.changes_since`.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import socket
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from whisperdesk.core.clock import SYSTEM_CLOCK, Clock
from whisperdesk.core.errors import (
    SUPERSEDED,
    FileDisappearedError,
    UnreadableFileError,
    WhisperDeskError,
)
from whisperdesk.core.fingerprint import fingerprint_file
from whisperdesk.core.sqlite_files import (
    ThreadConnections,
    kept_aside_name,
    migrate,
    move_aside,
)

log = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELED = "canceled"
STATES: tuple[str, ...] = (QUEUED, RUNNING, DONE, FAILED, CANCELED)
FINISHED_STATES: tuple[str, ...] = (DONE, FAILED, CANCELED)

ORIGINS: tuple[str, ...] = ("dropped", "cli", "watched")
Origin = Literal["dropped", "cli", "watched"]

MAX_CRASHES = 3
CRASH_REASON = f"crashed {MAX_CRASHES} times while transcribing; retry it from the Jobs list"
BUSY_TIMEOUT_MS = 30_000


class JobStoreError(WhisperDeskError):
    """The job database cannot be used as asked."""


class JobNotFoundError(JobStoreError):
    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id {job_id}; list jobs with `whisperdesk jobs`")


class JobStateError(JobStoreError):
    """A transition that the job's current state does not allow (e.g. finishing a job that is not running)."""


# --- schema -------------------------------------------------------------------------------------------
# Append-only: a released migration is never edited, a new one is added at the end.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "jobs table",
        (
            """CREATE TABLE jobs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                source TEXT NOT NULL,
                source_key TEXT NOT NULL,
                size INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL,
                fingerprint TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('queued','running','done','failed','canceled')),
                attempts INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                settings TEXT NOT NULL DEFAULT '{}',
                outputs TEXT NOT NULL DEFAULT '[]',
                duration REAL,
                processing_time REAL,
                queue_seq INTEGER NOT NULL,
                owner TEXT,
                created_at REAL NOT NULL,
                started_at REAL,
                finished_at REAL
            )""",
            "CREATE INDEX jobs_state ON jobs(state, queue_seq)",
            "CREATE INDEX jobs_source ON jobs(source_key)",
            "CREATE INDEX jobs_fingerprint ON jobs(fingerprint)",
        ),
    ),
    (
        2,
        "progress, language, origin, watched folder, archive flag; change tracking for other processes",
        (
            "ALTER TABLE jobs ADD COLUMN progress REAL NOT NULL DEFAULT 0",
            "ALTER TABLE jobs ADD COLUMN language TEXT",
            "ALTER TABLE jobs ADD COLUMN origin TEXT NOT NULL DEFAULT 'dropped'",
            "ALTER TABLE jobs ADD COLUMN watch_folder TEXT",
            "ALTER TABLE jobs ADD COLUMN archived INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE jobs ADD COLUMN changed_seq INTEGER NOT NULL DEFAULT 1",
            "CREATE INDEX jobs_changed ON jobs(changed_seq)",
            "CREATE TABLE removed_jobs (id INTEGER PRIMARY KEY, changed_seq INTEGER NOT NULL)",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "INSERT INTO meta (key, value) VALUES ('change_seq', 1)",
        ),
    ),
    (
        3,
        "copies of done recordings reuse their transcripts; failed jobs record what kind of error it was",
        (
            "ALTER TABLE jobs ADD COLUMN copy_of INTEGER",
            "ALTER TABLE jobs ADD COLUMN error_kind TEXT",
        ),
    ),
    (
        4,
        "checkpoints of finished windows, so an interrupted job resumes where it stopped",
        (
            """CREATE TABLE checkpoints (
                job_id INTEGER NOT NULL,
                window INTEGER NOT NULL,
                fingerprint TEXT NOT NULL,
                key TEXT NOT NULL,
                data TEXT NOT NULL,
                created_at REAL NOT NULL,
                PRIMARY KEY (job_id, window)
            )""",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def apply_migrations(conn: sqlite3.Connection, target: int | None = None, *, where: str = "") -> int:
    """Bring the schema up to ``target`` (default: the newest) in one transaction; returns the new version.

    ``conn`` must be in autocommit mode (``isolation_level=None``). A database written by a newer
    WhisperDesk is refused rather than guessed at.
    """

    def newer(current: int) -> JobStoreError:
        return JobStoreError(
            f"the job database {where or '(in memory)'} has schema version {current}, newer than this "
            f"WhisperDesk understands ({SCHEMA_VERSION}); update WhisperDesk, or move the file away "
            "to start with an empty job list"
        )

    target = SCHEMA_VERSION if target is None else target
    return migrate(conn, MIGRATIONS, target, newer=newer, label=f"job database {where}")


# --- records ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=True)
class Job:
    id: int
    source: Path
    size: int
    mtime_ns: int
    fingerprint: str
    state: str
    attempts: int
    error: str | None
    settings: dict[str, Any] = field(hash=False)
    outputs: tuple[Path, ...]
    duration: float | None  # seconds of audio, once known
    processing_time: float | None  # seconds spent transcribing
    progress: float  # 0..1
    language: str | None
    origin: str
    watch_folder: str | None
    created_at: float  # wall-clock epoch seconds
    started_at: float | None
    finished_at: float | None
    archived: bool
    version: int  # data_version at this job's last change
    copy_of: int | None = None  # a job with the same content: its transcripts are copied, not made again
    error_kind: str | None = None  # what the window can offer for a failure (core.errors.OUTPUT_EXISTS...)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True)
class AddResult:
    job: Job
    created: bool
    reason: str  # for logs and the CLI: why it was (not) queued


@dataclass(frozen=True)
class JobEvent:
    kind: Literal["added", "changed", "progress", "removed"]
    job_id: int
    job: Job | None  # None for "removed"


@dataclass(frozen=True)
class Changes:
    version: int
    jobs: list[Job]
    removed: list[int]


@dataclass(frozen=True)
class Recovery:
    requeued: list[Job]
    failed: list[Job]
    still_running: list[Job]  # owned by another live process; left alone


JobListener = Callable[[JobEvent], None]


# --- helpers ------------------------------------------------------------------------------------------
def _now_owner() -> str:
    import psutil

    return f"{socket.gethostname()}|{os.getpid()}|{psutil.Process().create_time():.3f}"


def _owner_alive(owner: str | None) -> bool:
    """True when ``owner`` names a process on this host that still runs (same pid *and* start time)."""
    if not owner:
        return False
    try:
        host, pid_text, started_text = owner.split("|")
        pid, started = int(pid_text), float(started_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # exists and belongs to someone else: do not steal its job


def _absolute(path: Path | str) -> str:
    text = os.path.abspath(os.fspath(path))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnreadableFileError(
            text, f"the file name of {text!r} is not valid UTF-8; rename the file and add it again"
        ) from exc
    return text


def _source_key(source: str) -> str:
    """One key per file however it was named (symlinks, case on Windows/macOS volumes)."""
    return os.path.normcase(os.path.realpath(source))


def _stat_source(source: str) -> os.stat_result:
    try:
        st = os.stat(source)
    except FileNotFoundError as exc:
        raise FileDisappearedError(source, f"file disappeared: {source} no longer exists") from exc
    except OSError as exc:
        raise UnreadableFileError(source, f"cannot read {source}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise UnreadableFileError(source, f"{source} is a folder; add the audio or video files in it")
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFileError(source, f"{source} is not a regular file; add an audio or video file")
    return st


def _encode_settings(settings: Mapping[str, Any] | None) -> str:
    if settings is None:
        return "{}"
    if not isinstance(settings, Mapping):
        raise TypeError(f"job settings must be a dict, got {type(settings).__name__}")
    try:
        return json.dumps(dict(settings), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"job settings must be JSON-serialisable (dict, list, str, number, bool): {exc}"
        ) from exc


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        source=Path(row["source"]),
        size=row["size"],
        mtime_ns=row["mtime_ns"],
        fingerprint=row["fingerprint"],
        state=row["state"],
        attempts=row["attempts"],
        error=row["error"],
        settings=json.loads(row["settings"]),
        outputs=tuple(Path(p) for p in json.loads(row["outputs"])),
        duration=row["duration"],
        processing_time=row["processing_time"],
        progress=row["progress"],
        language=row["language"],
        origin=row["origin"],
        watch_folder=row["watch_folder"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        archived=bool(row["archived"]),
        version=row["changed_seq"],
        copy_of=row["copy_of"],
        error_kind=row["error_kind"],
    )


class _Tx:
    """One write transaction: hands out the change number once and collects events to send after commit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.events: list[tuple[str, int]] = []
        self._seq: int | None = None

    @property
    def seq(self) -> int:
        if self._seq is None:
            self.conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'change_seq'")
            self._seq = int(
                self.conn.execute("SELECT value FROM meta WHERE key = 'change_seq'").fetchone()[0]
            )
        return self._seq

    def event(self, kind: str, job_id: int) -> None:
        self.events.append((kind, job_id))


# --- the store ----------------------------------------------------------------------------------------
class JobStore:
    """Thread-safe, multi-process job queue over one SQLite file. See the module docstring."""

    def __init__(self, path: Path | str, *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.recovered_from: Path | None = None  # set when an unreadable database was moved aside
        self.recovery_reason = ""  # why it was: plain words for the window's banner and the CLI
        self.started_new = False  # no database was there: a first start, or one deleted meanwhile
        self.lost_before = False  # no database was there although one was kept here before
        self._conns = ThreadConnections(
            self._connect, lambda: JobStoreError(f"the job store {self.path} is closed")
        )
        self._write_lock = threading.Lock()
        self._listeners: list[JobListener] = []
        self._listeners_lock = threading.Lock()
        self._owner = _now_owner()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open_schema()

    @classmethod
    def default(cls, *, clock: Clock | None = None) -> JobStore:
        from whisperdesk.core.paths import AppPaths

        return cls(AppPaths.default().ensure().jobs_db, clock=clock)

    # -- connections ---------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            os.fspath(self.path),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    @property
    def _existed_marker(self) -> Path:
        """A small file beside the database saying a job list was kept here before. Why: the outputs ledger
        alone cannot tell a lost job list from one never made (``whisperdesk transcribe`` writes transcripts
        without a queue), and a newcomer told "your job list was lost" after using the CLI first would
        think their data damaged."""
        return Path(os.fspath(self.path) + ".existed")

    def _open_schema(self) -> None:
        self.started_new = not os.path.lexists(self.path)
        self.lost_before = self.started_new and self._existed_marker.exists()
        if not self.started_new and _empty_file(self.path):
            # SQLite opens a 0-byte file as a valid empty database; ours always has its header (WAL mode
            # writes it at creation), so nothing here is a queue that was truncated or lost.
            self._move_aside("the file is empty (0 bytes)")
        try:
            conn = self._connect()
            try:
                _make_private(self.path)  # before WAL mode creates -wal and -shm, which copy its mode
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                apply_migrations(conn, where=str(self.path))
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            if not any(m in str(exc) for m in ("not a database", "malformed", "encrypted")):
                raise JobStoreError(
                    f"cannot open the job database {self.path}: {exc}; check that its folder is writable, "
                    "the disk is not full and no other program holds it locked"
                ) from exc
            self._move_aside(f"it is damaged ({exc})")
            conn = self._connect()
            try:
                _make_private(self.path)
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                apply_migrations(conn, where=str(self.path))
            finally:
                conn.close()
        with contextlib.suppress(OSError):  # only a better message depends on it
            if not self._existed_marker.exists():
                self._existed_marker.write_bytes(b"")
        if str(mode).lower() != "wal":
            log.warning(
                "job database %s: WAL journaling unavailable (got %r; network drive?); "
                "concurrent readers will wait for writers",
                self.path,
                mode,
            )

    def _move_aside(self, reason: str) -> None:
        target = self._kept_name()
        move_aside(self.path, target)
        self.recovered_from = target
        self.recovery_reason = reason
        self.started_new = False
        log.info(  # the front ends tell the user (core.queue.reset): a banner, a warning on stderr
            "the job database %s could not be read (%s); it was kept as %s and a new, empty job list started",
            self.path,
            reason,
            target,
        )

    def _kept_name(self) -> Path:
        """A name no earlier kept copy has: two recoveries in one second must not overwrite the first."""
        target = kept_aside_name(self.path)
        if target is None:
            raise JobStoreError(
                f"the job database {self.path} cannot be read and there are too many kept copies beside it; "
                "delete the old jobs.sqlite3.corrupt-* files and start again"
            )
        return target

    def _conn(self) -> sqlite3.Connection:
        return self._conns.get()

    def close(self) -> None:
        self._conns.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[_Tx]:
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            tx = _Tx(conn)
            try:
                yield tx
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        self._emit(tx.events)

    # -- listeners -----------------------------------------------------------------------------------
    def add_listener(self, listener: JobListener) -> Callable[[], None]:
        """Call ``listener(event)`` after each committed change made *through this store object*.

        It runs on the thread that made the change (a GUI must re-post it to its own thread) and must
        be quick. Returns a function that removes the listener. Changes by other processes are seen by
        polling :meth:`data_version` / :meth:`changes_since`.
        """
        with self._listeners_lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._listeners_lock, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def _emit(self, events: list[tuple[str, int]]) -> None:
        if not events:
            return
        with self._listeners_lock:
            listeners = list(self._listeners)
        if not listeners:
            return
        for kind, job_id in events:
            job = None if kind == "removed" else self.get(job_id)
            event = JobEvent(kind, job_id, job)  # type: ignore[arg-type]
            for listener in listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("job listener %r failed on %s", listener, event)

    # -- reading -------------------------------------------------------------------------------------
    def get(self, job_id: int) -> Job | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _row_to_job(row)

    def require(self, job_id: int) -> Job:
        job = self.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    def list(
        self,
        states: Iterable[str] | None = None,
        *,
        include_archived: bool = False,
        watch_folder: str | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        """Jobs in id order (oldest first)."""
        sql = "SELECT * FROM jobs WHERE 1"
        args: list[Any] = []
        if states is not None:
            wanted = _check_states(states)
            sql += f" AND state IN ({','.join('?' * len(wanted))})"
            args += wanted
        if not include_archived:
            sql += " AND archived = 0"
        if watch_folder is not None:
            sql += " AND watch_folder = ?"
            args.append(watch_folder)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [_row_to_job(r) for r in self._conn().execute(sql, args)]

    def queued(self) -> builtins.list[Job]:
        """Queued jobs in the order :meth:`claim_next` will hand them out."""
        rows = self._conn().execute("SELECT * FROM jobs WHERE state = ? ORDER BY queue_seq, id", (QUEUED,))
        return [_row_to_job(r) for r in rows]

    def find(self, path: Path | str) -> builtins.list[Job]:
        """Every job for this file path (oldest first), archived ones included."""
        key = _source_key(os.path.abspath(os.fspath(path)))
        rows = self._conn().execute("SELECT * FROM jobs WHERE source_key = ? ORDER BY id", (key,))
        return [_row_to_job(r) for r in rows]

    def counts(self, *, include_archived: bool = False) -> dict[str, int]:
        sql = "SELECT state, COUNT(*) FROM jobs" + ("" if include_archived else " WHERE archived = 0")
        found = dict(self._conn().execute(sql + " GROUP BY state").fetchall())
        return {state: int(found.get(state, 0)) for state in STATES}

    def data_version(self) -> int:
        """A number that grows with every committed change by any process; cheap to poll."""
        return int(self._conn().execute("SELECT value FROM meta WHERE key = 'change_seq'").fetchone()[0])

    def changes_since(self, version: int) -> Changes:
        """Jobs added or changed, and ids removed, after ``version`` (from :meth:`data_version` or a
        previous :class:`Changes`). Read in one snapshot so nothing falls between two polls."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            now = int(conn.execute("SELECT value FROM meta WHERE key = 'change_seq'").fetchone()[0])
            rows = conn.execute("SELECT * FROM jobs WHERE changed_seq > ? ORDER BY id", (version,)).fetchall()
            removed = [
                int(r[0])
                for r in conn.execute(
                    "SELECT id FROM removed_jobs WHERE changed_seq > ? ORDER BY id", (version,)
                )
            ]
        finally:
            conn.execute("COMMIT")
        return Changes(now, [_row_to_job(r) for r in rows], removed)

    # -- adding --------------------------------------------------------------------------------------
    def add(
        self,
        path: Path | str,
        settings: Mapping[str, Any] | None = None,
        *,
        origin: Origin = "dropped",
        watch_folder: str | None = None,
        force: bool = False,
    ) -> AddResult:
        """Queue ``path`` unless this exact file is already known; see the module docstring for the rules.

        Raises FileDisappearedError / UnreadableFileError when the file cannot be read at all (the
        caller reports it; nothing is stored). ``settings`` is the JSON-serialisable dict it will run
        with. ``force`` is the user's "run it again": it queues even a done file, but never a second
        copy of one that is already queued or running.
        """
        if origin not in ORIGINS:
            raise ValueError(f"origin={origin!r} is invalid: expected one of {', '.join(ORIGINS)}")
        source = _absolute(path)
        key = _source_key(source)
        settings_json = _encode_settings(settings)
        st = _stat_source(source)
        if not force:
            # Cheap path for rescans: unchanged size+mtime of a known path needs no hashing.
            row = (
                self._conn()
                .execute("SELECT * FROM jobs WHERE source_key = ? ORDER BY id DESC LIMIT 1", (key,))
                .fetchone()
            )
            if row is not None and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns:
                known = _row_to_job(row)
                return AddResult(known, False, f"already {known.state} as job {known.id}")
        fp = fingerprint_file(source)

        with self._write() as tx:
            conn = tx.conn
            rows = [
                _row_to_job(r)
                for r in conn.execute("SELECT * FROM jobs WHERE source_key = ? ORDER BY id DESC", (key,))
            ]
            same = [j for j in rows if j.fingerprint == fp.digest]
            active = [j for j in same if j.state in (QUEUED, RUNNING)]
            if active:
                return AddResult(active[0], False, f"already {active[0].state} as job {active[0].id}")
            if same and not force:
                return AddResult(same[0], False, f"already {same[0].state} as job {same[0].id}")
            copy_of: Job | None = None
            if not force:
                # Same content at another path (a renamed copy, a second watched folder): its own job,
                # which copies the twin's transcripts instead of transcribing again.
                twin = conn.execute(
                    "SELECT * FROM jobs WHERE fingerprint = ? AND size = ? AND state IN (?, ?, ?) "
                    "ORDER BY (state = ?) DESC, id DESC LIMIT 1",
                    (fp.digest, fp.size, QUEUED, RUNNING, DONE, DONE),
                ).fetchone()
                if twin is not None:
                    copy_of = _row_to_job(twin)
                    copy_of = self._original(conn, copy_of)
            waiting = [j for j in rows if j.state == QUEUED]
            if waiting:
                # Changed while still waiting: one job for the new content, not two.
                conn.execute(
                    "UPDATE jobs SET size = ?, mtime_ns = ?, fingerprint = ?, changed_seq = ? WHERE id = ?",
                    (fp.size, fp.mtime_ns, fp.digest, tx.seq, waiting[0].id),
                )
                tx.event("changed", waiting[0].id)
                job = _row_to_job(
                    conn.execute("SELECT * FROM jobs WHERE id = ?", (waiting[0].id,)).fetchone()
                )
                return AddResult(job, False, f"the file changed; job {job.id} will use the new content")
            cur = conn.execute(
                "INSERT INTO jobs (source, source_key, size, mtime_ns, fingerprint, state, settings, queue_seq, "
                "created_at, origin, watch_folder, changed_seq, copy_of) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(queue_seq), 0) + 1 FROM jobs), ?, ?, ?, ?, ?)",
                (
                    source,
                    key,
                    fp.size,
                    fp.mtime_ns,
                    fp.digest,
                    QUEUED,
                    settings_json,
                    self.clock.time(),
                    origin,
                    watch_folder,
                    tx.seq,
                    copy_of.id if copy_of is not None else None,
                ),
            )
            job_id = int(cur.lastrowid or 0)
            tx.event("added", job_id)
            job = _row_to_job(conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())
        if force and same:
            reason = f"run again (was job {same[0].id})"
        elif copy_of is not None:
            reason = f"same content as {copy_of.source} (job {copy_of.id}): its transcripts will be copied"
        elif rows:
            reason = f"changed since job {rows[0].id}"
        else:
            reason = "new"
        return AddResult(job, True, reason)

    def rerun(self, job_id: int, settings: Mapping[str, Any] | None = None) -> AddResult:
        """The user's "transcribe again": a new job for the same file, with ``settings`` or the old ones;
        it is transcribed, never copied from a job with the same content."""
        old = self.require(job_id)
        return self.add(
            old.source,
            old.settings if settings is None else settings,
            origin=old.origin,  # type: ignore[arg-type]
            watch_folder=old.watch_folder,
            force=True,
        )

    # -- the processing loop's side ------------------------------------------------------------------
    def claim_next(self) -> Job | None:
        """Atomically take the oldest queued job: it becomes running, owned by this process."""
        with self._write() as tx:
            # A copy waits while the job it copies is still queued or running.
            row = tx.conn.execute(
                "SELECT id FROM jobs AS j WHERE state = ? AND (copy_of IS NULL OR NOT EXISTS "
                "(SELECT 1 FROM jobs AS t WHERE t.id = j.copy_of AND t.state IN (?, ?))) "
                "ORDER BY queue_seq, id LIMIT 1",
                (QUEUED, QUEUED, RUNNING),
            ).fetchone()
            if row is None:
                return None
            job_id = int(row[0])
            # Checkpoints of another content of the file (it changed while queued) are of no use now.
            tx.conn.execute(
                "DELETE FROM checkpoints WHERE job_id = ? AND fingerprint != "
                "(SELECT fingerprint FROM jobs WHERE id = ?)",
                (job_id, job_id),
            )
            cur = tx.conn.execute(
                "UPDATE jobs SET state = ?, attempts = attempts + 1, started_at = ?, finished_at = NULL, "
                "progress = CASE WHEN EXISTS (SELECT 1 FROM checkpoints WHERE job_id = jobs.id) "
                "THEN progress ELSE 0 END, error = NULL, owner = ?, changed_seq = ? WHERE id = ? AND state = ?",
                (RUNNING, self.clock.time(), self._owner, tx.seq, job_id, QUEUED),
            )
            if cur.rowcount != 1:  # cannot happen under BEGIN IMMEDIATE; never hand out a job twice
                raise JobStoreError(f"job {job_id} was claimed by someone else meanwhile")
            tx.event("changed", job_id)
        return self.require(job_id)

    def mark_progress(
        self,
        job_id: int,
        progress: float,
        *,
        duration: float | None = None,
        language: str | None = None,
    ) -> Job | None:
        """Record progress (clamped to 0..1) of a running job; returns None if it is no longer running
        (canceled or removed meanwhile), which the loop may take as a hint to stop."""
        progress = min(1.0, max(0.0, float(progress)))
        with self._write() as tx:
            cur = tx.conn.execute(
                "UPDATE jobs SET progress = ?, duration = COALESCE(?, duration), "
                "language = COALESCE(?, language), changed_seq = ? WHERE id = ? AND state = ?",
                (progress, duration, language, tx.seq, job_id, RUNNING),
            )
            if cur.rowcount == 0:
                return None
            tx.event("progress", job_id)
        return self.get(job_id)

    def mark_done(
        self,
        job_id: int,
        *,
        outputs: Iterable[Path | str] = (),
        duration: float | None = None,
        language: str | None = None,
        processing_time: float | None = None,
    ) -> Job:
        outputs_json = json.dumps([os.fspath(p) for p in outputs], ensure_ascii=False)
        now = self.clock.time()
        with self._write() as tx:
            job = self._require_state(tx, job_id, (RUNNING,), "finish")
            if processing_time is None and job.started_at is not None:
                processing_time = max(0.0, now - job.started_at)
            tx.conn.execute(
                "UPDATE jobs SET state = ?, progress = 1, outputs = ?, duration = COALESCE(?, duration), "
                "language = COALESCE(?, language), processing_time = ?, error = NULL, finished_at = ?, "
                "owner = NULL, changed_seq = ? WHERE id = ?",
                (DONE, outputs_json, duration, language, processing_time, now, tx.seq, job_id),
            )
            tx.conn.execute("DELETE FROM checkpoints WHERE job_id = ?", (job_id,))
            tx.event("changed", job_id)
        return self.require(job_id)

    def mark_failed(
        self, job_id: int, error: str | BaseException, *, kind: str | None = None, only_queued: bool = False
    ) -> Job:
        """Fail a queued or running job with a message the user can act on; ``kind`` names the sort of
        problem (``core.errors.OUTPUT_EXISTS``...) so the window can offer the action that fixes it.
        ``only_queued``: a check at queue time fails the job only if no worker has claimed it meanwhile."""
        message = error if isinstance(error, str) else (str(error) or type(error).__name__)
        with self._write() as tx:
            self._require_state(tx, job_id, (QUEUED,) if only_queued else (QUEUED, RUNNING), "fail")
            tx.conn.execute(
                "UPDATE jobs SET state = ?, error = ?, error_kind = ?, finished_at = ?, owner = NULL, "
                "changed_seq = ? WHERE id = ?",
                (FAILED, message, kind, self.clock.time(), tx.seq, job_id),
            )
            tx.conn.execute("DELETE FROM checkpoints WHERE job_id = ?", (job_id,))
            tx.event("changed", job_id)
        return self.require(job_id)

    def mark_canceled(self, job_id: int) -> Job:
        """Cancel a queued or running job (the loop stops a running one when it sees this state).
        Canceling an already canceled job is a no-op, so the loop and the user may both call it."""
        with self._write() as tx:
            job = self._require_state(tx, job_id, (QUEUED, RUNNING, CANCELED), "cancel")
            if job.state != CANCELED:
                tx.conn.execute(
                    "UPDATE jobs SET state = ?, finished_at = ?, owner = NULL, changed_seq = ? WHERE id = ?",
                    (CANCELED, self.clock.time(), tx.seq, job_id),
                )
                tx.conn.execute("DELETE FROM checkpoints WHERE job_id = ?", (job_id,))
                tx.event("changed", job_id)
        return self.require(job_id)

    def mark_superseded(self, job_id: int, reason: str) -> Job:
        """End a running job whose recording was replaced by newer content: it stops like a canceled job
        (nothing written, no failure to retry) and keeps ``reason``, which names the job for the new
        content, so the window and the CLI can say why."""
        with self._write() as tx:
            self._require_state(tx, job_id, (RUNNING,), "supersede")
            tx.conn.execute(
                "UPDATE jobs SET state = ?, error = ?, error_kind = ?, finished_at = ?, owner = NULL, "
                "changed_seq = ? WHERE id = ?",
                (CANCELED, reason, SUPERSEDED, self.clock.time(), tx.seq, job_id),
            )
            # Checkpoints of the old content must never seed a transcript of the new content.
            tx.conn.execute("DELETE FROM checkpoints WHERE job_id = ?", (job_id,))
            tx.event("changed", job_id)
        return self.require(job_id)

    def release(self, job_id: int) -> Job:
        """Put a running job back at the head of the queue without counting the attempt: for a clean
        shutdown (Ctrl-C, SIGTERM, quitting the app) in the middle of a job."""
        with self._write() as tx:
            self._require_state(tx, job_id, (RUNNING,), "release")
            tx.conn.execute(
                "UPDATE jobs SET state = ?, attempts = MAX(attempts - 1, 0), progress = CASE WHEN EXISTS "
                "(SELECT 1 FROM checkpoints WHERE job_id = jobs.id) THEN progress ELSE 0 END, started_at = NULL, "
                "owner = NULL, changed_seq = ? WHERE id = ?",
                (QUEUED, tx.seq, job_id),
            )
            tx.event("changed", job_id)
        return self.require(job_id)

    # -- checkpoints of finished windows --------------------------------------------------------------
    def save_checkpoint(self, job_id: int, window: int, key: str, data: Mapping[str, Any]) -> bool:
        """Keep one finished window of a running job (JSON ``data``), for a resume after an interruption.

        ``key`` names what the window was decoded from and with (content, options, model): checkpoints of
        another key are dropped here, so a job never mixes windows of two runs. False (nothing kept) when
        the job is no longer running here.
        """
        payload = json.dumps(dict(data), ensure_ascii=False)
        with self._write() as tx:
            row = tx.conn.execute(
                "SELECT fingerprint FROM jobs WHERE id = ? AND state = ? AND owner = ?",
                (job_id, RUNNING, self._owner),
            ).fetchone()
            if row is None:
                return False
            tx.conn.execute("DELETE FROM checkpoints WHERE job_id = ? AND key != ?", (job_id, key))
            tx.conn.execute(
                "INSERT OR REPLACE INTO checkpoints (job_id, window, fingerprint, key, data, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, int(window), row["fingerprint"], key, payload, self.clock.time()),
            )
        return True

    def checkpoints(self, job_id: int, key: str) -> dict[int, dict[str, Any]]:
        """The finished windows kept for ``job_id`` under ``key`` (window index → data); others are ignored."""
        rows = self._conn().execute(
            "SELECT c.window, c.data FROM checkpoints AS c JOIN jobs AS j ON j.id = c.job_id "
            "WHERE c.job_id = ? AND c.key = ? AND c.fingerprint = j.fingerprint ORDER BY c.window",
            (job_id, key),
        )
        return {int(r["window"]): json.loads(r["data"]) for r in rows}

    def drop_checkpoints(self, job_id: int) -> int:
        """Forget a job's finished windows (its next run starts from the beginning); returns how many."""
        with self._write() as tx:
            return int(tx.conn.execute("DELETE FROM checkpoints WHERE job_id = ?", (job_id,)).rowcount)

    # -- the user's side -----------------------------------------------------------------------------
    def retry(self, job_id: int, *, settings: Mapping[str, Any] | None = None) -> Job:
        """Queue a failed or canceled job again, at the end of the queue, with a fresh crash count; with
        ``settings``, it runs with those (the user's current output settings, "Overwrite"...)."""
        settings_json = None if settings is None else _encode_settings(settings)
        with self._write() as tx:
            self._require_state(tx, job_id, (FAILED, CANCELED), "retry")
            self._requeue(tx, job_id)
            if settings_json is not None:
                tx.conn.execute("UPDATE jobs SET settings = ? WHERE id = ?", (settings_json, job_id))
        return self.require(job_id)

    def retry_failed(self) -> builtins.list[Job]:
        with self._write() as tx:
            ids = [
                int(r[0])
                for r in tx.conn.execute(
                    "SELECT id FROM jobs WHERE state = ? AND archived = 0 ORDER BY id", (FAILED,)
                )
            ]
            for job_id in ids:
                self._requeue(tx, job_id)
        return [self.require(i) for i in ids]

    def remove(self, job_id: int) -> bool:
        """Forget a job that is not running. Its file then counts as new again: to hide finished jobs
        from the list but keep them from being transcribed twice, use :meth:`archive_finished`."""
        with self._write() as tx:
            row = tx.conn.execute("SELECT state, source FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return False
            if row["state"] == RUNNING:
                raise JobStateError(
                    f"job {job_id} ({row['source']}) is running; cancel it before removing it"
                )
            tx.conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            tx.conn.execute("DELETE FROM checkpoints WHERE job_id = ?", (job_id,))
            tx.conn.execute(
                "INSERT OR REPLACE INTO removed_jobs (id, changed_seq) VALUES (?, ?)", (job_id, tx.seq)
            )
            tx.event("removed", job_id)
        return True

    def archive_finished(self, states: Sequence[str] = (DONE, CANCELED)) -> int:
        """Hide finished jobs from :meth:`list` while keeping them for duplicate detection."""
        wanted = _check_states(states)
        if RUNNING in wanted or QUEUED in wanted:
            raise JobStateError("only finished jobs (done, failed, canceled) can be archived")
        with self._write() as tx:
            ids = [
                int(r[0])
                for r in tx.conn.execute(
                    f"SELECT id FROM jobs WHERE archived = 0 AND state IN ({','.join('?' * len(wanted))})",
                    wanted,
                )
            ]
            for job_id in ids:
                tx.conn.execute(
                    "UPDATE jobs SET archived = 1, changed_seq = ? WHERE id = ?", (tx.seq, job_id)
                )
                tx.event("changed", job_id)
        return len(ids)

    def recover_after_crash(self) -> Recovery:
        """Call once at startup, before claiming: jobs left running by a process that no longer exists
        go back to the queue, or fail after ``MAX_CRASHES`` attempts. Jobs of a live process stay."""
        requeued: builtins.list[int] = []
        failed: builtins.list[int] = []
        live: builtins.list[int] = []
        with self._write() as tx:
            rows = tx.conn.execute(
                "SELECT id, attempts, owner FROM jobs WHERE state = ?", (RUNNING,)
            ).fetchall()
            for row in rows:
                job_id = int(row["id"])
                if _owner_alive(row["owner"]):
                    live.append(job_id)
                elif row["attempts"] >= MAX_CRASHES:
                    tx.conn.execute(
                        "UPDATE jobs SET state = ?, error = ?, finished_at = ?, owner = NULL, changed_seq = ? "
                        "WHERE id = ?",
                        (FAILED, CRASH_REASON, self.clock.time(), tx.seq, job_id),
                    )
                    failed.append(job_id)
                    tx.event("changed", job_id)
                else:
                    tx.conn.execute(
                        "UPDATE jobs SET state = ?, progress = 0, started_at = NULL, owner = NULL, changed_seq = ? "
                        "WHERE id = ?",
                        (QUEUED, tx.seq, job_id),
                    )
                    requeued.append(job_id)
                    tx.event("changed", job_id)
        for job_id in requeued:
            log.warning("job %d was interrupted by a crash; queued again", job_id)
        for job_id in failed:
            log.error("job %d: %s", job_id, CRASH_REASON)
        return Recovery(
            [self.require(i) for i in requeued],
            [self.require(i) for i in failed],
            [self.require(i) for i in live],
        )

    # -- internals -----------------------------------------------------------------------------------
    def _require_state(self, tx: _Tx, job_id: int, allowed: tuple[str, ...], verb: str) -> Job:
        row = tx.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(job_id)
        job = _row_to_job(row)
        if job.state not in allowed:
            raise JobStateError(
                f"cannot {verb} job {job_id} ({job.source}): it is {job.state}; "
                f"only {' or '.join(allowed)} jobs can be asked to {verb}"
            )
        return job

    def _original(self, conn: sqlite3.Connection, job: Job) -> Job:
        """Follow copies back to the job that was transcribed (a copy of a queued copy waits for it too)."""
        seen = {job.id}
        while job.state != DONE and job.copy_of is not None and job.copy_of not in seen:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job.copy_of,)).fetchone()
            if row is None:
                break
            seen.add(job.copy_of)
            job = _row_to_job(row)
        return job

    def _requeue(self, tx: _Tx, job_id: int) -> None:
        tx.conn.execute(
            "UPDATE jobs SET state = ?, attempts = 0, error = NULL, error_kind = NULL, progress = 0, "
            "started_at = NULL, "
            "finished_at = NULL, owner = NULL, archived = 0, "
            "queue_seq = (SELECT COALESCE(MAX(queue_seq), 0) + 1 FROM jobs), changed_seq = ? WHERE id = ?",
            (QUEUED, tx.seq, job_id),
        )
        tx.event("changed", job_id)


def _make_private(db: Path) -> None:
    """The job list names every recording: 0600 for the database and the WAL files SQLite made beside it
    (an older version left them under the umask). A file system without permissions keeps what it has."""
    for suffix in ("", "-wal", "-shm"):
        path = Path(os.fspath(db) + suffix)
        with contextlib.suppress(OSError):
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)


def _empty_file(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _check_states(states: Iterable[str]) -> list[str]:
    wanted = list(states)
    unknown = [s for s in wanted if s not in STATES]
    if unknown or not wanted:
        raise ValueError(f"unknown job state(s) {unknown or wanted!r}: expected some of {', '.join(STATES)}")
    return wanted
