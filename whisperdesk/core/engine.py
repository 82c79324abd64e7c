"""The one shared faster-whisper model of the process, and everything that decides how it is loaded.

Every job of the CLI, the headless watcher and the GUI goes through a single :class:`Engine`. It loads the
model lazily (the window paints first), keeps it loaded across jobs, and swaps it only between jobs when
``reconfigure`` asks for another model, device, compute type or batch size, so a queue is never lost.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisperdesk.core.errors import (
    Cancelled,
    ConfigError,
    ModelLoadError,
    ModelUnavailableError,
    UnsupportedComputeTypeError,
)
from whisperdesk.core.settings import DecodeOptions, ModelConfig
from whisperdesk.core.transcript import Segment, Transcript, Word

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, float], None]
LanguageFn = Callable[[str, float], None]  # (language code, probability), as soon as it is known
SAMPLE_RATE = 16000
WINDOW_SECONDS = 30.0

_CUDA_FAILURE = re.compile(r"libcu(blas|dnn|da|blasLt)|cuda|cudnn|CUBLAS|no kernel image", re.IGNORECASE)


@dataclass(frozen=True)
class EngineEvent:
    """What the engine tells its observers (GUI status line, CLI log)."""

    kind: str  # "loading" | "loaded" | "load_failed" | "fallback"
    config: ModelConfig
    message: str = ""
    seconds: float = 0.0
    # for "load_failed": the error's class (never the instance: its traceback would keep worker frames and
    # Qt objects alive until a garbage collection on another thread), so the window can explain it
    error_type: type[Exception] | None = None


@dataclass(frozen=True)
class ResolvedDevice:
    device: str
    compute_type: str
    reason: str


def is_local_model_dir(model: str) -> bool:
    path = Path(model).expanduser()
    return path.is_dir() and (path / "model.bin").is_file()


def cuda_device_count() -> int:
    import ctranslate2

    try:
        return int(ctranslate2.get_cuda_device_count())
    except RuntimeError:  # a broken CUDA install reports through exceptions on some versions
        return 0


def supported_compute_types(device: str) -> set[str]:
    import ctranslate2

    try:
        return set(ctranslate2.get_supported_compute_types(device))
    except (RuntimeError, ValueError):
        return set()


def resolve_device(config: ModelConfig) -> ResolvedDevice:
    """Pick the device for ``auto`` and validate the compute type against what the device supports."""
    if config.device == "auto":
        count = cuda_device_count()
        if count > 0:
            device, reason = "cuda", f"CTranslate2 sees {count} CUDA device(s)"
        else:
            device, reason = "cpu", "CTranslate2 sees no CUDA device (no NVIDIA GPU or driver)"
    else:
        device, reason = config.device, "chosen in settings"
        if device == "cuda" and cuda_device_count() == 0:
            raise ConfigError(
                "device 'cuda' was chosen but CTranslate2 sees no CUDA device; install the NVIDIA driver "
                "and CUDA 12 libraries (see `whisperdesk doctor`) or choose device 'cpu' or 'auto'"
            )
    compute_type = config.compute_type
    if compute_type not in ("default", "auto"):
        supported = supported_compute_types(device)
        if compute_type not in supported:
            raise UnsupportedComputeTypeError(compute_type, device, sorted(supported))
    return ResolvedDevice(device, compute_type, reason)


def cpu_fallback_compute_type(compute_type: str) -> str:
    supported = supported_compute_types("cpu")
    if compute_type in supported:
        return compute_type
    if compute_type.startswith("int8") and "int8" in supported:
        return "int8"
    return "float32" if "float32" in supported else "default"


def resolve_model_path(model: str, models_dir: Path, *, local_files_only: bool = False) -> str:
    """Return a local folder for ``model``: the built-in model, a local folder, or a downloaded named model.

    A named model that is not on disk is downloaded only when downloads are allowed (the CLI); the window
    passes ``local_files_only`` and offers its model manager instead, so no job blocks on a silent download.
    Every message says what to do in words; the log keeps the technical detail.
    """
    from whisperdesk.core.models import resolve

    return str(resolve.resolve(model, models_dir, local_files_only=local_files_only))


def _raise_if_damaged(
    config: ModelConfig, models_dir: Path, exc: Exception, emit: Callable[[EngineEvent], None]
) -> None:
    """A load that failed on a damaged download says which file and what to do, not the library's guess."""
    from whisperdesk.core.models.resolve import damage_behind_failed_load

    damage = damage_behind_failed_load(config.model, models_dir)
    if damage is not None:
        log.warning("model %s failed to load (%s): %s", config.model, exc, damage)
        emit(EngineEvent("load_failed", config, damage, error_type=ModelUnavailableError))
        raise ModelUnavailableError(damage) from exc


