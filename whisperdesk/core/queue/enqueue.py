"""Queue one file: the one rule the window, the watched folders and ``whisperdesk watch`` all follow.

What counts as a duplicate is the store's (:meth:`JobStore.add`): the same file with the same content is
known once; a file with the same content as another job gets its own job, which copies that job's
transcripts instead of transcribing again. This module turns the store's answer, or its refusal, into one
:class:`Enqueued` the front ends only display — including the one retry policy for watched files that
cannot be read yet: the watcher forgets them, so their next event or the next rescan tries again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisperdesk.core.errors import AudioError, FileDisappearedError, WhisperDeskError
from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, Job, JobStore, Origin
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.queue.reset import already_transcribed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Enqueued:
    """What happened to one file handed to the queue."""

    path: Path
    job: Job | None  # the new job, or the known one that made it a duplicate; None when nothing was stored
    created: bool
    reason: str  # plain words: why it was (not) queued
    problem: bool = False  # the user should hear of it: the file could not be queued, or failed before
    retry_later: bool = False  # unreadable now (still being copied, locked): try again at the next scan
    already_done: bool = False  # the user added a file whose transcript exists: offer "Transcribe again"
    old_news: bool = False  # a problem already told before (a watched file that failed earlier)


def enqueue(
    store: JobStore,
    path: Path | str,
    settings: Mapping[str, Any],
    *,
    origin: Origin = "dropped",
    watch_folder: str | None = None,
    ledger: OutputLedger | None = None,
    precheck: Callable[[Job], Job] | None = None,
) -> Enqueued:
    """Queue ``path`` with its job ``settings``; never raises for a bad file or a busy database.

    With the outputs ``ledger``, a watched recording that already has transcripts but no job (the job list
    was reset) is not queued again (:mod:`whisperdesk.core.queue.reset`).

    ``precheck`` (the processor's :meth:`~whisperdesk.core.processor.JobProcessor.precheck`) runs on a new
    job at once: one that cannot be read or written fails now and is told as a problem, not at its turn.
    """
    path = Path(path)
    if origin == "watched" and ledger is not None:
        try:
            known = already_transcribed(store, ledger, path)
        except (OSError, sqlite3.Error):
            known = []  # the store's add below reports a database that cannot be read
        if known:
            names = ", ".join(p.name for p in known)
            log.info("not queued: %s: already transcribed (%s) before the job list was reset", path, names)
            return Enqueued(path, None, False, f"already transcribed ({names}); not queued again")
    try:
        result = store.add(path, settings, origin=origin, watch_folder=watch_folder)
    except FileDisappearedError as exc:
        # A file the user named is worth a word; one that left a watched folder (a temporary file) is not.
        log.info("%s disappeared before it could be queued", path)
        return Enqueued(path, None, False, exc.reason, problem=origin != "watched")
    except AudioError as exc:
        return Enqueued(path, None, False, exc.reason, problem=True, retry_later=True)
    except (WhisperDeskError, sqlite3.Error) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        return Enqueued(path, None, False, f"could not be queued: {reason}", problem=True)
    except Exception as exc:  # a bug must not lose the rest of a batch of files
        log.exception("could not queue %s", path)
        return Enqueued(path, None, False, f"could not be queued ({type(exc).__name__}); see the log", True)
    job = result.job
    if result.created:
        log.info("queued job %d: %s (%s)", job.id, job.source, result.reason)
        if precheck is not None:
            checked = precheck(job)
            if checked.state == FAILED:
                return Enqueued(path, checked, True, checked.error or "cannot be transcribed", problem=True)
        return Enqueued(path, job, True, result.reason)
    if job.state == CANCELED and origin != "watched" and _same_path(job.source, path):
        # The user canceled it once and now adds it again by hand: that is asking for it (adding it did
        # nothing at all, no row and no word, before). A watched folder's rescan never undoes a cancel.
        try:
            again = store.retry(job.id, settings=settings)
        except (WhisperDeskError, sqlite3.Error) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            return Enqueued(path, job, False, f"could not be queued again: {reason}", problem=True)
        log.info("queued again: job %d (it was canceled): %s", again.id, again.source)
        return Enqueued(path, again, True, f"queued again (job {job.id} was canceled)")
    if job.state == FAILED and _same_path(job.source, path):
        # Still not transcribed: say so again rather than skip it silently. Met again by a watched folder's
        # rescan (every start of the window), it is old news the window does not announce again (17.7);
        # ``watch`` still reports it, since its exit status tells a script what is not transcribed.
        reason = f"{job.error} (it failed earlier as job {job.id})"
        return Enqueued(path, job, False, reason, problem=True, old_news=origin == "watched")
    log.info("not queued: %s: %s", path, result.reason)
    done = job.state == DONE and origin != "watched"  # a rescan finding done files is no news
    return Enqueued(path, job, False, result.reason, already_done=done)


def _same_path(a: Path, b: Path) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))
