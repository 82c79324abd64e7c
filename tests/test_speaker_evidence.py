"""Speaker evidence for the rename dialog: share of talk and the longest lines, from a transcript written here
(the real two-voice pipeline is checked in test_speaker_jobs.py)."""

from __future__ import annotations

import pytest

from whisperdesk.core.speakers.evidence import speaker_evidence
from whisperdesk.core.transcript import Segment, Transcript


def _t(*segments: Segment) -> Transcript:
    return Transcript("/rec/m.wav", list(segments), "en", 0.9, 60.0, "tiny.en", "int8", "cpu")


def test_share_and_longest_lines_in_time_order() -> None:
    transcript = _t(
        Segment(0.0, 1.0, " Yes.", speaker="Speaker 2"),
        Segment(1.0, 9.0, " Welcome everyone to the budget meeting of this week.", speaker="Speaker 1"),
        Segment(9.0, 10.0, " Right.", speaker="Speaker 1"),
        Segment(10.0, 16.0, " I have the numbers for the second quarter here.", speaker="Speaker 2"),
        Segment(16.0, 20.0, " Please go ahead and share them now.", speaker="Speaker 1"),
        Segment(20.0, 30.0, " Sales grew by four percent against last year overall.", speaker="Speaker 2"),
        Segment(30.0, 31.0, "   ", speaker="Speaker 1"),
    )
    first, second = speaker_evidence(transcript, lines=2)
    assert (first.name, second.name) == ("Speaker 2", "Speaker 1")  # order of first appearance
    assert (first.seconds, second.seconds) == (17.0, 13.0) and (first.segments, second.segments) == (3, 3)
    assert first.share == pytest.approx(17 / 30) and second.share == pytest.approx(13 / 30)
    assert [line.text for line in first.lines] == [
        "I have the numbers for the second quarter here.",
        "Sales grew by four percent against last year overall.",
    ]
    assert [line.segment_index for line in second.lines] == [1, 4] and second.lines[0].start == 1.0


def test_no_labels_no_evidence() -> None:
    assert speaker_evidence(_t(Segment(0.0, 2.0, " Plain text."))) == []