def default_loader(config: ModelConfig, model_path: str, device: ResolvedDevice) -> Any:
    """Batch size > 1 gets the scheduler's layout (two CTranslate2 workers on CPU: ~20 % faster there, see
    BENCHMARKS.md), so the app runs as fast as the benchmark measured; batch size 1 keeps one worker."""
    if config.batch_size > 1:
        from whisperdesk.core.batching.layout import load_for_batching

        return load_for_batching(model_path, device.device, device.compute_type, config.cpu_threads)
    from faster_whisper import WhisperModel

    return WhisperModel(
        model_path,
        device=device.device,
        compute_type=device.compute_type,
        cpu_threads=config.cpu_threads,
        num_workers=1,
    )


Loader = Callable[[ModelConfig, str, ResolvedDevice], Any]


def whisper_kwargs(options: DecodeOptions) -> dict[str, Any]:
    """DecodeOptions as faster-whisper's ``transcribe`` keyword arguments (the engine and the benchmark)."""
    kwargs: dict[str, Any] = {
        "language": options.language,
        "task": options.task,
        "beam_size": options.beam_size,
        "temperature": list(options.temperature),
        "word_timestamps": options.word_timestamps,
        "initial_prompt": options.initial_prompt,
        "max_new_tokens": options.max_new_tokens,
        "vad_filter": options.vad,
    }
    if options.vad:
        kwargs["vad_parameters"] = {"min_silence_duration_ms": options.vad_min_silence_ms}
    return kwargs


@dataclass
class _Loaded:
    config: ModelConfig
    device: ResolvedDevice
    model: Any
    path: str


