"""Benchmarks on this machine: compute type × batch size (``whisperdesk bench``, Tools → Benchmark) and the
side-by-side of WhisperDesk's scheduler against faster-whisper's own paths and the raw CTranslate2 floor.

Everything here is plain functions over dataclasses so the CLI prints them and the GUI can run them on a
worker thread: pass ``progress(message, fraction)`` and a ``cancel`` event; results come back as reports that
``format_matrix`` / ``format_side_by_side`` turn into text. Heavy libraries load inside functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from whisperdesk.core.engine import whisper_kwargs
from whisperdesk.core.errors import Cancelled, WhisperDeskError
from whisperdesk.core.settings import DecodeOptions, ModelConfig

log = logging.getLogger(__name__)

BenchProgress = Callable[[str, float], None]  # (what is running, fraction of the whole run done)

DEFAULT_COMPUTE_TYPES = ("int8", "int8_float16", "float16", "float32")
DEFAULT_BATCH_SIZES = (1, 4, 8, 16)
BENCH_OPTIONS = DecodeOptions(beam_size=5, temperature=(0.0,), max_new_tokens=100)
_SR = 16000
_MB = 1024 * 1024


# --- peak memory ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Peak:
    rss_bytes: int
    rss_start_bytes: int
    vram_bytes: int | None  # device-wide, all GPUs; None without NVML
    vram_start_bytes: int | None


def _reset_high_water() -> bool:
    """Reset Linux's per-process RSS high-water mark (VmHWM); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _high_water() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


class _PeakWatch:
    """Peak RSS (the kernel's exact high-water mark on Linux, else sampled) and peak VRAM (NVML, sampled)
    of a block; with ``settle`` the allocator's cached memory from earlier runs is released first, so one
    run's peak is not another's leftovers."""

    def __init__(self, interval_ms: int = 50, *, settle: bool = True) -> None:
        self._interval_ms = interval_ms
        self._settle = settle
        self.result: Peak | None = None

    @contextmanager
    def watch(self) -> Iterator[_PeakWatch]:
        if self._settle:
            _settle_heap()
        exact = _reset_high_water()
        sampled: Peak | None = None
        try:
            from whisperdesk.core.gpu import PeakTracker
        except ImportError:  # gauges module not built: RSS only
            PeakTracker = None
        try:
            if PeakTracker is not None:
                tracker = PeakTracker(interval_ms=self._interval_ms)
                tracker.start()
                try:
                    yield self
                finally:
                    peaks = tracker.stop()
                    sampled = Peak(
                        peaks.peak_rss_bytes,
                        peaks.baseline_rss_bytes,
                        peaks.peak_vram_bytes,
                        peaks.baseline_vram_bytes,
                    )
            else:
                with self._sample_rss() as holder:
                    yield self
                sampled = holder[0]
        finally:
            if sampled is not None:
                hwm = _high_water() if exact else None
                self.result = dataclasses.replace(sampled, rss_bytes=max(sampled.rss_bytes, hwm or 0))

    @contextmanager
    def _sample_rss(self) -> Iterator[list[Peak]]:
        import psutil

        proc = psutil.Process()
        start = proc.memory_info().rss
        peak = [start]
        stop = threading.Event()
        holder: list[Peak] = []

        def sample() -> None:
            while not stop.wait(self._interval_ms / 1000):
                peak[0] = max(peak[0], proc.memory_info().rss)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield holder
        finally:
            stop.set()
            thread.join()
            holder.append(Peak(max(peak[0], proc.memory_info().rss), start, None, None))


def to_json(report: Any) -> str:
    """A report (matrix or side by side) as JSON, with the side by side's ratios c/a, c/b, c/d."""

    def default(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        raise TypeError(type(value).__name__)

    data = dataclasses.asdict(report)
    if hasattr(report, "runs"):
        data["ratios"] = {k: report.ratio("c", k) for k in ("a", "b", "d")}
    return json.dumps(data, indent=2, default=default)


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / _MB:.0f} MB"


# --- synthetic corpus --------------------------------------------------------------------------------------
_WORD_TEXT = (
    "the a we our team meeting budget plan today tomorrow project report client office call email review "
    "schedule number market price sales quarter result design change update system data model server user "
    "question answer idea note list task week month year time people group city river morning evening "
    "coffee train ticket station garden window kitchen table chair music story book paper letter phone "
    "should could would will must can may need want think know remember decide agree finish start send "
    "check move build write read listen speak travel visit explain improve reduce increase compare "
    "quickly slowly carefully really almost always never often again later early together already still "
    "new old big small good bad long short important simple difficult possible clear ready open final"
)
_WORDS = tuple(_WORD_TEXT.split())
_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp")


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    seconds: float
    kind: str  # "memo" | "talk"


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 15))]
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice((".", ".", ".", "?", "!"))


def _speech_piece(text: str, voice: str, scratch: Path) -> tuple[np.ndarray, int]:
    import soundfile

    from whisperdesk.devtools.synth_audio import speech_like

    path = speech_like(text, scratch / "piece.wav", voice=voice)
    if path is None:
        raise FileNotFoundError("espeak-ng")
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    return samples, int(rate)


def _synth_file(path: Path, seconds: float, rng: random.Random, scratch: Path) -> None:
    """Speech with the pauses of a real recording: paragraphs from espeak-ng separated by 0.3–2.5 s silences."""
    import soundfile

    voice = rng.choice(_VOICES)
    parts: list[np.ndarray] = []
    rate = 22050
    total = 0.0
    try:
        while total < seconds:
            text = " ".join(_sentence(rng) for _ in range(rng.randint(1, 4)))
            samples, rate = _speech_piece(text, voice, scratch)
            pause = np.zeros(int(rng.uniform(0.3, 2.5) * rate), dtype=np.float32)
            parts += [samples, pause]
            total += (len(samples) + len(pause)) / rate
    except FileNotFoundError:
        from whisperdesk.devtools.synth_audio import babble

        rate = _SR
        parts = [babble(seconds, sr=rate, seed=rng.randint(0, 2**31))]
    audio = np.concatenate(parts)[: int(seconds * rate)]
    soundfile.write(str(path), audio, rate, subtype="PCM_16")


