"""Peak memory of a block of work, and the check that memory does not follow the length of the queue.

Peak RSS is the kernel's exact high-water mark on Linux (reset through ``/proc/self/clear_refs``), else
sampled; peak VRAM is sampled through NVML where the GPU gauges exist. Before each measurement the
allocator's cached memory is handed back, so one run's peak is not the previous run's leftovers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Peak:
    rss_bytes: int
    rss_start_bytes: int
    vram_bytes: int | None  # device-wide, all GPUs; None without NVML
    vram_start_bytes: int | None


def reset_high_water() -> bool:
    """Reset Linux's per-process RSS high-water mark (VmHWM); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def high_water() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def settle_heap() -> None:
    """Collect garbage and hand glibc's cached free memory back, so idle RSS shows what is really held.

    Without this, idle RSS after a run swings by hundreds of MB with what the allocator keeps cached from
    the last batch's beam-search buffers, hiding (or faking) a leak.
    """
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakWatch:
    """``with PeakWatch().watch() as w: ...`` leaves the block's :class:`Peak` in ``w.result``."""

    def __init__(self, interval_ms: int = 50, *, settle: bool = True) -> None:
        self._interval_ms = interval_ms
        self._settle = settle
        self.result: Peak | None = None

    @contextmanager
    def watch(self) -> Iterator[PeakWatch]:
        from whisperdesk.core.gpu import PeakTracker

        if self._settle:
            settle_heap()
        exact = reset_high_water()
        tracker = PeakTracker(interval_ms=self._interval_ms)
        tracker.start()
        try:
            yield self
        finally:
            peaks = tracker.stop()
            hwm = high_water() if exact else None
            self.result = Peak(
                max(peaks.peak_rss_bytes, hwm or 0),
                peaks.baseline_rss_bytes,
                peaks.peak_vram_bytes,
                peaks.baseline_vram_bytes,
            )


@contextmanager
def measured_peak() -> Iterator[list[int]]:
    """Peak RSS of a block, in a one-element list filled when the block ends (no heap settling)."""
    result = [0]
    if reset_high_water():
        yield result
        result[0] = high_water() or 0
        return
    watch = PeakWatch(interval_ms=5, settle=False)
    with watch.watch():
        yield result
    result[0] = watch.result.rss_bytes if watch.result else 0


@dataclass(frozen=True)
class MemoryCheck:
    """Does memory follow the queue? Peak RSS with a short and a long queue, and idle RSS before and after."""

    jobs: int
    short_jobs: int
    rss_before_bytes: int  # idle after the short queue (allocator caches trimmed)
    rss_short_peak_bytes: int  # peak while the short queue ran
    rss_peak_bytes: int  # peak while ``jobs`` queued files ran
    rss_after_bytes: int  # idle after the long queue (allocator caches trimmed)
    exact: bool  # peaks from the kernel's high-water mark (Linux) rather than sampling

    @property
    def growth_bytes(self) -> int:
        """What the long queue left behind: idle RSS after it minus idle RSS before it."""
        return self.rss_after_bytes - self.rss_before_bytes

    @property
    def peak_growth_bytes(self) -> int:
        """How much higher the peak was with the long queue than with the short one."""
        return self.rss_peak_bytes - self.rss_short_peak_bytes


def memory_check(run: Callable[[int], None], jobs: int, short: int) -> MemoryCheck:
    """``run(n)`` queues n jobs at once and waits for them; compare ``short`` jobs with ``jobs``.

    The short queue should hold a few batches per worker, enough for every worker to reach its biggest
    working set, so a higher peak with the long queue is memory that follows the number of queued files.
    A first short run warms allocator pools and CTranslate2's per-shape buffers before anything is measured.
    """
    import psutil

    proc = psutil.Process()
    run(short)
    with measured_peak() as short_peak:
        run(short)
    settle_heap()
    before = proc.memory_info().rss
    with measured_peak() as long_peak:
        run(jobs)
    settle_heap()
    after = proc.memory_info().rss
    return MemoryCheck(jobs, short, before, short_peak[0], long_peak[0], after, reset_high_water())


def memory_line(m: MemoryCheck) -> str:
    return (
        f"memory: peak RSS {mb(m.rss_short_peak_bytes)} with {m.short_jobs} short files queued, "
        f"{mb(m.rss_peak_bytes)} with {m.jobs} ({m.peak_growth_bytes / MB:+.1f} MB); idle RSS "
        f"{mb(m.rss_before_bytes)} before the {m.jobs}, {mb(m.rss_after_bytes)} after: growth "
        f"{m.growth_bytes / MB:+.1f} MB (target < 50 MB: {'met' if m.growth_bytes < 50 * MB else 'NOT met'})"
    )


def mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:.0f} MB"
