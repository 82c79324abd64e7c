"""Sample the GPU and process gauges off the GUI thread about once a second, and keep the session's peaks.

NVML calls are quick, but a GPU that is falling off the bus can block inside the driver for seconds, and
psutil reads /proc: so the GUI thread never calls the sampler. A QTimer in the GUI thread starts one
QRunnable at a time on the poller's own single-thread pool. A tick that finds the previous sample still
running is skipped, not queued, so a stuck driver costs one pool thread instead of a growing backlog. The
runnable reports through a signals object owned by the poller (never by the runnable), and the poller
re-emits the result from the GUI thread. Each run of ``start()`` gets a new generation number, so a sample
that finishes after ``stop()`` is dropped instead of reaching a panel that was told the poller stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from whisperdesk.core.gpu import GpuSampler, SystemSample

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_MS = 1000
STOP_WAIT_MS = 5000
FINISHING_WAIT_MS = 100


class Sampler(Protocol):
    """What the poller needs: ``GpuSampler`` or a test double with the same two methods."""

    def sample(self) -> SystemSample: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SessionPeaks:
    """Highest readings since the poller was created (or ``reset_peaks``). VRAM is device-wide, per GPU."""

    vram_by_gpu: dict[int, int] = field(default_factory=dict)  # GPU index -> bytes
    vram_total_by_gpu: dict[int, int] = field(default_factory=dict)  # GPU index -> bytes (capacity)
    gpu_names: dict[int, str] = field(default_factory=dict)
    rss_bytes: int = 0
    samples: int = 0

    def with_sample(self, sample: SystemSample) -> SessionPeaks:
        vram = dict(self.vram_by_gpu)
        totals = dict(self.vram_total_by_gpu)
        names = dict(self.gpu_names)
        for gpu in sample.gpus:
            vram[gpu.index] = max(vram.get(gpu.index, 0), gpu.memory_used)
            totals[gpu.index] = gpu.memory_total
            names[gpu.index] = gpu.name
        return SessionPeaks(
            vram_by_gpu=vram,
            vram_total_by_gpu=totals,
            gpu_names=names,
            rss_bytes=max(self.rss_bytes, sample.process.rss_bytes),
            samples=self.samples + 1,
        )


class _SampleSignals(QObject):
    """Lives in the GUI thread, owned by the poller, so it outlives every runnable that emits on it."""

    done = Signal(int, object)  # generation, SystemSample
    failed = Signal(int, str)  # generation, reason


class _SampleTask(QRunnable):
    def __init__(self, sampler: Sampler, signals: _SampleSignals, generation: int) -> None:
        super().__init__()
        self._sampler = sampler
        self._signals = signals
        self._generation = generation

    def run(self) -> None:
        try:
            sample = self._sampler.sample()
        except Exception as exc:  # pool-thread exceptions are invisible otherwise: report them
            self._signals.failed.emit(self._generation, f"{type(exc).__name__}: {exc}")
            return
        self._signals.done.emit(self._generation, sample)


class GpuPoller(QObject):
    """Signals (always emitted in the GUI thread): ``sampled(SystemSample)``, ``peaksChanged(SessionPeaks)``,
    ``failed(str)`` when the sampler itself raised (NVML problems are not failures: they arrive as
    ``SystemSample.nvml_error``)."""

    sampled = Signal(object)
    peaksChanged = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        sampler: Sampler | None = None,
        interval_ms: int = DEFAULT_INTERVAL_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if interval_ms <= 0:
            raise ValueError(
                f"GpuPoller interval_ms must be a positive number of milliseconds, got {interval_ms}"
            )
        self._sampler: Sampler = sampler if sampler is not None else GpuSampler()
        self._pool = QThreadPool(self)
        self._pool.setObjectName("whisperdesk-gpu-poller")
        self._pool.setMaxThreadCount(1)
        self._signals = _SampleSignals(self)
        self._signals.done.connect(self._on_done)
        self._signals.failed.connect(self._on_failed)
        self._timer = QTimer(self)
        self._timer.setObjectName("whisperdesk-gpu-poller-timer")
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_tick)
        self._generation = 0
        self._running = False
        self._in_flight: int | None = None  # generation of the sample now on the pool, if any
        self._skipped = 0
        self._peaks = SessionPeaks()
        self._last_sample: SystemSample | None = None
        self._last_failure: str | None = None

    # --- state ----------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    @property
    def busy(self) -> bool:
        """True while a sample is being taken on the pool thread."""
        return self._in_flight is not None

    @property
    def interval_ms(self) -> int:
        return self._timer.interval()

    @property
    def skipped_ticks(self) -> int:
        """Ticks dropped because the previous sample had not finished (a slow or stuck driver)."""
        return self._skipped

    @property
    def peaks(self) -> SessionPeaks:
        return self._peaks

    @property
    def last_sample(self) -> SystemSample | None:
        return self._last_sample

    # --- control --------------------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        """Sample at once (so the panel fills before the first interval), then every ``interval_ms``."""
        if self._running:
            return
        self._running = True
        self._generation += 1
        self._timer.start()
        self.poll_now()

    @Slot(result=bool)
    def stop(self) -> bool:
        """Stop the timer, wait for a running sample, close the sampler. False if the sample never ended."""
        self._running = False
        self._generation += 1  # whatever is still queued for the GUI thread is now stale
        self._timer.stop()
        if not self._pool.waitForDone(STOP_WAIT_MS):
            # The sampler holds its lock inside the stuck call: closing it now would block the GUI too.
            log.warning("GPU sampling did not finish within %d s; NVML left open", STOP_WAIT_MS // 1000)
            return False
        self._in_flight = None
        try:
            self._sampler.close()  # NVML shut down; a later start() initialises it again
        except Exception:
            log.exception("closing the GPU sampler failed")
        return True

    @Slot(result=bool)
    def poll_now(self) -> bool:
        """Take a sample now unless one is already running or the poller is stopped; True if one started."""
        if not self._running:
            return False
        if self._in_flight is not None or not self._pool_free():
            self._skipped += 1
            return False
        self._in_flight = self._generation
        self._pool.start(_SampleTask(self._sampler, self._signals, self._generation))
        return True

    def _pool_free(self) -> bool:
        """True when ``start()`` will run the task at once rather than queue it behind another.

        The previous task may have delivered its result and still be returning from ``run()``; that tail
        is microseconds, so wait for it briefly. Never ``tryStart()``: when it fails PySide has already
        handed the runnable to C++, which then never deletes it.
        """
        return self._pool.activeThreadCount() == 0 or self._pool.waitForDone(FINISHING_WAIT_MS)

    @Slot()
    def reset_peaks(self) -> None:
        self._peaks = SessionPeaks()
        self.peaksChanged.emit(self._peaks)

    # --- results (GUI thread) -------------------------------------------------------------------------
    @Slot()
    def _on_tick(self) -> None:
        self.poll_now()

    def _finish(self, generation: int) -> bool:
        """Clear the in-flight mark for this sample; True if its result is still wanted."""
        if generation == self._in_flight:
            self._in_flight = None
        return self._running and generation == self._generation

    @Slot(int, object)
    def _on_done(self, generation: int, sample: object) -> None:
        if not self._finish(generation) or not isinstance(sample, SystemSample):
            return
        self._last_sample = sample
        self._last_failure = None
        self._peaks = self._peaks.with_sample(sample)
        self.sampled.emit(sample)
        self.peaksChanged.emit(self._peaks)

    @Slot(int, str)
    def _on_failed(self, generation: int, reason: str) -> None:
        if not self._finish(generation):
            return
        message = f"GPU and process gauges could not be read: {reason}"
        if message != self._last_failure:  # once per distinct reason, not once a second
            log.warning("%s", message)
        self._last_failure = message
        self.failed.emit(message)