def synthetic_corpus(folder: Path, minutes: float, *, seed: int = 0) -> list[CorpusFile]:
    """Voice memos of 10–60 s plus (from 6 minutes on) 3–6-minute talks, ~70 % of the time in talks.

    Made with espeak-ng (real phonemes, so Silero VAD finds speech and pauses); without espeak-ng, a
    speech-like babble is used and a warning logged. Cached in ``folder`` by (minutes, seed).
    """
    if minutes <= 0:
        raise ValueError(f"--synthetic needs a positive number of minutes, got {minutes}")
    target = minutes * 60.0
    corpus_dir = Path(folder) / f"synthetic-{minutes:g}min-seed{seed}"
    manifest = corpus_dir / "manifest.json"
    if manifest.is_file():
        try:
            entries = json.loads(manifest.read_text(encoding="utf-8"))
            files = [CorpusFile(corpus_dir / e["name"], float(e["seconds"]), e["kind"]) for e in entries]
            if files and all(f.path.is_file() for f in files):
                return files
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("bench corpus %s is damaged; making it again", corpus_dir)
    if shutil.which("espeak-ng") is None:
        log.warning("espeak-ng is not installed: the synthetic corpus is speech-like babble, not speech")
    rng = random.Random(seed)
    lengths: list[tuple[float, str]] = []
    talk_budget = 0.7 * target if minutes >= 6 else 0.0
    while talk_budget >= 180.0:
        talk = min(rng.uniform(180.0, 360.0), talk_budget)
        lengths.append((talk, "talk"))
        talk_budget -= talk
    remaining = target - sum(s for s, _ in lengths)
    while remaining > 1.0:
        memo = min(rng.uniform(10.0, 60.0), remaining)
        lengths.append((max(memo, min(10.0, remaining)), "memo"))
        remaining -= memo
    rng.shuffle(lengths)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    scratch = corpus_dir / ".scratch"
    scratch.mkdir(exist_ok=True)
    files = []
    for i, (seconds, kind) in enumerate(lengths):
        path = corpus_dir / f"{kind}-{i:03d}.wav"
        _synth_file(path, seconds, rng, scratch)
        files.append(CorpusFile(path, seconds, kind))
    shutil.rmtree(scratch, ignore_errors=True)
    manifest.write_text(
        json.dumps([{"name": f.path.name, "seconds": f.seconds, "kind": f.kind} for f in files], indent=1),
        encoding="utf-8",
    )
    return files


