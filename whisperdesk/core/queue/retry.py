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

from whisperdesk.core.jobstore import Job
from whisperdesk.core.processor import job_settings
from whisperdesk.core.settings import AFTER_PROCESSING, Settings


def retry_settings(
    job: Job, settings: Settings, *, overwrite: bool = False, output_dir: str | Path | None = None
) -> dict[str, Any]:
    """``job``'s settings dict for a retry under the current ``settings``."""
    old = job.settings or {}
    after = old.get("after_processing", "leave")
    folder = output_dir if output_dir is not None else _watched_output_dir(job, settings)
    record = job_settings(
        settings, output_dir=folder, after_processing=after if after in AFTER_PROCESSING else "leave"
    )
    if overwrite:
        record["overwrite"] = True
    return record


def _watched_output_dir(job: Job, settings: Settings) -> str | None:
    if not job.watch_folder:
        return None
    for folder in settings.watched:
        if _same(folder.path, job.watch_folder):
            return folder.output_dir
    return None


def _same(a: str, b: str) -> bool:
    def norm(p: str) -> str:
        return os.path.normcase(os.path.realpath(os.path.expanduser(p)))

    return norm(a) == norm(b)
