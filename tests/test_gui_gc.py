"""Reference cycles holding Qt objects are freed on the GUI thread, never on the thread that allocates."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from whisperdesk.services.gui_gc import GuiThreadCollector, collect_due

pytestmark = pytest.mark.usefixtures("no_leaks")


class _Node:
    """A Python object in a reference cycle with a Qt object inside, like a window and its callbacks."""

    def __init__(self) -> None:
        self.me = self
        self.qobject = QObject()


def _drop_a_cycle(freed_on: list[threading.Thread]) -> None:
    node = _Node()
    weakref.finalize(node, lambda: freed_on.append(threading.current_thread()))


def _allocate_past_the_threshold(kept: list[object]) -> None:
    """What a pool thread importing a big library does: enough lasting allocations to start a collection."""
    kept.extend([i] for i in range(gc.get_threshold()[0] * 20))


def test_a_busy_worker_thread_does_not_collect_and_the_gui_timer_does(qtbot: QtBot) -> None:
    gc.enable()  # as in a fresh process: the collector owns the switch from here on
    collector = GuiThreadCollector(interval_ms=5)
    collector.start()
    try:
        assert not gc.isenabled()
        freed_on: list[threading.Thread] = []
        _drop_a_cycle(freed_on)
        kept: list[object] = []
        worker = threading.Thread(target=_allocate_past_the_threshold, args=(kept,))
        worker.start()
        worker.join()
        assert freed_on == []  # the worker allocated far past the threshold, yet nothing was freed there
        qtbot.waitUntil(lambda: freed_on != [])
        assert freed_on == [threading.main_thread()]
        kept.clear()
    finally:
        collector.stop()
    assert gc.isenabled()  # given back as it was found


def test_stop_frees_what_is_left_and_keeps_collection_off_when_it_was_off(qtbot: QtBot) -> None:
    gc.disable()
    collector = GuiThreadCollector(interval_ms=60_000)
    collector.start()
    freed_on: list[threading.Thread] = []
    _drop_a_cycle(freed_on)
    collector.stop()
    assert freed_on == [threading.main_thread()]
    assert not gc.isenabled()


def test_collect_due_does_nothing_below_the_thresholds() -> None:
    gc.collect()
    freed_on: list[threading.Thread] = []
    _drop_a_cycle(freed_on)
    assert gc.get_count()[0] < gc.get_threshold()[0]
    assert collect_due() == 0
    assert freed_on == []
    kept: list[object] = []
    _allocate_past_the_threshold(kept)
    assert collect_due() > 0
    assert freed_on == [threading.main_thread()]
