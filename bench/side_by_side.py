"""The side-by-side benchmark of issue 5, runnable from a fresh checkout with nothing downloaded.

It builds (once, offline) a random-weight Whisper model of the requested shape and a synthetic espeak-ng
corpus of voice memos and talks, then times on the same files, model and decoding options:

  (a) WhisperModel.transcribe, file after file
  (b) faster-whisper's BatchedInferencePipeline, file after file
  (c) WhisperDesk's scheduler with every file queued
  (d) the floor: raw CTranslate2 encode + generate over (c)'s windows at the best batch sizes

and prints audio-seconds per second, c/a, c/b, c/d, peak memory, and the RSS check over 200 queued files.

    python bench/side_by_side.py                                    # 2-core CPU target: tiny shape, 21 min
    python bench/side_by_side.py --shape large-v3 --device cuda --compute-type int8_float16

Results are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from whisperdesk.core.bench import (
    BENCH_OPTIONS,
    SideBySideRequest,
    format_side_by_side,
    run_side_by_side,
    short_memos,
    synthetic_corpus,
    to_json,
)
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import DecodeOptions


def _model(shape: str, given: str | None, cache: Path) -> str:
    if given:
        return given
    from whisperdesk.devtools.random_model import build_random_whisper_model

    folder = cache / "bench-models" / f"random-{shape}"
    if not (folder / "model.bin").is_file():
        print(f"building a random-weight {shape}-shaped model in {folder} ...", file=sys.stderr)
        build_random_whisper_model(folder, shape=shape)
    return str(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--shape", default="tiny", help="random model shape: micro, tiny, large-v3 (default tiny)"
    )
    parser.add_argument("--model", help="use this CTranslate2 model folder instead of a random one")
    parser.add_argument("--minutes", type=float, default=21.0, help="synthetic corpus length (default 21)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--cpu-threads", type=int, default=0, help="0: the physical core count")
    parser.add_argument("--batch-size", type=int, default=8, help="(c)'s batch size (default 8)")
    parser.add_argument("--baseline-batch-size", type=int, default=8, help="(b)'s batch size (default 8)")
    parser.add_argument("--beam-size", type=int, default=BENCH_OPTIONS.beam_size)
    parser.add_argument("--max-new-tokens", type=int, default=BENCH_OPTIONS.max_new_tokens)
    parser.add_argument("--memory-jobs", type=int, default=200)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of (a), (b), (c), interleaved; fastest counts"
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    cache = AppPaths.default().cache_dir
    model = _model(args.shape, args.model, cache)
    corpus = synthetic_corpus(cache / "bench-corpus", args.minutes, seed=args.seed)
    memos = tuple(short_memos(cache / "bench-corpus"))
    options = DecodeOptions(beam_size=args.beam_size, temperature=(0.0,), max_new_tokens=args.max_new_tokens)
    request = SideBySideRequest(
        files=tuple(f.path for f in corpus),
        model=model,
        models_dir=cache / "models",
        device=args.device,
        compute_type=args.compute_type,
        cpu_threads=args.cpu_threads,
        options=options,
        batch_size=args.batch_size,
        baseline_batch_size=args.baseline_batch_size,
        memory_jobs=args.memory_jobs,
        memory_files=memos,
        repeat=max(1, args.repeat),
    )
    started = time.monotonic()

    def progress(message: str, fraction: float) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    report = run_side_by_side(request, progress=progress)
    talks = sum(1 for f in corpus if f.kind == "talk")
    print(
        f"corpus: {len(corpus) - talks} memos of 10-60 s and {talks} talks of 3-6 min "
        f"({sum(f.seconds for f in corpus) / 60:.1f} min, espeak-ng, seed {args.seed})"
    )
    print(format_side_by_side(report))
    if args.json:
        args.json.write_text(to_json(report) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
