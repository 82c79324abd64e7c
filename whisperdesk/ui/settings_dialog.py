"""Edit the settings; returns a new Settings object and leaves saving and applying to the controller.

Compute types are only those CTranslate2 supports on the device the engine will really use ("auto"
resolves as the engine does), so the dialog cannot produce a configuration that fails at load time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.core.compute_types import ComputeChoice, best_compute_type, compute_choice
from whisperdesk.core.models.builtin import BUILTIN, BUILTIN_LABEL, is_builtin
from whisperdesk.core.models.store import local_folder_problems
from whisperdesk.core.settings import DEVICES, KNOWN_MODELS, OUTPUT_FORMATS, TASKS, InvalidSetting, Settings

LOCAL_MODEL_ITEM = "Local model folder…"
AUTO_LANGUAGE = "auto"
ChooseDirFn = Callable[[QWidget, str], str]


def _ask_directory(parent: QWidget, caption: str) -> str:
    return QFileDialog.getExistingDirectory(parent, caption)


def _language_codes() -> tuple[str, ...]:
    """Whisper's language codes; faster-whisper keeps them in its tokenizer module."""
    from faster_whisper import tokenizer

    return tuple(getattr(tokenizer, "_LANGUAGE_CODES", ()))


def _spin(low: int, high: int, value: int, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


class SettingsDialog(QDialog):
    """``SettingsDialog(settings)``; after ``exec()`` returns Accepted, ``result_settings()`` has the edits."""

    def __init__(
        self,
        settings: Settings,
        *,
        tray_available: bool = False,
        choice_for_device: Callable[[str], ComputeChoice] = compute_choice,
        choose_directory: ChooseDirFn = _ask_directory,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("WhisperDesk settings")
        self._original = settings
        self._choice_for_device = choice_for_device
        self._choose_directory = choose_directory
        self._wanted_compute = settings.model.compute_type
        tabs = QTabWidget(self)
        tabs.addTab(self._model_tab(settings), "Model")
        tabs.addTab(self._decode_tab(settings), "Transcription")
        tabs.addTab(self._output_tab(settings), "Output")
        tabs.addTab(self._app_tab(settings, tray_available), "App")
        self._error = QLabel(self)
        self._error.setWordWrap(True)
        self._error.setStyleSheet("color:#b71c1c;")
        self._error.hide()
        self._buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self._buttons.accepted.connect(self.accept)
        self._buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(self._error)
        layout.addWidget(self._buttons)
        self._refresh_compute_types()

    # --- tabs ------------------------------------------------------------------------------------------
    def _model_tab(self, s: Settings) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        self.model_combo = QComboBox(page)
        self.model_combo.addItem(BUILTIN_LABEL, BUILTIN)  # shown by its name, saved as "builtin"
        for name in KNOWN_MODELS:
            self.model_combo.addItem(name, name)
        self.model_combo.addItem(LOCAL_MODEL_ITEM)  # no data: asks for a folder
        self._select_model(BUILTIN if is_builtin(s.model.model) else s.model.model)
        self._last_model = self.model_value()
        self.model_combo.activated.connect(self._on_model_activated)
        self.device_combo = QComboBox(page)
        self.device_combo.addItems(DEVICES)
        self.device_combo.setCurrentText(s.model.device)
        self.device_combo.currentTextChanged.connect(self._refresh_compute_types)
        self.compute_combo = QComboBox(page)
        self.compute_combo.activated.connect(self._on_compute_chosen)
        self.compute_note = QLabel(page)
        self.compute_note.setWordWrap(True)
        self.batch_spin = _spin(1, 256, s.model.batch_size)
        self.batch_spin.setToolTip("Speech chunks of one file decoded together; larger uses more memory")
        form.addRow("Model", self.model_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Compute type", self.compute_combo)
        form.addRow("", self.compute_note)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("", QLabel("Model changes apply from the next job; the queue is kept.", page))
        return page

    def _decode_tab(self, s: Settings) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        self.beam_spin = _spin(1, 32, s.decode.beam_size)
        self.language_combo = QComboBox(page)
        self.language_combo.setEditable(True)  # any code faster-whisper accepts can be typed
        self.language_combo.addItems([AUTO_LANGUAGE, *_language_codes()])
        self.language_combo.setCurrentText(s.decode.language or AUTO_LANGUAGE)
        self.task_combo = QComboBox(page)
        self.task_combo.addItems(TASKS)
        self.task_combo.setCurrentText(s.decode.task)
        self.vad_check = QCheckBox("Skip silence (voice activity detection)", page)
        self.vad_check.setChecked(s.decode.vad)
        self.silence_spin = _spin(0, 60_000, s.decode.vad_min_silence_ms, " ms")
        self.silence_spin.setSingleStep(100)
        self.silence_spin.setEnabled(s.decode.vad)
        self.vad_check.toggled.connect(self.silence_spin.setEnabled)
        self.words_check = QCheckBox("Word timestamps", page)
        self.words_check.setChecked(s.decode.word_timestamps)
        form.addRow("Beam size", self.beam_spin)
        form.addRow("Language", self.language_combo)
        form.addRow("Task", self.task_combo)
        form.addRow(self.vad_check)
        form.addRow("Minimum silence", self.silence_spin)
        form.addRow(self.words_check)
        return page

    def _output_tab(self, s: Settings) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        formats = QHBoxLayout()
        self.format_checks: dict[str, QCheckBox] = {}
        for name in OUTPUT_FORMATS:
            box = QCheckBox(name.upper(), page)
            box.setChecked(name in s.output.formats)
            self.format_checks[name] = box
            formats.addWidget(box)
        self.output_edit = QLineEdit(s.output.output_dir or "", page)
        self.output_edit.setPlaceholderText("beside each recording")
        browse = QPushButton("Browse…", page)
        browse.clicked.connect(self._on_browse_output)
        folder = QHBoxLayout()
        folder.addWidget(self.output_edit, 1)
        folder.addWidget(browse)
        self.line_spin = _spin(10, 200, s.output.max_line_length, " characters")
        form.addRow("Formats", formats)
        form.addRow("Output folder", folder)
        form.addRow("Subtitle line length", self.line_spin)
        return page

    def _app_tab(self, s: Settings, tray_available: bool) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        self.tray_check = QCheckBox("Closing the window keeps WhisperDesk running in the tray", page)
        self.tray_check.setChecked(s.ui.close_to_tray and tray_available)
        self.tray_check.setEnabled(tray_available)
        if not tray_available:
            self.tray_check.setToolTip("This desktop has no system tray")
        self.notify_check = QCheckBox("Notify when a job finishes or fails and when the queue is done", page)
        self.notify_check.setChecked(s.ui.notify_on_finish)
        form.addRow(self.tray_check)
        form.addRow(self.notify_check)
        self.voices_check = QCheckBox("Remember voices I name", page)  # the voice library (opt-in)
        self.voices_check.setChecked(s.ui.remember_voices)
        self.voices_check.setToolTip(
            "When you rename a speaker, keep what the voice sounds like (on this computer only) and use the name "
            "in later recordings of the same voice. Tools → Voices lists and forgets them."
        )
        form.addRow(self.voices_check)
        return page

    # --- behaviour --------------------------------------------------------------------------------------
    def compute_types(self) -> list[str]:
        return [self.compute_combo.itemText(i) for i in range(self.compute_combo.count())]

    @Slot()
    def _refresh_compute_types(self) -> None:
        choice = self._choice_for_device(self.device_combo.currentText())
        self.compute_combo.clear()
        self.compute_combo.addItems(list(choice.compute_types))
        best = best_compute_type(self._wanted_compute, choice)
        notes = [choice.note] if choice.note else []
        if best is not None:
            self.compute_combo.setCurrentText(best)
            if best != self._wanted_compute:
                notes.append(
                    f"{self._wanted_compute} is not supported on {choice.device}; {best} will be used"
                )
        self.compute_note.setText("\n".join(notes))
        self.compute_note.setVisible(bool(notes))
        self._buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(best is not None)

    @Slot(int)
    def _on_compute_chosen(self, _index: int) -> None:
        self._wanted_compute = self.compute_combo.currentText()
        self._refresh_compute_types()

    def model_value(self) -> str:
        """The settings value of the chosen model ("builtin", a name or a folder)."""
        data = self.model_combo.currentData()
        return data if isinstance(data, str) else self.model_combo.currentText()

    def _select_model(self, value: str) -> None:
        index = self.model_combo.findData(value)
        if index < 0:  # a folder or a hub repo id: listed above "Local model folder…"
            index = self.model_combo.count() - 1
            self.model_combo.insertItem(index, value, value)
        self.model_combo.setCurrentIndex(index)

    @Slot(int)
    def _on_model_activated(self, _index: int) -> None:
        if self.model_combo.currentData() is not None:
            self._last_model = self.model_value()
            return
        self._select_model(self._last_model)
        folder = self._choose_directory(self, "Choose a faster-whisper (CTranslate2) model folder")
        if folder:
            self.set_local_model(folder)

    def set_local_model(self, folder: str) -> bool:
        """Select a local model folder if it holds a CTranslate2 model; otherwise say what is wrong."""
        problems = local_folder_problems(folder)
        if problems:
            self._show_error(
                f"The folder {folder} is not a faster-whisper model folder: {'; '.join(problems)}. Choose a "
                "converted CTranslate2 Whisper model folder."
            )
            return False
        self._select_model(folder)
        self._last_model = folder
        self._error.hide()
        return True

    @Slot()
    def _on_browse_output(self) -> None:
        folder = self._choose_directory(self, "Write transcripts to")
        if folder:
            self.output_edit.setText(folder)

    def _show_error(self, text: str) -> None:
        self._error.setText(text)
        self._error.show()

    def result_settings(self) -> Settings:
        """The edited settings (not validated: ``accept`` validates before closing)."""
        s = self._original
        language = self.language_combo.currentText().strip()
        output_dir = self.output_edit.text().strip()
        return s.replace(
            model=dataclasses.replace(
                s.model,
                model=self.model_value(),
                device=self.device_combo.currentText(),
                compute_type=self.compute_combo.currentText(),
                batch_size=self.batch_spin.value(),
            ),
            decode=dataclasses.replace(
                s.decode,
                beam_size=self.beam_spin.value(),
                language=None if language in ("", AUTO_LANGUAGE) else language,
                task=self.task_combo.currentText(),
                vad=self.vad_check.isChecked(),
                vad_min_silence_ms=self.silence_spin.value(),
                word_timestamps=self.words_check.isChecked(),
            ),
            output=dataclasses.replace(
                s.output,
                formats=tuple(name for name, box in self.format_checks.items() if box.isChecked()),
                output_dir=str(Path(output_dir).expanduser()) if output_dir else None,
                max_line_length=self.line_spin.value(),
            ),
            ui=dataclasses.replace(
                s.ui,
                # without a tray the box is disabled: keep the saved choice for desktops that have one
                close_to_tray=self.tray_check.isChecked()
                if self.tray_check.isEnabled()
                else s.ui.close_to_tray,
                notify_on_finish=self.notify_check.isChecked(),
                remember_voices=self.voices_check.isChecked(),
            ),
        )

    def accept(self) -> None:
        try:
            self.result_settings().validate()
        except InvalidSetting as exc:
            self._show_error(f"Please fix: {exc}")
            return
        super().accept()
