"""Queue latency side by side: the latency order of the batch scheduler against today's arrival order.

Issue 17's targets, measured through the app's own path (the job store, the queue loop with the app's job
threads for the batch size, the engine's one scheduler, transcripts written) on espeak-ng speech:

  late memo   a 12-minute talk runs; an 11-s memo is added ``--add-after`` seconds later. Its time from
              being queued to done, against the same memo alone, and the mean batch time (target: within
              2× alone + one batch)
  four files  1:43, 0:34, 0:11 and 0:18 queued together: the order and times they finish in (target: the
              shortest first)
  corpus      a mixed corpus (whisperdesk.benchmark.corpus, ``--corpus-minutes``) queued at once: total wall
              time (target: within 5 % of the arrival order's)
  cancel      the talk is canceled ``--cancel-after`` seconds into a batch, at batch 8 and 16: seconds from
              the click to the row saying Canceled, and to the model being free of the job's batch
  progress    a ``--progress-minutes`` talk alone: the longest gap between progress reports, and how far the
              ETA (the job table's: remaining audio at the pace since the first decoded work) swings between
              one-second samples once 20 % is done (target: ±25 %)

    nice -n 19 python -m bench.latency --model base            # all four, both orders
    python -m bench.latency --model tiny.en --only four,cancel  # a quick look

Figures depend on the machine's load: record them in BENCHMARKS.md with the conditions they were taken in.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from whisperdesk.core.jobstore import CANCELED, DONE, FINISHED_STATES, JobEvent, JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.queue.enqueue import enqueue
from whisperdesk.core.queue.loop import QueueLoop
from whisperdesk.core.queue.workers import workers_for
from whisperdesk.core.settings import ModelConfig, Settings

SCENARIOS = ("memo", "four", "corpus", "cancel", "progress")
FOUR = (103.0, 34.0, 11.0, 18.0)


class QueueRun:
    """One temporary queue run by the app's loop; records when each job was queued and when it ended."""

    def __init__(self, engine: Any, settings: Settings, folder: Path) -> None:
        self.store = JobStore(folder / "jobs.db")
        self.settings = settings
        self.recorded = job_settings(settings, output_dir=folder / "out")
        self.queued: dict[int, float] = {}
        self.ended: dict[int, tuple[float, str]] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.store.add_listener(self._on_event)
        processor = JobProcessor(self.store, engine, OutputLedger(folder / "ledger.json"), lambda: settings)
        self.loop = QueueLoop(self.store, processor, workers=workers_for(engine.config.batch_size))

    def _on_event(self, event: JobEvent) -> None:
        job = event.job
        if job is not None and job.state in FINISHED_STATES:
            with self.changed:
                self.ended.setdefault(job.id, (time.monotonic(), job.state))
                self.changed.notify_all()

    def add(self, path: Path) -> int:
        job = enqueue(self.store, path, self.recorded).job
        assert job is not None, path
        self.queued[job.id] = time.monotonic()
        return job.id

    def wait(self, ids: Sequence[int], timeout: float = 7200.0) -> None:
        with self.changed:
            self.changed.wait_for(lambda: all(i in self.ended for i in ids), timeout)

    def took(self, job_id: int) -> float:
        return self.ended[job_id][0] - self.queued[job_id]

    def close(self) -> None:
        self.loop.stop()
        self.store.close()


def _engine(model: str, batch_size: int, order: str, threads: int) -> Any:
    from whisperdesk.core.engine import Engine

    config = ModelConfig(
        model=model, device="cpu", compute_type="int8", batch_size=batch_size, cpu_threads=threads
    )
    engine = Engine(config, AppPaths.default().cache_dir / "models", scheduler_order=order)
    engine.model()
    return engine


def _run(engine: Any, settings: Settings, body: Callable[[QueueRun], dict[str, Any]]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="whisperdesk-latency-") as tmp:
        run = QueueRun(engine, settings, Path(tmp))
        run.loop.start()
        try:
            return body(run)
        finally:
            run.close()


