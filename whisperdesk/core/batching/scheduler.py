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

Decoding (tokens → segments, temperature fallback, the unfinished tail of a window) is in
:mod:`whisperdesk.core.batching.decode`; the model layout in :mod:`~whisperdesk.core.batching.layout`; the CPU
stage's window cutting in :mod:`~whisperdesk.core.batching.windows`. When a window's decode stops mid-sentence,
the stretch from its last complete timestamp is queued again as a follow-up window (ahead of new windows),
so the scheduler keeps every sentence the sequential path keeps.

Which windows go first (``order="latency"``, the default). Each batch is filled from the job closest to done:
jobs are ranked by the window work they still have (seconds of speech to encode and decode) minus
:data:`AGING_PER_SECOND` × the seconds since they were queued, then by age; a job's windows go in file
order. So four files queued together finish shortest first, a short memo added while a long recording
runs takes the next free place in a batch instead of waiting behind the recording's queued windows, and
the long recording fills the rest of every batch (the batches stay as full as before: only their order
changes). Aging bounds the wait of a long job behind a stream of short ones. ``order="arrival"`` is the
previous order (oldest queued window first), kept for the side-by-side benchmark (``bench/latency.py``).
A full prefetch queue does not hold back a job that ranks ahead of every job queued: its windows may go
up to one batch past ``prefetch_windows``, so a memo added while a long recording fills the queue is ready
for the next batch (memory stays bounded: ``prefetch_windows`` + one batch).

Progress: each job's progress moves once per window encoded and once per window finished, in order and never
backwards; it measures work (encode and decode each get their measured share of a window's time), so the
ETA a caller derives from it follows the real pace instead of jumping when a whole batch lands. Between
those moments, while an encode or a generate runs, the blocking ``transcribe`` moves it by estimate every
:data:`ESTIMATE_TICK_S` (``_Job.estimate``), and tells ``on_waiting`` whether any of the job's windows are
in a batch ("Waiting for the model" otherwise). The language
is reported (``on_language``) as soon as the first window's encoder output gives it, or, when that window is
unsure, as soon as the file's next windows have voted (see ``_detect_languages``).

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
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whisperdesk.core.batching import decode as dec
from whisperdesk.core.batching.checkpoint import WindowFn, WindowResult
from whisperdesk.core.batching.layout import ModelHandle, default_cpu_workers
from whisperdesk.core.batching.windows import WindowPlan, iter_features, plan_stream, window_features
from whisperdesk.core.clock import SYSTEM_CLOCK, Clock
from whisperdesk.core.errors import Cancelled, ConfigError, ModelError, WhisperDeskError
from whisperdesk.core.settings import DecodeOptions
from whisperdesk.core.transcript import Segment, Transcript

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, float], None]
WaitingFn = Callable[[bool], None]  # True: the job waits for the model; False: its windows are being decoded
LanguageFn = Callable[[str, float], None]  # (language code, probability)

DEFAULT_MAX_WAIT_S = 2.0  # a partial batch waits this long for more windows while files are still being cut
CANCEL_POLL_S = 0.1  # the blocking ``transcribe`` looks at its cancel flag this often
ESTIMATE_TICK_S = 0.5  # how often the blocking ``transcribe`` moves progress by estimate (and reads waiting)
ESTIMATE_CAP = 0.9  # an estimate inside a generate stops short of the work the generate will credit
DEFAULT_ENCODE_SHARE = 0.5  # share of a window's work credited at encode time, until a batch measures it
ORDERS = ("latency", "arrival")  # how queued windows are ranked (see "Which windows go first" above)
AGING_PER_SECOND = 1.0  # seconds of remaining work a waiting job's rank gains per second since it was queued


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
    parts: tuple[int, ...] = ()  # per member: 0 for a planned window, n for its n-th follow-up (tail)

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def follow_ups(self) -> int:
        """Members that decode the unfinished tail of a window again."""
        return sum(1 for part in self.parts if part > 0)

    @property
    def first_decodes(self) -> tuple[tuple[int, int], ...]:
        """Members that are planned windows (each decoded once here), without follow-ups."""
        parts = self.parts or (0,) * len(self.members)
        return tuple(m for m, part in zip(self.members, parts, strict=True) if part == 0)

    @property
    def job_ids(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(j for j, _ in self.members))


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
    """WhisperDesk's decoder: 16-kHz mono float32, with AudioError messages a user can act on."""
    from whisperdesk.core.audio import decode

    return decode(path)


def default_stream(path: Path) -> Iterable[np.ndarray]:
    """The same samples as :func:`default_decode`, as blocks decoded while they are read (flat memory)."""
    from whisperdesk.core.audio import AudioStream

    return AudioStream(path)


