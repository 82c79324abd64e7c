"""Apply new settings: save them atomically, hand model changes to the engine, tell everyone.

Saving merges: the values this window changed are written over the file as it is now, so a change saved
by another process in between is kept, and the merged settings are what everyone is told about.

The engine takes a new model config at the next job (running jobs finish on the model they started with),
so changing compute type or batch size never touches the queue; this controller has no access to it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from whisperdesk.core.engine import Engine
from whisperdesk.core.models.builtin import BUILTIN
from whisperdesk.core.models.store import local_folder_problems
from whisperdesk.core.settings import InvalidSetting, Settings, save_merged

log = logging.getLogger(__name__)


class SettingsController(QObject):
    settingsChanged = Signal(object)  # the new Settings, after they were saved
    modelConfigChanged = Signal(object)  # the new ModelConfig, when it differs (connect the preload)
    applyFailed = Signal(str)  # why nothing was changed

    def __init__(
        self, settings: Settings, settings_file: Path, engine: Engine, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._file = Path(settings_file)
        self._engine = engine

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def settings_file(self) -> Path:
        return self._file

    @Slot(object)
    def apply(self, new: Settings) -> bool:
        """Validate, save, reconfigure; on any failure nothing changes and ``applyFailed`` says why."""
        try:
            new.validate()
        except InvalidSetting as exc:
            return self._fail(f"settings not applied: {exc}")
        if new == self._settings:
            return True
        try:
            # Another process (a second window before it handed over, `watch`) may have saved meanwhile:
            # only what this window changed is written over the file as it is now.
            new = save_merged(self._file, self._settings, new)
        except OSError as exc:
            return self._fail(
                f"settings not applied: cannot write {self._file}: {exc.strerror or exc}; "
                "check that the folder is writable"
            )
        old = self._settings
        self._settings = new
        if new.model != old.model:
            self._engine.reconfigure(new.model)  # takes effect at the next job; the queue is untouched
            log.info("model settings changed: %s", new.model)
            self.modelConfigChanged.emit(new.model)
        self.settingsChanged.emit(new)
        return True

    @Slot(str)
    def use_local_model(self, folder: str) -> bool:
        """Switch to a local CTranslate2 model folder, after checking it has what faster-whisper needs."""
        problems = local_folder_problems(folder)
        if problems:
            return self._fail(
                f"The folder {folder} is not a faster-whisper model folder: {'; '.join(problems)}. Choose a "
                "converted CTranslate2 Whisper model folder (model.bin, config.json, tokenizer.json, "
                "vocabulary)."
            )
        return self.use_model(str(Path(folder).expanduser()))

    @Slot(str)
    def use_model(self, model: str) -> bool:
        """Use ``model`` (a name, "builtin" or a folder) from the next job on; running jobs finish as they are."""
        if model == self._settings.model.model:
            self.modelConfigChanged.emit(self._settings.model)  # same model: try loading it again
            return True
        return self.apply(
            self._settings.replace(model=dataclasses.replace(self._settings.model, model=model))
        )

    @Slot()
    def use_builtin_model(self) -> bool:
        return self.use_model(BUILTIN)

    def _fail(self, message: str) -> bool:
        log.warning(message)
        self.applyFailed.emit(message)
        return False
