"""The queue answers at once (issue 17): which job finishes first, cancel that stops now, progress after it.

Orders and events only, never wall-clock limits: the timings are in ``bench/latency.py`` and BENCHMARKS.md.
The finishing orders run on real weights (tiny.en, espeak-ng speech); the cancel plumbing on the
random-weight micro model (it asserts no text).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from whisperdesk.core.batching.decode import GenerateCall, default_generate
from whisperdesk.core.batching.layout import ModelHandle, load_for_batching
from whisperdesk.core.batching.scheduler import BatchInfo, BatchScheduler, default_decode
from whisperdesk.core.batching.windows import plan_windows
from whisperdesk.core.errors import Cancelled
from whisperdesk.core.settings import DecodeOptions
from whisperdesk.devtools.synth_audio import noise, tone

FAST = DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=8)
LENGTHS = (103.0, 34.0, 11.0, 18.0)  # the four files, queued in this order


@pytest.fixture(scope="module")
def memos(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    from whisperdesk.devtools.speech_corpus import build_speech_of_length

    folder = tmp_path_factory.mktemp("memos")
    return {s: build_speech_of_length(folder, s, first=i * 30).path for i, s in enumerate(LENGTHS)}


@pytest.fixture(scope="module")
def tiny_batching(tiny_en_model: Path) -> Any:
    """tiny.en in the layout the app loads for batching (two CTranslate2 workers on CPU)."""
    return load_for_batching(str(tiny_en_model), "cpu", "int8")


@pytest.fixture
def schedulers() -> Iterator[Callable[..., BatchScheduler]]:
    made: list[BatchScheduler] = []

    def make(**kw: Any) -> BatchScheduler:
        made.append(BatchScheduler(**kw))
        return made[-1]

    yield make
    for scheduler in made:
        scheduler.close()


def _planned(path: Path, options: DecodeOptions) -> int:
    return len(plan_windows(default_decode(path), options)[0].spans)


def _finish_order(
    scheduler: BatchScheduler, handle: ModelHandle, files: dict[float, Path], options: DecodeOptions
) -> list[float]:
    """Queue ``files`` together (all windows cut before the first batch) and return their finishing order."""
    order: list[float] = []
    lock = threading.Lock()
    expected = sum(_planned(p, options) for p in files.values())
    futures = []
    with scheduler.held():
        for seconds, path in files.items():
            future = scheduler.submit(handle, path, options)
            future.add_done_callback(lambda _f, s=seconds: (lock.acquire(), order.append(s), lock.release()))
            futures.append(future)
        while scheduler.queued_windows() < expected:
            threading.Event().wait(0.02)
    for future in futures:
        assert future.result(timeout=600).segments
    return order


@pytest.mark.slow
def test_four_files_started_together_finish_shortest_first(
    tiny_en_model: Path, memos: dict[float, Path], schedulers: Callable[..., BatchScheduler]
) -> None:
    """1:43, 0:34, 0:11 and 0:18 queued in that order: the 11-s memo first, the 1:43 talk last. One model
    worker and one CPU-stage thread make the batches run one after another, so the order is exact; today's
    arrival order (kept for the benchmark) finishes the talk first on the same setup."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(tiny_en_model), device="cpu", compute_type="int8", cpu_threads=2)
    handle = ModelHandle(model, "cpu", "int8", "tiny.en", 2)
    assert handle.workers == 1
    options = DecodeOptions(beam_size=1)
    assert _finish_order(schedulers(cpu_workers=1), handle, memos, options) == sorted(LENGTHS)
    arrival = _finish_order(schedulers(cpu_workers=1, order="arrival"), handle, memos, options)
    assert arrival[0] == 103.0


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from whisperdesk.devtools.speech_corpus import build_speech_of_length

    return build_speech_of_length(tmp_path_factory.mktemp("talk"), 360.0, first=70).path


@pytest.mark.slow
def test_a_memo_added_while_a_long_recording_runs_takes_the_next_batch(
    tiny_batching: Any, memos: dict[float, Path], talk: Path, schedulers: Callable[..., BatchScheduler]
) -> None:
    """The 11-s memo goes into the first batch that starts after it is queued: at most the batches already
    in flight (one per worker) finish before its own, while the talk's queued windows wait behind it."""
    handle = ModelHandle(tiny_batching, "cpu", "int8", "tiny.en", 2)
    assert handle.workers == 2
    options = DecodeOptions(beam_size=1)
    done_batches: list[BatchInfo] = []
    scheduler = schedulers(on_batch=done_batches.append)
    long_job = scheduler.submit(handle, talk, options)
    while not done_batches:
        threading.Event().wait(0.02)
    with scheduler.held():  # no batch starts until the memo's window is queued: the count below is exact
        before = len(done_batches)
        assert scheduler.queued_windows(long_job.job_id) > handle.batch_size  # the talk's windows wait
        memo = scheduler.submit(handle, memos[11.0], options)
        while not scheduler.queued_windows(memo.job_id):
            threading.Event().wait(0.02)
    assert memo.result(timeout=600).segments
    long_job.result(timeout=600)
    memo_batch = next(i for i, b in enumerate(done_batches) if memo.job_id in b.job_ids)
    assert memo_batch <= before + handle.workers  # only the batches in flight (indices before..) came first
    assert [b for b in done_batches[memo_batch + 1 :] if long_job.job_id in b.job_ids]


# --- cancel ---------------------------------------------------------------------------------------------
def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    return (noise(seconds, amplitude=0.2, seed=seed) + tone(220.0, seconds, amplitude=0.2)).astype(np.float32)


def test_cancel_ends_the_job_while_its_only_batch_is_still_being_decoded(whisper_model_dir: Path) -> None:
    """The cancel is answered before the generate in flight returns (its result is discarded), the job's
    queued windows leave the queue, and no progress is reported after the flag is set."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(whisper_model_dir), device="cpu", compute_type="int8", cpu_threads=1)
    events: list[str] = []
    in_flight = threading.Event()
    answered = threading.Event()

    def generate(call: GenerateCall) -> list[Any]:
        events.append("generate started")
        in_flight.set()
        answered.wait(60)  # the scheduler must answer the cancel while this batch is still running
        result = default_generate(call)
        events.append("generate returned")
        return result

    scheduler = BatchScheduler(cpu_workers=1, generate_fn=generate)
    cancel = threading.Event()
    progress: list[tuple[bool, float]] = []
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            scheduler.transcribe(
                ModelHandle(model, "cpu", "int8", "micro", 2),
                "long",
                FAST,
                audio=_audio(200.0),
                progress=lambda done, _t: progress.append((cancel.is_set(), done)),
                cancel=cancel,
            )
        except BaseException as exc:
            outcome.append(exc)
        events.append("job ended")
        answered.set()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert in_flight.wait(60)
        queued = scheduler.queued_windows()
        cancel.set()
        worker.join(120)
        assert isinstance(outcome[0], Cancelled)
        in_flight.clear()
        scheduler.wake()
        assert scheduler.queued_windows() == 0 and queued > 0
        assert scheduler.live_jobs() == 0
    finally:
        answered.set()
        scheduler.close()
    assert events.index("job ended") < events.index("generate returned")
    assert events.count("generate started") == 1  # nothing of the job was decoded after the cancel
    assert not [done for after, done in progress if after]
    dones = [done for _after, done in progress]
    assert dones == sorted(dones)
