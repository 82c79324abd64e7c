"""Run Python's cyclic garbage collector only on the GUI thread, between events.

Why: Python starts a collection on whichever thread happens to allocate past the threshold. In this app
that is often a pool thread (a download importing huggingface_hub, a job importing onnxruntime), and the
garbage it frees can be Qt wrappers held in reference cycles (a window, its widgets and timers, a runner and
its pool). Destroying those off the GUI thread, or in the middle of the GUI thread's own event dispatch,
crashes Qt (segfaults seen in the test suite: collections on pool threads and mid-``QEventLoop.exec``).
So automatic collection is switched off and a GUI-thread timer collects the generations that are due,
at a point where no Qt object is in use. Reference counting still frees everything that is not in a cycle
at once; only cycles wait for the next tick.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer, Slot

COLLECT_EVERY_MS = 500  # cycles wait at most this long; a check that finds nothing due costs microseconds


def collect_due() -> int:
    """Collect the oldest generation whose count passed its threshold, as automatic collection would.

    Returns the number of unreachable objects found (0 when nothing was due). Call on the GUI thread only.
    """
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in (2, 1, 0):
        if thresholds[generation] and counts[generation] > thresholds[generation]:
            return gc.collect(generation)
    return 0


class GuiThreadCollector(QObject):
    """Owns the switch: ``start()`` turns automatic collection off and collects on a GUI-thread timer;
    ``stop()`` collects once more and gives collection back to Python. Create it on the GUI thread."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = COLLECT_EVERY_MS) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timeout)

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    @Slot()
    def _on_timeout(self) -> None:
        collect_due()
