"""Qt services without widgets: throttle, log bridge, engine bridge, settings controller (the notifier: test_notifier.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QObject, QThread, QThreadPool, Slot
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from whisperdesk.core.compute_types import best_compute_type, compute_choice
from whisperdesk.core.engine import Engine, EngineEvent, cuda_device_count, supported_compute_types
from whisperdesk.core.settings import ModelConfig, Settings, UiOptions, load_settings
from whisperdesk.services.engine_bridge import EngineBridge, ModelState
from whisperdesk.services.log_bridge import LogBridge
from whisperdesk.services.settings_controller import SettingsController
from whisperdesk.services.throttle import Throttle

pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def pool(qapp: QApplication) -> Iterator[QThreadPool]:
    owner = QObject()
    pool = QThreadPool(owner)
    yield pool
    assert pool.waitForDone(60_000)
    owner.deleteLater()


class RecordSink(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[int, str, bool]] = []

    @Slot(int, str)
    def on_record(self, level: int, text: str) -> None:
        app = QCoreApplication.instance()
        self.received.append((level, text, app is not None and QThread.currentThread() is app.thread()))


class FakeClock:
    """Time that only moves when the test says so (Throttle decides 'now or later' from it)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- throttle -------------------------------------------------------------------------------------------
def test_throttle_runs_first_call_now_and_only_the_latest_of_a_burst_later(qtbot: QtBot) -> None:
    seen: list[int] = []
    clock = FakeClock()
    throttle = Throttle(seen.append, 10, clock=clock)
    for i in range(50):
        throttle(i)
    assert seen == [0]
    assert throttle.pending
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=2000)
    assert seen == [0, 49]
    assert not throttle.pending


def test_throttle_calls_through_after_a_quiet_interval(qtbot: QtBot) -> None:
    seen: list[str] = []
    clock = FakeClock()
    throttle = Throttle(seen.append, 4, clock=clock)
    throttle("a")
    clock.now += throttle.interval
    throttle("b")
    clock.now += throttle.interval * 3
    throttle("c")
    assert seen == ["a", "b", "c"] and not throttle.pending


def test_throttle_flush_and_cancel(qtbot: QtBot) -> None:
    seen: list[tuple[int, str]] = []
    clock = FakeClock()
    throttle = Throttle(lambda n, label="": seen.append((n, label)), 10, clock=clock)
    throttle(1)
    throttle(2, label="two")
    throttle.flush()
    assert seen == [(1, ""), (2, "two")]
    throttle(3)
    throttle.cancel()
    assert not throttle.pending
    qtbot.wait(150)  # longer than the interval: a cancelled call must not arrive late
    assert seen == [(1, ""), (2, "two")]


def test_throttle_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="max_per_second"):
        Throttle(print, 0)


# --- log bridge ------------------------------------------------------------------------------------------
def test_warning_from_a_worker_thread_arrives_in_the_gui_thread(qtbot: QtBot, qapp: QApplication) -> None:
    bridge = LogBridge()
    sink = RecordSink()
    bridge.recordEmitted.connect(sink.on_record)  # a decorated slot: the emit comes from a worker thread
    bridge.install(["whisperdesk.test_worker"])
    try:
        worker = threading.Thread(
            target=lambda: logging.getLogger("whisperdesk.test_worker").warning("disk %s is full", "/x")
        )
        with qtbot.waitSignal(bridge.recordEmitted, timeout=2000):
            worker.start()
            worker.join()
        logging.getLogger("whisperdesk.test_worker").info("not shown at WARNING")
        qapp.processEvents()
    finally:
        bridge.uninstall()
    assert len(sink.received) == 1
    level, text, in_gui_thread = sink.received[0]
    assert level == logging.WARNING and "disk /x is full" in text and in_gui_thread


