"""``whisperdesk worker --queue postgresql://…``: one process per GPU running a team's shared queue.

It loads the model once, then claims jobs under a lease, renews the lease while it works and reports each
result (core.queue.team_worker). A worker killed, frozen or cut off loses its lease and its job goes back
to the queue for the next worker. SIGTERM or Ctrl-C hands the job in hand back, uncounted.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from whisperdesk.commands.options import (
    InvalidSetting,
    add_decode_options,
    add_model_options,
    settings_from_args,
)
from whisperdesk.core.errors import ConfigError, ModelError
from whisperdesk.core.jobstore import JobStore, JobStoreError
from whisperdesk.core.logging_setup import setup_logging, teardown_handlers
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import load_settings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
RECONNECT_WAIT_S = 2.0  # a worker outlives a database restart: it waits this long between attempts


def _positive_seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run jobs from a team's shared queue (PostgreSQL)",
        description=(
            "Take jobs from a team's shared queue on PostgreSQL and transcribe them with one model kept\n"
            "loaded. Run one worker per GPU (choose it with CUDA_VISIBLE_DEVICES). A worker that stops\n"
            "answering loses its job to the next worker after the lease time."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--queue", required=True, metavar="URL", help="the queue database, e.g. postgresql://host/whisperdesk"
    )
    parser.add_argument(
        "--schema", default=None, help="the queue's schema in that database (default whisperdesk)"
    )
    parser.add_argument("--name", default=None, help="this worker's name in the queue (default host:pid)")
    parser.add_argument(
        "--lease",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="how long a job stays with a worker that stops answering (default 30)",
    )
    parser.add_argument(
        "--poll", type=_positive_seconds, default=1.0, metavar="SECONDS", help="wait between empty claims"
    )
    parser.add_argument(
        "--exit-when-idle", action="store_true", dest="exit_when_idle", help="exit once nothing is queued"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each job to stderr")
    add_model_options(parser)
    add_decode_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = AppPaths.default().ensure()
    setup_logging(
        paths.log_dir, stderr=sys.stderr, stderr_level=logging.INFO if args.verbose else logging.WARNING
    )
    try:
        return _run(args, paths)
    finally:
        teardown_handlers()


def _run(args: argparse.Namespace, paths: AppPaths) -> int:
    saved, _problems = load_settings(paths.settings_file)
    try:
        settings = settings_from_args(saved, args)
    except InvalidSetting as exc:
        print(f"whisperdesk: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from whisperdesk.core.queue.postgres import DEFAULT_SCHEMA, PostgresJobQueue
    except ImportError:
        print(
            "whisperdesk: error: the team queue needs psycopg; install it with: pip install 'whisperdesk[team]'",
            file=sys.stderr,
        )
        return EXIT_FAILED
    from whisperdesk.core.engine import Engine
    from whisperdesk.core.outputs import OutputLedger
    from whisperdesk.core.processor import JobProcessor
    from whisperdesk.core.queue.team_worker import DEFAULT_LEASE_S, TeamWorker

    try:
        queue = PostgresJobQueue(args.queue, schema=args.schema or DEFAULT_SCHEMA)
    except JobStoreError as exc:
        print(f"whisperdesk: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    engine = Engine(settings.model, paths.models_dir)
    try:
        engine.load()
    except (ModelError, ConfigError) as exc:
        print(f"whisperdesk: error: model {settings.model.model}: {exc}", file=sys.stderr)
        queue.close()
        return EXIT_FAILED
    name = args.name or f"{socket.gethostname()}:{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="whisperdesk-worker-") as scratch:
        staging = JobStore(Path(scratch) / "staging.sqlite3")
        processor = JobProcessor(
            staging, engine, OutputLedger(Path(scratch) / "ledger.json"), lambda: settings
        )
        worker = TeamWorker(queue, processor, staging, name=name, lease_s=args.lease or DEFAULT_LEASE_S)
        stop = threading.Event()
        received: list[int] = []

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            received.append(signum)
            stop.set()
            worker.shutdown.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, on_signal)
        log.info("worker %s: taking jobs from the team queue", name)
        try:
            while not stop.is_set():
                try:
                    result = worker.run_one()
                except JobStoreError as exc:  # the database restarting or out of reach: wait, then again
                    log.warning("%s; trying again in %.0f s", exc, RECONNECT_WAIT_S)
                    stop.wait(RECONNECT_WAIT_S)
                    continue
                if result is None:
                    if args.exit_when_idle:
                        break
                    stop.wait(args.poll)
                elif result.job is not None:
                    log.info("job %d: %s", result.job.id, result.job.state)
        except (ModelError, ConfigError) as exc:
            print(f"whisperdesk: error: model {settings.model.model}: {exc}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            staging.close()
            queue.close()
            engine.close(5.0)
    return EXIT_INTERRUPTED if received and received[0] == signal.SIGINT else EXIT_OK
