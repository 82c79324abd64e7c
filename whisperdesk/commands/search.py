"""`whisperdesk search`: find words in every kept transcript without opening the window.

Reads the same library the window searches (``library.sqlite3`` in the data folder). Before the first search
the transcripts of jobs finished before the library existed are imported from their JSON outputs, once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys

from whisperdesk.core.jobstore import JobStore, JobStoreError
from whisperdesk.core.library.jobs import backfill
from whisperdesk.core.library.store import (
    SEARCH_ORDERS,
    LibraryError,
    SearchHit,
    SearchQueryError,
    TranscriptLibrary,
)
from whisperdesk.core.outputs import clock_time
from whisperdesk.core.paths import AppPaths

log = logging.getLogger(__name__)

EXIT_FOUND, EXIT_NONE, EXIT_USAGE = 0, 1, 2


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of results") from None
    if value < 1:
        raise argparse.ArgumentTypeError("--limit must be at least 1")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="find words in every kept transcript",
        description=(
            "Search every transcript WhisperDesk keeps. Words must all appear in one segment; case and "
            'accents are ignored ("muller" finds "Müller"). Put a phrase in quotes (\'"public holiday"\') '
            "and end a word with * to find every word that starts so (budg*)."
        ),
        epilog="exit status: 0 matches found, 1 no match (or the library cannot be read), 2 invalid usage.",
    )
    parser.add_argument("query", nargs="+", metavar="QUERY", help='words, "a phrase", or a prefix*')
    parser.add_argument("--speaker", metavar="NAME", help="only what this speaker said (e.g. 'Speaker 2')")
    parser.add_argument(
        "--order",
        choices=SEARCH_ORDERS,
        default="newest",
        help="newest transcript first (default) or best match first",
    )
    parser.add_argument("--limit", type=_limit, default=100, metavar="N", help="at most N results (100)")
    parser.add_argument(
        "--json", action="store_true", dest="as_json", help="one JSON object per result (for scripts)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = AppPaths.default().ensure()
    query = " ".join(args.query)
    try:
        library = TranscriptLibrary(paths.library_db)
    except (LibraryError, OSError, sqlite3.Error) as exc:
        print(f"whisperdesk search: error: {exc}", file=sys.stderr)
        return EXIT_NONE
    try:
        _import_earlier_jobs(library, paths)
        try:
            hits = library.search(query, speaker=args.speaker, order=args.order, limit=args.limit)
        except SearchQueryError as exc:
            print(f"whisperdesk search: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    finally:
        library.close()
    for hit in hits:
        print(json.dumps(_as_dict(hit), ensure_ascii=False) if args.as_json else _line(hit))
    if not hits:
        who = f" said by {args.speaker}" if args.speaker else ""
        print(f"no transcript has {query!r}{who}", file=sys.stderr)
        return EXIT_NONE
    return EXIT_FOUND


def _import_earlier_jobs(library: TranscriptLibrary, paths: AppPaths) -> None:
    """Done jobs from before the library: imported once from their JSON files (a queue that cannot be
    opened only means nothing is imported this time)."""
    if not paths.jobs_db.exists():
        return
    try:
        store = JobStore(paths.jobs_db)
    except (JobStoreError, sqlite3.Error) as exc:
        log.warning("the job queue cannot be read (%s); earlier jobs' transcripts are not imported", exc)
        return
    try:
        backfill(library, store)
    finally:
        store.close()


def _line(hit: SearchHit) -> str:
    """``file  hh:mm:ss  speaker  text``: two spaces between columns, ``-`` when no speaker is known."""
    return f"{hit.source.name}  {clock_time(hit.start)}  {hit.speaker or '-'}  {hit.text}"


def _as_dict(hit: SearchHit) -> dict[str, object]:
    return {
        "source": str(hit.source),
        "job_id": hit.job_id,
        "entry_id": hit.entry_id,
        "segment": hit.segment_index,
        "start": round(hit.start, 3),
        "end": round(hit.end, 3),
        "speaker": hit.speaker,
        "text": hit.text,
        "highlights": [list(span) for span in hit.highlights],
        "created_at": hit.created_at,
    }