def test_log_bridge_info_level_and_uninstall(qtbot: QtBot) -> None:
    logger = logging.getLogger("whisperdesk.test_info")
    logger.setLevel(logging.INFO)
    bridge = LogBridge()
    got: list[str] = []
    bridge.recordEmitted.connect(lambda _lvl, text: got.append(text))
    bridge.install([logger.name])
    try:
        bridge.set_level(logging.INFO)
        logger.info("model loaded")
    finally:
        bridge.uninstall()
        logger.setLevel(logging.NOTSET)
    logger.warning("after uninstall")
    assert len(got) == 1 and "model loaded" in got[0]
    assert bridge.handler not in logger.handlers


# --- engine bridge -----------------------------------------------------------------------------------------
def test_preload_without_cached_model_offline_reports_needs_model(
    qtbot: QtBot, pool: QThreadPool, tmp_path: Path
) -> None:
    engine = Engine(ModelConfig(model="tiny", device="cpu"), tmp_path / "models", local_files_only=True)
    bridge = EngineBridge(engine, pool)
    states: list[ModelState] = []
    bridge.stateChanged.connect(states.append)
    with qtbot.waitSignal(bridge.preloadFinished, timeout=30_000) as done:
        bridge.preload()
    bridge.shutdown()
    assert done.args == [False]
    assert [s.kind for s in states][:2] == ["loading", "error"]
    assert bridge.state.kind == "error" and bridge.state.needs_model
    assert "tiny is not downloaded yet" in bridge.state.message
    assert bridge.state.status_text() == "Model: tiny not available"
    assert engine.load_count == 0


def test_corrupt_local_model_is_a_load_error_not_a_missing_model(
    qtbot: QtBot, pool: QThreadPool, tmp_path: Path
) -> None:
    folder = tmp_path / "broken-model"  # every file faster-whisper expects, but model.bin is garbage
    folder.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (folder / name).write_text("{}", encoding="utf-8")
    (folder / "vocabulary.txt").write_text("a\n", encoding="utf-8")
    (folder / "model.bin").write_bytes(b"not a model" * 100_000)
    engine = Engine(ModelConfig(model=str(folder), device="cpu"), tmp_path / "models")
    bridge = EngineBridge(engine, pool)
    with qtbot.waitSignal(bridge.preloadFinished, timeout=30_000) as done:
        bridge.preload()
    bridge.shutdown()
    assert done.args == [False]
    assert bridge.state.kind == "error" and not bridge.state.needs_model
    assert "could not be loaded: its files may be damaged" in bridge.state.message
    assert "model.bin" not in bridge.state.message  # CTranslate2's own text stays in the log
    assert bridge.state.status_text() == "Model: broken-model failed to load"


def test_engine_events_from_any_thread_arrive_in_the_gui_thread(
    qtbot: QtBot, qapp: QApplication, pool: QThreadPool, tmp_path: Path
) -> None:
    config = ModelConfig(model="tiny", device="cpu")
    engine = Engine(config, tmp_path / "models")
    bridge = EngineBridge(engine, pool)
    threads: list[bool] = []
    bridge.fallbackOccurred.connect(lambda _m: threads.append(QThread.currentThread() is qapp.thread()))
    event = EngineEvent("fallback", config, "CUDA failed at first use; retrying on the CPU")
    worker = threading.Thread(target=engine._emit, args=(event,))  # as the engine does from a job thread
    with qtbot.waitSignal(bridge.fallbackOccurred, timeout=2000) as signal:
        worker.start()
        worker.join()
    bridge.shutdown()
    assert signal.args == ["CUDA failed at first use; retrying on the CPU"] and threads == [True]


def test_preload_loads_the_real_model_once(qtbot: QtBot, pool: QThreadPool, whisper_model_dir: Path) -> None:
    engine = Engine(
        ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8"), Path("unused")
    )
    bridge = EngineBridge(engine, pool)
    kinds: list[str] = []
    bridge.stateChanged.connect(lambda s: kinds.append(s.kind))
    with qtbot.waitSignal(bridge.preloadFinished, timeout=60_000) as done:
        bridge.preload()
        bridge.preload()  # asked again while loading: runs once more, finds the model loaded
    qtbot.waitUntil(lambda: not bridge.preloading, timeout=60_000)
    bridge.shutdown()
    assert done.args == [True]
    assert kinds == ["loading", "ready"] and engine.load_count == 1
    assert bridge.state.status_text().startswith("Model ready: ") and "cpu (int8)" in bridge.state.message