def short_memos(folder: Path, count: int = 20, *, seed: int = 0) -> list[Path]:
    """``count`` spoken memos of 2–5 s for the memory check (cached like the corpus)."""
    rng = random.Random(seed + 7919)
    memo_dir = Path(folder) / f"short-memos-{count}-seed{seed}"
    paths = [memo_dir / f"short-{i:03d}.wav" for i in range(count)]
    if all(p.is_file() for p in paths):
        return paths
    memo_dir.mkdir(parents=True, exist_ok=True)
    scratch = memo_dir / ".scratch"
    scratch.mkdir(exist_ok=True)
    for path in paths:
        _synth_file(path, rng.uniform(2.0, 5.0), rng, scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    return paths


# --- compute type × batch size -----------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchRequest:
    files: tuple[Path, ...]
    model: str
    models_dir: Path
    device: str = "auto"
    compute_types: tuple[str, ...] = DEFAULT_COMPUTE_TYPES
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    options: DecodeOptions = BENCH_OPTIONS
    cpu_threads: int = 0
    encode_batch_size: int | None = None  # None: the scheduler's default for the device
    local_files_only: bool = False
    memory_jobs: int = 0  # > 0: queue this many short files at once and report RSS growth
    memory_files: tuple[Path, ...] = ()  # the short files to cycle; default: generated 2–5 s memos


@dataclass(frozen=True)
class BenchRow:
    compute_type: str
    batch_size: int
    status: str  # "ok" | "skipped" | "failed"
    reason: str = ""
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    load_seconds: float | None = None
    peak_rss_bytes: int | None = None
    peak_vram_bytes: int | None = None
    files_ok: int = 0
    files_failed: int = 0
    batches: int = 0
    windows: int = 0

    @property
    def speed(self) -> float:
        """Audio seconds transcribed per wall-clock second (× realtime)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def rtf(self) -> float:
        """Realtime factor: wall-clock seconds per audio second (lower is faster)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds > 0 else math.inf


@dataclass(frozen=True)
class BenchReport:
    model: str
    device: str
    device_note: str
    files: int
    options: DecodeOptions
    rows: tuple[BenchRow, ...]
    recommended: BenchRow | None
    recommendation: str
    memory: MemoryCheck | None = None
    audio_seconds: float = 0.0


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def _run_engine_over(
    engine: Any,
    files: Sequence[Path],
    options: DecodeOptions,
    batch_size: int,
    cancel: threading.Event | None,
) -> tuple[float, int, int, int, int, list[str]]:
    """Transcribe ``files`` the way the app would for this batch size; returns (audio s, ok, failed, batches, windows, errors)."""
    audio = 0.0
    ok = failed = batches = windows = 0
    errors: list[str] = []
    if batch_size == 1:
        for path in files:
            _check_cancel(cancel)
            try:
                audio += engine.transcribe(path, options, cancel=cancel).duration
                ok += 1
            except Cancelled:
                raise
            except Exception as exc:  # a bad file is a row detail, not the end of the benchmark
                failed += 1
                errors.append(f"{path}: {exc}")
        return audio, ok, failed, batches, windows, errors
    scheduler = engine.scheduler
    first_batch = len(scheduler.history)
    futures = [scheduler.submit(engine.batch_handle(), p, options, cancel=cancel) for p in files]
    for path, future in zip(files, futures, strict=True):
        try:
            transcript = future.result()
            audio += transcript.duration
            ok += 1
        except Cancelled:
            raise
        except Exception as exc:
            failed += 1
            errors.append(f"{path}: {exc}")
    history = list(scheduler.history)[first_batch:]
    return audio, ok, failed, len(history), sum(b.size for b in history), errors


def batching_loader(config: ModelConfig, path: str, device: Any) -> Any:
    """Engine loader for batch_size > 1: the scheduler's model layout (see ``load_for_batching``)."""
    from whisperdesk.core.batching.layout import load_for_batching

    return load_for_batching(path, device.device, device.compute_type, config.cpu_threads)


def run_matrix(
    request: BenchRequest, *, progress: BenchProgress | None = None, cancel: threading.Event | None = None
) -> BenchReport:
    """Time every supported compute type × batch size over ``request.files``; raises Cancelled if canceled.

    Batch size 1 runs the engine's sequential path on a model loaded as for it; larger batch sizes run the
    scheduler on a model loaded with ``load_for_batching`` (the same one on a GPU).
    """
    from whisperdesk.core.engine import Engine, resolve_device, supported_compute_types

    if not request.files:
        raise ValueError("the benchmark needs at least one file (or --synthetic MINUTES)")
    base = ModelConfig(
        model=request.model, device=request.device, compute_type="default", cpu_threads=request.cpu_threads
    )
    resolved = resolve_device(base)
    supported = supported_compute_types(resolved.device)
    rows: list[BenchRow] = []
    last_loaded: tuple[ModelConfig, Any] | None = None
    steps = max(1, len(request.compute_types) * len(request.batch_sizes))
    done = 0
    for compute_type in request.compute_types:
        _check_cancel(cancel)
        if compute_type not in supported:
            why = (
                f"{resolved.device} does not support {compute_type} "
                f"(CTranslate2 offers {', '.join(sorted(supported)) or 'nothing'} here)"
            )
            rows += [BenchRow(compute_type, b, "skipped", why) for b in request.batch_sizes]
            done += len(request.batch_sizes)
            continue
        config = dataclasses.replace(base, device=resolved.device, compute_type=compute_type)
        loaded: dict[str, tuple[Any, float]] = {}  # "plain" | "batching" -> (model, load seconds)
        for batch_size in request.batch_sizes:
            _check_cancel(cancel)
            kind = "plain" if batch_size == 1 else "batching"
            if kind not in loaded:
                if progress:
                    progress(f"loading {request.model} ({compute_type})", done / steps)
                shared = loaded.get("plain") if resolved.device != "cpu" else None
                try:
                    loaded[kind] = shared or _load_timed(config, request, batching=kind == "batching")
                except WhisperDeskError as exc:
                    rows.append(BenchRow(compute_type, batch_size, "failed", f"model load failed: {exc}"))
                    done += 1
                    continue
            model, load_seconds = loaded[kind]
            if progress:
                progress(f"{compute_type}, batch {batch_size}", done / steps)
            runner = Engine(
                dataclasses.replace(config, batch_size=batch_size),
                request.models_dir,
                loader=lambda *_args, _m=model: _m,
            )
            handle = runner.batch_handle()
            handle.encode_batch_size = request.encode_batch_size
            watch = _PeakWatch()
            try:
                with watch.watch():
                    began = time.monotonic()
                    audio, ok, failed, batches, windows, errors = _run_engine_over(
                        runner, request.files, request.options, batch_size, cancel
                    )
                    wall = time.monotonic() - began
            except Cancelled:
                raise
            except Exception as exc:  # e.g. CUDA out of memory that even the CPU copy could not absorb
                log.exception("benchmark row %s × %d failed", compute_type, batch_size)
                rows.append(BenchRow(compute_type, batch_size, "failed", f"{type(exc).__name__}: {exc}"))
                continue
            finally:
                if batch_size > 1:
                    runner.scheduler.close()
                done += 1
            peak = watch.result
            rows.append(
                BenchRow(
                    compute_type,
                    batch_size,
                    "ok" if ok else "failed",
                    "; ".join(errors[:3]),
                    audio,
                    wall,
                    load_seconds,
                    peak.rss_bytes if peak else None,
                    peak.vram_bytes if peak else None,
                    ok,
                    failed,
                    batches,
                    windows,
                )
            )
        if loaded:
            last_loaded = (config, (loaded.get("batching") or loaded["plain"])[0])
        del loaded
    memory = None
    if request.memory_jobs > 0 and last_loaded is not None:
        _check_cancel(cancel)
        if progress:
            progress(f"memory: {request.memory_jobs} short files queued at once", 0.99)
        memory = _memory_with(last_loaded, request.models_dir, request, cancel)
    if progress:
        progress("done", 1.0)
    best, text = recommend(rows, resolved.device)
    return BenchReport(
        model=request.model,
        device=resolved.device,
        device_note=resolved.reason,
        files=len(request.files),
        options=request.options,
        rows=tuple(rows),
        recommended=best,
        recommendation=text,
        memory=memory,
        audio_seconds=max((r.audio_seconds for r in rows if r.status == "ok"), default=0.0),
    )


def _load_timed(config: ModelConfig, request: BenchRequest, *, batching: bool) -> tuple[Any, float]:
    from whisperdesk.core.engine import Engine

    engine = Engine(
        dataclasses.replace(config, batch_size=8 if batching else 1),
        request.models_dir,
        local_files_only=request.local_files_only,
        **({"loader": batching_loader} if batching else {}),
    )
    started = time.monotonic()
    engine.load()
    return engine.model(), time.monotonic() - started


def _memory_with(
    loaded: tuple[ModelConfig, Any], models_dir: Path, request: BenchRequest, cancel: threading.Event | None
) -> MemoryCheck:
    from whisperdesk.core.batching.scheduler import BatchScheduler
    from whisperdesk.core.engine import Engine

    config, model = loaded
    batch = max([b for b in request.batch_sizes if b > 1] or [8])
    runner = Engine(dataclasses.replace(config, batch_size=batch), models_dir, loader=lambda *_a: model)
    handle = runner.batch_handle()
    handle.encode_batch_size = request.encode_batch_size
    scheduler = BatchScheduler()
    try:
        with _memo_files(request.memory_files) as sources:
            return memory_check(
                scheduler, handle, sources, request.memory_jobs, request.options, cancel=cancel
            )
    finally:
        scheduler.close()


@contextmanager
def _memo_files(given: Sequence[Path]) -> Iterator[tuple[Path, ...]]:
    if given:
        yield tuple(given)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="whisperdesk-memos-") as tmp:
        yield tuple(short_memos(Path(tmp)))


