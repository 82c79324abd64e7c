"""Take docs/screenshot.png: the real window, with recordings dropped on it, under a real X server.

Run under Xvfb with a tray, e.g.::

    xvfb-run -s "-screen 0 1400x860x24" sh -c 'trayer --edge top --align right --widthtype request & \
        python docs/make_screenshot.py docs/screenshot.png'

It builds a tiny-shaped random-weight model (no download), starts the desktop app as `whisperdesk gui`
would, drops three recordings on the window through real drag-and-drop events, and grabs the whole screen
while the queue runs: one job done, one in progress with its ETA, one queued.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def recordings(folder: Path) -> list[Path]:
    """A short memo, a long meeting and an interview: real speech from ../shared/data tiled to length when
    it is there, else espeak-ng speech, else a generated speech-shaped signal."""
    import numpy as np

    from whisperdesk.core.audio import decode
    from whisperdesk.devtools.synth_audio import babble, speech_like, write_audio

    folder.mkdir(parents=True, exist_ok=True)
    sources = [SHARED / "jfk.flac", SHARED / "multilingual.mp3", SHARED / "hotwords.mp3"]
    if all(p.exists() for p in sources):
        speech = [decode(p) for p in sources]
    else:
        speech = []
        for i, text in enumerate(["Welcome to the weekly meeting.", "The interview starts now.", "Hello."]):
            spoken = speech_like(text * 6, folder / f"speech-{i}.wav")
            speech.append(decode(spoken) if spoken else babble(30.0, seed=i))
    plan = [
        ("voice memo.flac", speech[0], 11.0),
        ("team meeting.m4a", speech[1], 240.0),
        ("interview.mp3", speech[2], 180.0),
    ]
    made = []
    for name, clip, seconds in plan:
        reps = int(np.ceil(seconds * 16000 / len(clip)))
        made.append(write_audio(folder / name, np.tile(clip, reps)[: int(seconds * 16000)]))
    return made


def drop(window: object, files: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(f)) for f in files])
    centre = QPoint(400, 300)
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    for event in (
        QDragEnterEvent(centre, *args),
        QDragMoveEvent(centre, *args),
        QDropEvent(QPointF(centre), *args),
    ):
        QApplication.sendEvent(window, event)  # type: ignore[arg-type]


def main(out: str) -> int:
    home = Path(tempfile.mkdtemp(prefix="wd-shot-"))
    os.environ["WHISPERDESK_HOME"] = str(home)
    from whisperdesk.app import Desktop
    from whisperdesk.core.jobstore import DONE, RUNNING
    from whisperdesk.core.paths import AppPaths
    from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings, WatchedFolder
    from whisperdesk.devtools.random_model import build_random_whisper_model

    recorder = home / "Recorder sync"
    recorder.mkdir()
    model = build_random_whisper_model(home / "whisper-tiny-random", shape="tiny")
    settings = Settings(
        model=ModelConfig(model=str(model), device="auto", compute_type="int8", batch_size=1),
        decode=DecodeOptions(beam_size=5),
        output=OutputOptions(output_dir=str(home / "transcripts")),
        watched=(WatchedFolder(path=str(recorder), recursive=True, after_processing="move"),),
    )
    app = QApplication(sys.argv[:1])
    paths = AppPaths.default().ensure()
    desktop = Desktop(paths, settings)
    desktop.ctx.window.resize(1300, 760)
    desktop.show()
    files = recordings(home / "in")
    QTimer.singleShot(1500, lambda: drop(desktop.ctx.window, files))

    notified: list[float] = []
    desktop.ctx.notifier.notified.connect(lambda title, text: notified.append(time.monotonic()))

    def ready() -> bool:
        """One job done (its notification still showing), one running with its ETA, one queued."""
        counts = desktop.store.counts()
        running = [j for j in desktop.store.list() if j.state == RUNNING]
        fresh = bool(notified) and time.monotonic() - notified[-1] < 5.0  # tray balloons last 6 s
        return counts.get(DONE, 0) >= 1 and bool(running) and running[0].progress > 0.06 and fresh

    def poll() -> None:
        if ready() or poll.ticks > 600:  # type: ignore[attr-defined]
            QTimer.singleShot(400, shoot)
            return
        poll.ticks += 1  # type: ignore[attr-defined]
        QTimer.singleShot(100, poll)

    def shoot() -> None:
        screen = QApplication.primaryScreen()
        screen.grabWindow(0).save(out)
        print(f"saved {out}")
        desktop.runner.set_paused(True)
        app.quit()

    poll.ticks = 0  # type: ignore[attr-defined]
    QTimer.singleShot(2000, poll)
    try:
        return int(app.exec())
    finally:
        desktop.shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png"))
