"""`whisperdesk jobs`: look at the persistent job queue and act on it without opening the window.

Works on the same database as the window and ``whisperdesk watch``, also while they run: queued jobs are
picked up by whichever of them is running.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from typing import Any

from whisperdesk.commands.notices import warn_if_reset
from whisperdesk.core.jobstore import (
    CANCELED,
    DONE,
    FAILED,
    RUNNING,
    STATES,
    Job,
    JobNotFoundError,
    JobStateError,
    JobStore,
    JobStoreError,
)
from whisperdesk.core.library import LibraryError, TranscriptLibrary, remove_job
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.queue.retry import retry_settings
from whisperdesk.core.settings import load_settings

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _job_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a job id (a number shown by `whisperdesk jobs`)"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a job id (ids start at 1)")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "jobs",
        help="list the job queue; retry, remove or clear jobs",
        description="Show the job queue shared by the window and `whisperdesk watch`, and act on it.",
        epilog="exit status: 0 ok, 1 unknown job id or a job in the wrong state, 2 invalid usage.",
    )
    parser.set_defaults(func=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    listing = actions.add_parser(
        "list", help="list jobs (the default)", description="List jobs, oldest first."
    )
    _list_options(listing)
    _list_options(parser)  # `whisperdesk jobs --state failed` works without saying `list`

    retry = actions.add_parser(
        "retry",
        help="queue failed or canceled jobs again",
        description="Queue a failed or canceled job again (at the end of the queue), or every failed job.",
    )
    retry.add_argument("ids", nargs="*", type=_job_id, metavar="ID")
    retry.add_argument("--failed", action="store_true", help="retry every failed job")
    retry.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files in the way of the transcripts (a job that failed because one exists)",
    )
    retry.add_argument(
        "--output-dir", metavar="DIR", help="write the transcripts to DIR instead (with job ids only)"
    )

    remove = actions.add_parser(
        "remove",
        help="forget jobs that are not running",
        description="Forget jobs. A removed job's file counts as new: a watched folder will queue it again.",
    )
    remove.add_argument("ids", nargs="+", type=_job_id, metavar="ID")
    remove.add_argument(
        "--delete-transcript",
        action="store_true",
        help="also delete the transcript from the library (by default it stays searchable)",
    )

    clear = actions.add_parser(
        "clear",
        help="hide finished jobs from the list",
        description=(
            "Archive done and canceled jobs: they leave the list but are remembered, so their files are not "
            "transcribed again."
        ),
    )
    clear.add_argument("--all", action="store_true", help="archive failed jobs too")


def _list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        action="append",
        choices=STATES,
        dest="states",
        help="only jobs in this state (repeat for several)",
    )
    parser.add_argument("--all", action="store_true", help="include archived (cleared) jobs")
    parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object per job")


def _fail(message: str) -> int:
    print(f"whisperdesk: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def run(args: argparse.Namespace) -> int:
    action = args.action or "list"
    if action == "retry" and bool(args.ids) == bool(args.failed):
        print(
            "whisperdesk jobs retry: error: give job ids or --failed (not both); see `whisperdesk jobs`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if action == "retry" and args.failed and (args.output_dir or args.overwrite):
        print(
            "whisperdesk jobs retry: error: --overwrite and --output-dir need job ids, not --failed",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        store = JobStore.default()
    except JobStoreError as exc:
        return _fail(str(exc))
    warn_if_reset(store)
    try:
        if action == "retry":
            return _retry(store, args)
        if action == "remove":
            return _remove(store, args.ids, keep_transcript=not args.delete_transcript)
        if action == "clear":
            return _clear(store, args.all)
        return _list(store, args)
    finally:
        store.close()


# --- list ---------------------------------------------------------------------------------------------
def _percent(job: Job) -> str:
    if job.state == DONE:
        return "100%"
    if job.state == RUNNING or job.progress > 0:
        return f"{int(job.progress * 100)}%"
    return "-"


def _as_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state,
        "progress": round(job.progress, 4),
        "source": str(job.source),
        "error": job.error,
        "error_kind": job.error_kind,
        "copy_of": job.copy_of,
        "attempts": job.attempts,
        "outputs": [str(p) for p in job.outputs],
        "duration": job.duration,
        "processing_time": job.processing_time,
        "language": job.language,
        "origin": job.origin,
        "watch_folder": job.watch_folder,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "archived": job.archived,
    }


def _list(store: JobStore, args: argparse.Namespace) -> int:
    jobs = store.list(args.states, include_archived=args.all)
    if args.as_json:
        for job in jobs:
            print(json.dumps(_as_dict(job), ensure_ascii=False))
        return EXIT_OK
    if not jobs:
        print("no jobs" if args.states is None else f"no {' or '.join(args.states)} jobs")
        return EXIT_OK
    width = max(2, *(len(str(j.id)) for j in jobs))
    print(f"{'ID':>{width}}  {'STATE':<8}  {'DONE':>4}  FILE")
    for job in jobs:
        line = f"{job.id:>{width}}  {job.state:<8}  {_percent(job):>4}  {job.source}"
        if job.error:
            line += f"  [error: {job.error}]"
        print(line)
    counts = store.counts(include_archived=args.all)
    print(", ".join(f"{counts[s]} {s}" for s in STATES if counts[s]))
    return EXIT_OK


# --- actions ------------------------------------------------------------------------------------------
def _retry(store: JobStore, args: argparse.Namespace) -> int:
    if args.failed:
        jobs = store.retry_failed()
        for job in jobs:
            print(f"queued again: job {job.id}: {job.source}")
        print(f"{len(jobs)} failed job(s) queued again" if jobs else "no failed jobs")
        return EXIT_OK
    status = EXIT_OK
    settings, _problems = load_settings(AppPaths.default().settings_file)
    output_dir = os.path.abspath(os.path.expanduser(args.output_dir)) if args.output_dir else None
    for job_id in args.ids:
        try:
            old = store.require(job_id)
            options = retry_settings(old, settings, overwrite=args.overwrite, output_dir=output_dir)
            job = store.retry(job_id, settings=options)  # with the current output settings
        except JobNotFoundError as exc:
            status = _fail(str(exc))
            continue
        except JobStateError:
            current = store.require(job_id)
            hint = (
                "; to transcribe it again, remove it and add the file again" if current.state == DONE else ""
            )
            status = _fail(
                f"job {job_id} ({current.source}) is {current.state}; only failed or canceled jobs can be "
                f"retried{hint}"
            )
            continue
        print(f"queued again: job {job.id}: {job.source}")
    return status


def _remove(store: JobStore, ids: list[int], *, keep_transcript: bool) -> int:
    status = EXIT_OK
    try:
        library = TranscriptLibrary.beside(store.path)
    except (LibraryError, OSError, sqlite3.Error) as exc:
        return _fail(f"{exc}; no job was removed")
    for job_id in ids:
        try:
            removed = remove_job(store, library, job_id, keep_transcript=keep_transcript)
        except JobStateError as exc:
            status = _fail(str(exc))
            continue
        if not removed:
            status = _fail(str(JobNotFoundError(job_id)))
            continue
        print(f"removed job {job_id}")
    library.close()
    return status


def _clear(store: JobStore, include_failed: bool) -> int:
    states = (DONE, CANCELED, FAILED) if include_failed else (DONE, CANCELED)
    count = store.archive_finished(states)
    print(f"cleared {count} finished job(s)")
    return EXIT_OK
