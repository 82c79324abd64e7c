"""What the job store and the transcript library both need from SQLite: one connection per thread, closed
together, a damaged database file kept aside under a name no earlier copy has, and numbered migrations.

Why per-thread connections: a connection is not safe to use from two threads at once, and each of these
stores is used from the GUI thread, job threads and save threads. Why one close for all of them: a store
closes every thread's connection at shutdown (the caller makes sure no thread still uses one; closing a
connection under a running statement crashes SQLite).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

SIDE_FILES = ("", "-wal", "-shm")  # the database and its write-ahead log and shared-memory index


class _Holder:
    """A thread's connection; closed when the thread's local storage goes away or at close."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    def __del__(self) -> None:
        self.close()


class ThreadConnections:
    """One connection per thread from ``connect``; after :meth:`close`, :meth:`get` raises ``closed()``."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], closed: Callable[[], Exception]) -> None:
        self._connect = connect
        self._closed_error = closed
        self._local = threading.local()
        self._all: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._lock = threading.Lock()
        self.closed = False

    def get(self) -> sqlite3.Connection:
        if self.closed:
            raise self._closed_error()
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is None:
            holder = _Holder(self._connect())
            self._local.holder = holder
            with self._lock:
                self._all.add(holder)
        return holder.conn

    def close(self) -> None:
        self.closed = True
        with self._lock:
            holders = list(self._all)
            self._all = weakref.WeakSet()
        for holder in holders:
            holder.close()


def kept_aside_name(path: Path) -> Path | None:
    """``<name>.corrupt-<time>[-N]`` that no earlier kept copy (nor its -wal/-shm) has: two recoveries in one
    second must not overwrite the first. None when ten thousand such copies are already there."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        target = path.with_name(f"{path.name}.corrupt-{stamp}" + (f"-{n}" if n > 1 else ""))
        if not any(os.path.lexists(os.fspath(target) + s) for s in SIDE_FILES):
            return target
    return None


def move_aside(path: Path, target: Path) -> None:
    """Move the database at ``path`` with its side files to ``target`` (same folder: a rename)."""
    for suffix in SIDE_FILES:
        src = Path(os.fspath(path) + suffix)
        if src.exists():
            os.replace(src, Path(os.fspath(target) + suffix))


Migration = tuple[int, str, Sequence[str]]  # version, description, SQL statements


def schema_version(conn: sqlite3.Connection) -> int:
    """The newest migration applied to this database; 0 for a new one."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
    ).fetchone()
    if not has_table:
        return 0
    return int(conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0)


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration],
    target: int,
    *,
    newer: Callable[[int], Exception],
    label: str,
) -> int:
    """Apply ``migrations`` up to ``target`` in one transaction; returns the version reached.

    ``conn`` must be in autocommit mode (``isolation_level=None``). A database whose version is above the
    newest migration (written by a newer WhisperDesk) raises ``newer(version)`` rather than being guessed at.
    ``label`` names the database in the log."""
    newest = max((version for version, _d, _s in migrations), default=0)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        current = schema_version(conn)
        if current > newest:
            raise newer(current)
        for version, description, statements in migrations:
            if current < version <= target:
                for sql in statements:
                    conn.execute(sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                    (version, description, time.time()),
                )
                log.info("%s: applied migration %d (%s)", label, version, description)
                current = version
        conn.execute(f"PRAGMA user_version = {int(current)}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return current