def recommend(rows: Sequence[BenchRow], device: str) -> tuple[BenchRow | None, str]:
    """Fastest setting; within 3 % of it, the one needing least memory (VRAM on GPU, RSS on CPU)."""
    ok = [r for r in rows if r.status == "ok" and r.files_failed == 0 and r.speed > 0]
    if not ok:
        return None, "no setting completed: see the reasons in the table"
    fastest = max(r.speed for r in ok)
    near = [r for r in ok if r.speed >= 0.97 * fastest]

    def memory(row: BenchRow) -> float:
        value = (
            row.peak_vram_bytes
            if device == "cuda" and row.peak_vram_bytes is not None
            else row.peak_rss_bytes
        )
        return float(value) if value is not None else math.inf

    best = min(near, key=lambda r: (memory(r), -r.speed))
    mem = _mb(best.peak_vram_bytes if device == "cuda" else best.peak_rss_bytes)
    return best, (
        f"recommended: --compute-type {best.compute_type} --batch-size {best.batch_size} "
        f"({best.speed:.1f}× realtime, peak {'VRAM' if device == 'cuda' else 'RSS'} {mem})"
    )


def format_matrix(report: BenchReport) -> str:
    o = report.options
    lines = [
        f"model {report.model} on {report.device} ({report.device_note}); {report.files} files, "
        f"{report.audio_seconds / 60:.1f} min of audio; beam {o.beam_size}, "
        f"temperature {','.join(f'{t:g}' for t in o.temperature)}, max new tokens {o.max_new_tokens or 'none'}, "
        f"VAD {'on' if o.vad else 'off'}",
        "",
        f"{'compute type':<14}{'batch':>6}{'audio s/s':>11}{'RTF':>8}{'load s':>8}{'peak RSS':>11}"
        f"{'peak VRAM':>11}{'batches':>9}  status",
    ]
    for r in report.rows:
        if r.status == "ok":
            lines.append(
                f"{r.compute_type:<14}{r.batch_size:>6}{r.speed:>11.1f}{r.rtf:>8.3f}"
                f"{(r.load_seconds or 0.0):>8.1f}{_mb(r.peak_rss_bytes):>11}{_mb(r.peak_vram_bytes):>11}"
                f"{(r.batches or '-')!s:>9}  ok"
                + (f" ({r.files_failed} files failed: {r.reason})" if r.files_failed else "")
            )
        else:
            lines.append(
                f"{r.compute_type:<14}{r.batch_size:>6}{'-':>11}{'-':>8}{'-':>8}{'-':>11}{'-':>11}{'-':>9}  {r.status}: {r.reason}"
            )
    lines += [
        "",
        "batch 1 runs WhisperModel.transcribe file after file (the engine's path for batch size 1); larger batch "
        "sizes run the scheduler with every file queued at once",
        report.recommendation,
    ]
    if report.memory is not None:
        lines.append(_memory_line(report.memory))
    return "\n".join(lines)


def _memory_line(m: MemoryCheck) -> str:
    return (
        f"memory: peak RSS {_mb(m.rss_short_peak_bytes)} with {m.short_jobs} short files queued, "
        f"{_mb(m.rss_peak_bytes)} with {m.jobs} ({m.peak_growth_bytes / _MB:+.1f} MB); idle RSS "
        f"{_mb(m.rss_before_bytes)} before the {m.jobs}, {_mb(m.rss_after_bytes)} after: growth "
        f"{m.growth_bytes / _MB:+.1f} MB (target < 50 MB: {'met' if m.growth_bytes < 50 * _MB else 'NOT met'}); "
        f"at most {m.peak_queued_windows} windows of features were queued"
    )


