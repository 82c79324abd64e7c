"""A compact side-dock view of the GPUs (VRAM, temperature, utilisation, power) and of our own process.

It only displays ``SystemSample`` objects handed to ``show_sample`` in the GUI thread (by ``GpuPoller``);
it never samples. Without a usable NVIDIA card it says so in plain words, with the sampler's reason ("NVML not
available: …") in the tooltip, and the process's RAM and CPU stay visible, so a CPU-only user still sees what a job costs. A GPU
near its limits turns its bar or label red and says why in the tooltip, because colour alone is easy to
miss and says nothing about what to do.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.core.gpu import HOT_TEMPERATURE_C, MEMORY_HIGH_FRACTION, GpuSample, SystemSample
from whisperdesk.services.gpu_poller import GpuPoller, SessionPeaks

WARNING_COLOUR = "#c62828"  # the log view's error red
NOT_AVAILABLE = "n/a"
PREFERRED_WIDTH = 240
_LABEL_WARNING_STYLE = f"QLabel {{ color: {WARNING_COLOUR}; font-weight: bold; }}"
_BAR_WARNING_STYLE = (
    f"QProgressBar {{ border: 1px solid {WARNING_COLOUR}; border-radius: 3px; text-align: center; }}"
    f"QProgressBar::chunk {{ background-color: {WARNING_COLOUR}; }}"
)
_VRAM_TOOLTIP = (
    "Memory in use on this GPU by every process, not only WhisperDesk; "
    f"turns red from {MEMORY_HIGH_FRACTION:.0%}"
)
_TEMPERATURE_TOOLTIP = f"GPU core temperature; turns red from {HOT_TEMPERATURE_C} °C"
_UTILISATION_TOOLTIP = "Share of the last sample period in which the GPU was running kernels"
_CPU_TOOLTIP = "CPU time used by WhisperDesk since the previous sample; 100 % is one core fully busy"
_RSS_TOOLTIP = "Resident memory of the WhisperDesk process (model, decoded audio, the app itself)"

KIB = 1024
MIB = 1024**2
GIB = 1024**3


def format_bytes(count: int) -> str:
    if count >= GIB:
        return f"{count / GIB:.1f} GiB"
    if count >= MIB:
        return f"{count / MIB:.0f} MiB"
    return f"{count / KIB:.0f} KiB"


def format_power(power_w: float | None, limit_w: float | None) -> str:
    if power_w is None:
        return NOT_AVAILABLE
    if limit_w is None:
        return f"{power_w:.0f} W"
    return f"{power_w:.0f} W of {limit_w:.0f} W"


NO_GPU_TEXT = "No NVIDIA graphics card found: there are no GPU figures to show."


def _set_warning(widget: QLabel | QProgressBar, on: bool, tooltip: str) -> None:
    """Colour via a stylesheet (palettes are ignored by some native styles); ``warning`` is for themes."""
    if isinstance(widget, QProgressBar):
        style = _BAR_WARNING_STYLE if on else ""
    else:
        style = _LABEL_WARNING_STYLE if on else ""
    if widget.styleSheet() != style:
        widget.setStyleSheet(style)
    widget.setProperty("warning", on)
    widget.setToolTip(tooltip)


def _bold_label(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setWordWrap(True)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


class GpuCard(QFrame):
    """One GPU: a wrapping title, the VRAM figures over a slim bar, and three short readouts.

    Every text wraps or is short, so the card fits a dock a couple of hundred pixels wide; the VRAM
    figures sit in a label rather than inside the bar, where a narrow dock would clip them.
    """

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setObjectName(f"gpu_card_{index}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title_label = _bold_label("", self)
        self.vram_label = QLabel(self)
        self.vram_label.setWordWrap(True)
        self.vram_bar = QProgressBar(self)
        self.vram_bar.setObjectName("vram_bar")
        self.vram_bar.setTextVisible(False)
        self.vram_bar.setFixedHeight(10)
        self.vram_bar.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.temperature_label = QLabel(self)
        self.utilisation_label = QLabel(self)
        self.utilisation_label.setToolTip(_UTILISATION_TOOLTIP)
        self.power_label = QLabel(self)
        self.power_label.setToolTip("Board power draw of the enforced power limit")
        form = QFormLayout(self)
        form.setContentsMargins(6, 4, 6, 6)
        form.setVerticalSpacing(2)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow(self.title_label)
        form.addRow("VRAM", self.vram_label)
        form.addRow(self.vram_bar)
        form.addRow("Temp.", self.temperature_label)
        form.addRow("Load", self.utilisation_label)
        form.addRow("Power", self.power_label)

    def update_from(self, gpu: GpuSample) -> None:
        self.title_label.setText(f"GPU {gpu.index} · {gpu.name}")
        total_mib = max(1, gpu.memory_total // MIB)
        self.vram_bar.setRange(0, total_mib)  # MiB: bytes overflow the bar's int range
        self.vram_bar.setValue(min(total_mib, gpu.memory_used // MIB))
        self.vram_label.setText(
            f"{format_bytes(gpu.memory_used)} / {format_bytes(gpu.memory_total)} ({gpu.memory_fraction:.0%})"
        )
        sentences = list(gpu.warnings)  # the hot sentence comes first, then the memory one
        hot_text = sentences.pop(0) if gpu.hot else ""
        memory_text = sentences.pop(0) if gpu.memory_high else ""
        _set_warning(self.vram_bar, gpu.memory_high, memory_text or _VRAM_TOOLTIP)
        _set_warning(self.vram_label, gpu.memory_high, memory_text or _VRAM_TOOLTIP)
        self.temperature_label.setText(
            NOT_AVAILABLE if gpu.temperature_c is None else f"{gpu.temperature_c} °C"
        )
        _set_warning(self.temperature_label, gpu.hot, hot_text or _TEMPERATURE_TOOLTIP)
        self.utilisation_label.setText(
            NOT_AVAILABLE if gpu.utilization_pct is None else f"{gpu.utilization_pct} %"
        )
        self.power_label.setText(format_power(gpu.power_w, gpu.power_limit_w))
        self.setToolTip("\n".join(gpu.warnings))


class GpuPanel(QWidget):
    """Slots: ``show_sample(SystemSample)``, ``show_peaks(SessionPeaks)``, ``show_failure(str)``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gpu_panel")
        self._cards: dict[int, GpuCard] = {}

        self.status_label = QLabel("Reading GPU gauges…", self)
        self.status_label.setObjectName("gpu_status")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self._cards_layout = QVBoxLayout()
        self._cards_layout.setContentsMargins(0, 0, 0, 0)
        self._cards_layout.setSpacing(4)

        self.process_box = QFrame(self)
        self.process_box.setFrameShape(QFrame.Shape.StyledPanel)
        process_title = _bold_label("WhisperDesk process", self.process_box)
        self.ram_label = QLabel(NOT_AVAILABLE, self.process_box)
        self.ram_label.setToolTip(_RSS_TOOLTIP)
        self.cpu_label = QLabel(NOT_AVAILABLE, self.process_box)
        self.cpu_label.setToolTip(_CPU_TOOLTIP)
        process_form = QFormLayout(self.process_box)
        process_form.setContentsMargins(6, 4, 6, 4)
        process_form.setVerticalSpacing(2)
        process_form.addRow(process_title)
        process_form.addRow("RAM", self.ram_label)
        process_form.addRow("CPU", self.cpu_label)

        self.peaks_label = QLabel("", self)
        self.peaks_label.setObjectName("gpu_peaks")
        self.peaks_label.setWordWrap(True)
        self.peaks_label.setToolTip("Highest readings since the app started; VRAM counts every process")

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(6)
        layout.addWidget(self.status_label)
        layout.addLayout(self._cards_layout)
        layout.addWidget(self.process_box)
        layout.addWidget(self.peaks_label)
        layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._content = content

    def sizeHint(self) -> QSize:
        """The scroll area alone would ask for very little; ask for the content, at a dock-friendly width."""
        hint = self._content.sizeHint()
        return QSize(max(PREFERRED_WIDTH, hint.width()), hint.height())

    # --- inspection -----------------------------------------------------------------------------------
    def cards(self) -> dict[int, GpuCard]:
        """The GPU cards now shown, by NVML index."""
        return dict(self._cards)

    def status_text(self) -> str:
        return self.status_label.text()

    def connect_poller(self, poller: GpuPoller) -> None:
        """Follow a poller: its signals arrive in the GUI thread, so they connect straight to the slots."""
        poller.sampled.connect(self.show_sample)
        poller.peaksChanged.connect(self.show_peaks)
        poller.failed.connect(self.show_failure)

    # --- slots ----------------------------------------------------------------------------------------
    @Slot(object)
    def show_sample(self, sample: object) -> None:
        if not isinstance(sample, SystemSample):
            raise TypeError(f"GpuPanel.show_sample expects a SystemSample, got {type(sample).__name__}")
        self._show_status(sample)
        self._sync_cards(sample.gpus)
        process = sample.process
        self.ram_label.setText(f"{format_bytes(process.rss_bytes)} (RSS)")
        self.cpu_label.setText(f"{process.cpu_percent:.0f} % · {process.num_threads} threads")

    @Slot(object)
    def show_peaks(self, peaks: object) -> None:
        if not isinstance(peaks, SessionPeaks):
            raise TypeError(f"GpuPanel.show_peaks expects SessionPeaks, got {type(peaks).__name__}")
        if peaks.samples == 0:
            self.peaks_label.setText("")
            return
        parts = [f"GPU {index} {format_bytes(used)}" for index, used in sorted(peaks.vram_by_gpu.items())]
        parts.append(f"RAM {format_bytes(peaks.rss_bytes)}")
        self.peaks_label.setText("Session peak: " + " · ".join(parts))

    @Slot(str)
    def show_failure(self, message: str) -> None:
        self.status_label.setText(message)
        _set_warning(self.status_label, True, message)

    # --- internals ------------------------------------------------------------------------------------
    def _show_status(self, sample: SystemSample) -> None:
        details: tuple[str, ...] = ()
        if sample.nvml_error is not None and not sample.gpus:
            # No gauges at all: plain words, not an alarm (a CPU-only machine is a normal setup); the
            # driver library's own reason ("NVML not available: …") is for the tooltip and `doctor`.
            text, warn = NO_GPU_TEXT, False
            details = (f"Details: {sample.nvml_error}",)
        elif sample.nvml_error is not None:
            text, warn = sample.nvml_error, True  # some GPUs read, another fell over
        else:
            count = len(sample.gpus)
            driver = f"NVIDIA driver {sample.driver_version}" if sample.driver_version else "NVIDIA driver"
            text, warn = f"{driver} · {count} GPU{'s' if count != 1 else ''}", False
        self.status_label.setText(text)
        _set_warning(self.status_label, warn, "\n".join((text, *details, *sample.warnings)))

    def _sync_cards(self, gpus: tuple[GpuSample, ...]) -> None:
        present = {gpu.index for gpu in gpus}
        for index in [i for i in self._cards if i not in present]:
            card = self._cards.pop(index)
            self._cards_layout.removeWidget(card)
            card.hide()
            card.deleteLater()
        for gpu in sorted(gpus, key=lambda g: g.index):
            card = self._cards.get(gpu.index)
            if card is None:
                card = GpuCard(gpu.index, self)
                self._cards[gpu.index] = card
                position = sorted(self._cards).index(gpu.index)
                self._cards_layout.insertWidget(position, card)
            card.update_from(gpu)
