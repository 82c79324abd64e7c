"""GPU and process gauges read through NVML (nvidia-ml-py) and psutil.

NVML is optional: without an NVIDIA driver every sample still arrives, with an empty GPU list and a
plain-language ``nvml_error`` the UI can show instead of the gauges. ``pynvml`` is imported on first use so
that ``whisperdesk --help`` and the CPU-only paths never pay for it. Tests inject a fake NVML module object
through the constructor; everything below talks to it exactly as to the real ``pynvml`` module.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

HOT_TEMPERATURE_C = 85
MEMORY_HIGH_FRACTION = 0.90
_RUNNING_ON_CPU = "running on CPU"


@dataclass(frozen=True)
class GpuSample:
    """One GPU at one moment. Optional fields are None where the board or driver does not report them."""

    index: int
    name: str
    memory_used: int  # bytes, device-wide (every process, not only ours)
    memory_total: int  # bytes
    temperature_c: int | None
    utilization_pct: int | None
    power_w: float | None
    power_limit_w: float | None

    @property
    def memory_fraction(self) -> float:
        return self.memory_used / self.memory_total if self.memory_total > 0 else 0.0

    @property
    def hot(self) -> bool:
        return self.temperature_c is not None and self.temperature_c >= HOT_TEMPERATURE_C

    @property
    def memory_high(self) -> bool:
        return self.memory_fraction >= MEMORY_HIGH_FRACTION

    @property
    def warnings(self) -> tuple[str, ...]:
        """Sentences for a tooltip or log line; empty when the GPU is comfortable."""
        found: list[str] = []
        if self.hot:
            found.append(
                f"GPU {self.index} ({self.name}) is at {self.temperature_c} °C "
                f"(warning from {HOT_TEMPERATURE_C} °C); it may slow itself down"
            )
        if self.memory_high:
            found.append(
                f"GPU {self.index} ({self.name}) memory is {self.memory_fraction:.0%} full; a larger model "
                "or batch size may fail with out-of-memory"
            )
        return tuple(found)


@dataclass(frozen=True)
class ProcessSample:
    """Our own process: what the model and the decoded audio cost in RAM and CPU."""

    rss_bytes: int
    cpu_percent: float  # since the previous sample; 100 = one core busy; 0.0 on the very first sample
    num_threads: int


@dataclass(frozen=True)
class SystemSample:
    gpus: tuple[GpuSample, ...]
    process: ProcessSample
    nvml_error: str | None  # why GPU gauges are missing or incomplete; None when every GPU was read
    driver_version: str | None
    timestamp: float  # seconds since the epoch (from the sampler's clock)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for gpu in self.gpus for w in gpu.warnings)


def _text(value: Any) -> str:
    """pynvml returns str on Python 3, but older releases and some builds hand back bytes."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _error_text(error: BaseException) -> str:
    try:
        return str(error) or type(error).__name__
    except Exception:  # an NVMLError's __str__ can itself call into a missing library
        return type(error).__name__


def _library_name() -> str:
    if sys.platform.startswith("win"):
        return "nvml.dll"
    return "libnvidia-ml.so.1"


