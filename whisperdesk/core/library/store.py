"""The transcripts of record: one per finished job, in its own SQLite file beside the job queue.

Why it looks like this:

* **The record, not the files.** The output files are renderings a user may move, edit or delete; what the
  transcript workspace reads and edits is the full :class:`Transcript` stored here (as the JSON writer's
  document, which keeps every field), with the job it came from, the files that job wrote (path, size,
  mtime, SHA-256: so a later save can tell a file changed outside the app) and an ``edited`` flag and
  ``version`` that every saved edit bumps.
* **Its own file, its own schema.** The queue never imports the library (no circle: the processor, above
  both, hands each finished transcript over), and a damaged library cannot take the queue down with it:
  an unreadable file is moved aside and a new one starts, to be refilled from the jobs' JSON outputs.
* **The search index is derived.** ``segments`` and the FTS5 table ``segments_fts`` are rebuilt from the
  records whenever they are missing or from an older index version; every change to a record updates them in
  the same transaction, so search never shows what the record no longer says.
* **Several writers.** Like the job store: a connection per thread, ``BEGIN IMMEDIATE`` writes, WAL, and a
  busy timeout, so the window and ``whisperdesk watch`` can both keep transcripts in one library.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from whisperdesk.core.clock import SYSTEM_CLOCK, Clock
from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.library.query import (
    EmptyQuery,
    fts_expression,
    highlight_spans,
    index_text,
    parse_query,
)
from whisperdesk.core.outputs import file_sha256, render_json, transcript_from_json
from whisperdesk.core.sqlite_files import ThreadConnections, kept_aside_name, migrate, move_aside
from whisperdesk.core.transcript import Transcript

log = logging.getLogger(__name__)

FILE_NAME = "library.sqlite3"
BUSY_TIMEOUT_MS = 30_000
DEFAULT_LINE_LENGTH = 42
SearchOrder = Literal["newest", "best"]
SEARCH_ORDERS: tuple[str, ...] = ("newest", "best")


class LibraryError(WhisperDeskError):
    """The transcript library cannot be used as asked."""


class StaleEditError(LibraryError):
    """The transcript was saved elsewhere (another window) since this edit started from it."""


class SearchQueryError(LibraryError):
    """A query with nothing in it to search for; the message says what to type instead."""


# --- schema -------------------------------------------------------------------------------------------
# Append-only: a released migration is never edited, a new one is added at the end.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "transcripts of record and the files each job wrote",
        (
            """CREATE TABLE entries (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                job_id INTEGER UNIQUE,
                job_created_at REAL,
                source TEXT NOT NULL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                edited INTEGER NOT NULL DEFAULT 0,
                version INTEGER NOT NULL DEFAULT 1,
                imported INTEGER NOT NULL DEFAULT 0,
                language TEXT,
                duration REAL,
                speakers TEXT NOT NULL DEFAULT '[]',
                max_line_length INTEGER NOT NULL DEFAULT 42,
                transcript TEXT NOT NULL
            )""",
            "CREATE INDEX entries_created ON entries(created_at)",
            """CREATE TABLE outputs (
                entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
                format TEXT NOT NULL,
                path TEXT NOT NULL,
                size INTEGER,
                mtime_ns INTEGER,
                sha256 TEXT,
                PRIMARY KEY (entry_id, format)
            )""",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# The search index: derived from ``entries``, dropped and rebuilt when its version changes.
INDEX_VERSION = 2  # 2: segment keys sort newest first
# A segment's key (its rowid in both index tables) is (created second << 30) | (entry id mod 1024 << 20) |
# (2**20 - 1 - segment index): descending keys list the newest transcript first and each one's segments in
# time order, so a newest-first search reads only as many index entries as it returns.
_IDX_SPAN = 1 << 20  # segments indexed per transcript (a week of speech in Whisper-sized segments)
_ENTRY_BITS = 10
_INDEX_TABLES = ("segments_fts", "segments")
_INDEX_SCHEMA = (
    """CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        entry_id INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        start REAL NOT NULL,
        end REAL NOT NULL,
        speaker TEXT,
        text TEXT NOT NULL
    )""",
    "CREATE INDEX segments_entry ON segments(entry_id, idx)",
    "CREATE INDEX segments_speaker ON segments(speaker COLLATE NOCASE)",
    # unicode61 with diacritics folded ("Muller" finds "Müller"); CJK text is stored spaced out (query.py).
    "CREATE VIRTUAL TABLE segments_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2')",
)


def _apply_migrations(conn: sqlite3.Connection, where: str) -> None:
    def newer(current: int) -> LibraryError:
        return LibraryError(
            f"the transcript library {where} has schema version {current}, newer than this WhisperDesk "
            f"understands ({SCHEMA_VERSION}); update WhisperDesk, or move the file away to start an "
            "empty library (finished jobs' JSON transcripts are imported again)"
        )

    migrate(conn, MIGRATIONS, SCHEMA_VERSION, newer=newer, label=f"transcript library {where}")


# --- records ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutputFile:
    """A file a job wrote, as it was when WhisperDesk last wrote it."""

    format: str
    path: Path
    size: int | None
    mtime_ns: int | None
    sha256: str | None  # None: it could not be read when recorded

    def changed_on_disk(self) -> bool:
        """True when the file is no longer byte for byte what WhisperDesk wrote (or is gone)."""
        current = _stat_file(self.path)
        if current is None:
            return True
        if (current.st_size, current.st_mtime_ns) == (self.size, self.mtime_ns):
            return False
        return file_sha256(self.path) != self.sha256


@dataclass(frozen=True)
class LibraryEntry:
    id: int
    job_id: int | None  # None once its job was removed from the queue and the transcript kept
    source: Path
    transcript: Transcript  # ``transcript.edited`` mirrors ``edited``
    created_at: float  # epoch seconds: when the job finished (or the old job, for an import)
    updated_at: float
    edited: bool
    version: int  # 1 as transcribed, +1 for every saved edit
    outputs: tuple[OutputFile, ...]
    max_line_length: int  # the subtitle line length the job's files were rendered with
    imported: bool  # read from the JSON output of a job finished before the library existed

    @property
    def speakers(self) -> list[str]:
        return self.transcript.speakers


@dataclass(frozen=True)
class SearchHit:
    entry_id: int
    job_id: int | None
    source: Path
    created_at: float
    segment_index: int
    start: float
    end: float
    speaker: str | None
    text: str
    highlights: tuple[tuple[int, int], ...]  # character offsets in ``text`` of the matching words
    score: float  # bm25: lower is a better match

    def snippet(self, open_mark: str = "[", close_mark: str = "]", width: int = 160) -> str:
        """``text`` with every match wrapped in the marks, cut to about ``width`` characters around the first
        match (with "…" where it was cut)."""
        text, spans = self.text, self.highlights
        lo, hi = 0, len(text)
        if len(text) > width and spans:
            lo = max(0, spans[0][0] - width // 3)
            hi = min(len(text), lo + width)
        parts: list[str] = ["…" if lo > 0 else ""]
        pos = lo
        for start, end in spans:
            if end <= lo or start >= hi:
                continue
            start, end = max(start, lo), min(end, hi)
            parts += [text[pos:start], open_mark, text[start:end], close_mark]
            pos = end
        parts += [text[pos:hi], "…" if hi < len(text) else ""]
        return "".join(parts)


# --- the library --------------------------------------------------------------------------------------
class TranscriptLibrary:
    """Thread-safe, multi-process store of transcripts of record with a full-text index. See the module
    docstring; the rules that tie it to the job queue live in :mod:`whisperdesk.core.library.jobs`."""

    def __init__(self, path: Path | str, *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.recovered_from: Path | None = None  # set when an unreadable library was moved aside
        self._conns = ThreadConnections(
            self._connect, lambda: LibraryError(f"the transcript library {self.path} is closed")
        )
        self._write_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open()

    @classmethod
    def default(cls) -> TranscriptLibrary:
        from whisperdesk.core.paths import AppPaths

        return cls(AppPaths.default().ensure().library_db)

    @classmethod
    def beside(cls, jobs_db: Path | str, *, clock: Clock | None = None) -> TranscriptLibrary:
        """The library that belongs to the job queue in ``jobs_db`` (same folder)."""
        return cls(Path(jobs_db).with_name(FILE_NAME), clock=clock)

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
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _open(self) -> None:
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:
            if not any(m in str(exc) for m in ("not a database", "malformed", "encrypted")):
                raise LibraryError(
                    f"cannot open the transcript library {self.path}: {exc}; check that its folder is "
                    "writable, the disk is not full and no other program holds it locked"
                ) from exc
            self._move_aside(exc)
            self._prepare()

    def _prepare(self) -> None:
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            _apply_migrations(conn, str(self.path))
            self._check_index(conn)
        finally:
            conn.close()

    def _move_aside(self, exc: Exception) -> None:
        target = kept_aside_name(self.path)
        if target is None:
            raise LibraryError(
                f"the transcript library {self.path} cannot be read and there are too many kept copies "
                "beside it; delete the old library.sqlite3.corrupt-* files and start again"
            ) from exc
        move_aside(self.path, target)
        self.recovered_from = target
        log.error(
            "the transcript library %s could not be read (%s); it was kept as %s and a new one started",
            self.path,
            exc,
            target,
        )

    def _conn(self) -> sqlite3.Connection:
        return self._conns.get()

    def close(self) -> None:
        self._conns.close()

    def __enter__(self) -> TranscriptLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    # -- the search index ----------------------------------------------------------------------------
    def _check_index(self, conn: sqlite3.Connection) -> None:
        """Rebuild the index when a table is missing or it was built by another index version."""
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        row = conn.execute("SELECT value FROM meta WHERE key = 'index_version'").fetchone()
        if all(t in names for t in _INDEX_TABLES) and row is not None and row[0] == str(INDEX_VERSION):
            return
        log.info("transcript library %s: building the search index", self.path)
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._rebuild(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def rebuild_index(self) -> int:
        """Drop and rebuild the search index from the records; returns the number of segments indexed."""
        with self._write() as conn:
            return self._rebuild(conn)

    def _rebuild(self, conn: sqlite3.Connection) -> int:
        for table in _INDEX_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        for sql in _INDEX_SCHEMA:
            conn.execute(sql)
        count = 0
        for row in conn.execute("SELECT id, created_at, transcript FROM entries").fetchall():
            try:
                transcript = transcript_from_json(json.loads(row["transcript"]))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning(
                    "transcript library: entry %d cannot be read (%s); not searchable", row["id"], exc
                )
                continue
            count += self._index(conn, int(row["id"]), transcript, float(row["created_at"]))
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('index_version', ?)", (str(INDEX_VERSION),)
        )
        return count

    @staticmethod
    def _index(conn: sqlite3.Connection, entry_id: int, transcript: Transcript, created_at: float) -> int:
        """(Re)index one transcript's segments under keys that sort newest first (see :func:`_segment_base`)."""
        conn.execute(
            "DELETE FROM segments_fts WHERE rowid IN (SELECT id FROM segments WHERE entry_id = ?)",
            (entry_id,),
        )
        conn.execute("DELETE FROM segments WHERE entry_id = ?", (entry_id,))
        base = _segment_base(conn, entry_id, created_at)
        count = 0
        for idx, seg in enumerate(transcript.segments[:_IDX_SPAN]):
            text = " ".join(seg.text.split())
            if not text:
                continue
            key = base + (_IDX_SPAN - 1 - idx)
            conn.execute(
                "INSERT INTO segments (id, entry_id, idx, start, end, speaker, text) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, entry_id, idx, float(seg.start), float(seg.end), seg.speaker, text),
            )
            conn.execute("INSERT INTO segments_fts (rowid, body) VALUES (?, ?)", (key, index_text(text)))
            count += 1
        return count

    # -- writing -------------------------------------------------------------------------------------
    def put(
        self,
        transcript: Transcript,
        *,
        job_id: int | None = None,
        job_created_at: float | None = None,
        outputs: Mapping[str, Path | str] | None = None,
        max_line_length: int = DEFAULT_LINE_LENGTH,
        imported: bool = False,
        created_at: float | None = None,
    ) -> LibraryEntry:
        """Keep ``transcript`` as the record of job ``job_id`` (replacing that job's earlier record: a job run
        again starts over), with the files it wrote (``{format: path}``). Returns the entry. ``edited``
        comes from ``transcript.edited`` (false for a fresh transcription; true for an imported JSON file
        that says so)."""
        now = self.clock.time()
        created = now if created_at is None else float(created_at)
        record = _record_json(transcript, edited=transcript.edited)
        # An import cannot know whether the user changed a file before the library existed: it records no
        # hash, so only the output ledger can vouch for those files later.
        files = _file_facts(outputs or {}, hashed=not imported)
        with self._write() as conn:
            old = None
            if job_id is not None:
                old = conn.execute("SELECT id FROM entries WHERE job_id = ?", (job_id,)).fetchone()
            if old is not None:
                entry_id = int(old["id"])
                conn.execute(
                    "UPDATE entries SET job_created_at = ?, source = ?, created_at = ?, updated_at = ?, "
                    "edited = ?, version = version + 1, imported = ?, language = ?, duration = ?, "
                    "speakers = ?, max_line_length = ?, transcript = ? WHERE id = ?",
                    (
                        job_created_at,
                        transcript.source,
                        created,
                        now,
                        int(transcript.edited),
                        int(imported),
                        transcript.language,
                        transcript.duration,
                        _speakers_json(transcript),
                        int(max_line_length),
                        record,
                        entry_id,
                    ),
                )
            else:
                cur = conn.execute(
                    "INSERT INTO entries (job_id, job_created_at, source, created_at, updated_at, edited, "
                    "imported, language, duration, speakers, max_line_length, transcript) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        job_created_at,
                        transcript.source,
                        created,
                        now,
                        int(transcript.edited),
                        int(imported),
                        transcript.language,
                        transcript.duration,
                        _speakers_json(transcript),
                        int(max_line_length),
                        record,
                    ),
                )
                entry_id = int(cur.lastrowid or 0)
            self._set_outputs(conn, entry_id, files, replace=True)
            self._index(conn, entry_id, transcript, created)
        return self.require(entry_id)

    def update_transcript(
        self, entry_id: int, transcript: Transcript, *, base_version: int | None = None
    ) -> LibraryEntry:
        """The record half of a saved edit: store ``transcript`` as edited, bump the version, re-index.

        ``base_version`` is the version the edit started from; if the record moved on since (saved in
        another window), :class:`StaleEditError` is raised and nothing changes. Use
        :func:`whisperdesk.core.library.edit.save_edit` to rewrite the output files as well.
        """
        record = _record_json(transcript, edited=True)
        with self._write() as conn:
            row = conn.execute(
                "SELECT version, source, created_at FROM entries WHERE id = ?", (entry_id,)
            ).fetchone()
            if row is None:
                raise LibraryError(f"no transcript {entry_id} in the library; it may have been removed")
            if base_version is not None and int(row["version"]) != base_version:
                raise StaleEditError(
                    f"the transcript of {Path(row['source']).name} was saved elsewhere since you opened it "
                    f"(version {row['version']}, yours {base_version}); reopen it and make the change again"
                )
            conn.execute(
                "UPDATE entries SET transcript = ?, edited = 1, version = version + 1, updated_at = ?, "
                "language = ?, duration = ?, speakers = ? WHERE id = ?",
                (
                    record,
                    self.clock.time(),
                    transcript.language,
                    transcript.duration,
                    _speakers_json(transcript),
                    entry_id,
                ),
            )
            self._index(conn, entry_id, transcript, float(row["created_at"]))
        return self.require(entry_id)

    def record_outputs(self, entry_id: int, files: Mapping[str, Path | str]) -> None:
        """Remember the files (``{format: path}``) as WhisperDesk just wrote them (size, mtime, hash)."""
        facts = _file_facts(files)
        with self._write() as conn:
            self._set_outputs(conn, entry_id, facts, replace=False)

    @staticmethod
    def _set_outputs(
        conn: sqlite3.Connection,
        entry_id: int,
        files: list[tuple[str, str, int | None, int | None, str | None]],
        *,
        replace: bool,
    ) -> None:
        if replace:
            conn.execute("DELETE FROM outputs WHERE entry_id = ?", (entry_id,))
        conn.executemany(
            "INSERT OR REPLACE INTO outputs (entry_id, format, path, size, mtime_ns, sha256) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(entry_id, *facts) for facts in files],
        )

    def delete(self, entry_id: int) -> bool:
        """Forget a transcript and take it out of the search index."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM segments_fts WHERE rowid IN (SELECT id FROM segments WHERE entry_id = ?)",
                (entry_id,),
            )
            conn.execute("DELETE FROM segments WHERE entry_id = ?", (entry_id,))
            return conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,)).rowcount > 0

    def unqueued_entries_writing(self, paths: Iterable[Path | str]) -> list[int]:
        """Entries owned by no job whose output files include any of ``paths``: an earlier transcription of
        the same recording into the same files (``whisperdesk transcribe`` run again), which a new one
        replaces rather than sitting beside it in search."""
        names = [os.fspath(p) for p in paths]
        if not names:
            return []
        marks = ", ".join("?" * len(names))
        rows = self._conn().execute(
            "SELECT DISTINCT e.id FROM entries AS e JOIN outputs AS o ON o.entry_id = e.id "
            f"WHERE e.job_id IS NULL AND o.path IN ({marks})",
            names,
        )
        return [int(r["id"]) for r in rows]

    def detach(self, job_id: int) -> bool:
        """Keep the job's transcript after the job leaves the queue: it stays searchable, owned by no job."""
        with self._write() as conn:
            return conn.execute("UPDATE entries SET job_id = NULL WHERE job_id = ?", (job_id,)).rowcount > 0

    # -- reading -------------------------------------------------------------------------------------
    def get(self, entry_id: int) -> LibraryEntry | None:
        row = self._conn().execute("SELECT * FROM entries WHERE id = ?", (entry_id,)).fetchone()
        return None if row is None else self._entry(row)

    def require(self, entry_id: int) -> LibraryEntry:
        entry = self.get(entry_id)
        if entry is None:
            raise LibraryError(f"no transcript {entry_id} in the library; it may have been removed")
        return entry

    def for_job(self, job_id: int) -> LibraryEntry | None:
        """The job's transcript of record as stored (see ``library.jobs.entry_for_job`` to import an old
        job's from its JSON output when there is none yet)."""
        row = self._conn().execute("SELECT * FROM entries WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else self._entry(row)

    def job_created_at(self, job_id: int) -> float | None:
        row = (
            self._conn().execute("SELECT job_created_at FROM entries WHERE job_id = ?", (job_id,)).fetchone()
        )
        return None if row is None else row[0]

    def is_edited(self, job_id: int) -> bool:
        """True when the job's transcript carries saved corrections (Retry would throw them away)."""
        row = self._conn().execute("SELECT edited FROM entries WHERE job_id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    def edited_job_ids(self) -> set[int]:
        """Jobs whose transcripts were edited: one query for the queue's "edited" mark."""
        rows = self._conn().execute("SELECT job_id FROM entries WHERE edited = 1 AND job_id IS NOT NULL")
        return {int(r[0]) for r in rows}

    def speakers_by_job(self) -> dict[int, list[str]]:
        """Each job's speaker names as saved (renames and edits included), without reading transcripts:
        one query for the queue's Speakers column. Jobs without speaker labels are left out."""
        rows = self._conn().execute(
            "SELECT job_id, speakers FROM entries WHERE job_id IS NOT NULL AND speakers != '[]'"
        )
        return {int(r[0]): [str(n) for n in json.loads(r[1])] for r in rows}

    def job_ids(self) -> set[int]:
        rows = self._conn().execute("SELECT job_id FROM entries WHERE job_id IS NOT NULL")
        return {int(r[0]) for r in rows}

    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def segment_count(self) -> int:
        """Segments in the search index (with text)."""
        return int(self._conn().execute("SELECT COUNT(*) FROM segments").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _entry(self, row: sqlite3.Row) -> LibraryEntry:
        try:
            transcript = transcript_from_json(json.loads(row["transcript"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise LibraryError(
                f"the stored transcript of {row['source']} cannot be read ({exc}); transcribe the file again"
            ) from None
        outputs = tuple(
            OutputFile(r["format"], Path(r["path"]), r["size"], r["mtime_ns"], r["sha256"])
            for r in self._conn().execute(
                "SELECT * FROM outputs WHERE entry_id = ? ORDER BY rowid", (row["id"],)
            )
        )
        transcript.edited = bool(row["edited"])
        return LibraryEntry(
            id=int(row["id"]),
            job_id=row["job_id"],
            source=Path(row["source"]),
            transcript=transcript,
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
            edited=bool(row["edited"]),
            version=int(row["version"]),
            outputs=outputs,
            max_line_length=int(row["max_line_length"]),
            imported=bool(row["imported"]),
        )

    # -- search --------------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        speaker: str | None = None,
        order: SearchOrder = "newest",
        limit: int = 100,
        entry_id: int | None = None,
    ) -> list[SearchHit]:
        """Segments matching every word of ``query`` (``"a phrase"``, ``prefix*``; case and accents ignored;
        Chinese/Japanese words found inside unspaced text), optionally only ``speaker``'s (case ignored) or
        one transcript's. ``order``: "newest" (newest transcript first, then in time order) or "best"
        (bm25). Raises :class:`SearchQueryError` with a plain message for a query with nothing to find."""
        if order not in SEARCH_ORDERS:
            raise ValueError(f"order={order!r}: expected one of {', '.join(SEARCH_ORDERS)}")
        try:
            terms = parse_query(query)
        except EmptyQuery:
            raise SearchQueryError(
                'nothing to search for: type one or more words, a "phrase in quotes" or the start of a '
                "word followed by * (budg*)"
            ) from None
        match = fts_expression(terms)
        limit = max(1, int(limit))
        columns = (
            "SELECT s.entry_id, s.idx, s.start, s.end, s.speaker, s.text, e.job_id, e.source, e.created_at, "
        )
        filters, args = "", [match]
        if speaker is not None and speaker.strip():
            filters += " AND s.speaker = ? COLLATE NOCASE"
            args.append(" ".join(speaker.split()))
        if entry_id is not None:
            filters += " AND s.entry_id = ?"
            args.append(entry_id)
        if order == "best" and not filters:
            # FTS5 ranks on its own, stopping at the limit; only the winners are joined.
            sql = (
                columns + "f.score AS score FROM (SELECT rowid AS id, rank AS score FROM segments_fts "
                "WHERE segments_fts MATCH ? ORDER BY rank LIMIT ?) AS f JOIN segments AS s ON s.id = f.id "
                "JOIN entries AS e ON e.id = s.entry_id ORDER BY f.score, f.id DESC"
            )
            args.append(limit)
        else:
            # Segment keys sort newest transcript first, then in time order: FTS5 walks them in that
            # order and the query stops at the limit, however many segments match.
            sql = (
                columns + "bm25(segments_fts) AS score FROM segments_fts "
                "JOIN segments AS s ON s.id = segments_fts.rowid JOIN entries AS e ON e.id = s.entry_id "
                "WHERE segments_fts MATCH ?"
                + filters
                + (
                    " ORDER BY score, segments_fts.rowid DESC"
                    if order == "best"
                    else " ORDER BY segments_fts.rowid DESC"
                )
                + " LIMIT ?"
            )
            args.append(limit)
        try:
            rows = self._conn().execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:  # never shown as is: the parser should make this impossible
            log.warning("search for %r failed in SQLite: %s", query, exc)
            raise SearchQueryError(
                f'could not search for {query!r}; try plain words, a "phrase in quotes" or budg*'
            ) from None
        sources: dict[str, Path] = {}
        return [
            SearchHit(
                entry_id=int(r["entry_id"]),
                job_id=r["job_id"],
                source=sources.setdefault(r["source"], Path(r["source"])),
                created_at=float(r["created_at"]),
                segment_index=int(r["idx"]),
                start=float(r["start"]),
                end=float(r["end"]),
                speaker=r["speaker"],
                text=r["text"],
                highlights=highlight_spans(r["text"], terms),
                score=float(r["score"]),
            )
            for r in rows
        ]


# --- helpers ------------------------------------------------------------------------------------------
def _segment_base(conn: sqlite3.Connection, entry_id: int, created_at: float) -> int:
    """The first key of an entry's block of segment keys (see ``INDEX_VERSION``). Two transcripts created in
    the same second whose ids also share their low bits would share a block: the later one then takes the
    second before (its place in a newest-first list moves by a second, nothing else changes)."""
    second = max(0, int(created_at))
    tag = (entry_id % (1 << _ENTRY_BITS)) * _IDX_SPAN
    while True:
        base = (second << (_ENTRY_BITS + 20)) + tag
        taken = conn.execute(
            "SELECT 1 FROM segments WHERE id BETWEEN ? AND ? AND entry_id != ? LIMIT 1",
            (base, base + _IDX_SPAN - 1, entry_id),
        ).fetchone()
        if taken is None:
            return base
        second -= 1


def _speakers_json(transcript: Transcript) -> str:
    return json.dumps(transcript.speakers, ensure_ascii=False)


def _record_json(transcript: Transcript, *, edited: bool) -> str:
    """The record as the JSON writer's document: one format for the record, the files and the imports."""
    return render_json(dataclasses.replace(transcript, edited=edited))


def _stat_file(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _file_facts(
    files: Mapping[str, Path | str], *, hashed: bool = True
) -> list[tuple[str, str, int | None, int | None, str | None]]:
    facts = []
    for fmt, path in files.items():
        st = _stat_file(Path(path))
        facts.append(
            (
                fmt,
                os.fspath(path),
                None if st is None else st.st_size,
                None if st is None else st.st_mtime_ns,
                file_sha256(Path(path)) if hashed else None,
            )
        )
    return facts
