"""Speakers in transcripts and every output format; the CLI's --speakers end to end with real weights."""

from __future__ import annotations

import json
from pathlib import Path

import pysubs2
import pytest
import soundfile as sf

from whisperdesk.cli import main
from whisperdesk.core.outputs import render_json, render_srt, render_txt, render_vtt
from whisperdesk.core.speakers.assign import assign_speakers, rename_speakers
from whisperdesk.core.speakers.diarize import Turn
from whisperdesk.core.transcript import Segment, Transcript, Word
from whisperdesk.devtools.speaker_corpus import DISTINCT, conversation, espeak_available


def _words(*spec: tuple[float, float, str]) -> tuple[Word, ...]:
    return tuple(Word(s, e, t, 0.9) for s, e, t in spec)


def _transcript(segments: list[Segment]) -> Transcript:
    return Transcript("talk.wav", segments, "en", 1.0, 12.0, "tiny.en", "int8", "cpu")


SPANNING = Segment(
    0.0,
    4.0,
    " Are you coming? Yes, I am.",
    _words(
        (0.0, 0.4, " Are"),
        (0.4, 0.7, " you"),
        (0.7, 1.5, " coming?"),
        (2.0, 2.5, " Yes,"),
        (2.6, 2.8, " I"),
        (2.8, 4.0, " am."),
    ),
)
TURNS = [Turn(0.0, 1.8, 0), Turn(1.9, 4.2, 1), Turn(5.0, 7.0, 0)]


def test_segment_spanning_a_change_is_split_at_the_words() -> None:
    labelled = assign_speakers(_transcript([SPANNING, Segment(5.0, 6.5, " Good.")]), TURNS)
    assert [(s.start, s.end, s.text, s.speaker) for s in labelled.segments] == [
        (0.0, 1.5, " Are you coming?", "Speaker 1"),
        (2.0, 4.0, " Yes, I am.", "Speaker 2"),
        (5.0, 6.5, " Good.", "Speaker 1"),
    ]
    assert [w.speaker for w in labelled.segments[1].words] == ["Speaker 2"] * 3
    assert labelled.extra["speakers"] == ["Speaker 1", "Speaker 2"]


def test_word_timings_used_only_for_the_cut_are_dropped() -> None:
    labelled = assign_speakers(_transcript([SPANNING]), TURNS, keep_words=False)
    assert [s.speaker for s in labelled.segments] == ["Speaker 1", "Speaker 2"]
    assert all(s.words == () for s in labelled.segments)


def test_text_in_silence_goes_to_the_nearest_speaker() -> None:
    labelled = assign_speakers(_transcript([Segment(8.0, 9.0, " Bye.")]), TURNS)
    assert labelled.segments[0].speaker == "Speaker 1"


def test_every_format_carries_the_speaker() -> None:
    labelled = assign_speakers(_transcript([SPANNING, Segment(5.0, 6.5, " Good.")]), TURNS)
    assert render_txt(labelled) == "Speaker 1: Are you coming?\n\nSpeaker 2: Yes, I am.\n\nSpeaker 1: Good.\n"
    srt = render_srt(labelled)
    assert "Speaker 1: Are you coming?" in srt and "Speaker 2: Yes, I am." in srt
    vtt = render_vtt(labelled)
    assert "<v Speaker 1>Are you coming?" in vtt and "<v Speaker 2>Yes, I am." in vtt
    assert [e.text for e in pysubs2.SSAFile.from_string(srt)][:2] == [
        "Speaker 1: Are you coming?",
        "Speaker 2: Yes, I am.",
    ]
    data = json.loads(render_json(labelled))
    assert [s["speaker"] for s in data["segments"]] == ["Speaker 1", "Speaker 2", "Speaker 1"]
    assert {w["speaker"] for w in data["segments"][1]["words"]} == {"Speaker 2"}
    assert data["extra"]["speakers"] == ["Speaker 1", "Speaker 2"]


def test_txt_joins_consecutive_segments_of_one_speaker() -> None:
    segments = [
        Segment(0, 1, " One.", speaker="Ann"),
        Segment(1, 2, " Two.", speaker="Ann"),
        Segment(2, 3, " Three.", speaker="Bo"),
    ]
    assert render_txt(_transcript(segments)) == "Ann: One. Two.\n\nBo: Three.\n"


def test_outputs_without_speakers_are_unchanged() -> None:
    plain = _transcript([Segment(0.0, 1.0, " Hello.")])
    assert render_txt(plain) == "Hello.\n"
    assert "Speaker" not in render_srt(plain) + render_vtt(plain)
    assert "speaker" not in render_json(plain)


def test_vtt_escapes_a_speaker_name() -> None:
    named = _transcript([Segment(0.0, 1.0, " Hi.", speaker="R&D <lead>")])
    assert "<v R&amp;D &lt;lead&gt;>Hi." in render_vtt(named)


def test_renaming_changes_segments_words_and_the_list() -> None:
    labelled = assign_speakers(_transcript([SPANNING]), TURNS)
    renamed = rename_speakers(labelled, {"Speaker 2": "Grace"})
    assert [s.speaker for s in renamed.segments] == ["Speaker 1", "Grace"]
    assert {w.speaker for w in renamed.segments[1].words} == {"Grace"}
    assert renamed.extra["speakers"] == ["Speaker 1", "Grace"]
    assert "Grace: Yes, I am." in render_txt(renamed)


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_cli_speakers_auto_writes_every_format_with_speakers(
    tmp_path: Path, tiny_en_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conv = conversation(DISTINCT[:2], 25, seed=5)
    source = tmp_path / "meeting.wav"
    sf.write(source, conv.audio, 16000)
    code = main(
        ["transcribe", "--speakers", "auto", "--model", str(tiny_en_model), "--device", "cpu", str(source)]
    )
    assert code == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "meeting.json").read_text(encoding="utf-8"))
    assert data["extra"]["speakers"] == ["Speaker 1", "Speaker 2"]
    assert all("words" not in s for s in data["segments"])  # word timestamps were not asked for
    first = conv.turns[0][2]
    for seg in data["segments"]:
        expected = (
            "Speaker 1" if _speaker_at(conv.turns, (seg["start"] + seg["end"]) / 2) == first else "Speaker 2"
        )
        assert seg["speaker"] == expected, seg
    assert (tmp_path / "meeting.txt").read_text(encoding="utf-8").startswith("Speaker 1: ")
    assert "<v Speaker 2>" in (tmp_path / "meeting.vtt").read_text(encoding="utf-8")
    assert "Speaker 2: " in (tmp_path / "meeting.srt").read_text(encoding="utf-8")


def _speaker_at(turns: list[tuple[float, float, int]], t: float) -> int:
    return min(turns, key=lambda r: 0.0 if r[0] <= t <= r[1] else min(abs(r[0] - t), abs(r[1] - t)))[2]


def test_cli_rejects_a_bad_speaker_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["transcribe", "--speakers", "lots", "x.wav"])
    assert exit_info.value.code == 2
    assert "--speakers" in capsys.readouterr().err
