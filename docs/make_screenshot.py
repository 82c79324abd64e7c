"""Take docs/screenshot.png: the real window, with recordings dropped on it, under a real X server.

``--workspace [docs/workspace.png]`` takes the second picture instead: a two-voice espeak-ng conversation
transcribed with speaker labels and word timestamps, open in the transcript workspace while it plays
(``xvfb-run -s "-screen 0 1280x800x24" python docs/make_screenshot.py --workspace``).

Run under Xvfb with an XEmbed tray, e.g.::

    xvfb-run -s "-screen 0 1280x800x24" sh -c 'trayer --edge top --align right --widthtype request & \
        sleep 1; python docs/make_screenshot.py docs/screenshot.png'

It starts the desktop app as `whisperdesk gui` would, with its default settings (the built-in multilingual
base model), drops real speech on the window through real drag-and-drop events (JFK's inaugural line from
../shared/data when it is there, and three espeak-ng recordings in different voices), and grabs the window
while the queue runs: one job done with its tray notification, one in progress with its ETA, the rest queued.
The tray sits at the window's top-right corner, so its notification balloon lies over the window's area.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WINDOW_SIZE = (1280, 720)

# (file name, espeak-ng voice, text, times spoken): 10-40 s each once spoken.
SPOKEN = [
    (
        "team meeting.m4a",
        "en-us",
        "Good morning everyone, and welcome to the weekly planning meeting. First, the release is on track "
        "for Friday. Second, the support team asks for better notes on every change we ship. Third, the new "
        "office opens in March. ",
        3,
    ),
    (
        "Interview Berlin.mp3",
        "de",
        "Guten Tag und herzlich willkommen zu unserem Gespräch. Erzählen Sie uns bitte, wie Ihr Projekt "
        "begonnen hat und was Sie als Nächstes vorhaben. ",
        4,  # long enough to still be running (so the memo stays queued) when the shot is taken
    ),
    (
        "voice memo.wav",
        "en-gb",
        "Reminder to self: call the printer about the brochures, and send the draft to Anna before lunch. ",
        2,
    ),
]


def recordings(folder: Path) -> list[Path]:
    """JFK first when ../shared/data has it (short: it is done first), then the espeak-ng recordings."""
    from whisperdesk.core.audio import decode
    from whisperdesk.devtools.synth_audio import speech_like, write_audio

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    jfk = SHARED / "jfk.wav"
    if jfk.exists():
        made.append(Path(shutil.copy(jfk, folder / "jfk inaugural.wav")))
    for name, voice, text, times in SPOKEN:
        spoken = speech_like(text * times, folder / f"spoken-{voice}.wav", voice=voice)
        if spoken is None:
            raise SystemExit("espeak-ng is needed to speak the example recordings; install it first")
        made.append(write_audio(folder / name, decode(spoken)))
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
    from whisperdesk.core.jobstore import DONE, QUEUED, RUNNING
    from whisperdesk.core.paths import AppPaths
    from whisperdesk.core.settings import ModelConfig, OutputOptions, Settings, WatchedFolder

    recorder = home / "Recorder sync"
    recorder.mkdir()
    # The defaults a new user gets (the built-in model) but a batch of two, so that JFK finishes while the
    # meeting is part-way (progress moves in 30-s windows) and the rest still show as queued (the default
    # batch of eight would run all four at once), and one watched folder.
    settings = Settings(
        model=ModelConfig(batch_size=2),
        output=OutputOptions(output_dir=str(home / "transcripts")),
        watched=(WatchedFolder(path=str(recorder), recursive=True, after_processing="move"),),
    )
    app = QApplication(sys.argv[:1])
    app.setApplicationName("WhisperDesk")
    paths = AppPaths.default().ensure()
    desktop = Desktop(paths, settings)
    window = desktop.window
    desktop.show()
    window.resize(*WINDOW_SIZE)
    window.move(0, 0)
    files = recordings(home / "in")
    QTimer.singleShot(1500, lambda: drop(window, files))

    notified: list[float] = []
    desktop.notifier.notified.connect(lambda title, text: notified.append(time.monotonic()))

    def ready() -> bool:
        """One job done (its notification still showing), one running with its ETA, one queued."""
        counts = desktop.store.counts()
        running = [j for j in desktop.store.list() if j.state == RUNNING]
        fresh = bool(notified) and time.monotonic() - notified[-1] < 5.0  # tray balloons last 6 s
        part_way = any(j.progress > 0.1 for j in running)
        return counts.get(DONE, 0) >= 1 and counts.get(QUEUED, 0) >= 1 and part_way and fresh

    def poll() -> None:
        if ready() or poll.ticks > 1800:  # type: ignore[attr-defined]
            QTimer.singleShot(300, shoot)
            return
        poll.ticks += 1  # type: ignore[attr-defined]
        QTimer.singleShot(100, poll)

    def shoot() -> None:
        frame = window.frameGeometry()  # the window's area of the screen: the balloon over it included
        shot = QApplication.primaryScreen().grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        shot.save(out)
        print(f"saved {out} ({shot.width()}x{shot.height()})", flush=True)
        desktop.runner.pause_now()  # the running job goes back to the queue: shutdown need not wait for it
        app.exit(0)  # not quit(): it closes the window, whose close goes to the tray or asks to confirm

    poll.ticks = 0  # type: ignore[attr-defined]
    QTimer.singleShot(2000, poll)
    try:
        return int(app.exec())
    finally:
        desktop.shutdown()
        print("shut down", flush=True)
        shutil.rmtree(home, ignore_errors=True)


# A two-person conversation for the workspace shot: (espeak-ng voice, line), spoken in turn.
DIALOGUE = [
    ("en-us+m3", "Thanks for coming in. Let's start with the budget for the new office."),
    ("en-gb+f2", "Sure. The budget is about forty thousand, most of it for furniture and the network."),
    ("en-us+m3", "That sounds reasonable. When can the team move in?"),
    ("en-gb+f2", "The landlord says the keys are ready on the first of March, so the second week of March."),
    ("en-us+m3", "Good. And what about the public holiday in the same week?"),
    ("en-gb+f2", "We move after the holiday. I will send everyone a plan by Friday."),
    ("en-us+m3", "Perfect. Please add the printer and the meeting room screens to the list."),
    ("en-gb+f2", "Will do. I will also ask the support team what they need."),
    ("en-us+m3", "One more thing: who looks after the keys and the alarm code?"),
    ("en-gb+f2", "Maria from reception. She already has a copy of the floor plan."),
    ("en-us+m3", "Great. Then let's meet again on Monday at ten to check the plan."),
    ("en-gb+f2", "Monday at ten works for me. I will book the small meeting room."),
    ("en-us+m3", "Thank you, that was quick. See you on Monday."),
]


def dialogue(folder: Path) -> Path:
    """The conversation as one recording: each line in its speaker's voice, half a second apart."""
    import numpy as np

    from whisperdesk.core.audio import decode
    from whisperdesk.devtools.synth_audio import speech_like, write_audio

    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, (voice, line) in enumerate(DIALOGUE):
        spoken = speech_like(line, folder / f"line-{i}.wav", voice=voice)
        if spoken is None:
            raise SystemExit("espeak-ng is needed to speak the example dialogue; install it first")
        parts += [decode(spoken), np.zeros(8000, dtype=np.float32)]
    return write_audio(folder / "office move meeting.wav", np.concatenate(parts))


