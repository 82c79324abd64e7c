"""Word-level speaker labels: segments cut where the speaker changes or a long silence falls, times that hug
the words, on made-up timings and on a real two-person phone call (pyannote_sample, real tiny.en weights)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from whisperdesk.core.engine import Engine
from whisperdesk.core.settings import DecodeOptions, ModelConfig
from whisperdesk.core.speakers.assign import MAX_SILENCE, assign_speakers
from whisperdesk.core.speakers.count import SpeakerCount
from whisperdesk.core.speakers.diarize import Turn
from whisperdesk.core.speakers.job import transcribe_with_speakers
from whisperdesk.core.transcript import Segment, Transcript, Word
from whisperdesk.devtools.real_speakers import RealRecording, recording


def _transcript(segments: list[Segment]) -> Transcript:
    return Transcript("talk.wav", segments, "en", 1.0, 30.0, "tiny.en", "int8", "cpu")


def test_a_word_stretched_over_silence_is_trimmed_and_the_segment_hugs_its_words() -> None:
    # Whisper's "Right" starts at 2.0 although the speech (a turn) starts at 6.0 after 4 s of silence.
    words = (Word(0.5, 1.0, " Okay.", 0.9), Word(2.0, 6.5, " Right.", 0.9))
    turns = [Turn(0.4, 1.1, 0), Turn(6.0, 6.6, 0)]
    labelled = assign_speakers(_transcript([Segment(0.0, 9.0, " Okay. Right.", words)]), turns)
    assert [(s.start, s.end, s.text) for s in labelled.segments] == [
        (0.5, 1.0, " Okay."),
        (pytest.approx(5.9), 6.5, " Right."),
    ]


def test_a_short_pause_keeps_one_segment() -> None:
    words = (Word(0.5, 1.0, " One", 0.9), Word(1.6, 2.0, " two.", 0.9))
    labelled = assign_speakers(_transcript([Segment(0.0, 3.0, " One two.", words)]), [Turn(0.4, 2.1, 0)])
    assert [(s.start, s.end) for s in labelled.segments] == [(0.5, 2.0)]


# --- a real phone call -------------------------------------------------------------------------------
CALL = recording("pyannote_sample")
needs_call = pytest.mark.skipif(CALL is None, reason="../shared/data/real-speech is not beside the checkout")


@pytest.fixture(scope="module")
def call_transcripts(tiny_en_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Transcript]:
    """The call transcribed with speakers once, without and with word timestamps in the outputs."""
    assert CALL is not None
    engine = Engine(ModelConfig(model=str(tiny_en_model), device="cpu"), tmp_path_factory.mktemp("models"))
    try:
        return {
            words: transcribe_with_speakers(
                engine,
                CALL.path,
                DecodeOptions(word_timestamps=words == "words"),
                SpeakerCount(),
                audio=CALL.audio(),
            )
            for words in ("plain", "words")
        }
    finally:
        engine.close()


def _speech(rec: RealRecording) -> list[tuple[float, float]]:
    """Where anyone speaks, by the human reference turns (independent of the app's VAD)."""
    merged: list[list[float]] = []
    for start, end, _ in rec.turns:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


@needs_call
def test_real_call_segments_hold_one_speaker_and_no_long_silence(
    call_transcripts: dict[str, Transcript],
) -> None:
    assert CALL is not None
    labelled = call_transcripts["words"]
    speech = _speech(CALL)
    for seg in labelled.segments:
        assert seg.words, seg
        assert {w.speaker for w in seg.words} == {seg.speaker}
        assert seg.start == seg.words[0].start and seg.end == max(w.end for w in seg.words)
        inside = [(max(s, seg.start), min(e, seg.end)) for s, e in speech if e > seg.start and s < seg.end]
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(inside)]
        assert max(gaps, default=0.0) <= MAX_SILENCE + 0.3, seg  # 0.3 s: reference turns are hand-marked


@needs_call
def test_real_call_words_follow_the_reference_speaker(call_transcripts: dict[str, Transcript]) -> None:
    """Words spoken by one person alone (by the reference) carry that person's label under the best
    mapping of labels to people; most of them, since word times and turn marks are both approximate."""
    assert CALL is not None
    words = [w for seg in call_transcripts["words"].segments for w in seg.words]
    pairs = []
    for w in words:
        mid = (w.start + w.end) / 2
        who = {k for s, e, k in CALL.turns if s <= mid <= e}
        if len(who) == 1:
            pairs.append((who.pop(), w.speaker))
    people, labels = sorted({p for p, _ in pairs}), sorted({str(lab) for _, lab in pairs})
    agree = np.zeros((len(people), len(labels)))
    for person, label in pairs:
        agree[people.index(person), labels.index(str(label))] += 1
    best = max(agree[0, j] + (agree[1, 1 - j] if agree.shape[1] > 1 else 0) for j in range(agree.shape[1]))
    assert len(pairs) >= 40
    assert best / len(pairs) >= 0.9


@needs_call
def test_word_timings_not_asked_for_are_dropped_but_the_cuts_stay(
    call_transcripts: dict[str, Transcript],
) -> None:
    plain, words = call_transcripts["plain"], call_transcripts["words"]
    assert all(seg.words == () for seg in plain.segments)
    assert [(s.start, s.end, s.speaker) for s in plain.segments] == [
        (s.start, s.end, s.speaker) for s in words.segments
    ]