# --- side by side ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    name: str  # "a" | "b" | "c" | "d"
    label: str
    wall_seconds: float
    audio_seconds: float
    peak: Peak | None
    detail: str = ""

    @property
    def speed(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


@dataclass(frozen=True)
class MemoryCheck:
    """Does memory follow the queue? Peak RSS with a short and a long queue, and idle RSS before and after."""

    jobs: int
    short_jobs: int
    rss_before_bytes: int  # idle after the short queue (allocator caches trimmed)
    rss_short_peak_bytes: int  # peak while the short queue (a few batches per worker) ran
    rss_peak_bytes: int  # peak while ``jobs`` queued files ran
    rss_after_bytes: int  # idle after the long queue (allocator caches trimmed)
    peak_queued_windows: int
    exact: bool  # peaks from the kernel's high-water mark (Linux) rather than sampling

    @property
    def growth_bytes(self) -> int:
        """What the long queue left behind: idle RSS after it minus idle RSS before it."""
        return self.rss_after_bytes - self.rss_before_bytes

    @property
    def peak_growth_bytes(self) -> int:
        """How much higher the peak was with the long queue than with the short one."""
        return self.rss_peak_bytes - self.rss_short_peak_bytes


@dataclass(frozen=True)
class SideBySideRequest:
    files: tuple[Path, ...]
    model: str
    models_dir: Path
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 0  # 0: the physical core count
    options: DecodeOptions = BENCH_OPTIONS
    batch_size: int = 8  # (c)'s batch size: the settings' default, and the best measured on a 2-core CPU
    baseline_batch_size: int = 8  # (b)'s batch size
    encode_batch_size: int | None = None  # (c)'s encoder batch; None: the scheduler's default for the device
    floor_encode_sizes: tuple[int, ...] = (1, 2, 4, 8)
    floor_decode_sizes: tuple[int, ...] = (8, 16, 32)
    memory_jobs: int = 200
    memory_files: tuple[Path, ...] = ()  # short files cycled into ``memory_jobs`` jobs; default: generated
    repeat: int = (
        1  # runs of (a), (b), (c), interleaved; the fastest of each counts (a shared machine is noisy)
    )


@dataclass(frozen=True)
class SideBySideReport:
    model: str
    device: str
    compute_type: str
    audio_seconds: float
    files: int
    windows: int
    options: DecodeOptions
    runs: dict[str, RunResult]
    complete: bool
    problems: tuple[str, ...]
    memory: MemoryCheck | None
    tokens: dict[str, int] = field(default_factory=dict)  # tokens generated by (c) and (d), same work check
    layouts: dict[str, str] = field(default_factory=dict)  # how each run's model was laid out (threads)
    load_average: tuple[float, float] | None = None  # 1-min load at start and end: was the machine busy?

    def ratio(self, top: str, bottom: str) -> float:
        b = self.runs.get(bottom)
        t = self.runs.get(top)
        return t.speed / b.speed if t and b and b.speed > 0 else 0.0


def _fixed_clips(seconds: float) -> list[dict[str, float]]:
    return [{"start": s, "end": min(s + 30.0, seconds)} for s in np.arange(0.0, max(seconds, 0.01), 30.0)]


def _run_sequential(model: Any, files: Sequence[Path], options: DecodeOptions) -> float:
    audio = 0.0
    for path in files:
        segments, info = model.transcribe(str(path), **whisper_kwargs(options))
        for _ in segments:
            pass
        audio += info.duration
    return audio


def _run_batched_pipeline(
    model: Any, files: Sequence[Path], options: DecodeOptions, batch_size: int
) -> float:
    from faster_whisper import BatchedInferencePipeline
    from faster_whisper.audio import decode_audio

    pipeline = BatchedInferencePipeline(model)
    audio = 0.0
    for path in files:
        samples = decode_audio(str(path), sampling_rate=_SR)
        kwargs = whisper_kwargs(options)
        if not options.vad:
            kwargs["clip_timestamps"] = _fixed_clips(len(samples) / _SR)
        segments, info = pipeline.transcribe(
            samples, batch_size=batch_size, without_timestamps=False, **kwargs
        )
        for _ in segments:
            pass
        audio += info.duration
    return audio


def _load_average() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def run_side_by_side(
    request: SideBySideRequest,
    *,
    progress: BenchProgress | None = None,
    cancel: threading.Event | None = None,
) -> SideBySideReport:
    """(a) ``WhisperModel.transcribe`` file after file, (b) ``BatchedInferencePipeline`` file after file,
    (c) the scheduler over all files at once, (d) raw CTranslate2 encode + generate over (c)'s windows.

    Each path gets the model laid out as it runs best: (a) and (b) make one call at a time, so one
    CTranslate2 worker with every core; (c) runs ``load_for_batching``'s layout (on CPU two workers of half the
    cores, batches in parallel); (d) is the better of both layouts at its best batch sizes.
    """
    from whisperdesk.core.batching.decode import GenerateCall, default_generate
    from whisperdesk.core.batching.layout import cpu_batching_layout, load_for_batching, physical_cores
    from whisperdesk.core.batching.scheduler import BatchScheduler
    from whisperdesk.core.engine import Engine, resolve_device

    files = tuple(request.files)
    if not files:
        raise ValueError("the side-by-side benchmark needs files (or --synthetic MINUTES)")
    options = request.options
    load_start = _load_average()
    threads = request.cpu_threads or physical_cores()
    config = ModelConfig(
        model=request.model,
        device=request.device,
        compute_type=request.compute_type,
        batch_size=request.batch_size,
        cpu_threads=threads,
    )
    device = resolve_device(config)
    say = progress or (lambda _m, _f: None)
    say("loading the model", 0.0)
    plain = Engine(dataclasses.replace(config, device=device.device, batch_size=1), request.models_dir)
    plain.load()
    model_ab = plain.model()

    def batching_loader(cfg: ModelConfig, path: str, dev: Any) -> Any:
        if dev.device != "cpu":
            return model_ab  # one GPU worker either way: share the loaded model
        return load_for_batching(path, dev.device, dev.compute_type, cfg.cpu_threads)

    engine = Engine(
        dataclasses.replace(config, device=device.device), request.models_dir, loader=batching_loader
    )
    handle = engine.batch_handle()
    handle.encode_batch_size = request.encode_batch_size
    model_c = handle.model
    layouts = {
        "a": f"1 worker × {threads} threads" if device.device == "cpu" else "1 GPU worker",
        "b": f"1 worker × {threads} threads" if device.device == "cpu" else "1 GPU worker",
    }
    if device.device == "cpu":
        intra, workers = cpu_batching_layout(threads)
        layouts["c"] = f"{workers} workers × {intra} threads"
    else:
        layouts["c"] = "1 GPU worker"

    # (c)'s generate calls are recorded so (d) replays the very same prompts and options.
    calls: list[GenerateCall] = []
    tokens = {"c": 0, "d": 0}
    recording = [True]

    def recording_generate(call: GenerateCall) -> list[Any]:
        results = default_generate(call)
        if recording[0]:
            calls.append(dataclasses.replace(call, encoder_output=None))
            tokens["c"] += sum(len(r.sequences_ids[0]) for r in results)
        return results

    scheduler = BatchScheduler(generate_fn=recording_generate)
    runs: dict[str, RunResult] = {}
    problems: list[str] = []
    try:
        # Warm-up: VAD session, allocators and CTranslate2's kernels, so no path pays first-use costs.
        say("warming up", 0.02)
        warm = min(files, key=lambda p: p.stat().st_size)
        _run_sequential(model_ab, [warm], options)
        _run_batched_pipeline(model_ab, [warm], options, request.baseline_batch_size)
        scheduler.submit(handle, warm, options).result()
        calls.clear()
        tokens["c"] = 0

        transcripts: list[Any] = []

        def run_scheduler() -> float:
            first = not transcripts  # (d) replays the first repetition's windows and prompts
            recording[0] = first
            before = len(scheduler.history)
            futures = [scheduler.submit(handle, p, options, cancel=cancel) for p in files]
            total = 0.0
            done: list[Any] = []
            for path, fut in zip(files, futures, strict=True):
                try:
                    t = fut.result()
                except Exception as exc:
                    problems.append(f"(c) {path}: {type(exc).__name__}: {exc}")
                    done.append(None)
                    continue
                done.append((fut.job_id, t))
                total += t.duration
            problems.extend(_completeness(done, list(scheduler.history)[before:]))
            if first:
                transcripts.extend(done)
            recording[0] = False
            return total

        paths: list[tuple[str, str, Callable[[], float], str]] = [
            (
                "a",
                "WhisperModel.transcribe, file after file",
                lambda: _run_sequential(model_ab, files, options),
                layouts["a"],
            ),
            (
                "b",
                "BatchedInferencePipeline, file after file",
                lambda: _run_batched_pipeline(model_ab, files, options, request.baseline_batch_size),
                f"batch {request.baseline_batch_size}; {layouts['b']}",
            ),
            (
                "c",
                "WhisperDesk scheduler, all files queued",
                run_scheduler,
                f"batch {request.batch_size}, encoder batch {handle.encode_batch}; {layouts['c']}",
            ),
        ]
        walls: dict[str, list[float]] = {name: [] for name, *_ in paths}
        audio: dict[str, float] = {}
        peaks: dict[str, Peak | None] = {}
        repeat = max(1, request.repeat)
        for rep in range(repeat):  # interleaved, so a busy spell on a shared machine hits every path alike
            for step, (name, label, fn, _detail) in enumerate(paths):
                _check_cancel(cancel)
                say(
                    f"({name}) {label}" + (f", run {rep + 1} of {repeat}" if repeat > 1 else ""),
                    0.05 + 0.5 * (rep * len(paths) + step) / (repeat * len(paths)),
                )
                watch = _PeakWatch()
                with watch.watch():
                    began = time.monotonic()
                    audio[name] = fn()
                    walls[name].append(time.monotonic() - began)
                previous = peaks.get(name)
                if watch.result is not None and (
                    previous is None or watch.result.rss_bytes > previous.rss_bytes
                ):
                    peaks[name] = watch.result
        for name, label, _fn, detail in paths:
            best = min(walls[name])
            if repeat > 1:
                detail += f"; best of {repeat}: {', '.join(f'{w:.1f}' for w in walls[name])} s"
            runs[name] = RunResult(name, label, best, audio[name], peaks.get(name), detail)
            log.info("bench %s: %.1f s audio in %.2f s", name, audio[name], best)
        windows = sum(int(t.extra.get("windows", 0)) for _job, t in (x for x in transcripts if x is not None))

        say("(d) floor: raw CTranslate2 encode + generate", 0.55)
        source_of = {job_id: t.source for job_id, t in (x for x in transcripts if x is not None)}
        prompts: dict[tuple[str, int], list[int]] = {}
        for call in calls:
            for (job_id, index), prompt in zip(call.members, call.prompts, strict=True):
                if job_id in source_of:
                    prompts[(source_of[job_id], index)] = prompt
        kwargs = calls[0].kwargs if calls else {}
        floor = _floor(
            [
                (model_ab, 1, layouts["a"]),
                *([(model_c, handle.workers, layouts["c"])] if model_c is not model_ab else []),
            ],
            files,
            options,
            prompts,
            kwargs,
            request,
            cancel,
            tokens,
        )
        runs["d"] = floor
        layouts["d"] = floor.detail.split(";")[0]

        memory = None
        if request.memory_jobs > 0:
            say(f"memory: {request.memory_jobs} short files queued at once", 0.9)
            with _memo_files(request.memory_files) as sources:
                memory = memory_check(scheduler, handle, sources, request.memory_jobs, options, cancel=cancel)
    finally:
        scheduler.close()
    say("done", 1.0)
    load_end = _load_average()
    return SideBySideReport(
        model=request.model,
        device=device.device,
        compute_type=handle.compute_type,
        audio_seconds=runs["c"].audio_seconds,
        files=len(files),
        windows=windows,
        options=options,
        runs=runs,
        complete=not problems,
        problems=tuple(problems),
        memory=memory,
        tokens=dict(tokens),
        layouts=layouts,
        load_average=(load_start, load_end) if load_start is not None and load_end is not None else None,
    )


def _completeness(transcripts: list[Any], history: Sequence[Any]) -> list[str]:
    """Every (c) job got each of its windows decoded exactly once and its segments back in file order.

    With several workers a file's windows may be decoded by two batches at once; the scheduler hands them
    back in window order, which shows as segments that never go back in time.
    """
    problems: list[str] = []
    seen: dict[int, list[int]] = {}
    for info in history:
        for job_id, index in info.first_decodes:
            seen.setdefault(job_id, []).append(index)
    for item in transcripts:
        if item is None:
            continue
        job_id, transcript = item
        expected = list(range(int(transcript.extra.get("windows", 0))))
        if sorted(seen.get(job_id, [])) != expected:
            problems.append(
                f"(c) {transcript.source}: windows decoded {seen.get(job_id)} instead of {expected}"
            )
        starts = [s.start for s in transcript.segments]
        if starts != sorted(starts):
            problems.append(f"(c) {transcript.source}: segments out of order")
        if any(
            s.start < 0 or s.end > transcript.duration + 0.01 or s.end < s.start for s in transcript.segments
        ):
            problems.append(f"(c) {transcript.source}: a segment lies outside the file")
    return problems


def _floor(
    models: Sequence[tuple[Any, int, str]],
    files: Sequence[Path],
    options: DecodeOptions,
    prompts: dict[tuple[str, int], list[int]],
    kwargs: dict[str, Any],
    request: SideBySideRequest,
    cancel: threading.Event | None,
    tokens: dict[str, int],
) -> RunResult:
    """Encode and generate (c)'s windows with nothing around them: for each (model, workers, layout) the
    fastest encoder and decoder batch sizes, the windows split evenly over the workers; the best wins."""
    from whisperdesk.core.batching.scheduler import default_decode
    from whisperdesk.core.batching.windows import plan_windows, window_features

    extractor = models[0][0].feature_extractor
    features: dict[tuple[str, int], np.ndarray] = {}
    audio_seconds = 0.0
    for path in files:
        samples = default_decode(path)
        audio_seconds += len(samples) / _SR
        plan, pieces = plan_windows(samples, options)
        for span, piece in zip(plan.spans, pieces, strict=True):
            features[(str(path), span.index)] = window_features(extractor, piece)
    order = list(features)
    missing = [k for k in order if k not in prompts]
    if missing:
        raise RuntimeError(
            f"(c) did not decode {len(missing)} windows, e.g. {missing[0]}; no floor to compare"
        )
    feats = np.stack([features[k] for k in order])
    prompt_list = [prompts[k] for k in order]
    del features

    best: tuple[float, str] | None = None
    details = []
    for model, workers, layout in models:
        _check_cancel(cancel)
        seconds, detail, produced = _floor_one(model, workers, feats, prompt_list, kwargs, request, cancel)
        details.append(f"{layout}: {detail}")
        if best is None or seconds < best[0]:
            best = (seconds, layout)
            tokens["d"] = produced
    assert best is not None
    return RunResult(
        "d",
        "floor: raw CTranslate2 encode + generate",
        best[0],
        audio_seconds,
        None,
        f"best {best[1]}; " + "; ".join(details),
    )


def _floor_one(
    model: Any,
    workers: int,
    feats: np.ndarray,
    prompts: list[list[int]],
    kwargs: dict[str, Any],
    request: SideBySideRequest,
    cancel: threading.Event | None,
) -> tuple[float, str, int]:
    """Best encode + generate time for one model layout; returns (seconds, what was best, tokens)."""
    import ctranslate2

    n = len(feats)
    lanes = [list(range(i, n, workers)) for i in range(workers)]  # windows dealt out like cards

    def encode_lane(lane: list[int], size: int, out: dict[int, np.ndarray]) -> None:
        for i in range(0, len(lane), size):
            idx = lane[i : i + size]
            result = model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[idx])))
            rows = np.asarray(result)
            for k, j in enumerate(idx):
                out[j] = rows[k].copy()

    def generate_lane(
        lane: list[int],
        size: int,
        encoded: dict[int, np.ndarray],
        produced: list[int],
        barrier: threading.Barrier,
    ) -> None:
        batches = [lane[i : i + size] for i in range(0, len(lane), size)]
        inputs = [ctranslate2.StorageView.from_array(np.stack([encoded[j] for j in b])) for b in batches]
        barrier.wait()
        for b, enc in zip(batches, inputs, strict=True):
            results = model.model.generate(enc, [prompts[j] for j in b], **kwargs)
            produced[0] += sum(len(r.sequences_ids[0]) for r in results)

    def in_lanes(target: Callable[..., None], *args: Any) -> float:
        threads = [threading.Thread(target=target, args=(lane, *args)) for lane in lanes]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - began

    encode_times: dict[int, float] = {}
    encoded: dict[int, np.ndarray] = {}
    for size in request.floor_encode_sizes:
        _check_cancel(cancel)
        out: dict[int, np.ndarray] = {}
        encode_times[size] = in_lanes(encode_lane, size, out)
        encoded = out
    generate_times: dict[int, float] = {}
    generated: dict[int, int] = {}
    for size in request.floor_decode_sizes:
        _check_cancel(cancel)
        produced = [0]
        barrier = threading.Barrier(workers + 1)
        threads = [
            threading.Thread(target=generate_lane, args=(lane, size, encoded, produced, barrier))
            for lane in lanes
        ]
        for t in threads:
            t.start()
        barrier.wait()  # inputs are built; time the generate calls only
        began = time.perf_counter()
        for t in threads:
            t.join()
        generate_times[size] = time.perf_counter() - began
        generated[size] = produced[0]
    enc_size = min(encode_times, key=encode_times.__getitem__)
    gen_size = min(generate_times, key=generate_times.__getitem__)
    detail = (
        f"encode batch {enc_size} ({', '.join(f'{k}: {v:.1f} s' for k, v in encode_times.items())}), "
        f"generate batch {gen_size} ({', '.join(f'{k}: {v:.1f} s' for k, v in generate_times.items())})"
    )
    return encode_times[enc_size] + generate_times[gen_size], detail, generated[gen_size]


