"""GPU panel and poller, offscreen: fake NVML driver for the GPU paths, the real "no NVML" path of this machine.

The GPU machine is the real ``GpuSampler`` over ``test_gpu``'s fake pynvml module, so the panel sees what
the sampler really produces from pynvml's own return types and exceptions.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QThread, QThreadPool, QTimer, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QProgressBar
from pytestqt.qtbot import QtBot
from test_gpu import GIB, FakeGpu, FakeNvml, nvidia_driver_present

from whisperdesk.core.gpu import GpuSample, GpuSampler, ProcessSample, SystemSample
from whisperdesk.services.gpu_poller import GpuPoller, SessionPeaks
from whisperdesk.ui.gpu_panel import NO_GPU_TEXT, WARNING_COLOUR, GpuPanel

NEVER_MS = 3_600_000  # the timer never fires inside a test: samples come from start() and poll_now()


pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def make_poller(qapp: QApplication) -> Iterator[Callable[..., GpuPoller]]:
    """Pollers a test creates must be stopped by it: nothing may still be sampling or ticking afterwards."""
    made: list[GpuPoller] = []

    def make(sampler: object, interval_ms: int = NEVER_MS) -> GpuPoller:
        poller = GpuPoller(sampler, interval_ms)  # type: ignore[arg-type]
        made.append(poller)
        return poller

    yield make
    for poller in made:
        timer = poller.findChild(QTimer)
        pool = poller.findChild(QThreadPool)
        assert timer is not None and pool is not None
        assert not timer.isActive(), "a poller timer was left running"
        assert pool.activeThreadCount() == 0, "a poller sample was left running"
        assert not poller.running and not poller.busy


def hot_and_full_machine() -> FakeNvml:
    """GPU 0 runs hot with room to spare; GPU 1 is cool but 92 % full and reports no power."""
    return FakeNvml(
        [
            FakeGpu("NVIDIA GeForce RTX 4090", 24 * GIB, [12 * GIB], 87, 97, 412_345, 450_000),
            FakeGpu("NVIDIA A10", 24 * GIB, [22 * GIB], 41, 3, None, None),
        ]
    )


def started_panel(qtbot: QtBot, poller: GpuPoller) -> GpuPanel:
    panel = GpuPanel()
    qtbot.addWidget(panel)
    panel.connect_poller(poller)
    with qtbot.waitSignal(poller.sampled, timeout=10_000):
        poller.start()
    return panel


def red_pixels(widget: QProgressBar) -> int:
    image = widget.grab().toImage()
    red = QColor(WARNING_COLOUR)
    count = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            pixel = image.pixelColor(x, y)
            if (
                abs(pixel.red() - red.red()) < 12
                and abs(pixel.green() - red.green()) < 12
                and abs(pixel.blue() - red.blue()) < 12
            ):
                count += 1
    return count


def system_sample(*gpus: GpuSample, error: str | None = None) -> SystemSample:
    return SystemSample(gpus, ProcessSample(300 * 1024**2, 150.0, 9), error, "550.54.15", 1.0)


def gpu(index: int, used_gib: int = 4, temperature: int = 50) -> GpuSample:
    return GpuSample(index, f"Board {index}", used_gib * GIB, 16 * GIB, temperature, 10, 100.0, 200.0)


# --- panel over the fake 2-GPU machine ------------------------------------------------------------------
def test_two_gpus_show_figures_warning_colours_and_tooltips(
    qtbot: QtBot, make_poller: Callable[..., GpuPoller]
) -> None:
    poller = make_poller(GpuSampler(nvml=hot_and_full_machine()))
    panel = started_panel(qtbot, poller)
    poller.stop()

    assert panel.status_text() == "NVIDIA driver 550.54.15 · 2 GPUs"
    assert panel.status_label.property("warning") is False
    hot, full = panel.cards()[0], panel.cards()[1]
    assert hot.title_label.text() == "GPU 0 · NVIDIA GeForce RTX 4090"
    assert full.title_label.text() == "GPU 1 · NVIDIA A10"

    # GPU 0: hot, memory fine.
    assert hot.temperature_label.text() == "87 °C"
    assert hot.temperature_label.property("warning") is True
    assert WARNING_COLOUR in hot.temperature_label.styleSheet()
    assert "87 °C" in hot.temperature_label.toolTip() and "85 °C" in hot.temperature_label.toolTip()
    assert hot.vram_label.text() == "12.0 GiB / 24.0 GiB (50%)"
    assert hot.vram_bar.property("warning") is False and hot.vram_bar.styleSheet() == ""
    assert hot.vram_label.styleSheet() == ""
    assert hot.utilisation_label.text() == "97 %"
    assert hot.power_label.text() == "412 W of 450 W"
    assert "RTX 4090" in hot.toolTip() and "87 °C" in hot.toolTip()

    # GPU 1: memory high, temperature fine, power NotSupported.
    assert full.vram_label.text() == "22.0 GiB / 24.0 GiB (92%)"
    assert full.vram_bar.property("warning") is True
    assert WARNING_COLOUR in full.vram_bar.styleSheet()
    assert WARNING_COLOUR in full.vram_label.styleSheet()
    assert "92% full" in full.vram_bar.toolTip() and "out-of-memory" in full.vram_bar.toolTip()
    assert full.temperature_label.text() == "41 °C"
    assert full.temperature_label.property("warning") is False
    assert full.temperature_label.styleSheet() == ""
    assert full.power_label.text() == "n/a"
    assert full.utilisation_label.text() == "3 %"

    assert re.fullmatch(r"\d+ (MiB|GiB) \(RSS\)|\d+\.\d GiB \(RSS\)", panel.ram_label.text())
    assert re.fullmatch(r"\d+ % · \d+ threads", panel.cpu_label.text())
    assert panel.peaks_label.text().startswith("Session peak: GPU 0 12.0 GiB · GPU 1 22.0 GiB · RAM ")


def test_warning_colour_is_actually_painted(qtbot: QtBot, make_poller: Callable[..., GpuPoller]) -> None:
    poller = make_poller(GpuSampler(nvml=hot_and_full_machine()))
    panel = started_panel(qtbot, poller)
    poller.stop()
    panel.resize(280, 420)
    panel.show()
    qtbot.waitExposed(panel)
    calm, full = panel.cards()[0].vram_bar, panel.cards()[1].vram_bar
    assert red_pixels(full) > 50
    assert red_pixels(calm) == 0


def test_recovered_gpu_loses_its_warning_colour(qtbot: QtBot) -> None:
    panel = GpuPanel()
    qtbot.addWidget(panel)
    panel.show_sample(system_sample(gpu(0, used_gib=15, temperature=90)))
    card = panel.cards()[0]
    assert card.vram_bar.property("warning") is True and card.temperature_label.property("warning") is True
    panel.show_sample(system_sample(gpu(0, used_gib=2, temperature=60)))
    assert panel.cards()[0] is card
    assert card.vram_bar.property("warning") is False and card.vram_bar.styleSheet() == ""
    assert card.temperature_label.styleSheet() == ""
    assert card.toolTip() == ""
    assert "every process" in card.vram_bar.toolTip()


def test_gpus_appearing_and_disappearing(qtbot: QtBot) -> None:
    panel = GpuPanel()
    qtbot.addWidget(panel)
    panel.resize(260, 900)
    panel.show()
    panel.show_sample(system_sample(gpu(0), gpu(1)))
    first = panel.cards()
    assert sorted(first) == [0, 1]

    panel.show_sample(system_sample(gpu(1), error="NVML error on GPU 0 (Board 0): GPU is lost"))
    assert sorted(panel.cards()) == [1]
    assert panel.cards()[1] is first[1]  # the survivor is updated in place, not rebuilt
    assert panel.status_text() == "NVML error on GPU 0 (Board 0): GPU is lost"
    assert panel.status_label.property("warning") is True

    panel.show_sample(system_sample(gpu(2), gpu(0), gpu(1)))
    assert sorted(panel.cards()) == [0, 1, 2]
    assert panel.status_label.property("warning") is False
    qtbot.waitUntil(lambda: panel.cards()[2].y() > panel.cards()[1].y() > panel.cards()[0].y() > 0)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert first[0] not in panel.findChildren(type(first[0]))  # the removed card is gone, not hidden


def test_lost_gpu_through_the_sampler_keeps_the_other(
    qtbot: QtBot, make_poller: Callable[..., GpuPoller]
) -> None:
    fake = hot_and_full_machine()
    poller = make_poller(GpuSampler(nvml=fake))
    panel = started_panel(qtbot, poller)
    fake.lost.add(0)
    with qtbot.waitSignal(poller.sampled, timeout=10_000):
        assert poller.poll_now()
    poller.stop()
    assert sorted(panel.cards()) == [1]
    assert "GPU is lost" in panel.status_text()
    assert panel.peaks_label.text().startswith("Session peak: GPU 0 12.0 GiB · GPU 1 22.0 GiB")


def test_show_sample_rejects_other_objects(qtbot: QtBot) -> None:
    panel = GpuPanel()
    qtbot.addWidget(panel)
    with pytest.raises(TypeError, match="expects a SystemSample, got dict"):
        panel.show_sample({"gpus": []})
    with pytest.raises(TypeError, match="expects SessionPeaks"):
        panel.show_peaks(None)


# --- the real machine -----------------------------------------------------------------------------------
def test_real_sampler_on_this_machine(qtbot: QtBot, make_poller: Callable[..., GpuPoller]) -> None:
    poller = make_poller(GpuSampler())
    panel = started_panel(qtbot, poller)
    poller.stop()
    assert re.fullmatch(r"\d+(\.\d)? (MiB|GiB) \(RSS\)", panel.ram_label.text())
    assert re.fullmatch(r"\d+ % · \d+ threads", panel.cpu_label.text())
    assert panel.process_box.isVisibleTo(panel)
    if nvidia_driver_present():
        assert panel.cards() or "NVML" in panel.status_label.toolTip()
        return
    assert panel.status_text() == NO_GPU_TEXT  # plain words; the library's reason is in the tooltip
    tooltip = panel.status_label.toolTip()
    assert "Details: NVML not available: " in tooltip and tooltip.rstrip().endswith("; running on CPU")
    assert panel.cards() == {}
    assert panel.status_label.property("warning") is False  # a CPU-only machine is not an alarm
    assert re.fullmatch(r"Session peak: RAM \d+(\.\d)? (MiB|GiB)", panel.peaks_label.text())


# --- poller threading -----------------------------------------------------------------------------------
class RecordingSampler:
    """A real sampler over the fake driver that notes which thread each sample ran on."""

    def __init__(self) -> None:
        self._inner = GpuSampler(nvml=hot_and_full_machine())
        self.threads: list[int] = []
        self.closed = 0

    def sample(self) -> SystemSample:
        self.threads.append(threading.get_ident())
        return self._inner.sample()

    def close(self) -> None:
        self.closed += 1
        self._inner.close()


class BlockingSampler(RecordingSampler):
    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()

    def sample(self) -> SystemSample:
        self.started.set()
        assert self.release.wait(10), "the test never released the sampler"
        return super().sample()


class ThreadNotingReceiver(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.in_gui_thread: list[bool] = []
        self.samples: list[SystemSample] = []

    @Slot(object)
    def on_sampled(self, sample: object) -> None:
        app = QCoreApplication.instance()
        assert app is not None
        self.in_gui_thread.append(QThread.currentThread() is app.thread())
        assert isinstance(sample, SystemSample)
        self.samples.append(sample)


def test_poller_samples_off_the_gui_thread_and_emits_on_it(
    qtbot: QtBot, make_poller: Callable[..., GpuPoller]
) -> None:
    sampler = RecordingSampler()
    poller = make_poller(sampler, interval_ms=10)  # the timer drives every sample after the first
    receiver = ThreadNotingReceiver()
    poller.sampled.connect(receiver.on_sampled)
    poller.start()
    qtbot.waitUntil(lambda: len(receiver.samples) >= 3, timeout=10_000)
    assert poller.stop()
    assert receiver.in_gui_thread and all(receiver.in_gui_thread)
    assert sampler.threads and threading.main_thread().ident not in sampler.threads
    assert sampler.closed == 1
    assert poller.peaks.samples == len(receiver.samples)


def test_a_tick_during_a_running_sample_is_skipped_not_queued(
    qtbot: QtBot, make_poller: Callable[..., GpuPoller]
) -> None:
    sampler = BlockingSampler()
    poller = make_poller(sampler)
    poller.start()
    assert sampler.started.wait(10)
    assert poller.busy
    assert not poller.poll_now()
    assert not poller.poll_now()
    assert poller.skipped_ticks == 2
    with qtbot.waitSignal(poller.sampled, timeout=10_000):
        sampler.release.set()
    assert not poller.busy
    with qtbot.waitSignal(poller.sampled, timeout=10_000):
        assert poller.poll_now()
    poller.stop()
    assert len(sampler.threads) == 2  # two samples ran, the skipped ticks never did


def test_stop_waits_drops_the_late_result_and_restarts_cleanly(
    qtbot: QtBot, make_poller: Callable[..., GpuPoller]
) -> None:
    sampler = BlockingSampler()
    poller = make_poller(sampler)
    poller.start()
    assert sampler.started.wait(10)
    sampler.release.set()
    with qtbot.assertNotEmitted(poller.sampled, wait=50):
        assert poller.stop()  # the finished sample's result is still queued for the GUI thread
        QCoreApplication.processEvents()
    pool = poller.findChild(QThreadPool)
    timer = poller.findChild(QTimer)
    assert pool is not None and pool.activeThreadCount() == 0
    assert timer is not None and not timer.isActive()
    assert not poller.running and not poller.busy
    assert sampler.closed == 1
    assert not poller.poll_now()  # stopped: nothing starts

    with qtbot.waitSignal(poller.sampled, timeout=10_000):
        poller.start()  # NVML is initialised again after close()
    assert poller.stop()
    assert sampler.closed == 2


def test_sampler_failure_is_reported_and_logged_once(
    qtbot: QtBot, make_poller: Callable[..., GpuPoller], caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenSampler:
        closed = False

        def sample(self) -> SystemSample:
            raise PermissionError("/proc/self/stat: permission denied")

        def close(self) -> None:
            self.closed = True

    poller = make_poller(BrokenSampler())
    panel = GpuPanel()
    qtbot.addWidget(panel)
    panel.connect_poller(poller)
    with caplog.at_level(logging.WARNING, logger="whisperdesk.services.gpu_poller"):
        with qtbot.waitSignal(poller.failed, timeout=10_000) as first:
            poller.start()
        with qtbot.waitSignal(poller.failed, timeout=10_000):
            assert poller.poll_now()
    poller.stop()
    assert first.args == [
        "GPU and process gauges could not be read: PermissionError: /proc/self/stat: permission denied"
    ]
    assert [r.getMessage() for r in caplog.records] == first.args
    assert panel.status_text() == first.args[0]
    assert panel.status_label.property("warning") is True


def test_session_peaks_follow_the_maximum_and_reset(
    qtbot: QtBot, make_poller: Callable[..., GpuPoller]
) -> None:
    fake = FakeNvml([FakeGpu("g", 8 * GIB, [1 * GIB, 6 * GIB, 2 * GIB], 50, 10, 1000, 2000)])
    poller = make_poller(GpuSampler(nvml=fake))
    panel = started_panel(qtbot, poller)
    for _ in range(2):
        with qtbot.waitSignal(poller.peaksChanged, timeout=10_000):
            assert poller.poll_now()
    poller.stop()
    peaks = poller.peaks
    assert peaks.samples == 3
    assert peaks.vram_by_gpu == {0: 6 * GIB}
    assert peaks.vram_total_by_gpu == {0: 8 * GIB}
    assert peaks.gpu_names == {0: "g"}
    assert peaks.rss_bytes > 0
    assert panel.cards()[0].vram_label.text() == "2.0 GiB / 8.0 GiB (25%)"  # now, not the peak
    assert panel.peaks_label.text().startswith("Session peak: GPU 0 6.0 GiB · RAM ")
    with qtbot.waitSignal(poller.peaksChanged) as reset:
        poller.reset_peaks()
    assert reset.args == [SessionPeaks()]
    assert panel.peaks_label.text() == ""


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_ms must be a positive number of milliseconds, got 0"):
        GpuPoller(RecordingSampler(), 0)
