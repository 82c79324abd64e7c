"""Guards against Qt binding releases whose signal dispatch corrupts the interpreter."""

from __future__ import annotations

import subprocess
import sys

_PROGRAM = """
from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

app = QCoreApplication([])

class Source(QObject):
    fired = Signal(int)

class Sink(QObject):
    def __init__(self):
        super().__init__()
        self.count = 0

    @Slot(int)
    def on_fired(self, value):
        self.count += 1

source, sink = Source(), Sink()
source.fired.connect(sink.on_fired)
for i in range(20000):
    source.fired.emit(i)
print(sink.count)
"""


def test_many_signals_to_a_python_slot_do_not_crash() -> None:
    """PySide6 6.12.0 dropped a reference to a bool on every delivery and aborted after a few thousand."""
    out = subprocess.run([sys.executable, "-c", _PROGRAM], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "20000"