class Engine:
    """Owns the one ``WhisperModel``; safe to call from worker threads."""

    def __init__(
        self,
        config: ModelConfig,
        models_dir: Path,
        *,
        local_files_only: bool = False,
        loader: Loader = default_loader,
        scheduler_order: str = "latency",
    ) -> None:
        config.validate()
        self._scheduler_order = scheduler_order  # BatchScheduler's window order; "arrival" for the benchmark
        self._config = config
        self._models_dir = Path(models_dir)
        self._local_files_only = local_files_only
        self._loader = loader
        self._loaded: _Loaded | None = None
        self._cond = threading.Condition()
        self._active = 0
        self._listeners: list[Callable[[EngineEvent], None]] = []
        self._scheduler: Any = None  # BatchScheduler, created on the first batched job
        self._handle: tuple[_Loaded, Any] | None = None  # (loaded model, its scheduler ModelHandle)
        self.load_count = 0

    # --- configuration --------------------------------------------------------------------------------
    @property
    def config(self) -> ModelConfig:
        return self._config

    @property
    def loaded_config(self) -> ModelConfig | None:
        loaded = self._loaded
        return loaded.config if loaded else None

    @property
    def device(self) -> str | None:
        loaded = self._loaded
        return loaded.device.device if loaded else None

    def add_listener(self, listener: Callable[[EngineEvent], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[EngineEvent], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: EngineEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # an observer must never break a job
                log.exception("engine listener failed")

    def reconfigure(self, config: ModelConfig) -> None:
        """Use ``config`` from the next job on; running jobs finish on the model they started with."""
        config.validate()
        with self._cond:
            if config != self._config:
                log.info("engine reconfigured: %s -> %s", self._config, config)
            self._config = config

    def _needs_reload(self) -> bool:
        loaded = self._loaded
        return loaded is None or loaded.config != self._config

    # --- loading --------------------------------------------------------------------------------------
    def load(self) -> None:
        """Load the configured model now (blocking); a no-op when it is already loaded."""
        with self._cond:
            while self._needs_reload() and self._active > 0:
                self._cond.wait()
            if self._needs_reload():
                self._load_locked()

    def _load_locked(self) -> None:
        config = self._config
        self._emit(EngineEvent("loading", config, f"loading model {config.model}"))
        started = time.monotonic()
        try:
            device = resolve_device(config)
            path = resolve_model_path(config.model, self._models_dir, local_files_only=self._local_files_only)
            self._loaded = None  # drop the old model first so two never sit in (GPU) memory together
            model = self._loader(config, path, device)
        except (ModelUnavailableError, ConfigError) as exc:
            self._emit(EngineEvent("load_failed", config, str(exc), error_type=type(exc)))
            raise
        except Exception as exc:
            _raise_if_damaged(config, self._models_dir, exc, self._emit)
            message = f"could not load model {config.model}: {exc}"
            self._emit(EngineEvent("load_failed", config, message, error_type=ModelLoadError))
            raise ModelLoadError(message) from exc
        self._loaded = _Loaded(config, device, model, path)
        self.load_count += 1
        seconds = time.monotonic() - started
        log.info(
            "model %s loaded on %s (%s; %s) in %.1f s",
            config.model,
            device.device,
            device.compute_type,
            device.reason,
            seconds,
        )
        self._emit(
            EngineEvent(
                "loaded", config, f"{config.model} on {device.device} ({device.compute_type})", seconds
            )
        )

    def _acquire(self) -> _Loaded:
        with self._cond:
            while self._needs_reload() and self._active > 0:
                self._cond.wait()
            if self._needs_reload():
                self._load_locked()
            assert self._loaded is not None
            self._active += 1
            return self._loaded

    def _release(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def model(self) -> Any:
        """The loaded ``WhisperModel`` (loading it if needed); for the batch scheduler and benchmarks."""
        self.load()
        assert self._loaded is not None
        return self._loaded.model

    @property
    def models_dir(self) -> Path:
        return self._models_dir

    def close(self, timeout: float = 30.0) -> bool:
        """Stop the batch scheduler's threads (queued windows are canceled); the model itself stays usable
        for sequential jobs and a later batched job starts a new scheduler. False when a batch was still in
        ``generate`` after ``timeout`` (its daemon thread runs on; the process must not exit normally while
        it does, or CTranslate2's threads abort it)."""
        with self._cond:
            scheduler, self._scheduler, self._handle = self._scheduler, None, None
        if scheduler is not None:
            return bool(scheduler.close(timeout))
        return True

    @property
    def scheduler(self) -> Any:
        """The one BatchScheduler packing windows of concurrent jobs into shared batches (batch_size > 1)."""
        with self._cond:
            if self._scheduler is None:
                from whisperdesk.core.batching.scheduler import BatchScheduler

                self._scheduler = BatchScheduler(order=self._scheduler_order)
            return self._scheduler

    def batch_handle(self, loaded: _Loaded | None = None) -> Any:
        """The scheduler's ModelHandle for the loaded model (loading it if needed); one per loaded model."""
        if loaded is None:
            self.load()
            loaded = self._loaded
        assert loaded is not None
        cached = self._handle
        if cached is not None and cached[0] is loaded:
            return cached[1]
        from whisperdesk.core.batching.layout import ModelHandle

        def cpu_copy() -> ModelHandle:
            compute_type = cpu_fallback_compute_type(loaded.device.compute_type)
            cpu = ResolvedDevice("cpu", compute_type, "CPU copy for jobs that do not fit in GPU memory")
            config = dataclasses.replace(loaded.config, device="cpu", compute_type=compute_type)
            return ModelHandle(
                self._loader(config, loaded.path, cpu),
                "cpu",
                compute_type,
                _model_label(loaded),
                loaded.config.batch_size,
            )

        handle = ModelHandle(
            model=loaded.model,
            device=loaded.device.device,
            compute_type=str(getattr(loaded.model.model, "compute_type", loaded.device.compute_type)),
            label=_model_label(loaded),
            batch_size=loaded.config.batch_size,
            cpu_fallback=cpu_copy if loaded.device.device == "cuda" else None,
        )
        self._handle = (loaded, handle)
        return handle

    # --- transcription --------------------------------------------------------------------------------
    def transcribe(
        self,
        source: Path | str,
        options: DecodeOptions,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        audio: Any = None,
        on_language: LanguageFn | None = None,
        resume: Any = None,
        on_window: Any = None,
        on_waiting: Callable[[bool], None] | None = None,
    ) -> Transcript:
        """Transcribe one file; raises AudioError, ModelError or Cancelled. Retries on CPU if CUDA fails.

        ``on_language(code, probability)`` is called on this thread as soon as the language is known (seconds
        after the start, long before the transcript), so a job row can show it while the job runs.
        ``on_window`` and ``resume`` are the batch scheduler's checkpoints (``WindowResult`` callback and
        ``{index: WindowResult}``); at batch size 1 there are no windows to keep and both are unused.
        ``on_waiting(True/False)`` says whether the job waits for the model while other jobs' batches run
        (batch size above 1; a sequential job never waits once it runs).
        """
        checkpoints = {"resume": resume, "on_window": on_window, "on_waiting": on_waiting}
        options.validate()
        loaded = self._acquire()
        try:
            return self._run(loaded, source, audio, options, progress, cancel, on_language, checkpoints)
        except RuntimeError as exc:
            if loaded.device.device != "cuda" or not _CUDA_FAILURE.search(str(exc)):
                raise
            fallback_error = exc
        finally:
            self._release()
        self._fall_back_to_cpu(loaded, fallback_error)
        loaded = self._acquire()
        try:
            return self._run(loaded, source, audio, options, progress, cancel, on_language, checkpoints)
        finally:
            self._release()

    def _fall_back_to_cpu(self, failed: _Loaded, exc: Exception) -> None:
        with self._cond:
            if self._config == failed.config:
                cpu = dataclasses.replace(
                    failed.config,
                    device="cpu",
                    compute_type=cpu_fallback_compute_type(failed.device.compute_type),
                )
                message = (
                    f"CUDA failed at first use ({exc}); retrying on the CPU with {cpu.compute_type}. "
                    "Install the CUDA 12 cuBLAS/cuDNN libraries to use the GPU (see `whisperdesk doctor`)"
                )
                log.warning(message)
                self._config = cpu
                self._emit(EngineEvent("fallback", cpu, message))

    def _run(
        self,
        loaded: _Loaded,
        source: Path | str,
        audio: Any,
        options: DecodeOptions,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        on_language: LanguageFn | None = None,
        checkpoints: dict[str, Any] | None = None,
    ) -> Transcript:
        started = time.monotonic()
        kwargs = whisper_kwargs(options)
        batch_size = loaded.config.batch_size
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if batch_size > 1:  # windows of concurrent jobs share batches (whisperdesk.core.batching.scheduler)
            # without ``audio`` the scheduler reads the file as a stream (memory stays flat however long it
            # is) and reports (0, duration) once it has read it through
            if progress and audio is not None:
                progress(0.0, float(len(audio)) / SAMPLE_RATE)
            return self.scheduler.transcribe(
                self.batch_handle(loaded),
                source,
                options,
                audio=audio,
                progress=progress,
                on_language=on_language,
                cancel=cancel,
                **(checkpoints or {}),
            )
        if audio is None:  # faster-whisper's sequential path needs the whole recording at once
            from whisperdesk.core.audio import decode

            audio = decode(Path(source))
        duration = float(len(audio)) / SAMPLE_RATE
        if progress:
            progress(0.0, duration)
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        segments, info = loaded.model.transcribe(audio, **kwargs)
        if on_language is not None and info.language:  # known before the first segment is decoded
            on_language(str(info.language), float(info.language_probability or 0.0))
        collected = _collect(segments, duration, progress, cancel)
        if progress:
            progress(duration, duration)
        return Transcript(
            source=str(source),
            segments=collected,
            language=info.language,
            language_probability=float(info.language_probability) if info.language_probability else None,
            duration=duration,
            model=_model_label(loaded),
            compute_type=str(getattr(loaded.model.model, "compute_type", loaded.device.compute_type)),
            device=loaded.device.device,
            processing_time=time.monotonic() - started,
            task=options.task,
            extra={"batch_size": batch_size, "beam_size": options.beam_size},
        )


def _collect(
    segments: Iterable[Any], duration: float, progress: ProgressFn | None, cancel: threading.Event | None
) -> list[Segment]:
    """Drain faster-whisper's lazy generator, reporting progress and honouring cancel between segments."""
    out: list[Segment] = []
    for seg in segments:
        words = tuple(
            Word(float(w.start), float(w.end), str(w.word), float(w.probability)) for w in (seg.words or ())
        )
        out.append(Segment(float(seg.start), float(seg.end), str(seg.text), words))
        if progress:
            progress(min(float(seg.end), duration), duration)
        if cancel is not None and cancel.is_set():
            raise Cancelled()
    return out


def _model_label(loaded: _Loaded) -> str:
    model = loaded.config.model
    return Path(model).name if is_local_model_dir(model) else model