class _Job:
    def __init__(
        self,
        job_id: int,
        handle: ModelHandle,
        source: str,
        options: DecodeOptions,
        audio: np.ndarray | None,
        progress: ProgressFn | None,
        on_language: LanguageFn | None,
        cancel: threading.Event | None,
        started: float,
        resume: Mapping[int, WindowResult] | None = None,
        on_window: WindowFn | None = None,
        on_waiting: WaitingFn | None = None,
    ) -> None:
        self.id = job_id
        self.on_waiting = on_waiting
        self.resume = dict(resume or {})  # finished windows of an earlier run, by index
        self.on_window = on_window
        self.handle = handle
        self.source = source
        self.options = options
        self.audio = audio
        self.progress = progress
        self.on_language = on_language
        self.cancel = cancel
        self.future = JobFuture(job_id, source)
        self.started = started
        self.submitted = started  # when it was queued; ``started`` moves to when its file is cut
        self.done = False
        self.plan: WindowPlan | None = None
        self.total: int | None = None
        self.delivered = 0
        self.segments: dict[int, list[Segment]] = {}
        self.language: str | None = options.language
        self.language_probability: float | None = 1.0 if options.language else None
        self.language_told = False
        self.last_speech_timestamp = 0.0
        self.notes: list[str] = []
        self.lock = threading.Lock()  # delivery may come from several inference streams
        self.first_taken = False  # window 0 is in a batch (its language is being detected)
        # the audio of windows 1.. that may vote on the language while it is unknown, and their encodes
        # when they were needed before the CPU stage queued them (scheduler lock)
        self.language_pieces: dict[int, np.ndarray] = {}
        self.early_encodes: dict[int, np.ndarray] = {}
        self.work_total = 0.0  # seconds of windows (speech timeline) to encode and decode
        self.work_done = 0.0
        self.reported = -1.0
        self.in_flight = 0  # windows of this job in batches being encoded or decoded (scheduler lock)
        self.estimates: dict[int, tuple[float, float, float]] = {}  # batch -> (began, expected s, work)

    def rank(self, now: float) -> tuple[float, int]:
        """Lower goes first: the window work still to do, less what waiting has earned, then age."""
        remaining = max(0.0, self.work_total - self.work_done)
        return remaining - AGING_PER_SECOND * (now - self.submitted), self.id

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

    def credit(self, seconds: float) -> None:
        """Count ``seconds`` of window work as done and report the file position it corresponds to.

        Called once per window encoded and once per window finished, so progress moves window by window even
        when a whole batch is decoded in one call; it never goes back.
        """
        with self.lock:
            if self.done:  # canceled or failed: its progress stays where the user last saw it
                return
            self.work_done = min(self.work_total, self.work_done + seconds)
            duration = self.plan.duration if self.plan is not None else 0.0
            done = duration * self.work_done / self.work_total if self.work_total > 0 else 0.0
            done = min(done, duration)
            if done <= self.reported:
                return
            self.reported = done
            self.report(done, duration)

    def estimate(self, now: float) -> None:
        """Move progress inside an encode or a generate by estimate: CTranslate2's Whisper ``generate``
        reports nothing until the whole batch is decoded (no token callback for batches), and a CPU encode
        of one window takes seconds on a busy machine. Each call in flight adds the share of its work that
        its expected duration says is done, approaching but never reaching :data:`ESTIMATE_CAP` of it.
        Never backwards: the real credit when the call returns only moves it on."""
        with self.lock:
            if self.done or not self.estimates or self.work_total <= 0 or self.plan is None:
                return
            guess = 0.0
            for began, expected, work in self.estimates.values():
                ratio = max(0.0, now - began) / max(expected, 1e-3)
                guess += work * ESTIMATE_CAP * (1.0 - math.exp(-1.5 * ratio))
            done = self.plan.duration * min(self.work_total, self.work_done + guess) / self.work_total
            if done <= self.reported:
                return
            self.reported = done
            self.report(done, self.plan.duration)

    def tell_waiting(self, waiting: bool) -> None:
        """Called under the scheduler's lock: ``on_waiting`` must only hand the value on."""
        if self.on_waiting is None:
            return
        try:
            self.on_waiting(waiting)
        except Exception:  # an observer must never break a job
            log.exception("waiting callback failed for %s", self.source)

    def checkpoint(self, result: WindowResult) -> None:
        if self.on_window is None or self.done:
            return
        try:
            self.on_window(result)
        except Exception:  # an observer must never break a job
            log.exception("window callback failed for %s", self.source)

    def tell_language(self, language: str, probability: float) -> None:
        self.language, self.language_probability = language, probability
        if self.on_language is None or self.language_told:
            return
        self.language_told = True
        try:
            self.on_language(language, probability)
        except Exception:  # an observer must never break a job
            log.exception("language callback failed for %s", self.source)


