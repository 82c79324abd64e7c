"""The side-by-side: WhisperDesk's own path against faster-whisper's, and the raw CTranslate2 floor.

On one spoken corpus with known text (voice memos, talks and a lecture by espeak-ng), the same model and
the app's default decoding options, it times

  (a) WhisperModel.transcribe, file after file
  (b) faster-whisper's BatchedInferencePipeline, file after file (batch 8)
  (c) the app's own path: the files queued for the job processor at the app's default batch size and its
      worker count for it, transcripts written (whisperdesk.benchmark.app_path)
  (d) the floor: raw CTranslate2 encode + generate over the app's windows at the best batch sizes (floor.py)

and prints audio-seconds per wall-second, peak RSS and word error rate for each, with c/a, c/b and c/d.
Then bench/judge.py judges every corpus run against the targets (c ≥ 0.9 × floor, c/b ≥ 1.4, (c)'s WER
≤ (a)'s + 0.3 points, c/a ≥ 2.5 where the floor allows it) and prints the spread: one corpus's figures are
figures about that corpus (issue 17.9).

    python -m bench.side_by_side --model tiny.en            # quick: ~4 min of speech, seed 0
    python -m bench.side_by_side --model base --full        # the full corpus (~20 min, a 8-min lecture)
    python -m bench.side_by_side --model base --full --judge   # seeds 0, 7, 13 and the real recordings

``--model`` takes tiny.en or base (the pinned real weights, see whisperdesk.devtools.real_models), a
CTranslate2 model folder, or random-SHAPE (random-large-v3 on a GPU: real compute, meaningless WER). Results are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisperdesk.benchmark.app_path import run_app_path
from whisperdesk.benchmark.corpus import CorpusFile, references, synthetic_corpus
from whisperdesk.benchmark.matrix import options_line
from whisperdesk.benchmark.memory import Peak, PeakWatch, mb
from whisperdesk.benchmark.run import score_texts
from whisperdesk.benchmark.wer import Score
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.queue.workers import workers_for
from whisperdesk.core.settings import DecodeOptions, ModelConfig, Settings

from .floor import measure_floor
from .judge import Figures, judge
from .judge import report as judge_report

_SR = 16000
QUICK_MINUTES = 4.0
JUDGE_SEEDS = (0, 7, 13)
FULL_MINUTES = 20.0


@dataclass(frozen=True)
class RunResult:
    name: str  # "a" | "b" | "c" | "d"
    label: str
    wall_seconds: float
    audio_seconds: float
    peak: Peak | None
    wer: Score | None
    detail: str = ""
    # process CPU time (all threads) of the fastest run: steadier than wall time on a shared machine, where
    # another process's load stretches the wall time but not the work
    cpu_seconds: float | None = None

    @property
    def speed(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def _sequential(model: Any, files: Sequence[Path], options: DecodeOptions) -> tuple[float, dict[Path, str]]:
    from whisperdesk.core.engine import whisper_kwargs

    audio, texts = 0.0, {}
    for path in files:
        segments, info = model.transcribe(str(path), **whisper_kwargs(options))
        texts[path] = " ".join(s.text for s in segments)
        audio += info.duration
    return audio, texts


def _batched(
    model: Any, files: Sequence[Path], options: DecodeOptions, batch_size: int
) -> tuple[float, dict[Path, str]]:
    from faster_whisper import BatchedInferencePipeline

    from whisperdesk.core.audio import decode
    from whisperdesk.core.engine import whisper_kwargs

    pipeline = BatchedInferencePipeline(model)
    audio, texts = 0.0, {}
    for path in files:
        samples = decode(path)
        kwargs = whisper_kwargs(options)
        if not options.vad:
            seconds = len(samples) / _SR
            kwargs["clip_timestamps"] = [
                {"start": s, "end": min(s + 30.0, seconds)} for s in range(0, int(seconds) + 1, 30)
            ]
        segments, info = pipeline.transcribe(samples, batch_size=batch_size, **kwargs)
        texts[path] = " ".join(s.text for s in segments)
        audio += info.duration
    return audio, texts


def _model_path(name: str) -> str:
    """A model folder; ``tiny.en``/``base`` are the pinned real weights, ``random-SHAPE`` (e.g.
    ``random-large-v3``, for a GPU's memory and speed) a random-weight model built once: its WER is
    meaningless, its compute is real."""
    if Path(name).is_dir():
        return name
    if name.startswith("random-"):
        from whisperdesk.devtools.random_model import build_random_whisper_model

        folder = AppPaths.default().cache_dir / "bench-models" / name
        if not (folder / "model.bin").is_file():
            build_random_whisper_model(folder, shape=name.removeprefix("random-"))
        return str(folder)
    from whisperdesk.devtools.real_models import fetch

    return str(fetch(name))


def run(args: argparse.Namespace, corpus: list[CorpusFile], say: Callable[[str], None]) -> dict[str, Any]:
    from whisperdesk.core.batching.layout import cpu_batching_layout, physical_cores
    from whisperdesk.core.engine import Engine, resolve_device

    files = tuple(f.path for f in corpus)
    known = references(corpus)
    options = DecodeOptions(beam_size=args.beam_size)  # otherwise the app's defaults
    threads = args.cpu_threads or physical_cores()
    app = Settings().model
    config = ModelConfig(
        model=_model_path(args.model),
        device=args.device,
        compute_type=args.compute_type,
        batch_size=app.batch_size,
        cpu_threads=threads,
    )
    device = resolve_device(config)
    models_dir = AppPaths.default().cache_dir / "models"
    say("loading the models")
    plain = Engine(dataclasses.replace(config, device=device.device, batch_size=1), models_dir)
    model_ab = plain.model()
    engine = Engine(dataclasses.replace(config, device=device.device), models_dir)  # the app's own loader
    model_c = engine.model()
    workers = workers_for(config.batch_size)
    settings = Settings(model=engine.config, decode=options)
    intra, ct2_workers = cpu_batching_layout(threads) if device.device == "cpu" else (0, 1)
    one = f"1 worker × {threads} threads" if device.device == "cpu" else "1 GPU worker"
    batching = f"{ct2_workers} workers × {intra} threads" if device.device == "cpu" else "1 GPU worker"

    def app_path() -> tuple[float, dict[Path, str]]:
        result = run_app_path(engine, settings, files)
        if result.failed:
            raise RuntimeError(f"(c) jobs failed: {'; '.join(result.failed[:3])}")
        return result.audio_seconds, result.texts

    paths: list[tuple[str, str, Callable[[], tuple[float, dict[Path, str]]], str]] = [
        ("a", "WhisperModel.transcribe, file after file", lambda: _sequential(model_ab, files, options), one),
        (
            "b",
            f"BatchedInferencePipeline (batch {args.baseline_batch_size}), file after file",
            lambda: _batched(model_ab, files, options, args.baseline_batch_size),
            one,
        ),
        (
            "c",
            f"WhisperDesk app path (batch {config.batch_size}, {workers} job threads)",
            app_path,
            f"job processor over a job store, {workers} job threads; {batching}",
        ),
    ]
    say("warming up")
    warm = min(files, key=lambda p: p.stat().st_size)
    _sequential(model_ab, [warm], options)
    _batched(model_ab, [warm], options, args.baseline_batch_size)
    run_app_path(engine, settings, [warm])

    walls: dict[str, list[float]] = {name: [] for name, *_ in paths}
    cpus: dict[str, list[float]] = {name: [] for name, *_ in paths}
    results: dict[str, tuple[float, dict[Path, str], Peak | None]] = {}
    for rep in range(max(1, args.repeat)):  # interleaved: a busy spell on a shared machine hits every path
        for name, label, fn, _detail in paths:
            say(f"({name}) {label}, run {rep + 1} of {args.repeat}")
            watch = PeakWatch()
            with watch.watch():
                began, cpu_began = time.monotonic(), _cpu_seconds()
                audio, texts = fn()
                walls[name].append(time.monotonic() - began)
                cpus[name].append(_cpu_seconds() - cpu_began)
            previous = results.get(name)
            peak = watch.result
            if previous is not None and previous[2] is not None and peak is not None:
                peak = max(previous[2], peak, key=lambda p: p.rss_bytes)
            results[name] = (audio, texts, peak)
    engine.close()
    runs = {}
    for name, label, _fn, detail in paths:
        audio, texts, peak = results[name]
        best = min(walls[name])
        cpu = cpus[name][walls[name].index(best)]
        detail += f"; runs {', '.join(f'{w:.1f}' for w in walls[name])} s" if len(walls[name]) > 1 else ""
        runs[name] = RunResult(name, label, best, audio, peak, score_texts(texts, known), detail, cpu)

    say("(d) floor: raw CTranslate2 encode + generate")
    layouts = [(model_ab, 1, one)] + ([(model_c, ct2_workers, batching)] if model_c is not model_ab else [])
    watch = PeakWatch()
    with watch.watch():
        floor = measure_floor(layouts, files, options)
    runs["d"] = RunResult(
        "d",
        f"floor: raw CTranslate2 encode + generate ({floor.windows} windows)",
        floor.seconds,
        floor.audio_seconds,
        watch.result,
        score_texts(floor.texts, known),
        floor.detail,
    )
    return {
        "model": args.model,
        "compute_type": args.compute_type,
        "device": device.device,
        "options": options,
        "files": len(files),
        "kinds": {k: sum(1 for f in corpus if f.kind == k) for k in dict.fromkeys(f.kind for f in corpus)},
        "audio_seconds": runs["c"].audio_seconds,
        "runs": runs,
    }


def _cpu_seconds() -> float:
    """CPU time of this process, every thread (CTranslate2's workers included), user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ratio(runs: dict[str, RunResult], top: str, bottom: str) -> float:
    return runs[top].speed / runs[bottom].speed if runs[bottom].speed > 0 else 0.0


def _cpu_column(run: RunResult) -> str:
    return f"{run.cpu_seconds:.1f}" if run.cpu_seconds is not None else "n/a"


def format_report(report: dict[str, Any], load: tuple[float, float]) -> str:
    runs: dict[str, RunResult] = report["runs"]
    kinds = report["kinds"]
    counted = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in kinds.items())
    lines = [
        f"{report.get('corpus', 'corpus')}: model {report['model']} ({report['compute_type']}) on "
        f"{report['device']}; {report['files']} files ({counted}), "
        f"{report['audio_seconds'] / 60:.1f} min of speech; {options_line(report['options'])}",
        "",
        f"{'run':<4}{'what':<62}{'wall s':>8}{'CPU s':>8}{'audio s/s':>11}{'WER':>8}{'peak RSS':>11}  detail",
    ]
    for r in runs.values():
        lines.append(
            f"({r.name}) {r.label:<61}{r.wall_seconds:>8.1f}{_cpu_column(r):>8}{r.speed:>11.1f}{(str(r.wer) if r.wer else 'n/a'):>8}"
            f"{mb(r.peak.rss_bytes if r.peak else None):>11}  {r.detail}"
        )
    ca, cb, cd = _ratio(runs, "c", "a"), _ratio(runs, "c", "b"), _ratio(runs, "c", "d")
    lines += [
        "",
        f"c/a = {ca:.2f}, c/b = {cb:.2f}, c/d = {cd:.2f}, d/a = {_ratio(runs, 'd', 'a'):.2f} "
        "(judged below, with the other corpora)",
        f"machine load (1-min average) {load[0]:.2f} at start, {load[1]:.2f} at end: figures from a busy "
        "machine are low and noisy (CPU s is not stretched by other processes; (d) times only its best batch sizes)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny.en", help="tiny.en, base, random-SHAPE or a model folder")
    parser.add_argument("--minutes", type=float, default=QUICK_MINUTES, help="corpus length (default 4)")
    parser.add_argument("--full", action="store_true", help=f"the full corpus ({FULL_MINUTES:g} min)")
    parser.add_argument("--seed", type=int, default=0, help="the corpus's seed (one corpus)")
    parser.add_argument(
        "--seeds", type=int, nargs="*", help="several espeak-ng corpora, one per seed (overrides --seed)"
    )
    parser.add_argument(
        "--real-speech",
        metavar="DIR|auto",
        help="also judge on real recordings: a folder like ../shared/data/real-speech (refs.json), or "
        "'auto' for the shared one when it is present",
    )
    parser.add_argument(
        "--judge",
        action="store_true",
        help=f"the judge's set: --seeds {' '.join(map(str, JUDGE_SEEDS))} --real-speech auto (issue 17.9)",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--cpu-threads", type=int, default=0, help="0: the physical core count")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--baseline-batch-size", type=int, default=8, help="(b)'s batch size (default 8)")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved runs of (a)-(c); fastest counts")
    parser.add_argument("--corpus-dir", type=Path, help="where the corpus is cached (default: app cache)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    folder = args.corpus_dir or AppPaths.default().cache_dir / "bench-corpus"
    reports: list[dict[str, Any]] = []
    for name, make in corpora(args, folder):
        say(f"making (or reusing) the corpus: {name}")
        corpus = make()
        if not corpus:
            say(f"{name}: no file with reference text; skipped")
            continue
        load_start = os.getloadavg()[0]
        report = {**run(args, corpus, say), "corpus": name}
        print(format_report(report, (load_start, os.getloadavg()[0])), flush=True)
        reports.append(report)
    text, ok = judge_report([figures_of(r) for r in reports])
    print(text)
    if args.json:
        data = [_json_of(r) for r in reports]
        whole = data[0] if len(data) == 1 else {"corpora": data}
        whole["verdict"] = "every applicable target met" if ok else "NOT every target met"
        args.json.write_text(json.dumps(whole, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


def corpora(args: argparse.Namespace, folder: Path) -> list[tuple[str, Callable[[], list[CorpusFile]]]]:
    """The corpora to run, by name: one per seed, then the real recordings when asked for and present."""
    minutes = FULL_MINUTES if args.full else args.minutes
    seeds = (
        JUDGE_SEEDS
        if args.judge and args.seeds is None
        else (args.seeds if args.seeds is not None else [args.seed])
    )
    chosen: list[tuple[str, Callable[[], list[CorpusFile]]]] = [
        (f"seed {seed}", lambda seed=seed: synthetic_corpus(folder, minutes, seed=seed)) for seed in seeds
    ]
    real = args.real_speech or ("auto" if args.judge else None)
    if real is not None:
        where = _real_speech_dir() if real == "auto" else Path(real)
        if where is None or not (where / "refs.json").is_file():
            print(
                "side-by-side: no real-speech folder here (../shared/data/real-speech); judged without it",
                file=sys.stderr,
            )
        else:
            chosen.append(("real speech", lambda: real_speech_corpus(where)))
    return chosen


def _real_speech_dir() -> Path | None:
    from whisperdesk.devtools.speech_corpus import shared_data

    shared = shared_data()
    return shared / "real-speech" if shared is not None else None


def real_speech_corpus(folder: Path) -> list[CorpusFile]:
    """The English recordings of real people with reference text (refs.json): an audiobook, telephone-band
    Harvard sentences, a telephone conversation, a LibriSpeech sentence. English only, since the floor's
    prompt is English and tiny.en knows no other language; the meeting excerpts have turns but no text."""
    refs = json.loads((folder / "refs.json").read_text(encoding="utf-8"))
    files = []
    for name, entry in refs.items():
        text = entry.get("text")
        if text and entry.get("language") == "en" and (folder / name).is_file():
            files.append(
                CorpusFile(folder / name, float(entry.get("duration") or 0.0), "real recording", text)
            )
    return files


def figures_of(report: dict[str, Any]) -> Figures:
    runs: dict[str, RunResult] = report["runs"]
    return Figures(
        report.get("corpus", "corpus"),
        {k: r.speed for k, r in runs.items()},
        {k: (r.wer.wer if r.wer is not None else None) for k, r in runs.items()},
    )


def _json_of(report: dict[str, Any]) -> dict[str, Any]:
    data = {**report, "options": dataclasses.asdict(report["options"])}
    data["runs"] = {k: dataclasses.asdict(v) for k, v in report["runs"].items()}
    data["ratios"] = {k: _ratio(report["runs"], "c", k) for k in "abd"}
    data["judge"] = [dataclasses.asdict(v) for v in judge(figures_of(report))]
    return data


if __name__ == "__main__":
    raise SystemExit(main())
