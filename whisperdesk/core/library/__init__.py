"""The transcripts of record, their edits and the full-text search over all of them (no Qt: the window, the
CLI and ``whisperdesk watch`` share it).

* :mod:`.store`: :class:`TranscriptLibrary`, the SQLite file beside the queue, and its search index.
* :mod:`.query`: what a typed query means, made safe for FTS5; CJK text; match highlighting.
* :mod:`.edit`: saving a corrected transcript and re-rendering the files its job wrote.
* :mod:`.jobs`: how the library follows the job queue (finished jobs, old jobs' JSON, removal).
"""

from whisperdesk.core.library.edit import SaveReport, rename_speakers, save_edit, write_entry_outputs
from whisperdesk.core.library.jobs import (
    backfill,
    entry_for_job,
    import_job,
    keep_job_transcript,
    reconcile,
    remove_job,
)
from whisperdesk.core.library.store import (
    LibraryEntry,
    LibraryError,
    OutputFile,
    SearchHit,
    SearchQueryError,
    StaleEditError,
    TranscriptLibrary,
)

__all__ = [
    "LibraryEntry",
    "LibraryError",
    "OutputFile",
    "SaveReport",
    "SearchHit",
    "SearchQueryError",
    "StaleEditError",
    "TranscriptLibrary",
    "backfill",
    "entry_for_job",
    "import_job",
    "keep_job_transcript",
    "reconcile",
    "remove_job",
    "rename_speakers",
    "save_edit",
    "write_entry_outputs",
]
