"""Running the compute type × batch size table on the app's own path (``whisperdesk bench``, Tools →
Benchmark): each row queues the files for the job processor on the app's number of job threads over a
model loaded as the app loads it; the window runs this through services, never itself.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from whisperdesk.benchmark.app_path import run_app_path
from whisperdesk.benchmark.matrix import BenchReport, BenchRequest, BenchRow, recommend
from whisperdesk.benchmark.memory import MemoryCheck, PeakWatch, memory_check
from whisperdesk.benchmark.wer import Score, score, total
from whisperdesk.core.errors import Cancelled, WhisperDeskError
from whisperdesk.core.queue.workers import workers_for
from whisperdesk.core.settings import DecodeOptions, ModelConfig, Settings

log = logging.getLogger(__name__)

BenchProgress = Callable[[str, float], None]  # (what is running, fraction of the whole run done)


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def score_texts(texts: Mapping[Path, str], references: Mapping[Path, str]) -> Score | None:
    """Corpus WER of the files whose text is known; None when none is. A missing transcript counts as
    every reference word deleted."""
    known = {os.path.abspath(p): t for p, t in references.items()}
    if not known:
        return None
    got = {os.path.abspath(p): t for p, t in texts.items()}
    return total(score(ref, got.get(path, "")) for path, ref in known.items())


def run_matrix(
    request: BenchRequest, *, progress: BenchProgress | None = None, cancel: threading.Event | None = None
) -> BenchReport:
    """Time every supported compute type × batch size over ``request.files``; raises Cancelled if canceled."""
    from whisperdesk.core.engine import resolve_device, supported_compute_types

    if not request.files:
        raise ValueError("the benchmark needs at least one file (or --synthetic MINUTES)")
    base = ModelConfig(
        model=request.model, device=request.device, compute_type="default", cpu_threads=request.cpu_threads
    )
    resolved = resolve_device(base)
    supported = supported_compute_types(resolved.device)
    say = progress or (lambda _m, _f: None)
    steps = max(1, len(request.compute_types) * len(request.batch_sizes))
    rows: list[BenchRow] = []
    last: Any = None
    for compute_type in request.compute_types:
        check_cancel(cancel)
        if compute_type not in supported:
            why = (
                f"{resolved.device} does not support {compute_type} "
                f"(CTranslate2 offers {', '.join(sorted(supported)) or 'nothing'} here)"
            )
            rows += [BenchRow(compute_type, b, "skipped", why) for b in request.batch_sizes]
            continue
        config = dataclasses.replace(base, device=resolved.device, compute_type=compute_type)
        models = _Models(config, request)
        _warm_up(models, request, cancel)
        for batch_size in request.batch_sizes:
            check_cancel(cancel)
            say(f"{compute_type}, batch {batch_size}", len(rows) / steps)
            rows.append(_row(models, batch_size, request, cancel))
        last = models.last_engine
    memory = None
    if request.memory_jobs > 0 and last is not None:
        check_cancel(cancel)
        say(f"memory: {request.memory_jobs} short files queued at once", 0.99)
        memory = app_memory_check(last, request.options, request.memory_files, request.memory_jobs, cancel)
    say("done", 1.0)
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


class _Models:
    """One loaded model per layout (on CPU one worker for batch 1, the batching layout above it; on a GPU
    one model for all), reused across the batch sizes of a compute type, with the time its load took."""

    def __init__(self, config: ModelConfig, request: BenchRequest) -> None:
        self._config = config
        self._request = request
        self._loaded: dict[bool, tuple[Any, float]] = {}
        self.last_engine: Any = None

    @property
    def compute_type(self) -> str:
        return self._config.compute_type

    def engine(self, batch_size: int) -> tuple[Any, float]:
        """An Engine at ``batch_size`` over the shared model; raises WhisperDeskError if it cannot load."""
        from whisperdesk.core.engine import Engine

        batching = batch_size > 1 and self._config.device == "cpu"  # a GPU runs one layout: share it
        if batching not in self._loaded:
            loader = Engine(
                dataclasses.replace(self._config, batch_size=8 if batching else 1),
                self._request.models_dir,
                local_files_only=self._request.local_files_only,
            )
            started = time.monotonic()
            loader.load()
            self._loaded[batching] = (loader.model(), time.monotonic() - started)
        model, seconds = self._loaded[batching]
        engine = Engine(
            dataclasses.replace(self._config, batch_size=batch_size),
            self._request.models_dir,
            loader=lambda *_args: model,
        )
        self.last_engine = engine
        return engine, seconds


def _warm_up(models: _Models, request: BenchRequest, cancel: threading.Event | None) -> None:
    """One short file first, untimed, so the first row does not pay for VAD, allocator pools and
    CTranslate2's kernels."""
    try:
        engine, _seconds = models.engine(request.batch_sizes[0])
    except WhisperDeskError:
        return  # the row reports the load failure
    smallest = min(request.files, key=lambda p: p.stat().st_size)
    try:
        run_app_path(engine, Settings(model=engine.config, decode=request.options), [smallest], cancel=cancel)
    finally:
        engine.close()


