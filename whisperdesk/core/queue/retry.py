"""The settings a retried job runs with: the user's current output settings, not those of when it was queued.

A job records its options when it is queued so that it runs as asked even if the settings change while it
waits. A retry is a new request: the user may have just fixed the output folder because the job failed, so
it takes the current settings — the watched folder's own output folder for a job from a watched folder —
plus what the failed job's action asked for ("Overwrite", "Choose another folder").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from whisperdesk.core.errors import DISK_FULL, OUTPUT_EXISTS, OUTPUT_UNWRITABLE
from whisperdesk.core.jobstore import DONE, FAILED, Job
from whisperdesk.core.library.store import TranscriptLibrary
from whisperdesk.core.processor import job_settings
from whisperdesk.core.settings import AFTER_PROCESSING, Settings

OVERWRITE = "overwrite"  # JobRunner.retry_overwrite
CHOOSE_FOLDER = "choose_folder"  # JobRunner.retry_in_folder
_ACTIONS: dict[str, tuple[str, ...]] = {
    OUTPUT_EXISTS: (OVERWRITE, CHOOSE_FOLDER),
    OUTPUT_UNWRITABLE: (CHOOSE_FOLDER,),
    DISK_FULL: (CHOOSE_FOLDER,),
}


def fix_actions(job: Job) -> tuple[str, ...]:
    """What the window offers beside Retry for a failed job, from the kind of error it recorded."""
    if job.state != FAILED or job.error_kind is None:
        return ()
    return _ACTIONS.get(job.error_kind, ())


def retry_discards_edits(job: Job, library: TranscriptLibrary | None) -> bool:
    """True when running ``job`` again would replace a transcript the user corrected: a done job is
    transcribed anew and its files rewritten, so the window asks before it throws the edits away."""
    return library is not None and job.state == DONE and library.is_edited(job.id)


def retry_settings(
    job: Job, settings: Settings, *, overwrite: bool = False, output_dir: str | Path | None = None
) -> dict[str, Any]:
    """``job``'s settings dict for a retry under the current ``settings``."""
    old = job.settings or {}
    after = old.get("after_processing", "leave")
    folder = output_dir if output_dir is not None else _current_output_dir(job, settings)
    record = job_settings(
        settings, output_dir=folder, after_processing=after if after in AFTER_PROCESSING else "leave"
    )
    if overwrite:
        record["overwrite"] = True
    return record


def _current_output_dir(job: Job, settings: Settings) -> str | None:
    """The output folder the settings give this job now (None: the global one, or beside the source).

    A job from a folder the settings do not watch came from ``whisperdesk watch FOLDER --output-dir``: its
    output folder was given on the command line, not in the settings, so it keeps the one it recorded.
    """
    if job.origin != "watched" or not job.watch_folder:
        return None
    for folder in settings.watched:
        if _same(folder.path, job.watch_folder):
            return folder.output_dir
    recorded = (job.settings or {}).get("output")
    value = recorded.get("output_dir") if isinstance(recorded, dict) else None
    return value if isinstance(value, str) else None


def _same(a: str, b: str) -> bool:
    def norm(p: str) -> str:
        return os.path.normcase(os.path.realpath(os.path.expanduser(p)))

    return norm(a) == norm(b)
