"""Keep the queue from staying paused because the model was missing.

The runner pauses itself when the model cannot be used (every job would fail the same way). This guard
remembers that the pause was the model's doing and lifts it as soon as the engine bridge reports a model
ready — after Retry, "Use built-in model", a finished download or a chosen folder — so jobs added in the
meantime start without the user having to find the Resume button. A pause the user made is never lifted.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Slot

from whisperdesk.services.engine_bridge import EngineBridge, ModelState

log = logging.getLogger(__name__)


class ModelQueueGuard(QObject):
    def __init__(self, runner: QObject, bridge: EngineBridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._paused_for_model = False
        runner.modelError.connect(self._on_model_error)  # type: ignore[attr-defined]
        runner.pausedChanged.connect(self._on_paused_changed)  # type: ignore[attr-defined]
        bridge.stateChanged.connect(self._on_model_state)

    @property
    def paused_for_model(self) -> bool:
        return self._paused_for_model

    @Slot(str)
    def _on_model_error(self, message: str) -> None:
        self._paused_for_model = bool(getattr(self._runner, "paused", True))
        log.info("queue waits for a usable model")

    @Slot(bool)
    def _on_paused_changed(self, paused: bool) -> None:
        if not paused:
            self._paused_for_model = False

    @Slot(object)
    def _on_model_state(self, state: ModelState) -> None:
        if state.kind == "ready" and self._paused_for_model:
            self._paused_for_model = False
            log.info("a model is ready: the queue continues")
            self._runner.set_paused(False)  # type: ignore[attr-defined]
