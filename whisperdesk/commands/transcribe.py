"""`whisperdesk transcribe FILE...`: transcribe files with the shared engine and write transcripts."""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from whisperdesk.commands.options import (
    InvalidSetting,
    add_decode_options,
    add_model_options,
    add_output_options,
    add_speaker_options,
    settings_from_args,
)
from whisperdesk.commands.progress import TerminalProgress
from whisperdesk.core.engine import Engine
from whisperdesk.core.errors import Cancelled, ModelError, WhisperDeskError
from whisperdesk.core.library import TranscriptLibrary, keep_unqueued_transcript
from whisperdesk.core.logging_setup import setup_logging
from whisperdesk.core.outputs import OutputLedger, write_outputs
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.precheck import precheck_file
from whisperdesk.core.queue.workers import workers_for
from whisperdesk.core.settings import Settings, load_settings
from whisperdesk.core.speakers.count import SpeakerCount
from whisperdesk.core.speakers.job import NOTE_KEY, transcribe_with_speakers
from whisperdesk.core.speakers.voices import VoiceLibrary
from whisperdesk.core.transcript import Transcript

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "transcribe",
        help="transcribe audio/video files",
        description="Transcribe files with one shared model; every readable file is done even if others fail.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    add_model_options(parser)
    add_decode_options(parser)
    add_output_options(parser)
    add_speaker_options(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing transcripts even if WhisperDesk did not write them",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    parser.set_defaults(func=run)


def error_line(file: object, exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or str(exc)
    return f"whisperdesk: error: {file}: {reason}"


def run(args: argparse.Namespace) -> int:
    paths = AppPaths.default().ensure()
    setup_logging(
        paths.log_dir, stderr=sys.stderr, stderr_level=logging.INFO if args.verbose else logging.WARNING
    )
    saved, _problems = load_settings(paths.settings_file)
    try:
        settings = settings_from_args(saved, args)
    except InvalidSetting as exc:
        print(f"whisperdesk: error: {exc}", file=sys.stderr)
        return 2
    output_dir = Path(settings.output.output_dir).expanduser() if settings.output.output_dir else None
    if output_dir is not None:
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(
                f"whisperdesk: error: {output_dir}: cannot create output folder: {exc.strerror}",
                file=sys.stderr,
            )
            return 1
    engine = Engine(settings.model, paths.models_dir)
    library = _open_library(paths)
    try:
        return transcribe_files(
            engine,
            args.files,
            settings,
            output_dir=output_dir,
            ledger=OutputLedger(paths.data_dir / "outputs-ledger.json"),
            speakers=args.speakers,
            overwrite=args.overwrite,
            library=library,
        )
    finally:
        if library is not None:
            library.close()


def _open_library(paths: AppPaths) -> TranscriptLibrary | None:
    """The transcript library, so ``whisperdesk search`` and the window find these transcripts too; None
    (logged) when it cannot be opened: the transcripts are still written."""
    try:
        return TranscriptLibrary.beside(paths.jobs_db)
    except (WhisperDeskError, OSError, sqlite3.Error) as exc:
        log.warning("the transcript library cannot be opened (%s); transcripts are not kept for search", exc)
        return None


def transcribe_files(
    engine: Engine,
    names: list[str],
    settings: Settings,
    *,
    output_dir: Path | None,
    ledger: OutputLedger,
    speakers: SpeakerCount | None = None,
    overwrite: bool = False,
    library: TranscriptLibrary | None = None,
) -> int:
    """Transcribe ``names`` and write their transcripts; prints each file's outputs or its error. Exit code.

    As many files run at once as the app runs jobs at this batch size, so their windows share batches (the
    window and `watch` do the same); transcripts are written in the order given, so two files with one stem
    always get the same names.
    """
    checked = _answer_first(names, settings, output_dir, ledger, overwrite)
    if not checked:
        return 1  # every file has its answer already; the model was never needed
    early_failures = len(names) - len(checked)
    names = [name for name, _ in checked]
    try:  # once, before any file: a missing model is one error, not one per file being decoded meanwhile
        engine.load()
    except ModelError as exc:
        print(f"whisperdesk: error: model {settings.model.model}: {exc}", file=sys.stderr)
        return 1
    except WhisperDeskError as exc:  # e.g. a device this machine does not have
        print(f"whisperdesk: error: {getattr(exc, 'reason', None) or exc}", file=sys.stderr)
        return 1
    voices = VoiceLibrary.for_settings(settings)  # names the voices the user has named before (opt-in)
    bar = TerminalProgress(sys.stderr)
    sources = [source for _, source in checked]
    bar.start(sources[0].name if len(sources) == 1 else f"{len(sources)} files")
    combined = _CombinedProgress(bar)
    stop = threading.Event()  # a model error ends the run: files not finished yet stop at once

    def transcribe_one(index: int, source: Path) -> Transcript:
        if stop.is_set():
            raise Cancelled()
        report = combined.reporter(index)
        if speakers is None:
            return engine.transcribe(source, settings.decode, progress=report, cancel=stop)
        return transcribe_with_speakers(
            engine, source, settings.decode, speakers, progress=report, cancel=stop, voices=voices
        )

    pool = ThreadPoolExecutor(workers_for(settings.model.batch_size), thread_name_prefix="whisperdesk-cli")
    failed = early_failures
    try:
        futures = [pool.submit(transcribe_one, i, source) for i, source in enumerate(sources)]
        for name, source, future in zip(names, sources, futures, strict=True):
            try:
                transcript = future.result()
                written = write_outputs(
                    transcript,
                    source,
                    settings.output,
                    output_dir=output_dir,
                    ledger=ledger,
                    overwrite=overwrite,
                )
            except ModelError as exc:
                combined.finish()
                print(f"whisperdesk: error: model {settings.model.model}: {exc}", file=sys.stderr)
                return 1
            except (WhisperDeskError, Cancelled) as exc:
                combined.finish()
                print(error_line(name, exc), file=sys.stderr)
                failed += 1
                continue
            except Exception as exc:  # a bug or an unexpected library error must not stop the other files
                combined.finish()
                log.exception("unexpected failure on %s", name)
                print(error_line(name, RuntimeError(f"unexpected error: {exc}")), file=sys.stderr)
                failed += 1
                continue
            if library is not None:
                try:
                    keep_unqueued_transcript(library, transcript, written, settings.output)
                except (WhisperDeskError, OSError, sqlite3.Error) as exc:  # the files are written: say, go on
                    log.warning("%s: transcript not kept for search: %s", source, exc)
            combined.finish(
                f"{source.name}: {transcript.duration:.1f} s in {transcript.processing_time:.1f} s"
            )
            for path in written.values():
                print(path)
            if transcript.extra.get(NOTE_KEY):  # fewer or more speakers than asked for, and why
                print(f"whisperdesk: note: {name}: {transcript.extra[NOTE_KEY]}", file=sys.stderr)
    finally:
        stop.set()  # only files still running after an early return see it
        pool.shutdown(wait=True, cancel_futures=True)
    return 1 if failed else 0


def _answer_first(
    names: list[str], settings: Settings, output_dir: Path | None, ledger: OutputLedger, overwrite: bool
) -> list[tuple[str, Path]]:
    """Answers before work (issue 17.6): report every file that cannot be read or whose transcripts cannot
    be written, before the model loads (milliseconds, not the model's seconds); returns the rest, in order.
    """
    ready: list[tuple[str, Path]] = []
    for name in names:
        source = Path(name)
        if not os.path.lexists(source):  # named on the command line: mistyped, not "disappeared"
            print(
                f"whisperdesk: error: {name}: no such file; check the name and the folder "
                f"(looked in {source.resolve().parent})",
                file=sys.stderr,
            )
            continue
        try:
            precheck_file(source, settings.output, output_dir=output_dir, ledger=ledger, overwrite=overwrite)
        except WhisperDeskError as exc:
            print(error_line(name, exc), file=sys.stderr)
            continue
        ready.append((name, source))
    return ready


class _CombinedProgress:
    """One bar over the files being transcribed at once: the sum of their done and total seconds."""

    def __init__(self, bar: TerminalProgress) -> None:
        self._bar = bar
        self._lock = threading.Lock()
        self._parts: dict[int, tuple[float, float]] = {}

    def reporter(self, index: int) -> Callable[[float, float], None]:
        def report(done: float, total: float) -> None:
            with self._lock:
                self._parts[index] = (done, total)
                self._bar.update(
                    sum(d for d, _t in self._parts.values()), sum(t for _d, t in self._parts.values())
                )

        return report

    def finish(self, message: str = "") -> None:
        """End the bar's line (with ``message``) without a worker's update writing into it."""
        with self._lock:
            self._bar.finish(message)
