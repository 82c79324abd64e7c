"""Bring the engine's load/fallback events into the GUI thread, and preload the model off it.

The engine calls its listeners on whichever thread loads the model (the preload task, a transcription
worker). The listener here only emits a signal of this QObject, which lives in the GUI thread, so Qt
queues the event to ``_on_event``; nothing else crosses threads. The preload runs as a QRunnable on the
app's pool, so the window paints first and stays responsive while a large model loads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from whisperdesk.core.engine import Engine, EngineEvent
from whisperdesk.core.errors import ModelUnavailableError
from whisperdesk.core.models.problems import model_label, plain_message

log = logging.getLogger(__name__)

STATE_KINDS = ("idle", "loading", "ready", "error")


@dataclass(frozen=True)
class ModelState:
    kind: str  # one of STATE_KINDS
    model: str
    message: str = ""
    needs_model: bool = False  # the model is not on this disk: offer the built-in model, a download, a folder

    @property
    def model_label(self) -> str:
        return model_label(self.model)

    def status_text(self) -> str:
        if self.kind == "loading":
            return f"Model: loading {self.model_label}…"
        if self.kind == "ready":
            return f"Model ready: {self.message or self.model_label}"
        if self.kind == "error":  # the full reason is in the banner and the tooltip
            return f"Model: {self.model_label} {'not available' if self.needs_model else 'failed to load'}"
        return f"Model: {self.model_label} (loads with the first job)"


class _PreloadSignals(QObject):
    """Owned by the bridge (GUI thread), never by the runnable, so it outlives the pool thread's task."""

    done = Signal()
    failed = Signal(object)


class _PreloadTask(QRunnable):
    def __init__(self, engine: Engine, signals: _PreloadSignals) -> None:
        super().__init__()
        self._engine = engine
        self._signals = signals

    def run(self) -> None:
        try:
            self._engine.load()
        except Exception as exc:  # pytest-qt cannot see pool-thread exceptions: report them as a signal
            self._signals.failed.emit(exc)
            return
        self._signals.done.emit()


class EngineBridge(QObject):
    """``stateChanged(ModelState)`` and ``fallbackOccurred(message)``, always in the GUI thread."""

    stateChanged = Signal(object)
    fallbackOccurred = Signal(str)
    preloadFinished = Signal(bool)  # True when the model is loaded
    _relay = Signal(object)

    def __init__(self, engine: Engine, pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine = engine
        self._pool = pool
        self._state = ModelState("idle", engine.config.model)
        self._preloading = False
        self._again = False
        self._signals = _PreloadSignals(self)
        self._signals.done.connect(self._on_preload_done)
        self._signals.failed.connect(self._on_preload_failed)
        self._relay.connect(self._on_event)
        engine.add_listener(self._listener)

    @property
    def state(self) -> ModelState:
        return self._state

    @property
    def preloading(self) -> bool:
        return self._preloading

    def _listener(self, event: EngineEvent) -> None:
        """Runs on the loading thread: only hand the event over."""
        self._relay.emit(event)

    @Slot()
    def preload(self) -> None:
        """Load the configured model on the pool; a second call while loading runs once more afterwards."""
        if self._preloading:
            self._again = True
            return
        self._preloading = True
        self._again = False
        self._pool.start(_PreloadTask(self._engine, self._signals))

    @Slot(object)
    def report_load_error(self, exc: object) -> None:
        """For workers that hit a model error outside the preload (e.g. the first job of the queue)."""
        if isinstance(exc, Exception):
            self._set_state(self._error_state(self._engine.config.model, type(exc), str(exc)))

    def shutdown(self) -> None:
        """Stop listening; the app waits for its pool afterwards."""
        self._engine.remove_listener(self._listener)
        self._again = False

    @staticmethod
    def _error_state(model: str, error_type: type[BaseException] | None, message: str) -> ModelState:
        """Plain words for the window; the library's own text goes to the log only."""
        log.warning("model %s cannot be used: %s", model, message)
        needs_model = error_type is not None and issubclass(error_type, ModelUnavailableError)
        return ModelState("error", model, plain_message(error_type, message, model), needs_model=needs_model)

    def _set_state(self, state: ModelState) -> None:
        self._state = state
        self.stateChanged.emit(state)

    @Slot(object)
    def _on_event(self, event: EngineEvent) -> None:
        model = event.config.model
        if event.kind == "loading":
            self._set_state(ModelState("loading", model, event.message))
        elif event.kind == "loaded":  # "builtin on cpu (int8)" reads "Built-in (base, …) on cpu (int8)"
            self._set_state(ModelState("ready", model, event.message.replace(model, model_label(model), 1)))
        elif event.kind == "load_failed":
            self._set_state(self._error_state(model, event.error_type, event.message))
        elif event.kind == "fallback":
            self.fallbackOccurred.emit(event.message)
        else:
            log.warning("unknown engine event %r", event.kind)

    @Slot()
    def _on_preload_done(self) -> None:
        self._preloading = False
        if self._state.kind != "ready":  # already loaded before we asked: no events came
            config = self._engine.loaded_config or self._engine.config
            where = f" on {self._engine.device}" if self._engine.device else ""
            self._set_state(
                ModelState("ready", config.model, f"{config.model}{where} ({config.compute_type})")
            )
        self.preloadFinished.emit(True)
        self._continue()

    @Slot(object)
    def _on_preload_failed(self, exc: object) -> None:
        self._preloading = False
        needs_model = isinstance(exc, ModelUnavailableError)
        if self._state.kind == "error":
            self._set_state(replace(self._state, needs_model=needs_model or self._state.needs_model))
        else:
            self.report_load_error(exc)
        self.preloadFinished.emit(False)
        self._continue()

    def _continue(self) -> None:
        if self._again:
            self._again = False
            self.preload()
