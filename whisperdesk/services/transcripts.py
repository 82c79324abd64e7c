"""The window's way to the transcript library: open a job's transcript, save corrections, search, export.

Why a service: the widgets must not open SQLite or write files themselves (the layer rules), and saving
re-renders every output file of a job, which is disk work the window must not wait on. Reads (opening one
transcript, a search) are a single indexed SQLite query each and answer at once; saves and exports run on
this service's own one-thread pool (saves of one job must not interleave) and answer with signals.

The library decides what "saved" means (``save_edit``: the record first, then every file the job wrote,
under the ledger's rule). Files changed outside the app come back as ``conflicts``; the window asks the
person, and ``overwrite_conflicts`` replaces exactly the files the last save reported for that job.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from whisperdesk.core.atomic import atomic_write_bytes
from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.jobstore import Job, JobStore
from whisperdesk.core.library.edit import SaveReport, save_edit, write_entry_outputs
from whisperdesk.core.library.jobs import entry_for_job, remove_job
from whisperdesk.core.library.store import (
    LibraryError,
    SearchHit,
    SearchQueryError,
    StaleEditError,
    TranscriptLibrary,
)
from whisperdesk.core.outputs import OutputLedger, render_bytes
from whisperdesk.core.queue.retry import retry_discards_edits
from whisperdesk.core.speakers.evidence import SpeakerEvidence, speaker_evidence
from whisperdesk.core.transcript import Transcript

log = logging.getLogger(__name__)

LIBRARY_ERRORS = (LibraryError, sqlite3.Error, OSError)  # what reading or changing the library can raise


@dataclass(frozen=True)
class OpenedTranscript:
    job_id: int
    entry_id: int
    name: str  # the recording's file name, for titles
    recording: Path  # where it was transcribed from (playback may find it elsewhere)
    transcript: Transcript
    edited: bool
    version: int
    output_folder: Path | None = None  # where the job wrote its transcripts, when that folder is still there


class _Signals(QObject):
    saved = Signal(int, str)
    conflicts = Signal(int, object)
    failed = Signal(int, str)
    exported = Signal(str)
    exportFailed = Signal(str)


class _Task(QRunnable):
    def __init__(self, fn: object, *args: object) -> None:
        super().__init__()
        self._fn, self._args = fn, args

    def run(self) -> None:
        self._fn(*self._args)  # type: ignore[operator]


class TranscriptService(QObject):
    """Signals: saved(int job_id, str summary), conflicts(int job_id, list[Path]), failed(int job_id, str),
    exported(str path), exportFailed(str message), editedChanged(int job_id, bool edited)."""

    saved = Signal(int, str)
    conflicts = Signal(int, object)
    failed = Signal(int, str)
    exported = Signal(str)
    exportFailed = Signal(str)
    editedChanged = Signal(int, bool)
    problem = Signal(str)  # a library error in a slot, in plain words (the details are in the log)

    def __init__(
        self, store: JobStore, library: TranscriptLibrary, ledger: OutputLedger, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._library = library
        self._ledger = ledger
        self._versions: dict[int, int] = {}  # job id -> the entry version the window edits
        self._conflicts: dict[int, tuple[Path, ...]] = {}
        self._release_after: dict[int, bool] = {}  # job id -> keep its transcript, once the job is removed
        self._signals = _Signals(self)
        self._signals.saved.connect(self._on_saved)
        self._signals.conflicts.connect(self.conflicts)
        self._signals.failed.connect(self.failed)
        self._signals.exported.connect(self.exported)
        self._signals.exportFailed.connect(self.exportFailed)
        self._pool = QThreadPool(self)
        self._pool.setObjectName("TranscriptService.pool")
        self._pool.setMaxThreadCount(1)

    @property
    def library(self) -> TranscriptLibrary:
        return self._library

    # --- reading ----------------------------------------------------------------------------------------
    def open_job(self, job_id: int) -> OpenedTranscript | str:
        """The job's transcript of record, or a sentence saying why there is none to show."""
        try:
            job = self._store.get(job_id)
        except (sqlite3.Error, OSError):
            log.exception("reading job %d to open its transcript failed", job_id)
            return "The job list cannot be read just now, so the transcript cannot be opened (details in the log)."
        if job is None:
            return "That job is no longer in the queue."
        try:
            entry = entry_for_job(self._library, job)
        except (WhisperDeskError, *LIBRARY_ERRORS):
            log.exception("opening the transcript of job %d (%s) failed", job_id, job.source)
            return (
                f"The transcript of {job.name} cannot be opened: the transcript library cannot be read "
                "(details in the log). Restart WhisperDesk; if it persists, transcribe the file again."
            )
        if entry is None:
            return (
                f"The transcript of {job.name} is not in the library and no JSON transcript of it is left "
                "on disk to read it from; transcribe it again (Retry) to see it here."
            )
        self._versions[job_id] = entry.version
        folders = [p.parent for p in job.outputs if p.parent.is_dir()]
        return OpenedTranscript(
            job_id,
            entry.id,
            job.name,
            job.source,
            entry.transcript,
            entry.edited,
            entry.version,
            folders[0] if folders else None,
        )

    def is_edited(self, job_id: int) -> bool:
        """Whether the job's transcript carries corrections; False (logged) when the library cannot say."""
        try:
            return self._library.is_edited(job_id)
        except LIBRARY_ERRORS:
            log.exception("reading whether job %d's transcript is edited failed", job_id)
            return False

    def retry_discards_edits(self, job: Job) -> bool:
        """The queue's one rule for "Retry would throw corrections away" (the window asks first); when the
        library cannot say, it asks (logged) rather than risk the corrections."""
        try:
            return retry_discards_edits(job, self._library)
        except LIBRARY_ERRORS:
            log.exception("reading whether job %d's transcript is edited failed", job.id)
            return True

    def edited_job_ids(self) -> set[int]:
        try:
            return self._library.edited_job_ids()
        except LIBRARY_ERRORS:
            log.exception("reading which transcripts are edited failed")
            return set()

    def speaker_evidence(self, job_id: int) -> list[SpeakerEvidence]:
        """Per speaker: share of talk time and a few lines (for the queue's rename dialog)."""
        entry = self._library.for_job(job_id)
        return speaker_evidence(entry.transcript) if entry is not None else []

    def speaker_names(self, job_id: int) -> list[str]:
        """The job's speakers as its transcript of record has them (empty without speakers); one small
        query, no transcript read (the queue asks on every selection)."""
        try:
            return self._library.speakers_by_job().get(job_id, [])
        except LIBRARY_ERRORS:
            log.exception("reading the speakers of job %d failed", job_id)
            return []

    def recording_of(self, job_id: int) -> Path | None:
        job = self._store.get(job_id)
        return job.source if job is not None else None

    def has_transcript(self, job_id: int) -> bool:
        try:
            return self._library.for_job(job_id) is not None
        except LIBRARY_ERRORS:
            log.exception("reading the transcript of job %d failed", job_id)
            return False

    def search(
        self, query: str, *, speaker: str | None = None, order: str = "newest", limit: int = 200
    ) -> list[SearchHit] | str:
        """Hits for ``query`` (the library's syntax), or a sentence saying what is wrong with the query."""
        try:
            return self._library.search(query, speaker=speaker, order=order, limit=limit)  # type: ignore[arg-type]
        except SearchQueryError as exc:
            return str(exc)

    def speakers(self) -> list[str]:
        """Every speaker name in the library, for the search's speaker filter."""
        names: dict[str, None] = {}
        for job_id in sorted(self._library.job_ids()):
            entry = self._library.for_job(job_id)
            if entry is not None:
                names.update(dict.fromkeys(entry.speakers))
        return sorted(names, key=str.casefold)

    @Slot(int, bool)
    def release_job(self, job_id: int, keep: bool) -> None:
        """A job is leaving the queue: keep its transcript in the library (searchable) or delete it, once the
        job is out of the store. A removal that fails (a running job) must not cost the transcript, and a
        running job leaves only when it has stopped, so until then the choice waits for ``on_job_removed``."""
        try:
            if self._store.get(job_id) is not None:
                self._release_after[job_id] = keep
                return
        except sqlite3.Error:
            log.exception("reading job %d before releasing its transcript failed", job_id)
            self._release_after[job_id] = keep
            return
        self._release(job_id, keep)

    @Slot(int)
    def on_job_removed(self, job_id: int) -> None:
        """The store says the job is gone (the store feed's jobRemoved): release its transcript as chosen."""
        keep = self._release_after.pop(job_id, None)
        if keep is not None:
            self._release(job_id, keep)

    def _release(self, job_id: int, keep: bool) -> None:
        try:
            entry = self._library.for_job(job_id)
            if entry is None:
                return
            if keep:
                self._library.detach(job_id)
            else:
                self._library.delete(entry.id)
        except LIBRARY_ERRORS:
            log.exception("releasing the transcript of job %d failed", job_id)
            self.problem.emit(
                "The transcript of a removed job could not be "
                + ("kept" if keep else "deleted")
                + " in the transcript library (details in the log)."
            )

    def remove_job(self, job_id: int, *, keep_transcript: bool) -> bool:
        return remove_job(self._store, self._library, job_id, keep_transcript=keep_transcript)

    # --- saving -----------------------------------------------------------------------------------------
    @Slot(int, object, bool)
    def save(self, job_id: int, transcript: object, overwrite: bool) -> None:
        """Save corrections (``overwrite``: also replace the files the last save reported as changed)."""
        if overwrite:
            self._pool.start(_Task(self._run_overwrite, job_id))
        elif isinstance(transcript, Transcript):
            self._pool.start(_Task(self._run_save, job_id, transcript))

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self._pool.waitForDone(timeout_ms)

    def _entry_id(self, job_id: int) -> int | None:
        entry = self._library.for_job(job_id)
        return entry.id if entry is not None else None

    def _run_save(self, job_id: int, transcript: Transcript) -> None:
        name = self._name(job_id)
        try:
            entry_id = self._entry_id(job_id)
            if entry_id is None:
                self._signals.failed.emit(job_id, f"{name}: its transcript is no longer in the library.")
                return
            report = save_edit(
                self._library,
                entry_id,
                transcript,
                ledger=self._ledger,
                base_version=self._versions.get(job_id),
            )
        except StaleEditError:
            self._signals.failed.emit(
                job_id,
                f"{name} was changed and saved somewhere else since you opened it; close this view and open "
                "it again to see that version (your corrections here are not saved).",
            )
            return
        except WhisperDeskError as exc:
            self._signals.failed.emit(job_id, f"{name}: the corrections could not be saved: {exc}")
            return
        except Exception:  # a bug must not take the window down
            log.exception("saving the transcript of job %d failed", job_id)
            self._signals.failed.emit(
                job_id, f"{name}: the corrections could not be saved (details in the log)."
            )
            return
        self._report(job_id, report)

    def _run_overwrite(self, job_id: int) -> None:
        name = self._name(job_id)
        try:
            entry_id = self._entry_id(job_id)
            if entry_id is None:
                self._signals.failed.emit(job_id, f"{name}: its transcript is no longer in the library.")
                return
            report = write_entry_outputs(
                self._library, entry_id, ledger=self._ledger, overwrite=self._conflicts.get(job_id, ())
            )
        except WhisperDeskError as exc:
            self._signals.failed.emit(job_id, f"{name}: the files could not be rewritten: {exc}")
            return
        except Exception:
            log.exception("rewriting the outputs of job %d failed", job_id)
            self._signals.failed.emit(
                job_id, f"{name}: the files could not be rewritten (details in the log)."
            )
            return
        self._report(job_id, report)

    def _report(self, job_id: int, report: SaveReport) -> None:
        self._versions[job_id] = report.entry.version
        self._conflicts[job_id] = report.conflicts
        if report.conflicts:
            self._signals.conflicts.emit(job_id, list(report.conflicts))
        summary = f"Saved; {len(report.written)} transcript file(s) rewritten"
        if report.missing:
            summary += f"; {len(report.missing)} no longer on disk"
        if report.conflicts:
            summary += f"; {len(report.conflicts)} changed outside WhisperDesk left as they were"
        self._signals.saved.emit(job_id, summary)

    @Slot(int, str)
    def _on_saved(self, job_id: int, summary: str) -> None:
        self.saved.emit(job_id, summary)
        self.editedChanged.emit(job_id, True)

    def _name(self, job_id: int) -> str:
        job = self._store.get(job_id)
        return job.name if job is not None else f"Job {job_id}"

    # --- export -----------------------------------------------------------------------------------------
    @Slot(object, str, str)
    def export(self, transcript: object, fmt: str, path: str) -> None:
        if isinstance(transcript, Transcript):
            self._pool.start(_Task(self._run_export, transcript, fmt, path))

    def _run_export(self, transcript: Transcript, fmt: str, path: str) -> None:
        try:
            atomic_write_bytes(Path(path), render_bytes(transcript, fmt))
        except OSError as exc:
            self._signals.exportFailed.emit(f"{path} could not be written ({exc.strerror or exc}).")
            return
        except Exception:
            log.exception("exporting %s as %s failed", path, fmt)
            self._signals.exportFailed.emit(f"{path} could not be written (details in the log).")
            return
        self._signals.exported.emit(path)