def late_memo(engine: Any, settings: Settings, talk: Path, memo: Path, add_after: float) -> dict[str, Any]:
    batches: list[Any] = []
    engine.scheduler.add_batch_listener(batches.append)

    def alone(run: QueueRun) -> dict[str, Any]:
        job = run.add(memo)
        run.wait([job])
        return {"memo_alone_s": round(run.took(job), 2)}

    def together(run: QueueRun) -> dict[str, Any]:
        long_job = run.add(talk)
        time.sleep(add_after)
        first = len(batches)
        job = run.add(memo)
        run.wait([job, long_job])
        during = batches[first:]
        per_batch = [b.encode_seconds + b.generate_seconds for b in during]
        return {
            "memo_with_talk_s": round(run.took(job), 2),
            "talk_s": round(run.took(long_job), 2),
            "batch_mean_s": round(statistics.mean(per_batch), 2) if per_batch else None,
            "batch_max_s": round(max(per_batch), 2) if per_batch else None,
        }

    out = _run(engine, settings, alone)
    out.update(_run(engine, settings, together))
    out["target_s"] = (
        round(2 * out["memo_alone_s"] + out["batch_mean_s"], 2) if out["batch_mean_s"] is not None else None
    )
    return out


def four_files(engine: Any, settings: Settings, files: dict[float, Path]) -> dict[str, Any]:
    def body(run: QueueRun) -> dict[str, Any]:
        ids = {run.add(path): seconds for seconds, path in files.items()}
        run.wait(list(ids))
        order = sorted(ids, key=lambda i: run.ended[i][0])
        return {
            "finish_order": [ids[i] for i in order],
            "finished_s": {f"{ids[i]:g}": round(run.took(i), 2) for i in order},
        }

    return _run(engine, settings, body)


def corpus(engine: Any, settings: Settings, files: Sequence[Path]) -> dict[str, Any]:
    def body(run: QueueRun) -> dict[str, Any]:
        started = time.monotonic()
        ids = [run.add(p) for p in files]
        run.wait(ids)
        states = [run.ended[i][1] for i in ids]
        return {
            "corpus_total_s": round(time.monotonic() - started, 2),
            "all_done": states == [DONE] * len(ids),
        }

    return _run(engine, settings, body)


def cancel_worst(engine: Any, settings: Settings, talk: Path, into_batch: float) -> dict[str, Any]:
    """Cancel the talk ``into_batch`` seconds after a batch of it started (its generate is then in flight)."""
    ended: list[float] = []
    engine.scheduler.add_batch_listener(lambda _info: ended.append(time.monotonic()))

    def body(run: QueueRun) -> dict[str, Any]:
        job = run.add(talk)
        while len(ended) < 1:  # one batch done: the next one starts at once
            time.sleep(0.01)
        time.sleep(into_batch)
        seen = len(ended)
        clicked = time.monotonic()
        run.loop.cancel(job)
        run.wait([job], 600)
        while engine.scheduler.in_flight():
            time.sleep(0.01)
        free = time.monotonic()
        state = run.ended[job][1]
        return {
            "canceled_after_s": round(run.ended[job][0] - clicked, 3),
            "model_free_after_s": round(free - clicked, 3),
            "batches_after_click": len(ended) - seen,
            "state": state,
            "ok": state == CANCELED,
        }

    return _run(engine, settings, body)


