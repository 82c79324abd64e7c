"""Transcribe one file with speaker labels: diarization on CPU threads beside the shared Whisper model.

Why beside, not after: diarization needs only the decoded audio, so it runs in its own thread while the engine
transcribes (on the GPU, or on the other CPU cores), and never holds the shared model. Word timestamps are
always asked of Whisper here, because a segment spanning a change of speaker is cut between its words;
they are dropped again afterwards unless the user asked for them.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from whisperdesk.core.settings import DecodeOptions
from whisperdesk.core.speakers.assign import assign_speakers, rename_speakers, speaker_label
from whisperdesk.core.speakers.count import SpeakerCount
from whisperdesk.core.speakers.diarize import Diarization, DiarizeOptions, Turn, Voiceprint, diarize_voices
from whisperdesk.core.speakers.model import shared_embedder
from whisperdesk.core.speakers.voices import VoiceLibrary
from whisperdesk.core.transcript import Transcript

ProgressFn = Callable[[float, float], None]
TRANSCRIBE_SHARE = 0.7  # of the job's progress bar; diarization is the cheaper rest


def default_threads() -> int:
    """Half the cores (at most 4): the rest stay with Whisper when it runs on the CPU."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


class _Combined:
    """One progress figure from two threads' progress (transcription and diarization)."""

    def __init__(self, progress: ProgressFn | None) -> None:
        self._progress = progress
        self._lock = threading.Lock()
        self._parts = [0.0, 0.0]

    def part(self, index: int) -> ProgressFn:
        def report(done: float, total: float) -> None:
            if self._progress is None or total <= 0:
                return
            with self._lock:
                self._parts[index] = min(1.0, done / total)
                share = self._parts[0] * TRANSCRIBE_SHARE + self._parts[1] * (1 - TRANSCRIBE_SHARE)
                self._progress(share * total, total)

        return report


def transcribe_with_speakers(
    engine: Any,
    source: Path | str,
    options: DecodeOptions,
    count: SpeakerCount,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    audio: np.ndarray | None = None,
    threads: int | None = None,
    on_language: Callable[[str, float], None] | None = None,
    voices: VoiceLibrary | None = None,
    voiceprints: dict[str, Voiceprint] | None = None,
) -> Transcript:
    """``engine.transcribe`` plus speaker labels; raises what the engine raises, or Cancelled.

    With a voice library, speakers whose voice it knows are named ("Grace", not "Speaker 2"); ``voiceprints``,
    when given, receives each labelled speaker's voiceprint under the label the transcript uses."""
    if audio is None:
        from whisperdesk.core.audio import decode

        audio = decode(Path(source))
    diarize_options = DiarizeOptions(count=count, threads=threads or default_threads())
    shared_embedder(diarize_options.threads)  # a missing or damaged model fails the job before any work
    stop = _Either(cancel)
    combined = _Combined(progress)
    result: dict[str, Any] = {}
    worker = threading.Thread(
        target=_diarize_into,
        args=(
            result,
            audio,
            diarize_options,
            combined,
            stop,
        ),
        name="whisperdesk-speakers",
        daemon=True,
    )
    worker.start()
    try:
        words_on = dataclasses.replace(options, word_timestamps=True)
        transcript = engine.transcribe(
            source,
            words_on,
            progress=combined.part(0),
            cancel=cancel,
            audio=audio,
            on_language=on_language,
        )
    except BaseException:
        stop.set()  # the diarizing thread stops at its next block; the caller's event is left alone
        raise
    finally:
        worker.join()
    if "error" in result:
        raise result["error"]
    diarization: Diarization = result["diarization"]
    turns = diarization.turns
    labelled = assign_speakers(transcript, turns, keep_words=options.word_timestamps)
    note = count_note(count, turns, labelled.speakers)
    if note:
        labelled.extra[NOTE_KEY] = note
    prints = {
        speaker_label(k): v for k, v in diarization.voices.items() if speaker_label(k) in labelled.speakers
    }
    if voices is not None:
        names = voices.match({label: (v.embedding, v.seconds) for label, v in prints.items()})
        if names:
            labelled = rename_speakers(labelled, names)
            prints = {names.get(label, label): v for label, v in prints.items()}
    if voiceprints is not None:
        voiceprints.update(prints)
    return labelled


NOTE_KEY = "speakers_note"


def count_note(count: SpeakerCount, turns: list[Turn], found: list[str]) -> str:
    """A sentence for the user when the speakers found are not what they asked for, saying why; else ""."""
    if count.minimum <= len(found) <= count.maximum:
        return ""
    asked = f"{count.exact}" if count.exact is not None else f"{count.minimum} to {count.maximum}"
    voices = len({t.speaker for t in turns})
    speech = sum(t.end - t.start for t in turns)
    head = f"{len(found)} speaker{'s' if len(found) != 1 else ''} found although {asked} were asked for"
    if voices < count.minimum:
        return (
            f"{head}: the recording holds only {speech:.0f} s of speech, too little to tell {count.minimum} voices "
            "apart (each needs a few seconds of its own)."
        )
    if len(found) < voices:
        return (
            f"{head}: {voices - len(found)} of the {voices} voices told apart said nothing that was transcribed "
            "(too short or too quiet to make words of)."
        )
    return f"{head}: the voices could not be told apart into that many."


class _Either(threading.Event):
    """Set by this module when the transcription failed, or by the caller's cancel."""

    def __init__(self, outer: threading.Event | None) -> None:
        super().__init__()
        self._outer = outer

    def is_set(self) -> bool:
        return super().is_set() or (self._outer is not None and self._outer.is_set())


def _diarize_into(
    result: dict[str, Any],
    audio: np.ndarray,
    options: DiarizeOptions,
    combined: _Combined,
    cancel: threading.Event,
) -> None:
    try:
        result["diarization"] = diarize_voices(audio, options, progress=combined.part(1), cancel=cancel)
    except Exception as exc:  # Cancelled included: re-raised in the job's thread, never lost in this one
        result["error"] = exc