class GpuSampler:
    """Reads GPU and process gauges. Initialises NVML once, on the first sample; ``close()`` shuts it down.

    ``sample()`` never raises for NVML problems: a missing driver, a missing library, no GPU or a GPU that
    falls off the bus all become ``nvml_error`` text. Safe to call from several threads.
    """

    def __init__(
        self,
        nvml: Any | None = None,
        *,
        clock: Callable[[], float] = time.time,
        process: psutil.Process | None = None,
    ) -> None:
        self._nvml = nvml
        self._clock = clock
        self._process = process if process is not None else psutil.Process()
        self._lock = threading.Lock()
        self._initialized = False
        self._init_error: str | None = None
        self._no_gpu_reason: str | None = None
        self._driver_version: str | None = None
        self._devices: list[tuple[int, Any, str]] = []  # (index, handle, name)

    # --- lifecycle ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Shut NVML down; a later ``sample()`` initialises it again."""
        with self._lock:
            if self._initialized and self._nvml is not None:
                with contextlib.suppress(Exception):  # a lost GPU must not break app exit
                    self._nvml.nvmlShutdown()
            self._initialized = False
            self._init_error = None
            self._no_gpu_reason = None
            self._driver_version = None
            self._devices = []

    def __enter__(self) -> GpuSampler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- sampling -------------------------------------------------------------------------------------
    def sample(self) -> SystemSample:
        with self._lock:
            timestamp = self._clock()
            process = self._sample_process()
            self._ensure_initialized()
            if self._init_error is not None:
                return SystemSample((), process, self._init_error, None, timestamp)
            gpus: list[GpuSample] = []
            errors: list[str] = []
            for index, handle, name in self._devices:
                try:
                    gpus.append(self._read_gpu(index, handle, name))
                except Exception as exc:  # NVMLError (GPU lost, reset needed…) or a broken binding
                    errors.append(f"NVML error on GPU {index} ({name}): {_error_text(exc)}")
            error = "; ".join(errors) if errors else self._no_gpu_reason
            return SystemSample(tuple(gpus), process, error, self._driver_version, timestamp)

    def _sample_process(self) -> ProcessSample:
        with self._process.oneshot():
            return ProcessSample(
                rss_bytes=int(self._process.memory_info().rss),
                cpu_percent=float(self._process.cpu_percent(interval=None)),
                num_threads=int(self._process.num_threads()),
            )

    def _ensure_initialized(self) -> None:
        if self._initialized or self._init_error is not None:
            return
        if self._nvml is None:
            try:
                import pynvml
            except ImportError:
                self._init_error = (
                    "NVML not available: the nvidia-ml-py package is not installed "
                    f"(pip install nvidia-ml-py); {_RUNNING_ON_CPU}"
                )
                return
            self._nvml = pynvml
        nv = self._nvml
        try:
            nv.nvmlInit()
        except Exception as exc:
            self._init_error = self._explain_init_error(exc)
            return
        self._initialized = True
        try:
            self._driver_version = _text(nv.nvmlSystemGetDriverVersion())
        except Exception:  # informational only
            self._driver_version = None
        try:
            count = int(nv.nvmlDeviceGetCount())
            for index in range(count):
                handle = nv.nvmlDeviceGetHandleByIndex(index)
                self._devices.append((index, handle, self._device_name(handle, index)))
        except Exception as exc:
            self._no_gpu_reason = f"NVML could not list the GPUs: {_error_text(exc)}; {_RUNNING_ON_CPU}"
            return
        if not self._devices:
            driver = f" (driver {self._driver_version})" if self._driver_version else ""
            self._no_gpu_reason = f"NVML found no NVIDIA GPU{driver}; {_RUNNING_ON_CPU}"

    def _device_name(self, handle: Any, index: int) -> str:
        try:
            return _text(self._nvml.nvmlDeviceGetName(handle))
        except Exception:
            return f"GPU {index}"

    def _explain_init_error(self, exc: BaseException) -> str:
        nv = self._nvml

        def is_a(class_name: str) -> bool:
            cls = getattr(nv, class_name, None)
            return isinstance(cls, type) and isinstance(exc, cls)

        if is_a("NVMLError_LibraryNotFound"):
            if sys.platform == "darwin":
                reason = "NVIDIA GPUs are not supported on macOS"
            else:
                reason = f"{_library_name()} not found (no NVIDIA driver)"
        elif is_a("NVMLError_DriverNotLoaded"):
            reason = "the NVIDIA kernel driver is not loaded"
        elif is_a("NVMLError_NoPermission"):
            reason = "no permission to query the NVIDIA driver"
        elif is_a("NVMLError_LibRmVersionMismatch"):
            reason = (
                "the NVIDIA driver and its library have different versions (reboot after a driver update)"
            )
        else:
            reason = _error_text(exc)
        return f"NVML not available: {reason}; {_RUNNING_ON_CPU}"

    def _optional(self, getter: Callable[..., Any], *args: Any) -> Any:
        """A gauge the board does not offer (NotSupported, NoPermission) is None, not an error."""
        nv = self._nvml
        skip = tuple(
            cls
            for cls in (
                getattr(nv, "NVMLError_NotSupported", None),
                getattr(nv, "NVMLError_NoPermission", None),
            )
            if isinstance(cls, type)
        )
        try:
            return getter(*args)
        except skip:
            return None

    def _read_gpu(self, index: int, handle: Any, name: str) -> GpuSample:
        nv = self._nvml
        memory = nv.nvmlDeviceGetMemoryInfo(handle)
        temperature = self._optional(
            nv.nvmlDeviceGetTemperature, handle, getattr(nv, "NVML_TEMPERATURE_GPU", 0)
        )
        utilization = self._optional(nv.nvmlDeviceGetUtilizationRates, handle)
        power_mw = self._optional(nv.nvmlDeviceGetPowerUsage, handle)
        limit_mw = self._optional(nv.nvmlDeviceGetEnforcedPowerLimit, handle)
        return GpuSample(
            index=index,
            name=name,
            memory_used=int(memory.used),
            memory_total=int(memory.total),
            temperature_c=None if temperature is None else int(temperature),
            utilization_pct=None if utilization is None else int(utilization.gpu),
            power_w=None if power_mw is None else power_mw / 1000.0,
            power_limit_w=None if limit_mw is None else limit_mw / 1000.0,
        )