# --- settings controller and compute types --------------------------------------------------------------
def test_controller_saves_and_reconfigures_the_engine_without_loading(qtbot: QtBot, tmp_path: Path) -> None:
    settings = Settings()
    engine = Engine(settings.model, tmp_path / "models")
    file = tmp_path / "config" / "settings.json"
    controller = SettingsController(settings, file, engine)
    new_model = ModelConfig(model="base", device="cpu", compute_type="float32", batch_size=4)
    new = settings.replace(model=new_model, ui=UiOptions(close_to_tray=True))
    with (
        qtbot.waitSignal(controller.settingsChanged) as changed,
        qtbot.waitSignal(controller.modelConfigChanged) as model_changed,
    ):
        assert controller.apply(new)
    assert changed.args == [new] and model_changed.args == [new_model]
    assert engine.config == new_model and engine.load_count == 0  # applies at the next job
    assert load_settings(file) == (new, [])
    assert controller.settings == new
    only_ui = new.replace(ui=UiOptions(notify_on_finish=False))
    with qtbot.assertNotEmitted(controller.modelConfigChanged):
        assert controller.apply(only_ui)
    assert load_settings(file)[0] == only_ui


def test_controller_rejects_invalid_or_unsaveable_settings_and_keeps_the_old(
    qtbot: QtBot, tmp_path: Path
) -> None:
    settings = Settings()
    engine = Engine(settings.model, tmp_path / "models")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the config folder should be")
    controller = SettingsController(settings, blocker / "settings.json", engine)
    bad = settings.replace(model=ModelConfig(batch_size=0))
    with qtbot.waitSignal(controller.applyFailed) as failed:
        assert not controller.apply(bad)
    assert "batch_size=0" in failed.args[0]
    good = settings.replace(model=ModelConfig(batch_size=2))
    with qtbot.waitSignal(controller.applyFailed) as failed:
        assert not controller.apply(good)
    assert str(blocker) in failed.args[0] and "writable" in failed.args[0]
    assert controller.settings == settings and engine.config == settings.model


def test_controller_local_model_folder_must_hold_a_model(
    qtbot: QtBot, tmp_path: Path, whisper_model_dir: Path
) -> None:
    settings = Settings()
    engine = Engine(settings.model, tmp_path / "models")
    controller = SettingsController(settings, tmp_path / "settings.json", engine)
    empty = tmp_path / "empty"
    empty.mkdir()
    with qtbot.waitSignal(controller.applyFailed) as failed:
        assert not controller.use_local_model(str(empty))
    assert str(empty) in failed.args[0] and "model.bin" in failed.args[0]
    half = tmp_path / "half"
    half.mkdir()
    (half / "model.bin").write_bytes(b"")
    assert not controller.use_local_model(str(half))
    model = whisper_model_dir
    assert controller.use_local_model(str(model))
    assert engine.config.model == str(model) and load_settings(tmp_path / "settings.json")[
        0
    ].model.model == str(model)


def test_compute_choice_lists_what_ctranslate2_supports() -> None:
    cpu = compute_choice("cpu")
    assert cpu.device == "cpu" and set(cpu.compute_types) == supported_compute_types("cpu")
    assert cpu.compute_types[0] == "int8"
    auto = compute_choice("auto")
    assert auto.device == ("cuda" if cuda_device_count() > 0 else "cpu")
    assert best_compute_type("float16", cpu) == "int8"
    assert best_compute_type("float32", cpu) == "float32"


@pytest.mark.skipif(cuda_device_count() > 0, reason="checks the no-CUDA path")
def test_compute_choice_for_cuda_without_a_gpu_explains_why() -> None:
    cuda = compute_choice("cuda")
    assert cuda.compute_types == () and "no usable CUDA device" in cuda.note
    assert best_compute_type("int8", cuda) is None