@dataclass(eq=False)
class _Window:
    """A window of a job in the queue; ``part`` > 0 marks a follow-up that decodes an unfinished tail."""

    job: _Job
    index: int
    features: np.ndarray
    offset: float
    duration: float
    end_time: float
    ready_at: float
    part: int = 0
    encoded: np.ndarray | None = None  # encoder output, when encoded while its batch was being gathered
    encode_seconds: float = 0.0
    credited: float = 0.0  # work already counted for this window (at encode time)
    span: float = 0.0  # the planned window's length; its work to count (follow-ups count none)


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
        generate_fn: dec.GenerateFn = dec.default_generate,
        stream_fn: Callable[[Path], Iterable[np.ndarray]] = default_stream,
        on_batch: Callable[[BatchInfo], None] | None = None,
        history: int = 2_000,
        clock: Clock = SYSTEM_CLOCK,
        order: str = "latency",
    ) -> None:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
        self._order = order
        if prefetch_windows < 1:
            raise ValueError(f"prefetch_windows must be 1 or more, got {prefetch_windows}")
        self._cpu_workers = cpu_workers if cpu_workers is not None else default_cpu_workers()
        if self._cpu_workers < 1:
            raise ValueError(f"cpu_workers must be 1 or more, got {cpu_workers}")
        self._prefetch = prefetch_windows
        self._max_wait = max_wait_s
        self._generate = generate_fn
        self._clock = clock
        self._stream = stream_fn
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
        self._encode_share: dict[
            int, float
        ] = {}  # model id -> encode's share of a window's work, latest batch
        self._ids = itertools.count(1)
        self._batch_numbers = itertools.count(1)
        self._tokens = itertools.count(1)  # encodes and generates in flight, for the progress estimates
        self._encode_pace: dict[int, float] = {}  # model id -> seconds per window of the latest CPU encode
        self._oom_limits: dict[int, int] = {}
        self._cpu_twins: dict[int, ModelHandle | None] = {}
        self._twin_lock = threading.Lock()
        self.history: deque[BatchInfo] = deque(maxlen=history)
        self.peak_queued_windows = 0

    # --- public API -------------------------------------------------------------------------------------
    def submit(
        self,
        handle: ModelHandle,
        source: Path | str,
        options: DecodeOptions,
        *,
        audio: np.ndarray | None = None,
        progress: ProgressFn | None = None,
        on_language: LanguageFn | None = None,
        cancel: threading.Event | None = None,
        resume: Mapping[int, WindowResult] | None = None,
        on_window: WindowFn | None = None,
        on_waiting: WaitingFn | None = None,
    ) -> JobFuture:
        """Queue one file (or its already decoded 16-kHz ``audio``); callbacks run on scheduler threads.

        ``progress(done, total)`` gets audio seconds; ``on_language(code, probability)`` is called once, as
        soon as the language is known (given, English-only model, or detected from the first window).
        ``on_window(result)`` gets each window once it is decoded to the end (a checkpoint); ``resume`` holds
        such results of an earlier run of the same file and options: those windows are not decoded again.
        ``on_waiting(True/False)`` says whether the job waits for the model or has windows in a batch; it is
        called under the scheduler's lock, so it must only hand the value on (``transcribe`` relays it).
        """
        options.validate()
        job = _Job(
            next(self._ids),
            handle,
            str(source),
            options,
            audio,
            progress,
            on_language,
            cancel,
            self._clock.monotonic(),
            resume,
            on_window,
            on_waiting,
        )
        job.tell_waiting(True)
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
        on_language: LanguageFn | None = None,
        cancel: threading.Event | None = None,
        resume: Mapping[int, WindowResult] | None = None,
        on_window: WindowFn | None = None,
        on_waiting: WaitingFn | None = None,
    ) -> Transcript:
        """Blocking form of ``submit``: waits, running the callbacks on this thread, in the order they came;
        raises what the job raised."""
        events: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.SimpleQueue()
        relay = (lambda done, total: events.put((progress, (done, total)))) if progress else None
        language_relay = (lambda code, p: events.put((on_language, (code, p)))) if on_language else None
        window_relay = (lambda result: events.put((on_window, (result,)))) if on_window else None
        waiting_relay = (lambda waiting: events.put((on_waiting, (waiting,)))) if on_waiting else None
        future = self.submit(
            handle,
            source,
            options,
            audio=audio,
            progress=relay,
            on_language=language_relay,
            cancel=cancel,
            resume=resume,
            on_window=window_relay,
            on_waiting=waiting_relay,
        )
        future.add_done_callback(lambda _f: events.put(None))

        def run(item: tuple[Callable[..., None], tuple[Any, ...]]) -> None:
            if item[0] is progress and cancel is not None and cancel.is_set():
                return  # progress never moves after the user's cancel
            item[0](*item[1])

        next_tick = 0.0
        while True:
            try:
                item = events.get(timeout=CANCEL_POLL_S)
            except queue.Empty:
                item = None
            if cancel is not None and cancel.is_set():
                self.cancel_job(future.job_id)
            elif not future.done() and self._clock.monotonic() >= next_tick:
                # paced: each estimate is itself an event that wakes this loop at once
                next_tick = self._clock.monotonic() + ESTIMATE_TICK_S
                self._tick(future.job_id)
            if item is not None:
                run(item)
            elif future.done():
                while True:  # callbacks that arrived before completion
                    try:
                        late = events.get_nowait()
                    except queue.Empty:
                        break
                    if late is not None:
                        run(late)
                return future.result()

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

    def _tick(self, job_id: int) -> None:
        """On the job's own thread: its progress estimate while an encode or generate of it runs."""
        with self._cond:
            job = self._live.get(job_id)
        if job is not None:
            job.estimate(self._clock.monotonic())

    def add_batch_listener(self, listener: Callable[[BatchInfo], None]) -> None:
        """Call ``listener`` after every batch (on the inference thread), like ``on_batch``."""
        self._listeners.append(listener)

    def in_flight(self) -> int:
        """Batches being encoded or decoded now."""
        with self._cond:
            return len(self._flights)

    def cancel_job(self, job_id: int) -> bool:
        """End a job now: its queued windows leave the queue, results of its windows in flight are thrown
        away when they come, and its future raises Cancelled at once. False when it had already ended.

        A ``generate`` in flight is not interrupted: CTranslate2's Whisper ``generate`` has no callback or
        stop flag (only the generator and translator models stream tokens), so a batch holding only this
        job's windows runs to its end and is discarded (its fallback and word alignment are skipped).
        """
        with self._cond:
            job = self._live.get(job_id)
            if job is None or not self._mark_done_locked(job):
                return False
            self._windows = deque(w for w in self._windows if w.job is not job)
            self._pending = deque(j for j in self._pending if j is not job)
        log.info("%s: canceled; its windows left the batch queue", job.source)
        self._resolve(job, Cancelled())
        return True

    def wake(self) -> None:
        """Make the threads look at cancel flags now rather than at their next poll."""
        with self._cond:
            self._cond.notify_all()

    def queued_windows(self, job_id: int | None = None) -> int:
        """Windows waiting for a batch (of one job, given its id)."""
        with self._cond:
            return sum(1 for w in self._windows if job_id is None or w.job.id == job_id)

    def live_jobs(self) -> int:
        with self._cond:
            return len(self._live)

    def close(self, timeout: float = 30.0) -> bool:
        """Cancel what is still queued, let the batch in flight finish, and stop the threads.

        False when a thread was still running after ``timeout`` (a ``generate`` in flight): quitting leaves
        it to end with the process (see app.py's ``_end_process``)."""
        with self._cond:
            self._closing = True
            doomed = [j for j in self._live.values() if not j.done]
            self._cond.notify_all()
        for job in doomed:
            self._fail(job, Cancelled())
        for thread in self._threads:
            thread.join(timeout)
        stopped = not any(thread.is_alive() for thread in self._threads)
        self._threads = []
        return stopped

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
                    for window in batch:
                        window.job.in_flight -= 1
                    for job in dict.fromkeys(w.job for w in batch):
                        if job.in_flight == 0 and not job.done:
                            job.tell_waiting(True)
                    self._busy[model_id] -= 1
                    self._flights.pop(threading.get_ident(), None)
                    self._cond.notify_all()

    # --- CPU stage --------------------------------------------------------------------------------------
    def _prepare(self, job: _Job) -> None:
        if job.canceled():
            raise Cancelled()
        job.started = self._clock.monotonic()
        audio, job.audio = job.audio, None
        source = Path(job.source)

        def open_blocks() -> Iterable[np.ndarray]:  # read twice: a plan pass, then the windows' pass
            return (audio,) if audio is not None else self._stream(source)

        plan, pieces = plan_stream(open_blocks, job.options, stop=job.canceled, source=job.source)
        if job.canceled():
            raise Cancelled()
        self._check_language(job)
        job.plan = plan
        job.total = len(plan.spans)
        job.work_total = 2 * sum(span.duration for span in plan.spans)  # each window: encode + decode
        job.credit(0.0)
        if job.total == 0:
            self._finish(job)
            return
        if self._restore(job):
            return
        first: list[np.ndarray] = []
        if job.language is None:  # the windows that may vote on the language are cut before window 0 queues
            first = list(itertools.islice(pieces, dec.LANGUAGE_WINDOWS))
            with self._cond:
                job.language_pieces = {i: first[i] for i in range(1, len(first))}
        extractor = job.handle.model.feature_extractor
        for span, features in zip(
            plan.spans, iter_features(extractor, itertools.chain(first, pieces)), strict=True
        ):
            if span.index in job.resume:  # decoded in an earlier run (_restore)
                continue
            window = _Window(job, span.index, features, span.offset, span.duration, span.end_time, 0.0)
            window.span = 2 * span.duration
            with self._cond:
                while not self._room_locked(job) and not job.done and not self._closing:
                    if job.canceled():
                        break
                    self._cond.wait(0.1)
                if job.done or self._closing:
                    return
                if job.canceled():
                    raise Cancelled()
                window.ready_at = self._clock.monotonic()
                if window.encoded is None:  # the language vote may have encoded it already
                    window.encoded = job.early_encodes.pop(span.index, None)
                self._windows.append(window)
                self.peak_queued_windows = max(self.peak_queued_windows, len(self._windows))
                self._cond.notify_all()

    def _restore(self, job: _Job) -> bool:
        """Start ``job`` from the windows an earlier run finished (their text, language, progress); True
        when nothing is left to decode. Checkpoints that do not fit the plan are ignored."""
        if not job.resume or job.plan is None:
            return False
        spans = {span.index: span for span in job.plan.spans}
        if not set(job.resume) <= set(spans):
            log.warning(
                "%s: its checkpoints do not match its windows; decoding it from the start", job.source
            )
            job.resume = {}
            return False
        with job.lock:
            for index, result in job.resume.items():
                job.segments[index] = list(result.segments)
            job.delivered += len(job.resume)
            job.last_speech_timestamp = max(r.last_speech_timestamp for r in job.resume.values())
        known = [r for _i, r in sorted(job.resume.items()) if r.language]
        if job.language is None and known:
            job.tell_language(known[0].language or "", known[0].language_probability or 1.0)
        log.info("%s: resuming after %d of %d windows", job.source, len(job.resume), job.total)
        job.credit(sum(2 * spans[i].duration for i in job.resume))
        if job.total is not None and job.delivered >= job.total:
            self._finish(job)
            return True
        return False

    def _check_language(self, job: _Job) -> None:
        language = job.options.language
        if not job.handle.multilingual:
            if language not in (None, "en"):
                log.warning("%s: the model is English-only; transcribing %r as English", job.source, language)
            job.tell_language("en", 1.0)
            return
        if language is not None:
            from faster_whisper.tokenizer import _LANGUAGE_CODES

            if language not in _LANGUAGE_CODES:
                raise ConfigError(
                    f"{job.source}: language {language!r} is not one Whisper knows; use a code such as "
                    "en, de or fr, or leave it empty to detect the language"
                )
            job.tell_language(language, 1.0)

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
        now = self._clock.monotonic()
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
        ranked = self._ranked_locked()
        for window in ranked:  # the first window (in rank order) whose model has a free worker
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
            candidates = [w for w in ranked if w.job.key() == key][:limit]
            now = self._clock.monotonic()
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
        self._flights[threading.get_ident()] = [id(handle.model), len(picked), self._clock.monotonic()]
        return picked, None

    def _ranked_locked(self) -> list[_Window]:
        """The queued windows in the order they should be decoded (module docstring: which windows go first)."""
        if self._order == "arrival":
            return list(self._windows)
        now = self._clock.monotonic()
        ranks: dict[_Job, tuple[float, int]] = {}
        for window in self._windows:
            if window.job not in ranks:
                ranks[window.job] = window.job.rank(now)
        return sorted(self._windows, key=lambda w: (ranks[w.job], w.index, w.part))

    def _room_locked(self, job: _Job) -> bool:
        """Whether the CPU stage may queue another window of ``job`` now (see the module docstring)."""
        if len(self._windows) < self._prefetch:
            return True
        if self._order == "arrival" or len(self._windows) >= self._prefetch + job.handle.batch_size:
            return False
        now = self._clock.monotonic()
        mine = job.rank(now)
        return all(mine < w.job.rank(now) for w in self._windows if w.job is not job)

    def _pick_locked(self, key: BatchKey, limit: int, picked_jobs: set[int]) -> list[_Window]:
        """Take up to ``limit`` queued windows with ``key``, in rank order."""
        picked: list[_Window] = []
        for window in self._ranked_locked():
            if len(picked) >= limit:
                break
            if window.job.key() == key and self._pickable(window, picked_jobs):
                picked.append(window)
                picked_jobs.add(id(window.job))
        if picked:
            for window in picked:
                if window.job.in_flight == 0:
                    window.job.tell_waiting(False)
                window.job.in_flight += 1
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
        holder = dec.StorageHolder()
        quiet = [w for w in windows if w.duration < dec.MIN_SPEECH_SECONDS]
        if quiet:  # next to no speech after VAD: Whisper would only invent text there (decode.is_silence)
            self._deliver(handle, quiet, None, [dec.SILENT] * len(quiet), holder)
            windows = [w for w in windows if w.duration >= dec.MIN_SPEECH_SECONDS]
            if not windows:
                return
        try:
            encoder_output, decoded = self._decode_batch(handle, windows, holder)
            if not decoded:
                return
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
            began = self._clock.monotonic()
            token = self._expect_encode(handle, chunk, began)
            try:
                output = handle.model.encode(np.stack([w.features for w in chunk]))
            finally:
                self._forget(chunk, token)
            rows = dec.as_numpy(output)
            for i, w in enumerate(chunk):
                w.encoded = rows[i].copy()
            spent = (self._clock.monotonic() - began) / len(chunk)
            with self._cond:
                self._encode_pace[id(handle.model)] = spent
            for w in chunk:
                w.encode_seconds = spent
            self._detect_languages(handle, chunk, output, windows)
            self._credit_encoded(handle, chunk)

    def _encode(self, handle: ModelHandle, windows: list[_Window], holder: dec.StorageHolder) -> Any:
        if handle.encode_batch >= len(windows) and all(w.encoded is None for w in windows):
            began = self._clock.monotonic()
            output = handle.model.encode(np.stack([w.features for w in windows]))
            for w in windows:
                w.encode_seconds = (self._clock.monotonic() - began) / len(windows)
            self._detect_languages(handle, windows, output)
            self._credit_encoded(handle, windows)
            return output
        self._encode_ahead(handle, windows)
        return dec.storage(np.stack([w.encoded for w in windows if w.encoded is not None]), holder)

    def _credit_encoded(self, handle: ModelHandle, windows: list[_Window]) -> None:
        """Progress for encoded windows: their measured encode share, one report per window."""
        share = self._encode_share.get(id(handle.model), DEFAULT_ENCODE_SHARE)
        for w in windows:
            if w.span > 0 and w.credited == 0.0 and not w.job.done:
                w.credited = w.span * share
                w.job.credit(w.credited)

    def _gather(self, handle: ModelHandle, windows: list[_Window]) -> list[_Window]:
        """Grow a CPU batch while encoding it: windows are encoded one encoder batch at a time as they
        arrive, so the model works from the first window on instead of idling until the batch is full."""
        key = windows[0].job.key()
        limit = self._limit(handle)
        done = 0
        last_growth = self._clock.monotonic()
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
                        last_growth = self._clock.monotonic()
                        self._cond.notify_all()
                        break
                    left = self._max_wait - (self._clock.monotonic() - last_growth)
                    if not producers_busy or left <= 0 or self._holds:
                        return windows
                    self._cond.wait(min(0.1, left))

    def _decode_batch(
        self, handle: ModelHandle, windows: list[_Window], holder: dec.StorageHolder
    ) -> tuple[Any, list[dec.Decoded]]:
        model = handle.model
        options = windows[0].job.options
        members = tuple((w.job.id, w.index) for w in windows)
        encoder_output = self._encode(handle, windows, holder)
        encoded = self._clock.monotonic()
        if all(w.job.done for w in windows):  # every job in it was canceled meanwhile: nothing to decode
            return None, []
        self._detect_languages(handle, windows, encoder_output)
        tokenizers = [handle.tokenizer(w.job.options.task, w.job.language) for w in windows]
        prompts = dec.prompts_for(handle, tokenizers, options.initial_prompt)
        kwargs = dec.generate_kwargs(model, tokenizers[0], options, len(prompts[0]))
        token = self._expect(handle, windows, encoded)
        try:
            results = self._generate(
                dec.GenerateCall(model, encoder_output, prompts, kwargs, members, handle.device)
            )
        finally:
            self._forget(windows, token)
        decoded = dec.read_results(results, options.temperature[0])
        decoded = dec.fallback(
            model,
            options,
            encoder_output,
            prompts,
            tokenizers,
            decoded,
            holder,
            wanted=lambda i: not windows[i].job.done,  # no retry for a window whose job was canceled
        )
        generated = self._clock.monotonic()
        info = BatchInfo(
            number=next(self._batch_numbers),
            key=windows[0].job.key(),
            device=handle.device,
            members=members,
            sources=tuple(w.job.source for w in windows),
            encode_seconds=sum(w.encode_seconds for w in windows),
            generate_seconds=generated - encoded,
            parts=tuple(w.part for w in windows),
        )
        self.history.append(info)
        self._measure(handle, info)
        for listener in list(self._listeners):
            try:
                listener(info)
            except Exception:
                log.exception("batch listener failed")
        return encoder_output, decoded

    def _expect(self, handle: ModelHandle, windows: list[_Window], began: float) -> int:
        """Register the generate about to run with each of its jobs (see ``_Job.estimate``); returns its
        token. Its expected length: the latest batch's decode pace per window, else as long as the encode."""
        model_id = id(handle.model)
        with self._cond:
            pace = self._pace.get(model_id)
            share = self._encode_share.get(model_id, DEFAULT_ENCODE_SHARE)
        if pace:
            expected = pace * (1.0 - share) * len(windows)
        else:
            expected = sum(w.encode_seconds for w in windows) * (1.0 - share) / share
        token = next(self._tokens)
        for job in dict.fromkeys(w.job for w in windows):
            work = sum(w.span - w.credited for w in windows if w.job is job)
            with job.lock:
                job.estimates[token] = (began, max(expected, 0.5), work)
        return token

    def _expect_encode(self, handle: ModelHandle, chunk: list[_Window], began: float) -> int:
        """Like ``_expect`` for an encode on CPU (window by window, seconds each when the machine is busy):
        its expected length is the latest encode's per window, its work what ``_credit_encoded`` credits."""
        model_id = id(handle.model)
        with self._cond:
            per_window = self._encode_pace.get(model_id, 1.0)
            share = self._encode_share.get(model_id, DEFAULT_ENCODE_SHARE)
        token = next(self._tokens)
        for job in dict.fromkeys(w.job for w in chunk):
            work = sum(w.span * share for w in chunk if w.job is job and w.credited == 0.0)
            with job.lock:
                job.estimates[token] = (began, max(per_window * len(chunk), 0.2), work)
        return token

    @staticmethod
    def _forget(windows: list[_Window], token: int) -> None:
        for job in dict.fromkeys(w.job for w in windows):
            with job.lock:
                job.estimates.pop(token, None)

    def _measure(self, handle: ModelHandle, info: BatchInfo) -> None:
        """Keep the latest working pace (no waits): the tail split and the progress weights use it."""
        spent = info.encode_seconds + info.generate_seconds
        if not info.size or spent <= 0:
            return
        with self._cond:
            self._pace[id(handle.model)] = spent / info.size
            self._encode_share[id(handle.model)] = dec.clamp(info.encode_seconds / spent, 0.05, 0.95)

    def _detect_languages(
        self,
        handle: ModelHandle,
        windows: list[_Window],
        encoder_output: Any,
        batch: list[_Window] | None = None,
    ) -> None:
        """Language of each file from its first window, read off the batch's encoder output (no extra encode).

        A first window that is not sure (below ``LANGUAGE_SURE``) is outvoted or confirmed by the file's next
        two windows, encoded now (their batch then reuses the encode): an English memo whose first window
        read as Swahili came out as gibberish, on the sequential path too. A sure first window decides alone,
        so the result never depends on which windows happened to share its batch. ``batch`` is the whole
        batch when ``windows`` is only the part just encoded.
        """
        if all(w.job.language is not None for w in windows):
            return
        if not handle.multilingual:
            for w in windows:
                w.job.tell_language("en", 1.0)
            return
        heard: dict[_Job, dict[int, dict[str, float]]] = {}  # job -> window index -> distribution
        for w, dist in zip(windows, dec.language_distributions(handle.model, encoder_output), strict=True):
            if w.job.language is None and w.part == 0:
                heard.setdefault(w.job, {})[w.index] = dist
        for job, rows in heard.items():
            first = min(rows)
            language, probability = dec.vote([rows[first]])
            voters = 1
            if probability < dec.LANGUAGE_SURE:
                wanted = range(first, first + dec.LANGUAGE_WINDOWS)
                try:
                    more = self._hear(handle, job, [i for i in wanted if i not in rows], batch or windows)
                except Exception:  # the vote is a refinement: the first window's answer still stands
                    log.exception("%s: reading the language of later windows failed", job.source)
                    more = {}
                votes = [d for i, d in sorted({**rows, **more}.items()) if i in wanted]
                language, probability = dec.vote(votes)
                voters = len(votes)
            log.info(
                "%s: detected language %s (%.2f, from %d window%s)",
                job.source,
                language,
                probability,
                voters,
                "" if voters == 1 else "s",
            )
            with self._cond:
                job.language_pieces = {}
            job.tell_language(language, probability)

    def _hear(
        self, handle: ModelHandle, job: _Job, indices: list[int], batch: list[_Window]
    ) -> dict[int, dict[str, float]]:
        """Language probabilities of more of ``job``'s first windows, by window index.

        A window in this thread's batch, or queued (it cannot be taken meanwhile: a file's later windows wait
        while its language is unknown), is encoded now and keeps the encode for its batch. One the CPU stage
        has not cut yet is made from its kept audio, and its encode is handed to the window when it is
        queued. Either way the vote does not depend on timing.
        """
        found: dict[int, dict[str, float]] = {}
        for index in indices:
            if job.canceled():
                break
            mine = self._planned_window(batch, job, index)
            with self._cond:
                window = mine or self._planned_window(self._windows, job, index)
                piece = job.language_pieces.get(index)
                early = job.early_encodes.get(index)
            if window is not None and window.encoded is None:
                began = self._clock.monotonic()
                window.encoded = dec.as_numpy(handle.model.encode(window.features[None]))[0].copy()
                window.encode_seconds = self._clock.monotonic() - began
                self._credit_encoded(handle, [window])
            if window is not None:
                rows = window.encoded
            elif early is not None:
                rows = early
            elif piece is not None:
                features = window_features(handle.model.feature_extractor, piece)
                rows = dec.as_numpy(handle.model.encode(features[None]))[0].copy()
                with self._cond:
                    waiting = self._planned_window(self._windows, job, index)
                    if waiting is None:
                        job.early_encodes[index] = rows  # _prepare hands it over when it queues the window
                    elif waiting.encoded is None:
                        waiting.encoded = rows
            else:
                continue  # the file has no such window
            holder = dec.StorageHolder()
            found[index] = dec.language_distributions(handle.model, dec.storage(rows[None], holder))[0]
        return found

    @staticmethod
    def _planned_window(windows: Iterable[_Window], job: _Job, index: int) -> _Window | None:
        """``job``'s planned window ``index`` among ``windows`` (the queue: hold the lock), not a follow-up."""
        return next((w for w in windows if w.job is job and w.index == index and w.part == 0), None)

    # --- inference stage: handing results back ------------------------------------------------------
    def _deliver(
        self,
        handle: ModelHandle,
        windows: list[_Window],
        encoder_output: Any,
        decoded: list[dec.Decoded],
        holder: dec.StorageHolder,
    ) -> None:
        by_job: dict[_Job, list[int]] = {}
        for i, w in enumerate(windows):
            by_job.setdefault(w.job, []).append(i)
        now = self._clock.monotonic()
        ranked = sorted(by_job, key=lambda j: j.rank(now)) if self._order == "latency" else list(by_job)
        for job in ranked:  # jobs that finish in this batch end in rank order: the shortest first
            indices = by_job[job]
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
        decoded: list[dec.Decoded],
        holder: dec.StorageHolder,
    ) -> None:
        model = handle.model
        tokenizer = handle.tokenizer(job.options.task, job.language)
        texts = [
            dec.split_window(
                model, tokenizer, decoded[i], w.offset, w.duration, keep_tail=w.part >= dec.MAX_TAIL_ROUNDS
            )
            for w, i in zip(windows, indices, strict=True)
        ]
        if job.options.word_timestamps and encoder_output is not None:
            rows = dec.select_rows(encoder_output, indices, holder)
            last = dec.add_words(model, texts, tokenizer, rows, job.last_speech_timestamp)
            if last is not None:
                job.last_speech_timestamp = last
        duration = self._duration(job)
        follow_ups = []
        finished_windows = []
        with job.lock:
            for w, text in zip(windows, texts, strict=True):
                segments = dec.to_segments(
                    text.items,
                    w.offset,
                    w.offset + w.duration,
                    words=job.options.word_timestamps,
                    speech_chunks=job.plan.speech_chunks if job.plan is not None else None,
                    duration=duration,
                )
                job.segments.setdefault(w.index, []).extend(segments)
                if text.resume is not None:
                    follow_ups.append(self._follow_up(w, text.resume, model.frames_per_second))
                else:
                    finished_windows.append(w)
            job.delivered += len(finished_windows)
            finished = job.total is not None and job.delivered >= job.total
            results = [
                WindowResult(
                    w.index,
                    tuple(job.segments.get(w.index, ())),
                    job.language,
                    job.language_probability,
                    job.last_speech_timestamp,
                )
                for w in finished_windows
            ]
        if follow_ups:
            with self._cond:
                # A job canceled while this batch decoded is done: its tails must not come back to the queue.
                if not job.done:
                    self._windows.extendleft(
                        reversed(follow_ups)
                    )  # ahead of new windows: the job waits on them
                    self._cond.notify_all()
        for w in finished_windows:
            job.credit(w.span - w.credited)
        if not finished:  # a finished job's checkpoints would only be dropped with it
            for result in results:
                job.checkpoint(result)
        if finished:
            self._finish(job)

    def _follow_up(self, window: _Window, resume: float, frames_per_second: int) -> _Window:
        """The unfinished tail of ``window`` from its last complete timestamp, as a window of its own.

        It carries the planned window's work still to count, so progress reaches the window's end only when
        the tail is decoded.
        """
        tail = _Window(
            window.job,
            window.index,
            dec.tail_features(window.features, resume, window.duration, frames_per_second),
            window.offset + resume,
            window.duration - resume,
            window.end_time,
            self._clock.monotonic(),
            part=window.part + 1,
        )
        tail.span, tail.credited = window.span, window.credited
        log.debug(
            "%s: window %d stopped mid-segment at %.2f s; decoding its last %.2f s again",
            window.job.source,
            window.index,
            window.offset + resume,
            tail.duration,
        )
        return tail

    @staticmethod
    def _duration(job: _Job) -> float:
        return job.plan.duration if job.plan is not None else 0.0

    # --- finishing jobs ---------------------------------------------------------------------------------
    def _mark_done_locked(self, job: _Job) -> bool:
        if job.done:
            return False
        job.done = True
        job.language_pieces, job.early_encodes = {}, {}
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
        segments.sort(key=lambda s: s.start)  # a window's follow-up segments arrive after its own
        model = job.handle.model
        extra: dict[str, Any] = {
            "batch_size": job.handle.batch_size,
            "beam_size": job.options.beam_size,
            "windows": job.total or 0,
            "scheduler": "cross-file batches",
        }
        if job.notes:
            extra["notes"] = list(job.notes)
        if job.resume:
            extra["resumed_windows"] = len(job.resume)  # kept from an interrupted run, not decoded again
        transcript = Transcript(
            source=job.source,
            segments=segments,
            language=job.language,
            language_probability=job.language_probability,
            duration=duration,
            model=job.handle.label,
            compute_type=str(getattr(getattr(model, "model", None), "compute_type", job.handle.compute_type)),
            device=job.handle.device,
            processing_time=self._clock.monotonic() - job.started,
            task=job.options.task,
            extra=extra,
        )
        with job.lock:  # a cancel may win the race: then nothing more is reported
            if job.done:
                return
            job.reported = duration
            job.report(duration, duration)
        with self._cond:
            if not self._mark_done_locked(job):
                return
        job.segments = {}
        self._resolve(job, None, transcript)


__all__ = [
    "BatchInfo",
    "BatchKey",
    "BatchScheduler",
    "JobFuture",
    "LanguageFn",
    "ProgressFn",
    "default_decode",
    "default_stream",
    "is_out_of_memory",
]