def _row(models: _Models, batch_size: int, request: BenchRequest, cancel: threading.Event | None) -> BenchRow:
    compute_type = models.compute_type
    try:
        engine, load_seconds = models.engine(batch_size)
    except WhisperDeskError as exc:
        return BenchRow(compute_type, batch_size, "failed", f"model load failed: {exc}")
    settings = Settings(model=engine.config, decode=request.options)
    watch = PeakWatch()
    try:
        with watch.watch():
            began = time.monotonic()
            run = run_app_path(engine, settings, request.files, cancel=cancel)
            wall = time.monotonic() - began
    except Cancelled:
        raise
    except Exception as exc:  # e.g. CUDA out of memory that even the CPU copy could not absorb
        log.exception("benchmark row %s × %d failed", compute_type, batch_size)
        return BenchRow(compute_type, batch_size, "failed", f"{type(exc).__name__}: {exc}")
    finally:
        engine.close()
    peak = watch.result
    ok = len(run.texts)
    return BenchRow(
        compute_type,
        batch_size,
        "ok" if ok else "failed",
        "; ".join(run.failed[:3]),
        run.audio_seconds,
        wall,
        load_seconds,
        peak.rss_bytes if peak else None,
        peak.vram_bytes if peak else None,
        ok,
        len(run.failed),
        run.workers,
        score_texts(run.texts, request.references),
    )


def app_memory_check(
    engine: Any,
    options: DecodeOptions,
    sources: Sequence[Path],
    jobs: int,
    cancel: threading.Event | None,
) -> MemoryCheck:
    """Peak and idle RSS with ``jobs`` distinct short files queued on the app's path, against a short
    queue of four jobs per job thread (at most a quarter of ``jobs``): on the app's path only that many jobs
    are in flight whatever the queue's length, so a higher peak with the long queue is memory that follows
    the queue. Distinct copies, because the queue runs a file only once."""
    import tempfile

    from whisperdesk.benchmark.corpus import short_memos

    settings = Settings(model=engine.config, decode=options)
    short = max(1, min(4 * workers_for(engine.config.batch_size), jobs // 4))
    with tempfile.TemporaryDirectory(prefix="whisperdesk-memos-") as tmp:
        memos = list(sources) or [f.path for f in short_memos(Path(tmp))]
        copies = _distinct_copies(memos, jobs, Path(tmp) / "copies")

        def run(count: int) -> None:
            check_cancel(cancel)
            run_app_path(engine, settings, copies[:count], cancel=cancel)

        try:
            return memory_check(run, jobs, short)
        finally:
            engine.close()


def _distinct_copies(sources: Sequence[Path], count: int, folder: Path) -> list[Path]:
    """``count`` files cycling ``sources``, each copy with one sample changed so no two have equal content."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    loaded = [soundfile.read(str(p), dtype="int16", always_2d=False) for p in sources]
    paths = []
    for i in range(count):
        samples, rate = loaded[i % len(loaded)]
        copy = samples.copy()
        copy[0] = i % 30000  # inaudible, and makes the content (the queue's identity) unique
        path = folder / f"memo-{i:04d}.wav"
        soundfile.write(str(path), copy, rate, subtype="PCM_16")
        paths.append(path)
    return paths
