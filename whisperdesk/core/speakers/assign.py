"""Give every segment (and word) of a transcript a speaker, splitting segments where the speaker changes.

Why split at words: Whisper's segments follow pauses in the text, not changes of voice, so one segment often
holds the end of one speaker's sentence and the start of the next one's reply. Word timings (which the
diarizing job always asks Whisper for) say exactly where to cut.

Why segments hug their words: Whisper's segment times (and the first word after a pause) often stretch over
silence, so a segment could claim a speaker for seconds nobody spoke, and a subtitle cue stayed up over the
pause. The speaker turns cover exactly the speech that VAD found, so a word reaching more than
``MAX_SILENCE`` into silence is trimmed to the speech, a segment is cut where its words leave such a gap, and
each piece runs from its first word's start to its last word's end.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping, Sequence

from whisperdesk.core.speakers.diarize import Turn
from whisperdesk.core.transcript import Segment, Transcript, Word

MAX_SILENCE = 1.0  # seconds of silence a segment (or a word) may span
WORD_PAD = 0.1  # kept around speech when a word is trimmed to it


def speaker_label(index: int) -> str:
    return f"Speaker {index + 1}"


class _Timeline:
    """Looks up which speaker talks most over a time span (or, in silence, who talks nearest to it)."""

    def __init__(self, turns: Sequence[Turn]) -> None:
        self._turns = sorted(turns, key=lambda t: t.start)
        self._starts = [t.start for t in self._turns]

    def speaker_at(self, start: float, end: float) -> int | None:
        if not self._turns:
            return None
        at = bisect.bisect_right(self._starts, end)
        overlap: dict[int, float] = {}
        i = at - 1
        while i >= 0 and self._turns[i].end > start:  # turns do not overlap: earlier ones end earlier
            turn = self._turns[i]
            shared = min(end, turn.end) - max(start, turn.start)
            if shared > 0:
                overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
            i -= 1
        if overlap:
            return max(overlap, key=lambda k: overlap[k])
        near = [self._turns[j] for j in (at - 1, at) if 0 <= j < len(self._turns)]
        mid = (start + end) / 2
        return min(near, key=lambda t: min(abs(t.start - mid), abs(t.end - mid))).speaker

    def speech_within(self, start: float, end: float) -> list[tuple[float, float]]:
        """The spans of [start, end] that some turn covers (turns are VAD speech), in time order."""
        at = bisect.bisect_right(self._starts, end)
        spans = []
        i = at - 1
        while i >= 0 and self._turns[i].end > start:
            turn = self._turns[i]
            if min(end, turn.end) > max(start, turn.start):
                spans.append((max(start, turn.start), min(end, turn.end)))
            i -= 1
        return sorted(spans)

    def fit_word(self, word: Word) -> Word:
        """``word`` trimmed off silence longer than MAX_SILENCE at its edges; a word spanning such a silence
        keeps the side with more speech. Unchanged where no turn touches it (nothing is known there)."""
        spans = self.speech_within(word.start, word.end)
        if not spans:
            return word
        pieces: list[list[tuple[float, float]]] = [[spans[0]]]
        for span in spans[1:]:
            if span[0] - pieces[-1][-1][1] > MAX_SILENCE:
                pieces.append([])
            pieces[-1].append(span)
        best = max(pieces, key=lambda p: sum(e - s for s, e in p))
        start, end = word.start, word.end
        if best[0][0] - start > MAX_SILENCE or best is not pieces[0]:
            start = max(start, best[0][0] - WORD_PAD)
        if end - best[-1][1] > MAX_SILENCE or best is not pieces[-1]:
            end = min(end, best[-1][1] + WORD_PAD)
        if (start, end) == (word.start, word.end):
            return word
        return dataclasses.replace(word, start=start, end=end)


def assign_speakers(transcript: Transcript, turns: Sequence[Turn], *, keep_words: bool = True) -> Transcript:
    """A copy of ``transcript`` with speakers on segments and words; ``keep_words=False`` drops the word
    timings afterwards (they were only asked for to find the cuts)."""
    timeline = _Timeline(turns)
    segments: list[Segment] = []
    for seg in transcript.segments:
        for piece in _split(seg, timeline):
            segments.append(piece if keep_words else dataclasses.replace(piece, words=()))
    labelled = dataclasses.replace(transcript, segments=segments, extra=dict(transcript.extra))
    labelled.extra["speakers"] = labelled.speakers
    return labelled


def _split(seg: Segment, timeline: _Timeline) -> list[Segment]:
    """Pieces of ``seg``: a new piece at every change of speaker and at every silence over MAX_SILENCE."""
    if not seg.words:
        index = timeline.speaker_at(seg.start, seg.end)
        return [dataclasses.replace(seg, speaker=None if index is None else speaker_label(index))]
    runs: list[list[Word]] = []
    names: list[str | None] = []
    for word in seg.words:
        word = timeline.fit_word(word)
        index = timeline.speaker_at(word.start, word.end)
        name = None if index is None else speaker_label(index)
        pause = bool(runs) and word.start - runs[-1][-1].end > MAX_SILENCE
        if not runs or names[-1] != name or pause:
            runs.append([])
            names.append(name)
        runs[-1].append(dataclasses.replace(word, speaker=name))
    pieces = []
    for run, name in zip(runs, names, strict=True):
        start, end = run[0].start, max(w.end for w in run)
        text = "".join(w.text for w in run)  # keeps Whisper's leading space, like unsplit segments
        pieces.append(Segment(start, max(start, end), text, tuple(run), name))
    return pieces


def rename_speakers(transcript: Transcript, names: Mapping[str, str]) -> Transcript:
    """A copy with speaker labels replaced (e.g. {"Speaker 1": "Ada"}); labels not in ``names`` stay."""

    def new(label: str | None) -> str | None:
        return names.get(label, label) if label is not None else None

    segments = [
        dataclasses.replace(
            seg,
            speaker=new(seg.speaker),
            words=tuple(dataclasses.replace(w, speaker=new(w.speaker)) for w in seg.words),
        )
        for seg in transcript.segments
    ]
    renamed = dataclasses.replace(transcript, segments=segments, extra=dict(transcript.extra))
    if "speakers" in renamed.extra:
        renamed.extra["speakers"] = renamed.speakers
    return renamed