def progress_steadiness(engine: Any, talk: Path) -> dict[str, Any]:
    from whisperdesk.core.settings import DecodeOptions

    reports: list[tuple[float, float, float]] = []
    started = time.monotonic()
    engine.transcribe(
        talk, DecodeOptions(), progress=lambda done, total: reports.append((time.monotonic(), done, total))
    )
    ended = time.monotonic()
    moving = [r for r in reports if r[1] > 0]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(moving)]
    since, base = moving[0][0], moving[0][1]
    total = reports[-1][2]
    etas: list[tuple[float, float]] = []  # (fraction done, ETA) once a second, as the job table shows it
    at, i = since + 1.0, 0
    while at < ended:
        while i + 1 < len(moving) and moving[i + 1][0] <= at:
            i += 1
        done = moving[i][1]
        if done > base and at - since >= 0.5:
            etas.append((done / total, (total - done) / ((done - base) / (at - since))))
        at += 1.0
    late = [(f, e) for f, e in etas if f >= 0.2]
    swings = [abs(b[1] - a[1]) / a[1] for a, b in itertools.pairwise(late) if a[1] > 1.0]
    return {
        "job_s": round(ended - started, 2),
        "reports": len(reports),
        "longest_gap_s": round(max(gaps), 2) if gaps else None,
        "eta_max_swing": round(max(swings), 3) if swings else None,
        "eta_swings_over_25pct": sum(1 for x in swings if x > 0.25),
        "eta_samples": len(swings),
    }


def main(argv: list[str] | None = None) -> int:
    from whisperdesk.benchmark.corpus import synthetic_corpus
    from whisperdesk.core.batching.layout import physical_cores
    from whisperdesk.devtools.real_models import fetch
    from whisperdesk.devtools.speech_corpus import build_speech_of_length

    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", help="tiny.en, base or a model folder")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--talk-minutes", type=float, default=12.0)
    parser.add_argument("--add-after", type=float, default=20.0, help="seconds before the memo is added")
    parser.add_argument("--corpus-minutes", type=float, default=4.0)
    parser.add_argument("--cancel-after", type=float, default=1.0, help="seconds into a batch to cancel")
    parser.add_argument("--progress-minutes", type=float, default=3.0)
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"some of {','.join(SCENARIOS)}")
    parser.add_argument("--orders", default="latency,arrival")
    parser.add_argument("--cpu-threads", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    wanted = set(args.only.split(","))
    model = args.model if Path(args.model).is_dir() else str(fetch(args.model))
    threads = args.cpu_threads or physical_cores()
    cache = AppPaths.default().cache_dir / "bench-latency"
    talk = build_speech_of_length(cache, args.talk_minutes * 60, first=0).path
    files = {s: build_speech_of_length(cache, s, first=100 + 17 * i).path for i, s in enumerate(FOUR)}
    mixed = [f.path for f in synthetic_corpus(cache / "corpus", args.corpus_minutes, seed=0)]
    report: dict[str, Any] = {"model": args.model, "batch_size": args.batch_size, "threads": threads}
    for order in args.orders.split(","):
        engine = _engine(model, args.batch_size, order, threads)
        settings = Settings(model=engine.config)
        results: dict[str, Any] = {}
        try:
            if "memo" in wanted:
                results["memo"] = late_memo(engine, settings, talk, files[11.0], args.add_after)
                print(order, "memo", json.dumps(results["memo"]), flush=True)
            if "four" in wanted:
                results["four"] = four_files(engine, settings, files)
                print(order, "four", json.dumps(results["four"]), flush=True)
            if "corpus" in wanted:
                results["corpus"] = corpus(engine, settings, mixed)
                print(order, "corpus", json.dumps(results["corpus"]), flush=True)
            if "progress" in wanted and order == "latency":
                steady = build_speech_of_length(cache, args.progress_minutes * 60, first=40).path
                results["progress"] = progress_steadiness(engine, steady)
                print(order, "progress", json.dumps(results["progress"]), flush=True)
        finally:
            engine.close()
        if "cancel" in wanted and order == "latency":
            for size in (8, 16):
                eng = _engine(model, size, order, threads)
                try:
                    result = cancel_worst(eng, Settings(model=eng.config), talk, args.cancel_after)
                finally:
                    eng.close()
                results[f"cancel_b{size}"] = result
                print(order, f"cancel batch {size}", json.dumps(result), flush=True)
        report[order] = results
    if "corpus" in wanted and {"latency", "arrival"} <= set(report):
        a, b = report["latency"]["corpus"]["corpus_total_s"], report["arrival"]["corpus"]["corpus_total_s"]
        report["corpus_ratio"] = round(a / b, 3)
        print(f"corpus total: latency/arrival = {report['corpus_ratio']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