def workspace(out: str) -> int:
    """Take docs/workspace.png: a real speaker-labelled transcript open in the workspace, playing."""
    home = Path(tempfile.mkdtemp(prefix="wd-shot-"))
    os.environ["WHISPERDESK_HOME"] = str(home)
    from whisperdesk.app import Desktop
    from whisperdesk.core.jobstore import DONE, FAILED
    from whisperdesk.core.paths import AppPaths
    from whisperdesk.core.processor import job_settings
    from whisperdesk.core.settings import DecodeOptions, OutputOptions, Settings

    settings = Settings(
        decode=DecodeOptions(word_timestamps=True),
        output=OutputOptions(output_dir=str(home / "transcripts")),
    )
    app = QApplication(sys.argv[:1])
    app.setApplicationName("WhisperDesk")
    desktop = Desktop(AppPaths.default().ensure(), settings)
    desktop.show()
    desktop.window.resize(*WINDOW_SIZE)
    recording = dialogue(home / "in")
    desktop.runner.add_paths([recording], job_settings(settings, speakers="2"))
    state: dict[str, object] = {}

    def poll() -> None:
        jobs = desktop.store.list()
        if jobs and jobs[0].state in (DONE, FAILED):
            if jobs[0].state == FAILED:
                print(f"the job failed: {jobs[0].error}", flush=True)
                app.exit(1)
                return
            assert desktop.workspace is not None
            window = desktop.workspace.open_job(jobs[0].id)
            assert window is not None
            window.resize(*WINDOW_SIZE)
            window.move(0, 0)
            window.list.setCurrentIndex(window.model.index(2))
            window.seek_to(window.transcript.segments[3].start + 1.2, play=True)
            state["window"] = window
            QTimer.singleShot(1500, shoot)
            return
        QTimer.singleShot(200, poll)

    def shoot() -> None:
        window = state["window"]
        frame = window.frameGeometry()  # type: ignore[attr-defined]
        shot = QApplication.primaryScreen().grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        shot.save(out)
        print(f"saved {out} ({shot.width()}x{shot.height()})", flush=True)
        window.playback.pause()  # type: ignore[attr-defined]
        app.exit(0)

    QTimer.singleShot(1000, poll)
    try:
        return int(app.exec())
    finally:
        desktop.shutdown()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--workspace":
        sys.exit(workspace(sys.argv[2] if len(sys.argv) > 2 else "docs/workspace.png"))
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png"))
