"""Corrections a person makes to a transcript, as pure functions: a Transcript in, a new Transcript out.

Why pure: the window's undo stack keeps the transcript before and after each edit, and the same rules must
hold wherever an edit comes from (the view today, a script tomorrow). Nothing here touches the disk; saving
is the library's ``save_edit``.

Words stay in step with the text they belong to, because playback highlights the current word and the
outputs cut subtitles at word times: editing a segment's text keeps the timestamps of every word that is
still there and shares the time of the words it replaces among the new ones; splitting a segment hands
each side its own words (a word cut in two shares its time by characters); merging joins both lists.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence

from whisperdesk.core.transcript import Segment, Transcript, Word

EDITED_PROBABILITY = 1.0  # a word the person typed is as sure as a word can be


class EditError(ValueError):
    """An edit that cannot be made (no such segment, a split with nothing on one side); says why."""


# --- the edits ------------------------------------------------------------------------------------------
def edit_text(transcript: Transcript, index: int, text: str) -> Transcript:
    """Replace segment ``index``'s text; words that are still there keep their times."""
    segment = _segment(transcript, index)
    clean = " ".join(text.split())
    if not clean:
        raise EditError(
            "a segment cannot be left empty: delete its words by merging it with the next instead"
        )
    if segment.text[:1].isspace():
        clean = " " + clean  # the engine's convention: a segment's text starts with a space
    if clean == segment.text:
        return transcript
    words = _retime_words(segment, clean) if segment.words else ()
    return _replace(transcript, index, [dataclasses.replace(segment, text=clean, words=words)])


def set_speaker(transcript: Transcript, index: int, speaker: str) -> Transcript:
    """Give segment ``index`` (and its words) to ``speaker``: one of the file's speakers or a new name."""
    segment = _segment(transcript, index)
    name = _name(speaker)
    if segment.speaker == name:
        return transcript
    return _replace(transcript, index, [_with_speaker(segment, name)])


def rename_speaker(transcript: Transcript, old: str, new: str) -> Transcript:
    """Call ``old`` ``new`` everywhere in the file (renaming to a name already used joins the two)."""
    name = _name(new)
    if old == name or old not in transcript.speakers:
        return transcript
    segments = [_with_speaker(s, name) if s.speaker == old else s for s in transcript.segments]
    return dataclasses.replace(transcript, segments=segments)


def split_segment(transcript: Transcript, index: int, position: int) -> Transcript:
    """Split segment ``index`` at character ``position`` of its text into two segments of the same speaker.

    With word timestamps the cut falls between the last word before the cursor and the first after it (a
    word cut in two shares its time by characters); without them, time is shared by characters.
    """
    segment = _segment(transcript, index)
    text = segment.text
    if not text[:position].strip() or not text[position:].strip():
        raise EditError("put the cursor between two words to split a segment: one side would be empty")
    left_text = text[:position].rstrip()
    right_text = text[position:].lstrip()
    if text[:1].isspace():
        right_text = " " + right_text
    if segment.words:
        left_words, right_words = _split_words(segment, position)
        cut_left = left_words[-1].end if left_words else segment.start
        cut_right = right_words[0].start if right_words else segment.end
    else:
        left_words, right_words = (), ()
        cut_left = cut_right = _proportional_time(segment, position)
    left = dataclasses.replace(segment, text=left_text, end=max(segment.start, cut_left), words=left_words)
    right = dataclasses.replace(
        segment, text=right_text, start=min(segment.end, max(cut_right, left.end)), words=right_words
    )
    return _replace(transcript, index, [left, right])


def merge_with_next(transcript: Transcript, index: int) -> Transcript:
    """Join segment ``index`` and the one after it; the first one's speaker keeps the whole."""
    first = _segment(transcript, index)
    if index + 1 >= len(transcript.segments):
        raise EditError("the last segment has no next segment to merge with")
    second = transcript.segments[index + 1]
    head = first.text.rstrip()
    tail = second.text
    if tail[:1].isascii() and not tail[:1].isspace() and head[-1:].isascii():
        tail = " " + tail  # two English words must not run together; CJK text joins without a space
    merged = Segment(
        start=min(first.start, second.start),
        end=max(first.end, second.end),
        text=head + tail,
        words=first.words + second.words,
        speaker=first.speaker,
    )
    if first.speaker != second.speaker and first.speaker is not None:
        merged = _with_speaker(merged, first.speaker)
    segments = list(transcript.segments)
    segments[index : index + 2] = [merged]
    return dataclasses.replace(transcript, segments=segments)


