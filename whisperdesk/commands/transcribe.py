"""`whisperdesk transcribe FILE...`: transcribe files with the shared engine and write transcripts."""

from __future__ import annotations

import argparse
import logging
import sys
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
from whisperdesk.core.logging_setup import setup_logging
from whisperdesk.core.outputs import OutputLedger, write_outputs
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import load_settings
from whisperdesk.core.speakers.job import transcribe_with_speakers

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
    ledger = OutputLedger(paths.data_dir / "outputs-ledger.json")
    bar = TerminalProgress(sys.stderr)
    failed = 0
    for name in args.files:
        source = Path(name)
        bar.start(source.name)
        try:
            if args.speakers is None:
                transcript = engine.transcribe(source, settings.decode, progress=bar.update)
            else:
                transcript = transcribe_with_speakers(
                    engine, source, settings.decode, args.speakers, progress=bar.update
                )
            written = write_outputs(
                transcript,
                source,
                settings.output,
                output_dir=output_dir,
                ledger=ledger,
                overwrite=args.overwrite,
            )
        except ModelError as exc:
            bar.finish()
            print(f"whisperdesk: error: model {settings.model.model}: {exc}", file=sys.stderr)
            return 1
        except (WhisperDeskError, Cancelled) as exc:
            bar.finish()
            print(error_line(name, exc), file=sys.stderr)
            failed += 1
            continue
        except Exception as exc:  # a bug or an unexpected library error must not stop the other files
            bar.finish()
            log.exception("unexpected failure on %s", name)
            print(error_line(name, RuntimeError(f"unexpected error: {exc}")), file=sys.stderr)
            failed += 1
            continue
        bar.finish(f"{source.name}: {transcript.duration:.1f} s in {transcript.processing_time:.1f} s")
        for path in written.values():
            print(path)
    return 1 if failed else 0