class _HighWater:
    """Peak RSS of a stretch of code: Linux's VmHWM reset through clear_refs (exact), else 5-ms sampling."""

    def __init__(self) -> None:
        self.exact = _reset_high_water()

    @contextmanager
    def measure(self) -> Iterator[list[int]]:
        """Yields a one-element list that holds the peak once the block ends."""
        result = [0]
        if self.exact and _reset_high_water():
            yield result
            result[0] = _high_water() or 0
            return
        watch = _PeakWatch(interval_ms=5, settle=False)
        with watch.watch():
            yield result
        result[0] = watch.result.rss_bytes if watch.result else 0


def _settle_heap() -> None:
    """Collect garbage and hand glibc's cached free memory back, so idle RSS shows what is really held.

    Without this, idle RSS after a run swings by hundreds of MB with what the allocator keeps cached from
    the last batch's beam-search buffers, hiding (or faking) a leak.
    """
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def memory_check(
    scheduler: Any,
    handle: Any,
    sources: Sequence[Path],
    jobs: int,
    options: DecodeOptions,
    *,
    cancel: threading.Event | None = None,
) -> MemoryCheck:
    """Queue ``jobs`` jobs (cycling ``sources``) at once and compare with a short queue.

    The short queue holds four batches per worker, enough for every worker to reach its biggest working set
    (a full batch in beam search), so a higher peak with the long queue would be memory that follows the
    number of queued files. Idle RSS before and after shows what the long queue left behind.
    """
    import psutil

    if not sources:
        raise ValueError("memory_check needs at least one source file")
    proc = psutil.Process()
    water = _HighWater()

    def run(count: int) -> None:
        futures = [
            scheduler.submit(handle, sources[i % len(sources)], options, cancel=cancel) for i in range(count)
        ]
        for fut in futures:
            fut.result()

    per_round = int(handle.batch_size) * int(getattr(handle, "workers", 1))
    run(max(per_round, len(sources)))  # first use: allocator pools, CTranslate2's per-shape buffers
    short = max(4 * per_round, len(sources))
    with water.measure() as short_peak:
        run(short)
    _settle_heap()
    before = proc.memory_info().rss
    with water.measure() as long_peak:
        run(jobs)
    _settle_heap()
    after = proc.memory_info().rss
    return MemoryCheck(
        jobs, short, before, short_peak[0], long_peak[0], after, scheduler.peak_queued_windows, water.exact
    )