# --- where playback is ----------------------------------------------------------------------------
def segment_at(segments: Sequence[Segment], seconds: float) -> int | None:
    """The segment playing at ``seconds`` (the last one started by then, if it has not ended long ago).

    Between two segments the earlier one stays current, so the highlight does not flicker off in pauses.
    """
    lo, hi = 0, len(segments)
    while lo < hi:
        mid = (lo + hi) // 2
        if segments[mid].start <= seconds:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1 if lo > 0 else None


def word_at(segment: Segment, seconds: float) -> int | None:
    """The word of ``segment`` being said at ``seconds`` (None before its first word)."""
    current = None
    for i, word in enumerate(segment.words):
        if word.start <= seconds:
            current = i
        else:
            break
    return current


# --- helpers ----------------------------------------------------------------------------------------
def _segment(transcript: Transcript, index: int) -> Segment:
    if not 0 <= index < len(transcript.segments):
        raise EditError(f"there is no segment {index + 1} (the transcript has {len(transcript.segments)})")
    return transcript.segments[index]


def _replace(transcript: Transcript, index: int, new: list[Segment]) -> Transcript:
    segments = list(transcript.segments)
    segments[index : index + 1] = new
    return dataclasses.replace(transcript, segments=segments)


def _name(speaker: str) -> str:
    name = " ".join(speaker.split())
    if not name:
        raise EditError("a speaker needs a name")
    return name


def _with_speaker(segment: Segment, name: str) -> Segment:
    words = tuple(dataclasses.replace(w, speaker=name) for w in segment.words)
    return dataclasses.replace(segment, speaker=name, words=words)


def _retime_words(segment: Segment, text: str) -> tuple[Word, ...]:
    """New words for ``text``: unchanged words keep their times, replaced ones share the old ones' span."""
    old = list(segment.words)
    tokens = text.split()
    glue = not any(w.text[:1].isspace() for w in old)  # CJK words come without spaces
    prefix = "" if glue else " "
    matcher = difflib.SequenceMatcher(a=[w.text.strip() for w in old], b=tokens, autojunk=False)
    words: list[Word] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        new_tokens = tokens[j1:j2]
        if op == "equal":
            words.extend(
                dataclasses.replace(w, text=prefix + t) for w, t in zip(old[i1:i2], new_tokens, strict=True)
            )
            continue
        if not new_tokens:  # deleted words take their time with them
            continue
        if i2 > i1:
            start, end = old[i1].start, old[i2 - 1].end
        else:  # inserted between words: a zero-length word at the gap
            start = end = old[i1 - 1].end if i1 > 0 else (old[0].start if old else segment.start)
        words.extend(_share(new_tokens, start, end, prefix, segment.speaker))
    return tuple(words)


def _share(tokens: Sequence[str], start: float, end: float, prefix: str, speaker: str | None) -> list[Word]:
    total = sum(len(t) for t in tokens) or 1
    out, t = [], start
    for token in tokens:
        step = (end - start) * len(token) / total
        out.append(Word(t, t + step, prefix + token, EDITED_PROBABILITY, speaker))
        t += step
    return out


def word_spans(segment: Segment) -> list[tuple[int, int]]:
    """Where each word's text sits in the segment's text (words must appear in order)."""
    spans, pos = [], 0
    for word in segment.words:
        token = word.text.strip()
        found = segment.text.find(token, pos) if token else -1
        if found < 0:  # a word the text no longer has: place it where the scan stands
            spans.append((pos, pos))
            continue
        spans.append((found, found + len(token)))
        pos = found + len(token)
    return spans


def _split_words(segment: Segment, position: int) -> tuple[tuple[Word, ...], tuple[Word, ...]]:
    left: list[Word] = []
    right: list[Word] = []
    for word, (a, b) in zip(segment.words, word_spans(segment), strict=True):
        if b <= position:
            left.append(word)
        elif a >= position:
            right.append(word)
        else:  # the cursor is inside this word: each side keeps its own characters and their share of time
            cut = word.start + (word.end - word.start) * (position - a) / (b - a)
            token = word.text.strip()
            k = position - a
            space = word.text[: len(word.text) - len(word.text.lstrip())]
            left.append(dataclasses.replace(word, end=cut, text=space + token[:k]))
            right.append(dataclasses.replace(word, start=cut, text=space + token[k:]))
    return tuple(left), tuple(right)


def _proportional_time(segment: Segment, position: int) -> float:
    text = segment.text
    lead = len(text) - len(text.lstrip())
    chars = max(1, len(text.strip()))
    frac = min(1.0, max(0.0, (position - lead) / chars))
    return segment.start + (segment.end - segment.start) * frac
