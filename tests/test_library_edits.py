"""Pure transcript edits: text, speaker, rename, split and merge keep words and times in step."""

from __future__ import annotations

import pytest

from whisperdesk.core.library.edits import (
    EditError,
    edit_text,
    merge_with_next,
    rename_speaker,
    segment_at,
    set_speaker,
    split_segment,
    word_at,
)
from whisperdesk.core.transcript import Segment, Transcript, Word


def _words(spec: list[tuple[float, float, str]], speaker: str | None = None) -> tuple[Word, ...]:
    return tuple(Word(a, b, " " + t, 0.9, speaker) for a, b, t in spec)


def _transcript(*segments: Segment) -> Transcript:
    return Transcript("talk.wav", list(segments), "en", 1.0, 10.0, "tiny.en", "int8", "cpu")


ASK = Segment(
    0.0,
    4.0,
    " Ask not what your country",
    _words(
        [(0.0, 0.5, "Ask"), (0.5, 1.0, "not"), (1.0, 1.5, "what"), (1.6, 2.5, "your"), (2.6, 4.0, "country")],
        "Speaker 1",
    ),
    "Speaker 1",
)
CAN = Segment(
    4.5,
    6.0,
    " can do for you.",
    _words([(4.5, 5.0, "can"), (5.0, 5.5, "do"), (5.5, 6.0, "for you.")], "Speaker 2"),
    "Speaker 2",
)
PLAIN = Segment(0.0, 10.0, " one two three four")  # no word timestamps, no speakers


def test_edit_text_keeps_the_times_of_words_still_there_and_shares_the_replaced_span() -> None:
    before = _transcript(ASK, CAN)
    after = edit_text(before, 0, "Ask not what our great country")
    seg = after.segments[0]
    assert seg.text == " Ask not what our great country"
    assert [w.text for w in seg.words] == [" Ask", " not", " what", " our", " great", " country"]
    assert (seg.words[0].start, seg.words[0].end) == (0.0, 0.5)
    assert (seg.words[-1].start, seg.words[-1].end) == (2.6, 4.0)
    # "your" (1.6-2.5) became "our great": the two share its span by characters
    assert seg.words[3].start == pytest.approx(1.6) and seg.words[4].end == pytest.approx(2.5)
    assert seg.words[3].end == pytest.approx(1.6 + 0.9 * 3 / 8)
    assert all(w.speaker == "Speaker 1" for w in seg.words)
    assert before.segments[0] is ASK  # pure: the input is untouched
    assert after.segments[1] is CAN


def test_edit_text_refuses_an_empty_segment_and_an_unknown_index() -> None:
    with pytest.raises(EditError, match="empty"):
        edit_text(_transcript(ASK), 0, "   ")
    with pytest.raises(EditError, match="no segment 3"):
        edit_text(_transcript(ASK), 2, "x")


def test_set_speaker_and_rename_everywhere() -> None:
    t = _transcript(ASK, CAN, ASK)
    t2 = set_speaker(t, 1, "  Grace   Hopper ")
    assert t2.segments[1].speaker == "Grace Hopper"
    assert {w.speaker for w in t2.segments[1].words} == {"Grace Hopper"}
    assert t2.speakers == ["Speaker 1", "Grace Hopper"]
    t3 = rename_speaker(t2, "Speaker 1", "Ada")
    assert [s.speaker for s in t3.segments] == ["Ada", "Grace Hopper", "Ada"]
    assert {w.speaker for s in (t3.segments[0], t3.segments[2]) for w in s.words} == {"Ada"}
    assert rename_speaker(t3, "Nobody", "X") is t3
    joined = rename_speaker(t3, "Ada", "Grace Hopper")  # a name already used joins the two
    assert joined.speakers == ["Grace Hopper"]
    with pytest.raises(EditError):
        set_speaker(t, 0, " ")


def test_split_between_words_uses_the_word_times() -> None:
    t = _transcript(ASK, CAN)
    pos = ASK.text.index(" what")  # the cursor before "what"
    after = split_segment(t, 0, pos)
    left, right = after.segments[0], after.segments[1]
    assert (left.text, right.text) == (" Ask not", " what your country")
    assert [w.text.strip() for w in left.words] == ["Ask", "not"]
    assert [w.text.strip() for w in right.words] == ["what", "your", "country"]
    assert (left.start, left.end, right.start, right.end) == (0.0, 1.0, 1.0, 4.0)
    assert left.speaker == right.speaker == "Speaker 1"
    assert after.segments[2] is CAN and len(after.segments) == 3


def test_split_inside_a_word_shares_that_word_by_characters() -> None:
    pos = ASK.text.index("country") + 3  # "cou|ntry"
    after = split_segment(_transcript(ASK), 0, pos)
    left, right = after.segments
    assert left.text.endswith(" cou") and right.text == " ntry"
    assert left.words[-1].text == " cou" and right.words[0].text == " ntry"
    assert left.end == pytest.approx(2.6 + 1.4 * 3 / 7)
    assert right.start == pytest.approx(left.end)


def test_split_without_word_times_is_proportional_and_refuses_an_empty_side() -> None:
    t = _transcript(PLAIN)
    pos = PLAIN.text.index(" three")
    left, right = split_segment(t, 0, pos).segments
    assert (left.text, right.text) == (" one two", " three four")
    assert left.end == right.start == pytest.approx(10.0 * (pos - 1) / len(PLAIN.text.strip()))
    with pytest.raises(EditError, match="empty"):
        split_segment(t, 0, 1)
    with pytest.raises(EditError, match="empty"):
        split_segment(t, 0, len(PLAIN.text))


def test_merge_with_next_joins_text_words_and_time_and_undoes_a_split() -> None:
    t = _transcript(ASK, CAN)
    merged = merge_with_next(t, 0)
    assert len(merged.segments) == 1
    seg = merged.segments[0]
    assert seg.text == " Ask not what your country can do for you."
    assert (seg.start, seg.end) == (0.0, 6.0)
    assert seg.speaker == "Speaker 1" and {w.speaker for w in seg.words} == {"Speaker 1"}
    assert len(seg.words) == 8
    with pytest.raises(EditError, match="last segment"):
        merge_with_next(t, 1)
    split = split_segment(_transcript(ASK), 0, ASK.text.index(" what"))
    assert merge_with_next(split, 0).segments[0].text == ASK.text
    assert [w.text for w in merge_with_next(split, 0).segments[0].words] == [w.text for w in ASK.words]


def test_merge_of_cjk_segments_adds_no_space() -> None:
    a = Segment(0.0, 1.0, "今日は", (Word(0.0, 1.0, "今日は", 0.9),))
    b = Segment(1.0, 2.0, "晴れです", (Word(1.0, 2.0, "晴れです", 0.9),))
    assert merge_with_next(_transcript(a, b), 0).segments[0].text == "今日は晴れです"


def test_segment_and_word_at_a_time() -> None:
    segments = [ASK, CAN]
    assert segment_at(segments, -1.0) is None
    assert segment_at(segments, 0.0) == 0
    assert segment_at(segments, 4.2) == 0  # in the pause the earlier segment stays current
    assert segment_at(segments, 5.0) == 1
    assert word_at(ASK, 1.7) == 3
    assert word_at(CAN, 4.0) is None
