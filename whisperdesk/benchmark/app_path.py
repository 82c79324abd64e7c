"""Files through the app's own path: queued by the app's one enqueue rule, claimed and run by the app's
queue loop (the one ``whisperdesk watch`` runs; the window's runner drives the same claim-and-run) on as
many job threads as the app uses for the batch size, transcripts written.

The benchmark times this and not the scheduler fed every file at once (issue 10): that measured a path no
user runs, and recommended a setting by it. The store and outputs live in a temporary folder per run, so a
benchmark never touches the user's queue or transcripts, and runs of the same files never deduplicate.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisperdesk.core.errors import Cancelled
from whisperdesk.core.jobstore import DONE, Job, JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.queue.enqueue import enqueue
from whisperdesk.core.queue.loop import QueueLoop
from whisperdesk.core.queue.workers import workers_for
from whisperdesk.core.settings import Settings


@dataclass(frozen=True)
class PathRun:
    audio_seconds: float
    texts: dict[Path, str] = field(hash=False)  # transcript text by source, for WER
    failed: tuple[str, ...] = ()  # "source: reason" of files not queued or jobs that did not end done
    workers: int = 1


def run_app_path(
    engine: Any,
    settings: Settings,
    files: Sequence[Path],
    *,
    workers: int | None = None,
    cancel: threading.Event | None = None,
) -> PathRun:
    """Queue ``files`` and run them like the app does; ``workers`` defaults to the app's count.

    Raises Cancelled when ``cancel`` is set, and the engine's error when the queue had to pause for it.
    """
    threads = workers or workers_for(engine.config.batch_size)
    formats = tuple(dict.fromkeys(("txt", *settings.output.formats)))  # txt: the text WER reads
    settings = dataclasses.replace(settings, output=dataclasses.replace(settings.output, formats=formats))
    with tempfile.TemporaryDirectory(prefix="whisperdesk-bench-") as tmp:
        store = JobStore(Path(tmp) / "jobs.db")
        try:
            recorded = job_settings(settings, output_dir=Path(tmp) / "out")
            queued = [enqueue(store, path, recorded) for path in files]
            refused = [f"{q.path}: {q.reason}" for q in queued if q.job is None]
            processor = JobProcessor(store, engine, OutputLedger(Path(tmp) / "ledger.json"), lambda: settings)
            finals = _run_queue(store, processor, threads, sum(q.created for q in queued), cancel)
            return _collect(finals, refused, threads)
        finally:
            store.close()


def _run_queue(
    store: JobStore, processor: JobProcessor, threads: int, expected: int, cancel: threading.Event | None
) -> list[Job]:
    """Run the app's queue loop until ``expected`` jobs have ended (or it pauses, or ``cancel``)."""
    finals: list[Job] = []
    lock = threading.Lock()
    ended = threading.Event()

    def finished(job: Job) -> None:
        with lock:
            finals.append(job)
            if len(finals) >= expected:
                ended.set()

    def paused(_exc: BaseException) -> None:
        ended.set()

    if expected == 0:
        return finals
    loop = QueueLoop(store, processor, workers=threads, on_finished=finished, on_error=paused)
    loop.start()
    try:
        while not ended.wait(0.05):
            if cancel is not None and cancel.is_set():
                break
    finally:
        loop.stop()  # running jobs (only after a cancel) go back to the temporary queue
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    if loop.error is not None:
        raise loop.error
    return finals


def _collect(finals: list[Job], refused: list[str], workers: int) -> PathRun:
    texts: dict[Path, str] = {}
    failed = list(refused)
    audio = 0.0
    for job in finals:
        if job.state != DONE:
            failed.append(f"{job.source}: {job.error or job.state}")
            continue
        audio += job.duration or 0.0
        txt = next((Path(p) for p in job.outputs if str(p).endswith(".txt")), None)
        texts[job.source] = txt.read_text(encoding="utf-8") if txt else ""
    return PathRun(audio, texts, tuple(failed), workers)
