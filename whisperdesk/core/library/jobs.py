"""How the library follows the job queue, without the queue knowing the library exists.

The job store stays below the library (the library reads :class:`Job` records; the store never imports the
library), and the processor, above both, hands each finished transcript over. What ties them:

* a finished job's transcript is kept with the files it wrote (:func:`keep_job_transcript`);
* a job finished before the library existed gets its transcript from its JSON output, the first time it is
  opened (:func:`entry_for_job`) or all at once (:func:`backfill`);
* removing a job keeps or deletes its transcript, as the user chose (:func:`remove_job`);
* an entry whose job is gone (removed by an older WhisperDesk, or a queue database started anew) is kept but
  no longer claims the job id (:func:`reconcile`), so a new job with that id never shows a stranger's text.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from whisperdesk.core.jobstore import DONE, Job, JobStore
from whisperdesk.core.library.store import DEFAULT_LINE_LENGTH, LibraryEntry, TranscriptLibrary
from whisperdesk.core.outputs import FORMAT_EXTENSIONS, transcript_from_json
from whisperdesk.core.settings import OutputOptions
from whisperdesk.core.transcript import Transcript

log = logging.getLogger(__name__)

BACKFILL_KEY = "backfilled_at"


def keep_job_transcript(
    library: TranscriptLibrary,
    job: Job,
    transcript: Transcript,
    written: dict[str, Path],
    output: OutputOptions,
) -> LibraryEntry:
    """Keep a finished job's transcript (its earlier record, if it ran before, is replaced)."""
    return library.put(
        transcript,
        job_id=job.id,
        job_created_at=job.created_at,
        outputs=written,
        max_line_length=output.max_line_length,
    )


def entry_for_job(library: TranscriptLibrary, job: Job) -> LibraryEntry | None:
    """The job's transcript of record; for a done job that has none yet, imported from its JSON output.

    None when there is nothing to show: the job is not done, or it wrote no JSON, or the file is gone or
    unreadable (the log says which).
    """
    entry = library.for_job(job.id)
    if entry is not None:
        created = library.job_created_at(job.id)
        if created is None or abs(created - job.created_at) < 1e-6:
            return entry
        library.detach(job.id)  # the queue database was started anew and the id reused: not this job's
    if job.state != DONE:
        return None
    return import_job(library, job)


def import_job(library: TranscriptLibrary, job: Job) -> LibraryEntry | None:
    """Read a done job's transcript from the JSON file it wrote and keep it; None if there is none."""
    formats = _formats_by_path(job)
    json_path = next((p for p, fmt in formats.items() if fmt == "json"), None)
    if json_path is None:
        return None
    try:
        transcript = transcript_from_json(json.loads(json_path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        log.info("job %d: its JSON transcript %s is gone; nothing to import", job.id, json_path)
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning(
            "job %d: its JSON transcript %s cannot be read (%s); not imported", job.id, json_path, exc
        )
        return None
    if not transcript.source:
        transcript.source = str(job.source)
    return library.put(
        transcript,
        job_id=job.id,
        job_created_at=job.created_at,
        outputs={fmt: path for path, fmt in formats.items() if path.exists()},
        max_line_length=_line_length(job),
        imported=True,
        created_at=job.finished_at or job.created_at,
    )


def backfill(library: TranscriptLibrary, store: JobStore, *, force: bool = False) -> int:
    """Bring the library in line with the queue at startup: entries of jobs that are gone let go of their
    ids (every time: cheap), and every done job's JSON transcript the library lacks is imported (once;
    ``force``: again). Returns how many were imported."""
    reconcile(library, store)
    if library.get_meta(BACKFILL_KEY) is not None and not force:
        return 0
    have = library.job_ids()
    imported = 0
    for job in store.list([DONE], include_archived=True):
        if job.id not in have and import_job(library, job) is not None:
            imported += 1
    library.set_meta(BACKFILL_KEY, str(library.clock.time()))
    if imported:
        log.info("transcript library: imported %d transcripts of earlier jobs", imported)
    return imported


def reconcile(library: TranscriptLibrary, store: JobStore) -> int:
    """Entries whose job is no longer in the queue (or is another job now) let go of the job id; their
    transcripts are kept and stay searchable. Returns how many were let go."""
    let_go = 0
    for job_id in sorted(library.job_ids()):
        job = store.get(job_id)
        created = library.job_created_at(job_id)
        if job is None or (created is not None and abs(created - job.created_at) >= 1e-6):
            library.detach(job_id)
            let_go += 1
    return let_go


def remove_job(store: JobStore, library: TranscriptLibrary, job_id: int, *, keep_transcript: bool) -> bool:
    """Remove a job from the queue and keep its transcript in the library (searchable, no longer tied to a
    job) or delete it. Raises what :meth:`JobStore.remove` raises (a running job) before touching either."""
    removed = store.remove(job_id)
    entry = library.for_job(job_id)
    if entry is not None:
        if keep_transcript:
            library.detach(job_id)
        else:
            library.delete(entry.id)
    return removed


def _formats_by_path(job: Job) -> dict[Path, str]:
    by_suffix = {ext: fmt for fmt, ext in FORMAT_EXTENSIONS.items()}
    out: dict[Path, str] = {}
    for path in job.outputs:
        fmt = by_suffix.get(path.suffix.lower())
        if fmt is not None:
            out[path] = fmt
    return out


def _line_length(job: Job) -> int:
    output = (job.settings or {}).get("output")
    value = output.get("max_line_length") if isinstance(output, dict) else None
    return value if isinstance(value, int) and 10 <= value <= 200 else DEFAULT_LINE_LENGTH
