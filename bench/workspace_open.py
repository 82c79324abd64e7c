"""How long the transcript workspace takes to open a long transcript, and to apply one edit in it.

Prints figures; asserts nothing (tests never time things). A 2-hour recording has about 2,000 segments:
this builds one that size (10 words each, word timestamps, three speakers), keeps it in a transcript
library and times reading it back (what opening a job reads), opens the real window
offscreen and times it until the first screenful is painted, then times one undoable text edit in the
middle and a jump to the last segment (while batched layout may still be catching up).

    QT_QPA_PLATFORM=offscreen python -m bench.workspace_open [--segments 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def build(segments: int) -> object:
    from whisperdesk.core.transcript import Segment, Transcript, Word

    out = []
    for i in range(segments):
        start = i * 3.6
        speaker = f"Speaker {i % 3 + 1}"
        words = tuple(
            Word(start + j * 0.33, start + j * 0.33 + 0.3, f" word{(i * 7 + j) % 97}", 0.9, speaker)
            for j in range(10)
        )
        out.append(Segment(start, start + 3.4, "".join(w.text for w in words), words, speaker))
    return Transcript("/nonexistent/meeting.wav", out, "en", 1.0, segments * 3.6, "base", "int8", "cpu")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=2000)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    from whisperdesk.core.library.edits import edit_text
    from whisperdesk.core.library.store import TranscriptLibrary
    from whisperdesk.services.playback import Playback
    from whisperdesk.ui.transcript_window import TranscriptWindow

    app = QApplication([])
    built = build(args.segments)
    with tempfile.TemporaryDirectory() as folder:
        library = TranscriptLibrary(Path(folder) / "library.sqlite3")
        library.put(built, job_id=1, job_created_at=0.0)  # type: ignore[arg-type]
        t_read = time.perf_counter()
        entry = library.for_job(1)  # what opening a job reads: the record, parsed back into a Transcript
        read = time.perf_counter() - t_read
        library.close()
    assert entry is not None
    transcript = entry.transcript
    playback = Playback()
    t0 = time.perf_counter()
    window = TranscriptWindow(1, "meeting.wav", transcript, playback)
    window.show()
    window.list.viewport().repaint()  # the first screenful painted
    app.processEvents()
    opened = time.perf_counter() - t0
    mid = args.segments // 2
    t1 = time.perf_counter()
    window.apply("Edit text", lambda t: edit_text(t, mid, "an edited line in the middle"), mid)
    window.list.viewport().repaint()
    edited = time.perf_counter() - t1
    t2 = time.perf_counter()
    window.seek_to(transcript.segments[-1].start)
    app.processEvents()
    window.list.viewport().repaint()
    jumped = time.perf_counter() - t2
    print(f"segments: {args.segments}")
    print(f"read from the library: {read * 1000:.0f} ms")
    print(f"open to first paint: {opened * 1000:.0f} ms")
    print(f"one edit in the middle, repainted: {edited * 1000:.0f} ms")
    print(f"jump to the last segment, repainted: {jumped * 1000:.0f} ms")
    window.undo_stack.setClean()
    window.close()
    playback.close()


if __name__ == "__main__":
    main()