def format_side_by_side(report: SideBySideReport) -> str:
    o = report.options
    lines = [
        f"model {report.model} ({report.compute_type}) on {report.device}; {report.files} files, "
        f"{report.audio_seconds / 60:.1f} min of audio, {report.windows} windows; beam {o.beam_size}, temperature "
        f"{','.join(f'{t:g}' for t in o.temperature)}, language {o.language or 'auto'}, max new tokens "
        f"{o.max_new_tokens or 'none'}, VAD {'on' if o.vad else 'off'}",
        "",
        f"{'run':<4}{'what':<46}{'wall s':>8}{'audio s/s':>11}{'peak RSS':>11}{'peak VRAM':>11}  detail",
    ]
    for name in ("a", "b", "c", "d"):
        r = report.runs.get(name)
        if r is None:
            continue
        peak = r.peak
        lines.append(
            f"({name}) {r.label:<45}{r.wall_seconds:>8.1f}{r.speed:>11.1f}"
            f"{_mb(peak.rss_bytes if peak else None):>11}{_mb(peak.vram_bytes if peak else None):>11}  {r.detail}"
        )
    ca, cb, cd = report.ratio("c", "a"), report.ratio("c", "b"), report.ratio("c", "d")
    lines += [
        "",
        f"c/a = {ca:.2f} (target >= 2.5: {'met' if ca >= 2.5 else 'NOT met'})",
        f"c/b = {cb:.2f} (target >= 1.4: {'met' if cb >= 1.4 else 'NOT met'})",
        f"c/d = {cd:.2f} (target >= 0.85: {'met' if cd >= 0.85 else 'NOT met'})",
        f"every job complete and in order: {'yes' if report.complete else 'NO'}",
    ]
    lines += [f"  problem: {p}" for p in report.problems[:10]]
    if report.load_average is not None:
        lines.append(
            f"machine load (1-min average) {report.load_average[0]:.2f} at start, {report.load_average[1]:.2f} at "
            "end: figures from a busy machine are low and noisy"
        )
    if report.tokens.get("c"):
        lines.append(f"tokens generated: (c) {report.tokens['c']}, (d) {report.tokens.get('d', 0)}")
    if report.memory is not None:
        lines.append(_memory_line(report.memory))
    return "\n".join(lines)
