"""The batch scheduler behind the one shared model: windows from several files share each encode + generate.

Why it exists: one CTranslate2 model runs its calls one after another, so a thread pool around
``WhisperModel.transcribe`` barely helps, and faster-whisper's batched pipeline batches within one file only
(short voice memos give it batches of one or two). Here

* a **CPU stage** (``cpu_workers`` threads) decodes each file, runs Silero VAD, cuts ≤ 30-s windows and
  computes their log-mel features into a **bounded** prefetch queue (memory does not grow with the queue:
  at most ``prefetch_windows`` windows of features plus the files being cut are held);
* an **inference stage** (one thread per CTranslate2 worker of the model) packs windows of every queued file
  whose decoding options are compatible (same model, beam size, temperatures, token budget, initial prompt)
  into batches of the handle's batch size, runs one encode + one generate per batch with a per-window prompt
  (so files in different languages share a batch), and hands the segments back to each job in window order,
  with progress and cancellation. On CPU a batch is encoded window by window as it fills (the encoder is
  fastest one window at a time there) and the last windows of a queue are split evenly over the workers.

Decoding reuses faster-whisper's own functions (``get_prompt``, ``_split_segments_by_timestamps``,
``generate_with_fallback``, ``add_word_timestamps``, ``restore_speech_timestamps``); the semantics are those of
``BatchedInferencePipeline`` (windows decoded independently, no conditioning on the previous window) plus the
temperature fallback of the sequential path for the windows that need it.

Faults: a file that fails (decode, or its windows in a batch) fails alone; the rest of its batch is retried
without it. A CUDA out-of-memory error halves the batch (down to 1), then moves that job to a CPU copy of the
model; every step is logged and every job ends with a transcript or an error.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from whisperdesk.core.errors import Cancelled, ConfigError, ModelError, UnreadableFileError, WhisperDeskError
from whisperdesk.core.settings import DecodeOptions
from whisperdesk.core.transcript import Segment, Transcript, Word
from whisperdesk.core.windows import WindowPlan, iter_features, plan_windows

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, float], None]

# faster-whisper's defaults for what DecodeOptions does not expose; the sequential path uses the same values.
BEST_OF = 5
PATIENCE = 1.0
LENGTH_PENALTY = 1.0
REPETITION_PENALTY = 1.0
NO_REPEAT_NGRAM_SIZE = 0
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
MAX_INITIAL_TIMESTAMP = 1.0
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
MAX_LENGTH = 448  # Whisper's decoder context

# Measured on a 2-core CPU with a tiny-shaped model (BENCHMARKS.md): the encoder is fastest one window at a
# time while beam search wants big batches. GPUs encode the whole batch at once.
CPU_ENCODE_BATCH = 1
DEFAULT_MAX_WAIT_S = 2.0  # a partial batch waits this long for more windows while files are still being cut
MAX_STREAMS = 8  # inference threads at most, one per CTranslate2 worker of the model


def physical_cores() -> int:
    try:
        import psutil

        return int(psutil.cpu_count(logical=False) or os.cpu_count() or 1)
    except Exception:  # psutil cannot read the topology in some sandboxes
        return os.cpu_count() or 1


def cpu_batching_layout(cpu_threads: int = 0) -> tuple[int, int]:
    """(intra_threads, workers) for a CPU model that serves the scheduler: two workers, half the cores each.

    Measured on a 2-core CPU with a tiny-shaped model (BENCHMARKS.md): two single-threaded CTranslate2 workers
    running two batches at once did encode + beam-5 generate ~20 % faster than one worker with two threads
    (beam search's many small per-step ops scale poorly across threads), and they leave no OpenMP threads
    spinning at barriers against the CPU stage. ``cpu_threads`` 0 means the physical core count.
    """
    cores = cpu_threads if cpu_threads > 0 else physical_cores()
    workers = 2 if cores >= 2 else 1
    return max(1, cores // workers), workers


def load_for_batching(model_path: str, device: str, compute_type: str, cpu_threads: int = 0) -> Any:
    """A ``WhisperModel`` laid out for the scheduler: on CPU ``cpu_batching_layout``; on GPU one worker."""
    from faster_whisper import WhisperModel

    if device == "cpu":
        intra, workers = cpu_batching_layout(cpu_threads)
        return WhisperModel(
            model_path, device="cpu", compute_type=compute_type, cpu_threads=intra, num_workers=workers
        )
    return WhisperModel(
        model_path, device=device, compute_type=compute_type, cpu_threads=cpu_threads, num_workers=1
    )


def default_cpu_workers() -> int:
    """Two CPU-stage threads, up to one per two cores (at most four).

    The CPU stage is ~20× cheaper than inference overall, but at the start a long file's VAD would keep the
    model waiting; a second thread cuts the next files meanwhile. Once the prefetch queue is full both sleep.
    """
    return max(2, min(4, (os.cpu_count() or 2) // 2))


# --- public types ----------------------------------------------------------------------------------------
@dataclass(eq=False)
class ModelHandle:
    """A loaded ``faster_whisper.WhisperModel`` with what the scheduler needs to know about it.

    ``cpu_fallback`` builds a CPU copy of the same model; it is called at most once, when even a single
    window runs out of GPU memory.
    """

    model: Any
    device: str
    compute_type: str
    label: str
    batch_size: int
    encode_batch_size: int | None = None  # None: the whole batch on GPU, CPU_ENCODE_BATCH on CPU
    cpu_fallback: Callable[[], ModelHandle] | None = None
    _tokenizers: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False)
    _prompt_tokens: dict[str | None, list[int]] = field(default_factory=dict, repr=False)

    @property
    def encode_batch(self) -> int:
        if self.encode_batch_size is not None:
            return max(1, self.encode_batch_size)
        return self.batch_size if self.device == "cuda" else CPU_ENCODE_BATCH

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    @property
    def workers(self) -> int:
        """CTranslate2 workers (``inter_threads``): how many batches this model can run at once."""
        return max(1, min(MAX_STREAMS, int(getattr(self.model.model, "num_workers", 1) or 1)))

    def tokenizer(self, task: str, language: str | None) -> Any:
        key = (task, language)
        tok = self._tokenizers.get(key)
        if tok is None:
            from faster_whisper.tokenizer import Tokenizer

            tok = Tokenizer(self.model.hf_tokenizer, self.multilingual, task=task, language=language)
            self._tokenizers[key] = tok
        return tok

    def prompt_tokens(self, initial_prompt: str | None) -> list[int]:
        if initial_prompt not in self._prompt_tokens:
            tok = self.tokenizer("transcribe", "en" if self.multilingual else None)
            self._prompt_tokens[initial_prompt] = (
                tok.encode(" " + initial_prompt.strip()) if initial_prompt and initial_prompt.strip() else []
            )
        return self._prompt_tokens[initial_prompt]


@dataclass(frozen=True)
class BatchKey:
    """Windows share a batch only when all of these are equal; language and task are per-window prompts."""

    model_id: int
    beam_size: int
    temperatures: tuple[float, ...]
    max_new_tokens: int | None
    initial_prompt: str | None


@dataclass(frozen=True)
class BatchInfo:
    """What one encode + generate call contained; for tests, the bench and logs."""

    number: int
    key: BatchKey
    device: str
    members: tuple[tuple[int, int], ...]  # (job id, window index), in batch order
    sources: tuple[str, ...]  # the source of each member
    encode_seconds: float
    generate_seconds: float

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def job_ids(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(j for j, _ in self.members))


@dataclass(frozen=True)
class GenerateCall:
    """Everything one batched ``generate`` gets; the seam tests use to observe or inject faults."""

    model: Any  # faster_whisper.WhisperModel
    encoder_output: Any  # ctranslate2.StorageView
    prompts: list[list[int]]
    kwargs: dict[str, Any]
    members: tuple[tuple[int, int], ...]
    device: str


GenerateFn = Callable[[GenerateCall], list[Any]]


def default_generate(call: GenerateCall) -> list[Any]:
    return list(call.model.model.generate(call.encoder_output, call.prompts, **call.kwargs))


class JobFuture(concurrent.futures.Future):  # type: ignore[type-arg]
    """A ``Future[Transcript]`` that also says which job it is (ids appear in ``BatchInfo.members``)."""

    def __init__(self, job_id: int, source: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.source = source


def is_out_of_memory(exc: BaseException) -> bool:
    """CTranslate2 reports CUDA OOM as ``RuntimeError("CUDA failed with error out of memory")``."""
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def default_decode(path: Path) -> np.ndarray:
    """WhisperDesk's decoder (clear AudioError messages); faster-whisper's if that module is not built."""
    try:
        from whisperdesk.core.audio import decode
    except ImportError:
        from faster_whisper.audio import decode_audio

        try:
            return np.asarray(decode_audio(str(path), sampling_rate=16000), dtype=np.float32)
        except Exception as exc:  # PyAV raises many types; the user needs the file and the reason
            raise UnreadableFileError(
                path, f"{path}: cannot decode audio ({type(exc).__name__}: {exc}); check the file plays"
            ) from exc
    return decode(path)


# --- internals -----------------------------------------------------------------------------------------
class _Job:
    def __init__(
        self,
        job_id: int,
        handle: ModelHandle,
        source: str,
        options: DecodeOptions,
        audio: np.ndarray | None,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
    ) -> None:
        self.id = job_id
        self.handle = handle
        self.source = source
        self.options = options
        self.audio = audio
        self.progress = progress
        self.cancel = cancel
        self.future = JobFuture(job_id, source)
        self.started = time.monotonic()
        self.done = False
        self.plan: WindowPlan | None = None
        self.total: int | None = None
        self.delivered = 0
        self.segments: dict[int, list[Segment]] = {}
        self.language: str | None = options.language
        self.language_probability: float | None = 1.0 if options.language else None
        self.last_speech_timestamp = 0.0
        self.notes: list[str] = []
        self.lock = threading.Lock()  # delivery may come from several inference streams
        self.end_times: dict[int, float] = {}
        self.reported = 0  # windows 0..reported-1 have been reported in order
        self.first_taken = False  # window 0 is in a batch (its language is being detected)

    def key(self) -> BatchKey:
        o = self.options
        return BatchKey(
            id(self.handle.model), o.beam_size, tuple(o.temperature), o.max_new_tokens, o.initial_prompt
        )

    def canceled(self) -> bool:
        return (self.cancel is not None and self.cancel.is_set()) or self.future.cancelled()

    def report(self, done: float, total: float) -> None:
        if self.progress is None:
            return
        try:
            self.progress(done, total)
        except Exception:  # an observer must never break a job
            log.exception("progress callback failed for %s", self.source)


@dataclass(eq=False)
class _Window:
    job: _Job
    index: int
    features: np.ndarray
    offset: float
    duration: float
    end_time: float
    ready_at: float
    encoded: np.ndarray | None = None  # encoder output, when encoded while its batch was being gathered
    encode_seconds: float = 0.0


@dataclass
class _Decoded:
    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    temperature: float


class _StorageHolder:
    """Keeps numpy buffers alive as long as the StorageViews built on them."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []


def _as_numpy(storage: Any) -> np.ndarray:
    if str(storage.device) != "cpu":
        import ctranslate2

        storage = storage.to_device(ctranslate2.Device.cpu)
    return np.asarray(storage)


def _storage(array: np.ndarray, holder: _StorageHolder) -> Any:
    import ctranslate2

    array = np.ascontiguousarray(array)
    holder.arrays.append(array)
    return ctranslate2.StorageView.from_array(array)


def _select(encoder_output: Any, indices: Sequence[int], holder: _StorageHolder) -> Any:
    """Rows ``indices`` of a batch's encoder output (for per-file word alignment and per-window fallback)."""
    if list(indices) == list(range(int(encoder_output.shape[0]))):
        return encoder_output
    return _storage(_as_numpy(encoder_output)[list(indices)], holder)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


class BatchScheduler:
    """Packs ≤ 30-s windows from several files into shared batches; one per engine. Thread-safe.

    ``submit`` returns at once with a :class:`JobFuture`; ``transcribe`` blocks and runs the progress
    callback on the calling thread. Threads start on first use and are daemons; ``close`` stops them.
    """

    def __init__(
        self,
        *,
        cpu_workers: int | None = None,
        prefetch_windows: int = 32,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        generate_fn: GenerateFn = default_generate,
        decode_fn: Callable[[Path], np.ndarray] = default_decode,
        on_batch: Callable[[BatchInfo], None] | None = None,
        history: int = 2_000,
    ) -> None:
        if prefetch_windows < 1:
            raise ValueError(f"prefetch_windows must be 1 or more, got {prefetch_windows}")
        self._cpu_workers = cpu_workers if cpu_workers is not None else default_cpu_workers()
        if self._cpu_workers < 1:
            raise ValueError(f"cpu_workers must be 1 or more, got {cpu_workers}")
        self._prefetch = prefetch_windows
        self._max_wait = max_wait_s
        self._generate = generate_fn
        self._decode = decode_fn
        self._listeners: list[Callable[[BatchInfo], None]] = [on_batch] if on_batch else []
        self._cond = threading.Condition()
        self._pending: deque[_Job] = deque()
        self._windows: deque[_Window] = deque()
        self._live: dict[int, _Job] = {}
        self._preparing = 0
        self._holds = 0
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._streams = 0
        self._busy: dict[int, int] = {}  # model id -> batches in flight
        self._flights: dict[int, list[Any]] = {}  # inference thread -> [model id, windows, started]
        self._pace: dict[int, float] = {}  # model id -> seconds per window on one worker, latest batch
        self._ids = itertools.count(1)
        self._batch_numbers = itertools.count(1)
        self._oom_limits: dict[int, int] = {}
        self._cpu_twins: dict[int, ModelHandle | None] = {}
        self._twin_lock = threading.Lock()
        self.history: deque[BatchInfo] = deque(maxlen=history)
        self.peak_queued_windows = 0

    # --- public API -------------------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[BatchInfo], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[BatchInfo], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def submit(
        self,
        handle: ModelHandle,
        source: Path | str,
        options: DecodeOptions,
        *,
        audio: np.ndarray | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> JobFuture:
        """Queue one file (or its already decoded 16-kHz ``audio``); callbacks run on scheduler threads."""
        options.validate()
        job = _Job(next(self._ids), handle, str(source), options, audio, progress, cancel)
        with self._cond:
            if self._closing:
                raise RuntimeError("the batch scheduler is closed")
            self._ensure_threads_locked(handle.workers)
            self._pending.append(job)
            self._live[job.id] = job
            self._cond.notify_all()
        return job.future

    def transcribe(
        self,
        handle: ModelHandle,
        source: Path | str,
        options: DecodeOptions,
        *,
        audio: np.ndarray | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> Transcript:
        """Blocking form of ``submit``: waits, calling ``progress`` on this thread; raises what the job raised."""
        events: queue.SimpleQueue[tuple[float, float] | None] = queue.SimpleQueue()
        relay = (lambda done, total: events.put((done, total))) if progress else None
        future = self.submit(handle, source, options, audio=audio, progress=relay, cancel=cancel)
        future.add_done_callback(lambda _f: events.put(None))
        while True:
            try:
                item = events.get(timeout=0.25)
            except queue.Empty:
                item = None
            if item is not None and progress is not None:
                progress(*item)
            elif future.done():
                while progress is not None:  # progress events that arrived before completion
                    try:
                        late = events.get_nowait()
                    except queue.Empty:
                        break
                    if late is not None:
                        progress(*late)
                return future.result()
            if cancel is not None and cancel.is_set():
                self.wake()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No batch starts inside this block (the CPU stage still prefetches): lets callers queue a set first."""
        with self._cond:
            self._holds += 1
        try:
            yield
        finally:
            with self._cond:
                self._holds -= 1
                self._cond.notify_all()

    def wake(self) -> None:
        """Make the threads look at cancel flags now rather than at their next poll."""
        with self._cond:
            self._cond.notify_all()

    def queued_windows(self) -> int:
        with self._cond:
            return len(self._windows)

    def live_jobs(self) -> int:
        with self._cond:
            return len(self._live)

    def close(self, timeout: float = 30.0) -> None:
        """Cancel what is still queued, let the batch in flight finish, and stop the threads."""
        with self._cond:
            self._closing = True
            doomed = [j for j in self._live.values() if not j.done]
            self._cond.notify_all()
        for job in doomed:
            self._fail(job, Cancelled())
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    # --- threads ----------------------------------------------------------------------------------------
    def _ensure_threads_locked(self, streams: int) -> None:
        started: list[threading.Thread] = []
        if not self._threads:
            for i in range(self._cpu_workers):
                started.append(
                    threading.Thread(
                        target=self._prepare_loop, name=f"whisperdesk-prepare-{i + 1}", daemon=True
                    )
                )
        while self._streams < streams:
            self._streams += 1
            started.append(
                threading.Thread(
                    target=self._inference_loop, name=f"whisperdesk-inference-{self._streams}", daemon=True
                )
            )
        self._threads += started
        for thread in started:
            thread.start()

    def _prepare_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                job = self._pending.popleft()
                self._preparing += 1
            try:
                if not job.done:
                    self._prepare(job)
            except BaseException as exc:  # every job ends with a result or an error, never silently
                if not isinstance(exc, Cancelled | WhisperDeskError):
                    log.exception("preparing %s failed", job.source)
                self._fail(job, exc)
            finally:
                with self._cond:
                    self._preparing -= 1
                    self._cond.notify_all()

    def _inference_loop(self) -> None:
        while True:
            with self._cond:
                resolved = self._sweep_locked()
                batch: list[_Window] | None = None
                if not resolved:
                    if self._closing:
                        return
                    batch, timeout = self._take_batch_locked()
                    if batch is None:
                        self._cond.wait(timeout)
                        continue
                    self._cond.notify_all()  # room in the prefetch queue again
            for job, exc in resolved:
                self._resolve(job, exc)
            if not batch:
                continue
            handle = batch[0].job.handle
            model_id = id(handle.model)
            try:
                if handle.encode_batch < self._limit(handle):
                    batch = self._gather(handle, batch)
                self._run_batch(batch)
            except BaseException as exc:  # a bug here must not leave the batch's jobs waiting forever
                log.exception("batch failed unexpectedly")
                for job in dict.fromkeys(w.job for w in batch):
                    self._fail(job, exc)
            finally:
                with self._cond:
                    self._busy[model_id] -= 1
                    self._flights.pop(threading.get_ident(), None)
                    self._cond.notify_all()

    # --- CPU stage --------------------------------------------------------------------------------------
    def _prepare(self, job: _Job) -> None:
        if job.canceled():
            raise Cancelled()
        job.started = time.monotonic()
        audio = job.audio if job.audio is not None else self._decode(Path(job.source))
        job.audio = None
        if job.canceled():
            raise Cancelled()
        self._check_language(job)
        plan, pieces = plan_windows(audio, job.options)
        del audio
        job.plan = plan
        job.total = len(plan.spans)
        job.report(0.0, plan.duration)
        if job.total == 0:
            self._finish(job)
            return
        extractor = job.handle.model.feature_extractor
        for span, features in zip(plan.spans, iter_features(extractor, pieces), strict=True):
            window = _Window(job, span.index, features, span.offset, span.duration, span.end_time, 0.0)
            with self._cond:
                while len(self._windows) >= self._prefetch and not job.done and not self._closing:
                    if job.canceled():
                        break
                    self._cond.wait(0.1)
                if job.done or self._closing:
                    return
                if job.canceled():
                    raise Cancelled()
                window.ready_at = time.monotonic()
                self._windows.append(window)
                self.peak_queued_windows = max(self.peak_queued_windows, len(self._windows))
                self._cond.notify_all()

    def _check_language(self, job: _Job) -> None:
        language = job.options.language
        if not job.handle.multilingual:
            if language not in (None, "en"):
                log.warning("%s: the model is English-only; transcribing %r as English", job.source, language)
            job.language, job.language_probability = "en", 1.0
            return
        if language is not None:
            from faster_whisper.tokenizer import _LANGUAGE_CODES

            if language not in _LANGUAGE_CODES:
                raise ConfigError(
                    f"{job.source}: language {language!r} is not one Whisper knows; use a code such as "
                    "en, de or fr, or leave it empty to detect the language"
                )

    # --- inference stage: choosing a batch -------------------------------------------------------------
    def _sweep_locked(self) -> list[tuple[_Job, BaseException]]:
        """Finish canceled jobs and drop their queued windows; returns the futures to resolve (outside the lock)."""
        resolved: list[tuple[_Job, BaseException]] = []
        for job in list(self._live.values()):
            if not job.done and job.canceled():
                self._mark_done_locked(job)
                resolved.append((job, Cancelled()))
        if resolved or any(w.job.done for w in self._windows):
            self._windows = deque(w for w in self._windows if not w.job.done)
            self._pending = deque(j for j in self._pending if not j.done)
            self._cond.notify_all()
        return resolved

    def _limit(self, handle: ModelHandle) -> int:
        return max(1, min(handle.batch_size, self._oom_limits.get(id(handle.model), handle.batch_size)))

    def _tail_share_locked(self, handle: ModelHandle, mine_and_waiting: int) -> int:
        """The last windows of a queue: split them so that every worker finishes at about the same time.

        Another worker's batch counts with the windows it still has to do (estimated from the running pace),
        so a batch about to finish does not make this worker take everything, nor a fresh one nothing.
        """
        model_id = id(handle.model)
        pace = self._pace.get(model_id)
        now = time.monotonic()
        me = threading.get_ident()
        others = 0.0
        for thread, (flight_model, size, started) in self._flights.items():
            if thread == me or flight_model != model_id:
                continue
            others += size if not pace else max(0.0, size - (now - started) / pace)
        return max(1, math.ceil((mine_and_waiting + others) / handle.workers))

    @staticmethod
    def _tail_limit(handle: ModelHandle, limit: int, share: int) -> int:
        """On CPU a last batch may grow by half rather than leave a small straggler batch for later (on a GPU
        the batch size is a memory limit and is kept)."""
        stretch = math.ceil(1.5 * limit) if handle.device == "cpu" else limit
        return max(1, min(share, stretch) if share <= stretch else min(limit, share))

    @staticmethod
    def _pickable(window: _Window, picked_jobs: set[int]) -> bool:
        """A later window of a file whose language is still unknown waits for its first window's batch."""
        job = window.job
        if job.language is not None or window.index == 0 or id(job) in picked_jobs:
            return True
        return not job.first_taken

    def _take_batch_locked(self) -> tuple[list[_Window] | None, float | None]:
        busy_timeout = 0.1 if self._live else None
        if self._holds or not self._windows:
            return None, busy_timeout
        head: _Window | None = None
        for window in self._windows:  # oldest window whose model has a free worker
            handle = window.job.handle
            if self._busy.get(id(handle.model), 0) < handle.workers and self._pickable(window, set()):
                head = window
                break
        if head is None:
            return None, busy_timeout
        key = head.job.key()
        handle = head.job.handle
        limit = self._limit(handle)
        producers_busy = bool(self._pending) or self._preparing > 0
        if not producers_busy and handle.workers > 1:
            waiting = sum(1 for w in self._windows if w.job.key() == key)
            limit = self._tail_limit(handle, limit, self._tail_share_locked(handle, waiting))
        if handle.encode_batch < limit:  # CPU: start encoding now and grow the batch meanwhile (_gather)
            picked = self._pick_locked(key, limit, set())
        else:
            candidates = [w for w in self._windows if w.job.key() == key][:limit]
            now = time.monotonic()
            ready = (
                len(candidates) >= limit
                or not producers_busy
                or len(self._windows) >= self._prefetch
                or now - head.ready_at >= self._max_wait
            )
            if not ready:
                return None, max(0.005, min(0.1, head.ready_at + self._max_wait - now))
            picked = self._pick_locked(key, limit, set())
        self._busy[id(handle.model)] = self._busy.get(id(handle.model), 0) + 1
        self._flights[threading.get_ident()] = [id(handle.model), len(picked), time.monotonic()]
        return picked, None

    def _pick_locked(self, key: BatchKey, limit: int, picked_jobs: set[int]) -> list[_Window]:
        """Take up to ``limit`` queued windows with ``key``, oldest first."""
        picked: list[_Window] = []
        for window in self._windows:
            if len(picked) >= limit:
                break
            if window.job.key() == key and self._pickable(window, picked_jobs):
                picked.append(window)
                picked_jobs.add(id(window.job))
        if picked:
            chosen = set(map(id, picked))
            self._windows = deque(w for w in self._windows if id(w) not in chosen)
            for window in picked:
                if window.index == 0:
                    window.job.first_taken = True
        return picked

    # --- inference stage: running a batch ---------------------------------------------------------------
    def _run_batch(self, windows: list[_Window]) -> None:
        windows = [w for w in windows if not w.job.done]
        if not windows:
            return
        groups: dict[BatchKey, list[_Window]] = {}
        for w in windows:  # a job moved to the CPU no longer matches the rest of its old batch
            groups.setdefault(w.job.key(), []).append(w)
        if len(groups) > 1:
            for group in groups.values():
                self._run_batch(group)
            return
        handle = windows[0].job.handle
        holder = _StorageHolder()
        try:
            encoder_output, decoded = self._decode_batch(handle, windows, holder)
        except Exception as exc:
            if is_out_of_memory(exc):
                self._recover_from_oom(handle, windows, exc)
                return
            jobs = list(dict.fromkeys(w.job for w in windows))
            if len(jobs) == 1:
                if not isinstance(exc, WhisperDeskError):
                    log.error("%s failed in a batch: %s: %s", jobs[0].source, type(exc).__name__, exc)
                self._fail(jobs[0], exc)
                return
            log.warning(
                "a batch of %d windows from %d files failed (%s: %s); retrying each file on its own",
                len(windows),
                len(jobs),
                type(exc).__name__,
                exc,
            )
            for job in jobs:
                self._run_batch([w for w in windows if w.job is job])
            return
        self._deliver(handle, windows, encoder_output, decoded, holder)

    def _recover_from_oom(self, handle: ModelHandle, windows: list[_Window], exc: BaseException) -> None:
        model_id = id(handle.model)
        if len(windows) > 1:
            half = (len(windows) + 1) // 2
            self._oom_limits[model_id] = min(self._oom_limits.get(model_id, half), half)
            log.warning(
                "out of memory in a batch of %d windows on %s (%s); retrying in batches of %d, and using at most "
                "%d from now on",
                len(windows),
                handle.device,
                exc,
                half,
                half,
            )
            start = 0
            while start < len(windows):
                size = self._limit(handle)
                self._run_batch(windows[start : start + size])
                start += size
            return
        job = windows[0].job
        twin = self._cpu_twin(handle)
        if twin is None:
            self._fail(
                job,
                ModelError(
                    f"{job.source}: out of memory on {handle.device} even for a single 30-s window ({exc}); "
                    "close other programs using the GPU, or choose a smaller model or compute type"
                ),
            )
            return
        note = (
            f"out of memory on {handle.device} even for one window; finished on the CPU ({twin.compute_type})"
        )
        log.warning("%s: %s", job.source, note)
        job.notes.append(note)
        job.handle = twin
        self._run_batch(windows)

    def _cpu_twin(self, handle: ModelHandle) -> ModelHandle | None:
        model_id = id(handle.model)
        with self._twin_lock:
            return self._cpu_twin_locked(handle, model_id)

    def _cpu_twin_locked(self, handle: ModelHandle, model_id: int) -> ModelHandle | None:
        if model_id not in self._cpu_twins:
            twin = None
            if handle.cpu_fallback is not None and handle.device != "cpu":
                log.warning("loading a CPU copy of %s for jobs that do not fit in GPU memory", handle.label)
                try:
                    twin = handle.cpu_fallback()
                except Exception:
                    log.exception("could not load a CPU copy of %s", handle.label)
            self._cpu_twins[model_id] = twin
        return self._cpu_twins[model_id]

    def _encode_ahead(self, handle: ModelHandle, windows: list[_Window]) -> None:
        """Encode windows in the encoder's own batch size, keeping each output on its window (CPU)."""
        step = handle.encode_batch
        for start in range(0, len(windows), step):
            chunk = [w for w in windows[start : start + step] if w.encoded is None]
            if not chunk:
                continue
            began = time.monotonic()
            output = handle.model.encode(np.stack([w.features for w in chunk]))
            rows = _as_numpy(output)
            for i, w in enumerate(chunk):
                w.encoded = rows[i].copy()
            spent = (time.monotonic() - began) / len(chunk)
            for w in chunk:
                w.encode_seconds = spent
            self._detect_languages(handle, chunk, output)

    def _encode(self, handle: ModelHandle, windows: list[_Window], holder: _StorageHolder) -> Any:
        if handle.encode_batch >= len(windows) and all(w.encoded is None for w in windows):
            began = time.monotonic()
            output = handle.model.encode(np.stack([w.features for w in windows]))
            for w in windows:
                w.encode_seconds = (time.monotonic() - began) / len(windows)
            return output
        self._encode_ahead(handle, windows)
        return _storage(np.stack([w.encoded for w in windows if w.encoded is not None]), holder)

    def _gather(self, handle: ModelHandle, windows: list[_Window]) -> list[_Window]:
        """Grow a CPU batch while encoding it: windows are encoded one encoder batch at a time as they
        arrive, so the model works from the first window on instead of idling until the batch is full."""
        key = windows[0].job.key()
        limit = self._limit(handle)
        done = 0
        last_growth = time.monotonic()
        while True:
            try:
                self._encode_ahead(handle, windows[done:])
            except Exception:  # _run_batch encodes again and owns the fault handling (OOM, bad file)
                return windows
            done = len(windows)
            with self._cond:
                while True:
                    if len(windows) >= limit or self._closing or any(w.job.done for w in windows):
                        return windows
                    producers_busy = bool(self._pending) or self._preparing > 0
                    waiting = [w for w in self._windows if w.job.key() == key]
                    if not producers_busy and handle.workers > 1:
                        share = self._tail_share_locked(handle, len(windows) + len(waiting))
                        limit = max(len(windows), self._tail_limit(handle, self._limit(handle), share))
                    more = self._pick_locked(key, limit - len(windows), {id(w.job) for w in windows})
                    if more:
                        windows += more
                        flight = self._flights.get(threading.get_ident())
                        if flight is not None:
                            flight[1] = len(windows)
                        last_growth = time.monotonic()
                        self._cond.notify_all()
                        break
                    left = self._max_wait - (time.monotonic() - last_growth)
                    if not producers_busy or left <= 0 or self._holds:
                        return windows
                    self._cond.wait(min(0.1, left))

    def _decode_batch(
        self, handle: ModelHandle, windows: list[_Window], holder: _StorageHolder
    ) -> tuple[Any, list[_Decoded]]:
        model = handle.model
        options = windows[0].job.options
        members = tuple((w.job.id, w.index) for w in windows)
        encoder_output = self._encode(handle, windows, holder)
        encoded = time.monotonic()
        self._detect_languages(handle, windows, encoder_output)
        prompt_tokens = handle.prompt_tokens(options.initial_prompt)
        tokenizers = [handle.tokenizer(w.job.options.task, w.job.language) for w in windows]
        prompts = [
            model.get_prompt(tok, previous_tokens=prompt_tokens, without_timestamps=False)
            for tok in tokenizers
        ]
        max_length = MAX_LENGTH
        if options.max_new_tokens is not None:
            max_length = min(MAX_LENGTH, len(prompts[0]) + options.max_new_tokens)
        kwargs: dict[str, Any] = {
            "length_penalty": LENGTH_PENALTY,
            "repetition_penalty": REPETITION_PENALTY,
            "no_repeat_ngram_size": NO_REPEAT_NGRAM_SIZE,
            "max_length": max_length,
            "return_scores": True,
            "return_no_speech_prob": True,
            "suppress_blank": True,
            "suppress_tokens": list(self._suppress_tokens(tokenizers[0])),
            "max_initial_timestamp_index": round(MAX_INITIAL_TIMESTAMP / model.time_precision),
        }
        first = options.temperature[0]
        if first > 0:
            kwargs.update(beam_size=1, num_hypotheses=BEST_OF, sampling_topk=0, sampling_temperature=first)
        else:
            kwargs.update(beam_size=options.beam_size, patience=PATIENCE)
        call = GenerateCall(model, encoder_output, prompts, kwargs, members, handle.device)
        results = self._generate(call)
        decoded = []
        for result in results:
            tokens = list(result.sequences_ids[0])
            seq_len = len(tokens)
            avg_logprob = float(result.scores[0]) * (seq_len**LENGTH_PENALTY) / (seq_len + 1)
            decoded.append(_Decoded(tokens, avg_logprob, float(result.no_speech_prob), first))
        if len(options.temperature) > 1:
            self._fallback(handle, windows, encoder_output, prompts, tokenizers, decoded, holder)
        generated = time.monotonic()
        info = BatchInfo(
            number=next(self._batch_numbers),
            key=windows[0].job.key(),
            device=handle.device,
            members=members,
            sources=tuple(w.job.source for w in windows),
            encode_seconds=sum(w.encode_seconds for w in windows),
            generate_seconds=generated - encoded,
        )
        self.history.append(info)
        if info.size:
            per_window = (info.encode_seconds + info.generate_seconds) / info.size
            with self._cond:  # the latest working time only (no waits): what the tail split needs now
                self._pace[id(handle.model)] = per_window
        for listener in list(self._listeners):
            try:
                listener(info)
            except Exception:
                log.exception("batch listener failed")
        return encoder_output, decoded

    def _suppress_tokens(self, tokenizer: Any) -> tuple[int, ...]:
        from faster_whisper.transcribe import get_suppressed_tokens

        return tuple(get_suppressed_tokens(tokenizer, [-1]))

    def _detect_languages(self, handle: ModelHandle, windows: list[_Window], encoder_output: Any) -> None:
        """Language of each file from its first window, read off the batch's encoder output (no extra encode)."""
        if all(w.job.language is not None for w in windows):
            return
        if not handle.multilingual:
            for w in windows:
                w.job.language, w.job.language_probability = "en", 1.0
            return
        results = handle.model.model.detect_language(encoder_output)
        for w, ranked in zip(windows, results, strict=True):
            if w.job.language is None:
                token, probability = ranked[0]
                w.job.language, w.job.language_probability = token[2:-2], float(probability)
                log.info("%s: detected language %s (%.2f)", w.job.source, w.job.language, probability)

    def _transcription_options(
        self, options: DecodeOptions, tokenizer: Any, temperatures: list[float]
    ) -> Any:
        from faster_whisper.transcribe import TranscriptionOptions

        return TranscriptionOptions(
            beam_size=options.beam_size,
            best_of=BEST_OF,
            patience=PATIENCE,
            length_penalty=LENGTH_PENALTY,
            repetition_penalty=REPETITION_PENALTY,
            no_repeat_ngram_size=NO_REPEAT_NGRAM_SIZE,
            log_prob_threshold=LOG_PROB_THRESHOLD,
            no_speech_threshold=NO_SPEECH_THRESHOLD,
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            condition_on_previous_text=False,
            prompt_reset_on_temperature=0.5,
            temperatures=temperatures,
            initial_prompt=options.initial_prompt,
            prefix=None,
            suppress_blank=True,
            suppress_tokens=list(self._suppress_tokens(tokenizer)),
            without_timestamps=False,
            max_initial_timestamp=MAX_INITIAL_TIMESTAMP,
            word_timestamps=options.word_timestamps,
            prepend_punctuations=PREPEND_PUNCTUATIONS,
            append_punctuations=APPEND_PUNCTUATIONS,
            multilingual=False,
            max_new_tokens=options.max_new_tokens,
            clip_timestamps="0",
            hallucination_silence_threshold=None,
            hotwords=None,
        )

    def _fallback(
        self,
        handle: ModelHandle,
        windows: list[_Window],
        encoder_output: Any,
        prompts: list[list[int]],
        tokenizers: list[Any],
        decoded: list[_Decoded],
        holder: _StorageHolder,
    ) -> None:
        """Re-decode, at the next temperatures, the windows the sequential path would retry (same thresholds)."""
        from faster_whisper.transcribe import get_compression_ratio

        rest = list(windows[0].job.options.temperature[1:])
        for i, (w, out) in enumerate(zip(windows, decoded, strict=True)):
            text = tokenizers[i].decode(out.tokens).strip()
            needs = (
                get_compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD
                or out.avg_logprob < LOG_PROB_THRESHOLD
            )
            if out.no_speech_prob > NO_SPEECH_THRESHOLD and out.avg_logprob < LOG_PROB_THRESHOLD:
                needs = False  # silence: the sequential path keeps the first result too
            if not needs:
                continue
            options = self._transcription_options(w.job.options, tokenizers[i], rest)
            result, avg_logprob, temperature, _ratio = handle.model.generate_with_fallback(
                _select(encoder_output, [i], holder), prompts[i], tokenizers[i], options
            )
            decoded[i] = _Decoded(
                list(result.sequences_ids[0]),
                float(avg_logprob),
                float(result.no_speech_prob),
                float(temperature),
            )

    # --- inference stage: handing results back ------------------------------------------------------
    def _deliver(
        self,
        handle: ModelHandle,
        windows: list[_Window],
        encoder_output: Any,
        decoded: list[_Decoded],
        holder: _StorageHolder,
    ) -> None:
        by_job: dict[_Job, list[int]] = {}
        for i, w in enumerate(windows):
            by_job.setdefault(w.job, []).append(i)
        for job, indices in by_job.items():
            if job.done:
                continue
            try:
                self._deliver_job(
                    handle, job, [windows[i] for i in indices], indices, encoder_output, decoded, holder
                )
            except Exception as exc:  # this file's results are broken; the others in the batch are not
                log.exception("%s: could not turn decoded tokens into segments", job.source)
                self._fail(job, exc)

    def _deliver_job(
        self,
        handle: ModelHandle,
        job: _Job,
        windows: list[_Window],
        indices: list[int],
        encoder_output: Any,
        decoded: list[_Decoded],
        holder: _StorageHolder,
    ) -> None:
        from faster_whisper.transcribe import get_compression_ratio

        model = handle.model
        tokenizer = handle.tokenizer(job.options.task, job.language)
        per_window: list[list[dict[str, Any]]] = []
        sizes: list[int] = []
        for w, i in zip(windows, indices, strict=True):
            out = decoded[i]
            size = int(math.ceil(w.duration) * model.frames_per_second)
            sizes.append(size)
            subsegments, _seek, _single = model._split_segments_by_timestamps(
                tokenizer=tokenizer,
                tokens=out.tokens,
                time_offset=w.offset,
                segment_size=size,
                segment_duration=w.duration,
                seek=0,
            )
            window_end = w.offset + w.duration
            items = []
            for sub in subsegments:
                text = tokenizer.decode(sub["tokens"])
                start = _clamp(float(sub["start"]), w.offset, window_end)
                items.append(
                    {
                        "text": text,
                        "tokens": sub["tokens"],
                        "start": start,
                        "end": _clamp(float(sub["end"]), start, window_end),
                        "seek": int(w.offset * model.frames_per_second),
                        "avg_logprob": out.avg_logprob,
                        "no_speech_prob": out.no_speech_prob,
                        "compression_ratio": get_compression_ratio(text),
                    }
                )
            per_window.append(items)
        if job.options.word_timestamps:
            last = model.add_word_timestamps(
                per_window,
                tokenizer,
                _select(encoder_output, indices, holder),
                sizes,
                PREPEND_PUNCTUATIONS,
                APPEND_PUNCTUATIONS,
                job.last_speech_timestamp,
            )
            if last is not None:
                job.last_speech_timestamp = float(last)
        duration = self._duration(job)
        finished = False
        with job.lock:
            for w, items in zip(windows, per_window, strict=True):
                job.segments[w.index] = self._to_segments(job, w, items)
                job.end_times[w.index] = min(w.end_time, duration)
                job.delivered += 1
            while job.reported in job.end_times:  # progress only ever moves forward, window after window
                job.report(job.end_times[job.reported], duration)
                job.reported += 1
            finished = job.total is not None and job.delivered >= job.total
        if finished:
            self._finish(job)

    def _to_segments(self, job: _Job, window: _Window, items: list[dict[str, Any]]) -> list[Segment]:
        from faster_whisper.transcribe import Segment as FwSegment
        from faster_whisper.transcribe import Word as FwWord
        from faster_whisper.transcribe import restore_speech_timestamps

        low, high = window.offset, window.offset + window.duration
        fw_segments = []
        for n, item in enumerate(items):
            words = None
            if job.options.word_timestamps:
                words = []
                for wd in item.get("words", []):
                    start = _clamp(float(wd["start"]), low, high)
                    words.append(
                        FwWord(start, _clamp(float(wd["end"]), start, high), wd["word"], wd["probability"])
                    )
            fw_segments.append(
                FwSegment(
                    id=n,
                    seek=item["seek"],
                    start=round(item["start"], 3),
                    end=round(item["end"], 3),
                    text=item["text"],
                    tokens=item["tokens"],
                    avg_logprob=item["avg_logprob"],
                    compression_ratio=item["compression_ratio"],
                    no_speech_prob=item["no_speech_prob"],
                    words=words,
                    temperature=None,
                )
            )
        if job.plan is not None and job.plan.speech_chunks:
            fw_segments = list(restore_speech_timestamps(fw_segments, list(job.plan.speech_chunks), 16000))
        duration = self._duration(job)
        out = []
        for seg in fw_segments:
            start = _clamp(float(seg.start), 0.0, duration)
            words = tuple(
                Word(
                    _clamp(float(w.start), 0.0, duration),
                    _clamp(float(w.end), 0.0, duration),
                    w.word,
                    float(w.probability),
                )
                for w in (seg.words or ())
            )
            out.append(Segment(start, _clamp(float(seg.end), start, duration), seg.text, words))
        return out

    @staticmethod
    def _duration(job: _Job) -> float:
        return job.plan.duration if job.plan is not None else 0.0

    # --- finishing jobs ---------------------------------------------------------------------------------
    def _mark_done_locked(self, job: _Job) -> bool:
        if job.done:
            return False
        job.done = True
        self._live.pop(job.id, None)
        self._cond.notify_all()
        return True

    def _resolve(self, job: _Job, exc: BaseException | None, result: Transcript | None = None) -> None:
        future = job.future
        if future.cancelled():
            return
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def _fail(self, job: _Job, exc: BaseException) -> None:
        with self._cond:
            if not self._mark_done_locked(job):
                return
        self._resolve(job, exc)

    def _finish(self, job: _Job) -> None:
        duration = self._duration(job)
        segments = [seg for index in sorted(job.segments) for seg in job.segments[index]]
        model = job.handle.model
        extra: dict[str, Any] = {
            "batch_size": job.handle.batch_size,
            "beam_size": job.options.beam_size,
            "windows": job.total or 0,
            "scheduler": "cross-file batches",
        }
        if job.notes:
            extra["notes"] = list(job.notes)
        transcript = Transcript(
            source=job.source,
            segments=segments,
            language=job.language,
            language_probability=job.language_probability,
            duration=duration,
            model=job.handle.label,
            compute_type=str(getattr(getattr(model, "model", None), "compute_type", job.handle.compute_type)),
            device=job.handle.device,
            processing_time=time.monotonic() - job.started,
            task=job.options.task,
            extra=extra,
        )
        job.report(duration, duration)
        with self._cond:
            if not self._mark_done_locked(job):
                return
        job.segments = {}
        self._resolve(job, None, transcript)


def submit_many(
    scheduler: BatchScheduler,
    handle: ModelHandle,
    sources: Sequence[Path | str],
    options: DecodeOptions,
    *,
    cancel: threading.Event | None = None,
) -> list[JobFuture]:
    """Queue several files; the scheduler mixes their windows from the first batch on (CLI, bench)."""
    return [scheduler.submit(handle, s, options, cancel=cancel) for s in sources]


__all__ = [
    "BatchInfo",
    "BatchKey",
    "BatchScheduler",
    "GenerateCall",
    "JobFuture",
    "ModelHandle",
    "default_generate",
    "is_out_of_memory",
    "submit_many",
]
