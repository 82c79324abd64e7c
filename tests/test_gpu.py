"""GPU sampler: real NVML-unavailable path on this machine, GPU paths through a fake NVML module object.

The fake replaces only the driver calls. It raises pynvml's own exception classes and returns pynvml's own
ctypes structures, so our error mapping and unit conversions see what the real binding hands back.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
import threading
from dataclasses import dataclass

import pynvml
import pytest

from whisperdesk.core.gpu import GpuSampler, PeakTracker

GIB = 1024**3


def nvidia_driver_present() -> bool:
    name = "nvml.dll" if sys.platform.startswith("win") else "libnvidia-ml.so.1"
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


@dataclass
class FakeGpu:
    name: str
    total: int
    used: list[int]  # one value per memory query; the last repeats
    temperature: int | None  # None: NotSupported
    utilization: int | None
    power_mw: int | None
    limit_mw: int | None
    memory_queries: int = 0


class FakeNvml:
    """Stands in for the pynvml module: same function names, same return types, same exceptions."""

    NVMLError = pynvml.NVMLError
    NVMLError_NotSupported = pynvml.NVMLError_NotSupported
    NVMLError_NoPermission = pynvml.NVMLError_NoPermission
    NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
    NVMLError_DriverNotLoaded = pynvml.NVMLError_DriverNotLoaded
    NVMLError_LibRmVersionMismatch = pynvml.NVMLError_LibRmVersionMismatch
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU

    def __init__(
        self, gpus: list[FakeGpu], *, driver: str = "550.54.15", init_error: int | None = None
    ) -> None:
        self.gpus = gpus
        self.driver = driver
        self.init_error = init_error
        self.init_calls = 0
        self.shutdown_calls = 0
        self.lost: set[int] = set()
        self.memory_event = threading.Event()
        self.memory_event_after = 0

    def _gpu(self, handle: int) -> FakeGpu:
        if handle in self.lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return self.gpus[handle]

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return self._gpu(handle).name.encode()  # older bindings return bytes; ours must decode

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> pynvml.c_nvmlMemory_t:
        gpu = self._gpu(handle)
        used = gpu.used[min(gpu.memory_queries, len(gpu.used) - 1)]
        gpu.memory_queries += 1
        if self.memory_event_after and gpu.memory_queries >= self.memory_event_after:
            self.memory_event.set()
        return pynvml.c_nvmlMemory_t(total=gpu.total, free=gpu.total - used, used=used)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._value(self._gpu(handle).temperature)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> pynvml.c_nvmlUtilization_t:
        gpu = self._gpu(handle)
        return pynvml.c_nvmlUtilization_t(gpu=self._value(gpu.utilization), memory=0)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return self._value(self._gpu(handle).power_mw)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return self._value(self._gpu(handle).limit_mw)

    @staticmethod
    def _value(value: int | None) -> int:
        if value is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value


def two_gpu_machine() -> FakeNvml:
    return FakeNvml(
        [
            FakeGpu("NVIDIA GeForce RTX 4090", 24 * GIB, [22 * GIB], 86, 97, 412_345, 450_000),
            # A data-centre board in passive cooling mode: no power readout.
            FakeGpu("NVIDIA A10", 24 * GIB, [2 * GIB], 41, 3, None, None),
        ]
    )


def test_two_gpus_are_parsed_with_units_and_not_supported_fields() -> None:
    fake = two_gpu_machine()
    sampler = GpuSampler(nvml=fake, clock=lambda: 1234.5)
    sample = sampler.sample()

    assert sample.nvml_error is None
    assert sample.driver_version == "550.54.15"
    assert sample.timestamp == 1234.5
    first, second = sample.gpus
    assert (first.index, first.name) == (0, "NVIDIA GeForce RTX 4090")
    assert (first.memory_used, first.memory_total) == (22 * GIB, 24 * GIB)
    assert first.temperature_c == 86
    assert first.utilization_pct == 97
    assert first.power_w == pytest.approx(412.345)
    assert first.power_limit_w == pytest.approx(450.0)
    assert second.name == "NVIDIA A10"
    assert second.power_w is None and second.power_limit_w is None
    assert second.temperature_c == 41


def test_warning_flags() -> None:
    sample = GpuSampler(nvml=two_gpu_machine()).sample()
    hot_full, calm = sample.gpus
    assert hot_full.hot and hot_full.memory_high
    assert hot_full.memory_fraction == pytest.approx(22 / 24)
    assert not calm.hot and not calm.memory_high
    assert calm.warnings == ()
    texts = sample.warnings
    assert len(texts) == 2
    assert "86 °C" in texts[0] and "RTX 4090" in texts[0]
    assert "92%" in texts[1]


def test_thresholds_are_inclusive_and_missing_temperature_is_not_hot() -> None:
    fake = FakeNvml(
        [FakeGpu("edge", 100, [90], 85, None, None, None), FakeGpu("cool", 100, [89], None, 0, 1, 1)]
    )
    edge, cool = GpuSampler(nvml=fake).sample().gpus
    assert edge.hot and edge.memory_high
    assert edge.utilization_pct is None
    assert cool.temperature_c is None and not cool.hot and not cool.memory_high


def test_nvml_is_initialised_once_and_shut_down_on_close() -> None:
    fake = two_gpu_machine()
    sampler = GpuSampler(nvml=fake)
    for _ in range(3):
        sampler.sample()
    assert fake.init_calls == 1
    sampler.close()
    assert fake.shutdown_calls == 1
    sampler.close()  # idempotent
    assert fake.shutdown_calls == 1


def test_init_failure_gives_reason_and_is_not_retried_every_sample() -> None:
    fake = FakeNvml([], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    sampler = GpuSampler(nvml=fake)
    first = sampler.sample()
    second = sampler.sample()
    assert first.gpus == ()
    assert first.nvml_error == "NVML not available: the NVIDIA kernel driver is not loaded; running on CPU"
    assert second.nvml_error == first.nvml_error
    assert fake.init_calls == 1
    assert first.process.rss_bytes > 0
    sampler.close()
    assert fake.shutdown_calls == 0  # never initialised, nothing to shut down


def test_missing_library_via_fake_names_the_library() -> None:
    fake = FakeNvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    error = GpuSampler(nvml=fake).sample().nvml_error
    assert error is not None and error.startswith("NVML not available: ")
    if sys.platform.startswith("linux"):
        assert "libnvidia-ml.so.1 not found (no NVIDIA driver)" in error


def test_unknown_init_error_keeps_nvml_text() -> None:
    fake = FakeNvml([], init_error=pynvml.NVML_ERROR_UNKNOWN)
    assert GpuSampler(nvml=fake).sample().nvml_error == "NVML not available: Unknown Error; running on CPU"


def test_driver_without_gpus() -> None:
    sample = GpuSampler(nvml=FakeNvml([], driver="535.1")).sample()
    assert sample.gpus == ()
    assert sample.nvml_error == "NVML found no NVIDIA GPU (driver 535.1); running on CPU"
    assert sample.driver_version == "535.1"


def test_lost_gpu_is_reported_and_others_still_read() -> None:
    fake = two_gpu_machine()
    sampler = GpuSampler(nvml=fake)
    assert len(sampler.sample().gpus) == 2
    fake.lost.add(0)
    sample = sampler.sample()
    assert [g.name for g in sample.gpus] == ["NVIDIA A10"]
    assert sample.nvml_error == "NVML error on GPU 0 (NVIDIA GeForce RTX 4090): GPU is lost"


def test_real_nvml_on_this_machine() -> None:
    with GpuSampler() as sampler:
        sample = sampler.sample()
    assert sample.process.rss_bytes > 10 * 1024**2
    assert sample.process.num_threads >= 1
    if nvidia_driver_present():
        assert sample.gpus or sample.nvml_error
        assert all(g.memory_total > 0 for g in sample.gpus)
    else:
        assert sample.gpus == ()
        assert sample.driver_version is None
        assert sample.nvml_error is not None
        assert sample.nvml_error.startswith("NVML not available")
        assert sample.nvml_error.endswith("running on CPU")
        if sys.platform.startswith("linux"):
            assert "libnvidia-ml.so.1 not found" in sample.nvml_error


def test_peak_tracker_samples_at_start_and_stop() -> None:
    fake = FakeNvml([FakeGpu("g", 8 * GIB, [1 * GIB, 2 * GIB], 50, 10, 1000, 2000)])
    tracker = PeakTracker(interval_ms=3_600_000, sampler=GpuSampler(nvml=fake))
    tracker.start()
    peaks = tracker.stop()
    assert peaks.samples == 2
    assert peaks.baseline_vram_bytes == 1 * GIB
    assert peaks.peak_vram_bytes == 2 * GIB
    assert peaks.peak_vram_by_gpu == {0: 2 * GIB}
    assert peaks.peak_rss_bytes >= peaks.baseline_rss_bytes > 0
    assert peaks.nvml_error is None
    assert tracker.peaks is peaks


def test_peak_tracker_background_thread_catches_a_transient_peak() -> None:
    # Memory rises to 6 GiB on the second and third queries only; start and stop see 1 GiB and 3 GiB.
    fake = FakeNvml(
        [
            FakeGpu("a", 16 * GIB, [1 * GIB, 6 * GIB, 6 * GIB, 3 * GIB], 50, 10, 1000, 2000),
            FakeGpu("b", 16 * GIB, [1 * GIB, 1 * GIB, 2 * GIB, 1 * GIB], 50, 10, 1000, 2000),
        ]
    )
    fake.memory_event_after = 4  # the thread has sampled three times: queries 2-4 fall to it
    with PeakTracker(interval_ms=1, sampler=GpuSampler(nvml=fake)) as tracker:
        assert fake.memory_event.wait(10), "the background thread never sampled"
    peaks = tracker.peaks
    assert peaks is not None
    assert peaks.samples >= 5
    assert peaks.peak_vram_by_gpu == {0: 6 * GIB, 1: 2 * GIB}
    assert peaks.peak_vram_bytes == 8 * GIB  # sampled together: 6 + 2 on the third sample
    assert peaks.baseline_vram_bytes == 2 * GIB


def test_peak_tracker_without_nvml_still_tracks_rss() -> None:
    fake = FakeNvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    tracker = PeakTracker(interval_ms=5, sampler=GpuSampler(nvml=fake))
    size = 32 * 1024**2
    # A fresh anonymous mapping, every page written: new resident memory the kernel must count. (A bytes
    # object could reuse heap pages freed earlier, which are already resident, so RSS might not grow.)
    blob = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        tracker.start()
        for offset in range(0, size, mmap.PAGESIZE):
            blob[offset] = 1
        peaks = tracker.stop()
    finally:
        blob.close()
    assert peaks.peak_vram_bytes is None
    assert peaks.peak_vram_by_gpu == {}
    assert peaks.nvml_error is not None and "NVML not available" in peaks.nvml_error
    assert peaks.peak_rss_bytes >= peaks.baseline_rss_bytes + 16 * 1024**2


def test_peak_tracker_misuse_is_explained() -> None:
    with pytest.raises(ValueError, match="interval_ms must be positive"):
        PeakTracker(interval_ms=0)
    tracker = PeakTracker(interval_ms=3_600_000, sampler=GpuSampler(nvml=two_gpu_machine()))
    with pytest.raises(RuntimeError, match="without start"):
        tracker.stop()
    tracker.start()
    with pytest.raises(RuntimeError, match="already running"):
        tracker.start()
    tracker.stop()
