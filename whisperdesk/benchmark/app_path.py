"""Files through the app's own path: queued in a job store, claimed and run by the job processor on as
many job threads as the app uses, transcripts written — what a user's batch of recordings goes through.

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
from whisperdesk.core.jobstore import DONE, JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.processor import JobProcessor, job_settings
from whisperdesk.core.settings import Settings


def app_workers(batch_size: int) -> int:
    """The app's job threads for this batch size — its own rule, imported, never restated here.

    It lives in services/job_runner.py today (imports Qt); the pipeline work moves it into the core.
    """
    from whisperdesk.services.job_runner import workers_for

    return workers_for(batch_size)


@dataclass(frozen=True)
class PathRun:
    audio_seconds: float
    texts: dict[Path, str] = field(hash=False)  # transcript text by source, for WER
    failed: tuple[str, ...] = ()  # "source: reason" of jobs that did not end done
    workers: int = 1


def run_app_path(
    engine: Any,
    settings: Settings,
    files: Sequence[Path],
    *,
    workers: int | None = None,
    cancel: threading.Event | None = None,
) -> PathRun:
    """Queue ``files`` and run them like the app does; ``workers`` defaults to the app's count."""
    threads = workers or app_workers(engine.config.batch_size)
    cancel = cancel or threading.Event()
    formats = tuple(dict.fromkeys(("txt", *settings.output.formats)))  # txt: the text WER reads
    settings = dataclasses.replace(settings, output=dataclasses.replace(settings.output, formats=formats))
    with tempfile.TemporaryDirectory(prefix="whisperdesk-bench-") as tmp:
        store = JobStore(Path(tmp) / "jobs.db")
        try:
            recorded = job_settings(settings, output_dir=Path(tmp) / "out")
            for path in files:
                store.add(path, recorded, force=True)
            processor = JobProcessor(store, engine, OutputLedger(Path(tmp) / "ledger.json"), lambda: settings)
            finals = _drain(store, processor, threads, cancel)
            if cancel.is_set():
                raise Cancelled()
            return _collect(finals, threads)
        finally:
            store.close()


def _drain(store: JobStore, processor: JobProcessor, threads: int, cancel: threading.Event) -> list[Any]:
    """Each job thread claims and runs jobs until none is queued, as the app's runner does. An engine
    error stops the claiming (jobs in flight finish) and is raised here; the caller's cancel is not set."""
    finals: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()

    def work() -> None:
        try:
            while not (cancel.is_set() or stop.is_set()):
                job = store.claim_next()
                if job is None:
                    return
                final = processor.process(job, cancel=cancel)
                with lock:
                    finals.append(final)
        except BaseException as exc:  # an engine error: re-raised in the caller's thread
            with lock:
                errors.append(exc)
            stop.set()

    pool = [threading.Thread(target=work, name=f"bench-job-{i}") for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return finals


def _collect(finals: list[Any], workers: int) -> PathRun:
    texts: dict[Path, str] = {}
    failed: list[str] = []
    audio = 0.0
    for job in finals:
        if job.state != DONE:
            failed.append(f"{job.source}: {job.error or job.state}")
            continue
        audio += job.duration or 0.0
        txt = next((Path(p) for p in job.outputs if str(p).endswith(".txt")), None)
        texts[job.source] = txt.read_text(encoding="utf-8") if txt else ""
    return PathRun(audio, texts, tuple(failed), workers)