@dataclass(frozen=True)
class Peaks:
    """What a benchmark run cost at its worst. VRAM is device-wide: compare against the baseline."""

    peak_vram_bytes: int | None  # highest total (all GPUs summed) seen in one sample; None without NVML
    peak_vram_by_gpu: dict[int, int] = field(default_factory=dict)
    baseline_vram_bytes: int | None = None  # total at start()
    peak_rss_bytes: int = 0
    baseline_rss_bytes: int = 0
    samples: int = 0
    nvml_error: str | None = None  # from the first sample that had one


class PeakTracker:
    """Samples in a background thread every ``interval_ms`` and keeps the peaks.

    A sample is also taken synchronously at ``start()`` and at ``stop()``, so even a run shorter than one
    interval reports real numbers. Usable as a context manager; ``peaks`` holds the result after exit.
    """

    def __init__(self, interval_ms: int = 100, sampler: GpuSampler | None = None) -> None:
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        self._interval_s = interval_ms / 1000.0
        self._owns_sampler = sampler is None
        self._sampler = sampler if sampler is not None else GpuSampler()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reset()
        self.peaks: Peaks | None = None

    def _reset(self) -> None:
        self._samples = 0
        self._peak_total: int | None = None
        self._peak_by_gpu: dict[int, int] = {}
        self._baseline_vram: int | None = None
        self._peak_rss = 0
        self._baseline_rss = 0
        self._nvml_error: str | None = None

    def _record(self, sample: SystemSample) -> None:
        total = sum(g.memory_used for g in sample.gpus) if sample.gpus else None
        if self._samples == 0:
            self._baseline_vram = total
            self._baseline_rss = sample.process.rss_bytes
        self._samples += 1
        if total is not None:
            self._peak_total = total if self._peak_total is None else max(self._peak_total, total)
        for gpu in sample.gpus:
            self._peak_by_gpu[gpu.index] = max(self._peak_by_gpu.get(gpu.index, 0), gpu.memory_used)
        self._peak_rss = max(self._peak_rss, sample.process.rss_bytes)
        if self._nvml_error is None and sample.nvml_error is not None:
            self._nvml_error = sample.nvml_error

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._record(self._sampler.sample())

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("PeakTracker is already running; call stop() first")
        self._reset()
        self.peaks = None
        self._stop.clear()
        self._record(self._sampler.sample())
        self._thread = threading.Thread(target=self._run, name="whisperdesk-peak-tracker", daemon=True)
        self._thread.start()

    def stop(self) -> Peaks:
        if self._thread is None:
            raise RuntimeError("PeakTracker.stop() called without start()")
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._record(self._sampler.sample())
        if self._owns_sampler:
            self._sampler.close()
        self.peaks = Peaks(
            peak_vram_bytes=self._peak_total,
            peak_vram_by_gpu=dict(self._peak_by_gpu),
            baseline_vram_bytes=self._baseline_vram,
            peak_rss_bytes=self._peak_rss,
            baseline_rss_bytes=self._baseline_rss,
            samples=self._samples,
            nvml_error=self._nvml_error,
        )
        return self.peaks

    def __enter__(self) -> PeakTracker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
