"""Tools → Benchmark: the `whisperdesk bench` compute type × batch size table, run off the GUI thread.

The run goes through services' BenchRunner (the app's own path, off the GUI thread); its progress and result
come back as signals. "Use recommended" hands the winning compute type
and batch size to the caller, which applies them like any settings change (the queue is kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.benchmark.matrix import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_COMPUTE_TYPES,
    BenchReport,
    BenchRequest,
    format_matrix,
)
from whisperdesk.core.settings import Settings
from whisperdesk.services.bench_runner import BenchRunner


class _HasModelsDir(Protocol):
    """What the dialog needs of the engine: where models are cached (it never runs the engine)."""

    @property
    def models_dir(self) -> Path: ...


def _parse_sizes(text: str) -> tuple[int, ...]:
    message = f"batch sizes {text!r} are invalid: give whole numbers from 1 to 256, e.g. 1,4,8,16"
    try:
        sizes = tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ValueError(message) from None
    if not sizes or any(s < 1 or s > 256 for s in sizes):
        raise ValueError(message)
    return sizes


class BenchmarkDialog(QDialog):
    recommendationChosen = Signal(str, int)  # compute type, batch size

    def __init__(self, engine: _HasModelsDir, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Benchmark compute types and batch sizes")
        self._engine = engine
        self._settings = settings
        self._files: tuple[Path, ...] = ()
        self._report: BenchReport | None = None
        self._runner = BenchRunner(self)
        self._runner.signals.progress.connect(self._on_progress)
        self._runner.signals.finished.connect(self._on_finished)
        self._runner.signals.failed.connect(self._on_failed)
        self._build()

    def _build(self) -> None:
        form = QFormLayout()
        self.model_label = QLabel(self._settings.model.model)
        form.addRow("Model", self.model_label)
        self.compute_boxes: dict[str, QCheckBox] = {}
        row = QHBoxLayout()
        for name in DEFAULT_COMPUTE_TYPES:
            box = QCheckBox(name)
            box.setChecked(True)
            self.compute_boxes[name] = box
            row.addWidget(box)
        form.addRow("Compute types", row)
        self.batch_edit = QLineEdit(",".join(str(b) for b in DEFAULT_BATCH_SIZES))
        form.addRow("Batch sizes", self.batch_edit)
        files_row = QHBoxLayout()
        self.files_label = QLabel("synthetic speech corpus")
        choose = QPushButton("Choose files…")
        choose.clicked.connect(self._choose_files)
        files_row.addWidget(self.files_label, 1)
        files_row.addWidget(choose)
        form.addRow("Audio", files_row)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.5, 60.0)
        self.minutes.setValue(3.0)
        self.minutes.setSuffix(" min")
        form.addRow("Synthetic length", self.minutes)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QLabel("Compute types the device cannot run are listed as skipped, with why.")
        self.status.setWordWrap(True)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.output.setMinimumSize(760, 220)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel run")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.apply_button = QPushButton("Use recommended")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self._use_recommended)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        for b in (self.run_button, self.cancel_button, self.apply_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.output, 1)
        layout.addLayout(buttons)

    @Slot()
    def _choose_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Recordings to benchmark on")
        if names:
            self.set_files([Path(n) for n in names])

    def set_files(self, files: list[Path]) -> None:
        self._files = tuple(files)
        self.files_label.setText(f"{len(files)} file(s)" if files else "synthetic speech corpus")
        self.minutes.setEnabled(not files)

    @property
    def running(self) -> bool:
        return self._runner.running

    @property
    def report(self) -> BenchReport | None:
        return self._report

    @Slot()
    def start(self) -> None:
        try:
            sizes = _parse_sizes(self.batch_edit.text())
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        types = tuple(n for n, box in self.compute_boxes.items() if box.isChecked())
        if not types:
            self.status.setText("choose at least one compute type")
            return
        model = self._settings.model
        base = BenchRequest(
            files=self._files,
            model=model.model,
            models_dir=self._engine.models_dir,
            device=model.device,
            compute_types=types,
            batch_sizes=sizes,
            cpu_threads=model.cpu_threads,
            options=self._settings.decode,
        )
        self._report = None
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.apply_button.setEnabled(False)
        self.output.clear()
        self._runner.start(base, self.minutes.value())

    @Slot()
    def cancel(self) -> None:
        self._runner.cancel()
        self.status.setText("canceling after the current step…")

    @Slot(str, float)
    def _on_progress(self, message: str, fraction: float) -> None:
        self.status.setText(message)
        self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))

    @Slot(object)
    def _on_finished(self, report: BenchReport) -> None:
        self._report = report
        self.output.setPlainText(format_matrix(report))
        self.status.setText(report.recommendation)
        self.progress.setValue(1000)
        self._idle()
        self.apply_button.setEnabled(report.recommended is not None)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.status.setText(message)
        self._idle()

    def _idle(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    @Slot()
    def _use_recommended(self) -> None:
        if self._report is not None and self._report.recommended is not None:
            best = self._report.recommended
            self.recommendationChosen.emit(best.compute_type, best.batch_size)
            self.status.setText(
                f"using {best.compute_type} with batch size {best.batch_size} from the next job"
            )

    def done(self, result: int) -> None:
        """Closing the dialog cancels a run and waits for the worker, so no thread outlives it."""
        self._runner.shutdown()
        super().done(result)
