"""Checkpoints of a job's finished windows in the job store: an interrupted job resumes where it stopped.

After Pause now, Quit, a crash, ``kill -9`` or a power cut the job is queued again (released, or recovered
at the next start) and its next run decodes only the windows not kept yet. A checkpoint is valid only for
the same recording content, decoding options and model (:func:`checkpoint_key`); the store drops them when
the job finishes (done, failed, canceled, removed) and when the recording changes. Only the batched path
(batch size above 1, the app's default) checkpoints: the sequential path has no windows of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging

from whisperdesk.core.batching.checkpoint import WindowResult
from whisperdesk.core.jobstore import Job, JobStore
from whisperdesk.core.settings import DecodeOptions

log = logging.getLogger(__name__)


def checkpoint_key(job: Job, options: DecodeOptions, model: str) -> str:
    """What a window's text depends on: the recording's content, the decoding options and the model."""
    identity = {"content": job.fingerprint, "options": dataclasses.asdict(options), "model": model}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]


class JobCheckpoints:
    """One job's checkpoints under one key; saving never fails the job (a lost checkpoint costs a window)."""

    def __init__(self, store: JobStore, job: Job, key: str) -> None:
        self._store = store
        self._job_id = job.id
        self._key = key

    def load(self) -> dict[int, WindowResult]:
        try:
            rows = self._store.checkpoints(self._job_id, self._key)
        except Exception:
            log.exception("job %d: could not read its checkpoints; starting from the beginning", self._job_id)
            return {}
        kept: dict[int, WindowResult] = {}
        for index, data in rows.items():
            try:
                kept[index] = WindowResult.from_dict(data)
            except (KeyError, TypeError, ValueError):
                log.warning(
                    "job %d: checkpoint of window %d is unreadable; decoding it again", self._job_id, index
                )
        if kept:
            log.info("job %d: resuming after %d finished window(s)", self._job_id, len(kept))
        return kept

    def save(self, result: WindowResult) -> None:
        try:
            self._store.save_checkpoint(self._job_id, result.index, self._key, result.to_dict())
        except Exception:
            log.exception("job %d: could not keep window %d", self._job_id, result.index)
