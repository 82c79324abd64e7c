"""`whisperdesk watch FOLDER...`: transcribe every recording that arrives in the folders, without a window.

Runs the same parts as the app (folder watcher, persistent job queue, one shared engine, job processor)
with no Qt. Jobs live in the app's job database, so a run that is stopped or killed loses nothing: the next
run (or the window) picks up where it left off, and nothing is transcribed twice.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from whisperdesk.commands.notices import warn_if_reset
from whisperdesk.commands.options import (
    InvalidSetting,
    add_decode_options,
    add_model_options,
    add_output_options,
    add_speaker_options,
    settings_from_args,
)
from whisperdesk.core.errors import SUPERSEDED, ConfigError, ModelError
from whisperdesk.core.instance import window_running
from whisperdesk.core.jobstore import CANCELED, FAILED, QUEUED, Job, JobStore, JobStoreError
from whisperdesk.core.logging_setup import setup_logging, teardown_handlers
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.processor import DONE_SUBFOLDER, JobProcessor, job_settings
from whisperdesk.core.queue.workers import workers_for
from whisperdesk.core.quit import QUIT_GRACE_S, end_process
from whisperdesk.core.settings import AFTER_PROCESSING, Settings, load_settings

if TYPE_CHECKING:
    from whisperdesk.core.queue.enqueue import Enqueued
    from whisperdesk.core.queue.loop import QueueLoop
    from whisperdesk.core.watcher import FolderWatcher

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EPILOG = """\
exit status: 0 when every job succeeded (or the run was stopped with SIGTERM), 1 when a job failed or the
model could not be loaded, 2 for invalid options or when the window runs on the same data folder, 130
after Ctrl-C. Stopping (Ctrl-C, SIGTERM) puts the job
in progress back in the queue; `whisperdesk jobs` shows the queue, `whisperdesk jobs retry` re-queues
failed jobs.
"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 600:
        raise argparse.ArgumentTypeError(f"{text!r}: the settle time must be between 0 and 600 seconds")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="transcribe recordings as they arrive in folders",
        description=(
            "Watch folders and transcribe each audio or video file once it has finished arriving\n"
            "(size and time unchanged for the settle time). Jobs are kept in the app's job queue,\n"
            "so nothing is lost when the run stops and nothing is transcribed twice."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folders", nargs="+", metavar="FOLDER", help="folder(s) to watch")
    parser.add_argument("--recursive", action="store_true", help="watch subfolders too")
    parser.add_argument(
        "--settle",
        type=_seconds,
        metavar="SECONDS",
        help="how long a file must stay unchanged before it is transcribed (default: 2)",
    )
    parser.add_argument(
        "--polling",
        action="store_true",
        help="poll the folders instead of using file events (network shares)",
    )
    parser.add_argument(
        "--exit-when-idle",
        action="store_true",
        dest="exit_when_idle",
        help="exit once every file is done and nothing new arrived for the settle time",
    )
    parser.add_argument(
        "--after",
        choices=AFTER_PROCESSING,
        default="leave",
        help=f"what to do with a source once its transcripts are written: leave it (default), move it to a "
        f"'{DONE_SUBFOLDER}' subfolder of the watched folder, or delete it",
    )
    add_model_options(parser)
    add_decode_options(parser)
    add_output_options(parser)
    add_speaker_options(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens to stderr")
    parser.set_defaults(func=run)


def error_line(file: object, reason: object) -> str:
    return f"whisperdesk: error: {file}: {reason}"


class _Report:
    """What the run tells the user: one stdout line per finished job, one stderr line per failure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.done = 0
        self.failed = 0

    def finished(self, job: Job) -> None:
        with self._lock:
            if job.state == FAILED:
                self.failed += 1
                print(error_line(job.source, job.error), file=sys.stderr, flush=True)
            elif job.state == CANCELED and job.error_kind == SUPERSEDED:
                print(f"{job.source}: {job.error}", flush=True)  # not a failure: the newer one is queued
            elif job.state == CANCELED:
                log.info("job %d canceled: %s", job.id, job.source)
            else:
                self.done += 1
                outputs = ", ".join(str(p) for p in job.outputs)
                print(f"{job.source} -> {outputs}", flush=True)

    def failure(self, file: object, reason: object) -> None:
        with self._lock:
            self.failed += 1
            print(error_line(file, reason), file=sys.stderr, flush=True)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, received: list[int]) -> Iterator[None]:
    """SIGINT and SIGTERM ask for a clean stop (only the main thread may install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    wanted = [signal.SIGINT, signal.SIGTERM]
    previous: dict[int, Any] = {}
    for sig in wanted:
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _folders(names: list[str]) -> list[Path] | str:
    """Absolute folders, or the error line for the first one that is not a folder."""
    folders: list[Path] = []
    for name in names:
        folder = Path(os.path.abspath(Path(name).expanduser()))
        if not folder.exists():
            return error_line(name, "folder not found; create it or check the path")
        if not folder.is_dir():
            return error_line(name, "is a file, not a folder; watch the folder that holds it")
        folders.append(folder)
    return folders


class _BenignStopNoise(logging.Filter):
    """watchdog 7 logs an *error* when its inotify thread is stopped between two reads; nothing is lost
    (we stop it on purpose), so the line is not shown to the user."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in record.getMessage()


def run(args: argparse.Namespace) -> int:
    paths = AppPaths.default().ensure()
    setup_logging(
        paths.log_dir, stderr=sys.stderr, stderr_level=logging.INFO if args.verbose else logging.WARNING
    )
    noise = _BenignStopNoise()
    inotify_log = logging.getLogger("watchdog.observers.inotify")
    inotify_log.addFilter(noise)
    try:
        return _run(args, paths)
    finally:
        inotify_log.removeFilter(noise)
        teardown_handlers()


def _run(args: argparse.Namespace, paths: AppPaths) -> int:
    if window_running(paths.data_dir):
        # Two queue runners on one data folder would be safe (claims are atomic) but confusing: two
        # processes watching, two sets of notifications, settings from two places.
        print(
            f"whisperdesk: error: the WhisperDesk window is running on this data folder ({paths.data_dir}) "
            "and already runs the queue; add the folders under Watched folders in the window, or quit "
            "the window and run this again",
            file=sys.stderr,
        )
        return EXIT_USAGE
    saved, _problems = load_settings(paths.settings_file)
    try:
        settings = settings_from_args(saved, args)
    except InvalidSetting as exc:
        print(f"whisperdesk: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    folders = _folders(args.folders)
    if isinstance(folders, str):
        print(folders, file=sys.stderr)
        return EXIT_USAGE
    output_dir: Path | None = None
    if args.output_dir:
        output_dir = Path(os.path.abspath(Path(args.output_dir).expanduser()))
    unwritable = _unwritable_output_folder(output_dir, folders)
    if unwritable:
        print(unwritable, file=sys.stderr)
        return EXIT_FAILED
    settle = args.settle if args.settle is not None else settings.ui.settle_seconds

    from whisperdesk.core.watcher import FolderWatcher, WatchConfigError, WatchSpec

    specs = [
        WatchSpec(
            folder,
            recursive=args.recursive,
            polling=args.polling,
            exclude=(folder / DONE_SUBFOLDER,) if args.after == "move" else (),
        )
        for folder in folders
    ]
    try:
        watcher = FolderWatcher(
            specs,
            settle_seconds=settle,
            rescan_seconds=settings.ui.rescan_minutes * 60,
            output_dirs=[output_dir] if output_dir else (),
        )
    except WatchConfigError as exc:
        print(f"whisperdesk: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        store = JobStore(paths.jobs_db)
    except JobStoreError as exc:
        print(error_line(paths.jobs_db, exc), file=sys.stderr)
        return EXIT_FAILED
    try:
        return _serve(args, paths, settings, store, watcher, output_dir, settle)
    finally:
        store.close()


def _unwritable_output_folder(output_dir: Path | None, folders: list[Path]) -> str:
    """Answers before work (issue 17.6): the folder transcripts go to — the output folder, else each
    watched folder — is made and written to before the model loads; an error line, or "" when all is well.
    """
    from whisperdesk.core.errors import OutputError
    from whisperdesk.core.outputs import check_output_folder

    for folder in [output_dir] if output_dir is not None else folders:
        try:
            check_output_folder(folder)
        except OutputError as exc:
            return f"whisperdesk: error: {exc}"
    return ""


def _serve(
    args: argparse.Namespace,
    paths: AppPaths,
    settings: Settings,
    store: JobStore,
    watcher: FolderWatcher,
    output_dir: Path | None,
    settle: float,
) -> int:
    from whisperdesk.core.engine import Engine
    from whisperdesk.core.outputs import OutputLedger
    from whisperdesk.core.queue.enqueue import enqueue
    from whisperdesk.core.queue.loop import QueueLoop

    ledger = OutputLedger.default(paths)
    warn_if_reset(store)
    report = _Report()
    recovery = store.recover_after_crash()
    for job in recovery.failed:
        report.failure(job.source, job.error)
    if recovery.requeued:
        log.info("%d job(s) interrupted by a crash are queued again", len(recovery.requeued))

    engine = Engine(settings.model, paths.models_dir)
    processor = JobProcessor(store, engine, ledger, lambda: settings)
    for job in store.list([QUEUED]):  # answers before work: what waits in the queue, before the model
        checked = processor.precheck(job)
        if checked.state == FAILED:
            report.finished(checked)
    try:
        engine.load()
    except (ModelError, ConfigError) as exc:
        print(f"whisperdesk: error: model {settings.model.model}: {exc}", file=sys.stderr)
        return EXIT_FAILED

    speakers = str(args.speakers) if args.speakers is not None else None
    record = job_settings(settings, output_dir=output_dir, after_processing=args.after, speakers=speakers)
    loop = QueueLoop(
        store, processor, workers=workers_for(settings.model.batch_size), on_finished=report.finished
    )
    stop = threading.Event()
    received: list[int] = []
    interval = min(0.5, max(0.05, settle / 4))
    with _stop_on_signals(stop, received):
        loop.start()
        watcher.start()
        try:
            while not stop.is_set():
                for candidate in watcher.tick():
                    outcome = enqueue(
                        store,
                        candidate.path,
                        record,
                        origin="watched",
                        watch_folder=str(candidate.folder),
                        ledger=ledger,
                        precheck=processor.precheck,
                    )
                    _queue(watcher, outcome, report)
                if loop.stopped:
                    break
                if args.exit_when_idle and _idle(store, watcher, loop, settle):
                    break
                stop.wait(interval)
        except KeyboardInterrupt:  # no handler outside the main thread
            received.append(signal.SIGINT)
        finally:
            watcher.stop()
            # A signal quits now (issue 17.5): a window still in generate is not waited for (core/quit.py).
            stopped = loop.stop(QUIT_GRACE_S if received else None)
            if received and not engine.close(QUIT_GRACE_S):  # a batch of windows still in generate
                stopped = False
    code = _outcome(settings, paths, store, loop, report, received)
    if not stopped:
        end_process(code)
    return code


def _outcome(
    settings: Settings,
    paths: AppPaths,
    store: JobStore,
    loop: QueueLoop,
    report: _Report,
    received: list[int],
) -> int:
    """Say how the run ended; the exit status."""
    released = store.list([QUEUED])
    if received:
        log.info("stopped by signal %d; %d job(s) stay queued", received[0], len(released))
    if loop.error is not None:
        if isinstance(loop.error, ModelError | ConfigError):
            print(f"whisperdesk: error: model {settings.model.model}: {loop.error}", file=sys.stderr)
        else:
            print(error_line(paths.jobs_db, f"the job queue stopped: {loop.error}"), file=sys.stderr)
        return EXIT_FAILED
    log.info("%d job(s) done, %d failed", report.done, report.failed)
    if received and received[0] == signal.SIGINT:
        return EXIT_INTERRUPTED
    if received:
        return EXIT_OK
    return EXIT_FAILED if report.failed else EXIT_OK


def _queue(watcher: FolderWatcher, outcome: Enqueued, report: _Report) -> None:
    """Tell the user about a settled file the queue could not take (the one rule is :func:`enqueue`'s)."""
    if outcome.retry_later:
        watcher.forget(outcome.path)
    if not outcome.problem:
        return
    job = outcome.job
    if job is not None and job.state == FAILED and outcome.created:
        report.finished(job)  # failed as it was queued, before its turn (answers before work)
    elif job is not None and job.state == FAILED:
        report.failure(
            outcome.path,
            f"{job.error} (job {job.id} failed earlier; `whisperdesk jobs retry {job.id}` runs it again)",
        )
    else:
        report.failure(outcome.path, outcome.reason)


def _idle(store: JobStore, watcher: FolderWatcher, loop: QueueLoop, settle: float) -> bool:
    """Nothing waiting to settle, nothing arrived for the settle time, nothing queued, nothing running.

    The queue is read before the workers: a job claimed in between is then seen as running.
    """
    if watcher.busy or watcher.quiet_for() < settle:
        return False
    if store.counts()[QUEUED]:
        return False
    return not loop.busy


__all__ = ["add_parser", "run"]
