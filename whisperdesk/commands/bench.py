"""`whisperdesk bench`: which compute type and batch size are fastest here, on the app's own path.

It prints compute type × batch size (audio-seconds per second, word error rate where the texts are known,
realtime factor, model load time, peak RSS / VRAM, job threads) and recommends a setting. Every row runs
the files through the job processor with the app's worker count and the decoding settings the app would
use. The research side-by-side against faster-whisper and the raw CTranslate2 floor is
``python -m bench.side_by_side`` in a source checkout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from whisperdesk.commands.options import InvalidSetting, add_decode_options, settings_from_args
from whisperdesk.commands.progress import TerminalProgress
from whisperdesk.core.errors import Cancelled, WhisperDeskError
from whisperdesk.core.logging_setup import setup_logging
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import COMPUTE_TYPES, DEVICES, load_settings

log = logging.getLogger(__name__)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers, e.g. 1,4,8,16"
        ) from None
    if not values or any(v < 1 or v > 256 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: batch sizes must be from 1 to 256")
    return values


def _compute_list(text: str) -> tuple[str, ...]:
    values = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [v for v in values if v not in COMPUTE_TYPES]
    if not values or bad:
        raise argparse.ArgumentTypeError(
            f"unknown compute type(s) {', '.join(bad) or text!r}; choose from {','.join(COMPUTE_TYPES)}"
        )
    return values


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"{text!r}: --synthetic takes 0 < MINUTES <= 600")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="time compute types × batch sizes on this machine, on the app's own path",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="recordings to time (or use --synthetic)")
    parser.add_argument(
        "--synthetic", type=_minutes, metavar="MINUTES", help="make a corpus of memos and talks"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic corpus (default 0)")
    group = parser.add_argument_group("model")
    group.add_argument("--model", help="model name or local CTranslate2 model folder (default: settings)")
    group.add_argument("--device", choices=DEVICES)
    group.add_argument(
        "--cpu-threads", type=int, dest="cpu_threads", help="CTranslate2 threads; 0: its default"
    )
    group.add_argument(
        "--compute-types",
        type=_compute_list,
        help="comma list (default int8,int8_float16,float16,float32); unsupported ones are listed as skipped",
    )
    group.add_argument(
        "--batch-sizes", type=_int_list, default=(1, 4, 8, 16), help="comma list (default 1,4,8,16)"
    )
    parser.add_argument(
        "--memory-jobs",
        type=int,
        default=0,
        help="also queue this many short files at once and report RSS growth (default: off)",
    )
    add_decode_options(parser)
    parser.add_argument("--json", type=Path, dest="json_path", help="also write the results as JSON here")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.set_defaults(func=run)


def _files(args: argparse.Namespace, paths: AppPaths) -> tuple[list[Path], dict[Path, str]]:
    """The files to time and the texts known for them (those of the synthetic corpus)."""
    from whisperdesk.benchmark.corpus import references, synthetic_corpus

    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise WhisperDeskError(f"not a file: {', '.join(missing)}; pass recordings, or --synthetic MINUTES")
    known: dict[Path, str] = {}
    if args.synthetic:
        corpus = synthetic_corpus(paths.cache_dir / "bench-corpus", args.synthetic, seed=args.seed)
        files += [c.path for c in corpus]
        known = references(corpus)
    if not files:
        raise WhisperDeskError(
            "nothing to time: pass recordings, or --synthetic MINUTES for a generated corpus"
        )
    return files, known


def run(args: argparse.Namespace) -> int:
    from whisperdesk.benchmark import matrix
    from whisperdesk.benchmark.corpus import short_memos
    from whisperdesk.benchmark.run import run_matrix

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
    model = settings.model
    bar = TerminalProgress(sys.stderr)
    bar.start("bench")

    def progress(message: str, fraction: float) -> None:
        bar.start(f"bench: {message}")
        bar.update(fraction, 1.0)

    try:
        files, known = _files(args, paths)
        memos = (
            tuple(f.path for f in short_memos(paths.cache_dir / "bench-corpus")) if args.memory_jobs else ()
        )
        request = matrix.BenchRequest(
            files=tuple(files),
            model=model.model,
            models_dir=paths.models_dir,
            device=model.device,
            compute_types=args.compute_types or matrix.DEFAULT_COMPUTE_TYPES,
            batch_sizes=args.batch_sizes,
            options=settings.decode,
            cpu_threads=model.cpu_threads,
            references=known,
            memory_jobs=max(0, args.memory_jobs),
            memory_files=memos,
        )
        report = run_matrix(request, progress=progress)
    except (WhisperDeskError, ValueError) as exc:
        bar.finish()
        print(f"whisperdesk: error: {exc}", file=sys.stderr)
        return 1
    except (Cancelled, KeyboardInterrupt):
        bar.finish()
        print("whisperdesk: bench canceled", file=sys.stderr)
        return 130
    bar.finish()
    print(matrix.format_matrix(report))
    if args.json_path:
        try:
            args.json_path.write_text(matrix.to_json(report) + "\n", encoding="utf-8")
        except OSError as exc:
            print(f"whisperdesk: error: {args.json_path}: cannot write JSON: {exc.strerror}", file=sys.stderr)
            return 1
    return 0
