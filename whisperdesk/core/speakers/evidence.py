"""What tells speakers apart when a person names them: each one's share of the talk and a few of their lines.

"Speaker 1" and "Speaker 2" mean nothing on their own; the rename dialog and the transcript view's speaker
list show, per speaker, how much of the recording they speak and two or three of their longest lines (with
the times, so each can be played). Pure data from the transcript: the window only lays it out.
"""

from __future__ import annotations

from dataclasses import dataclass

from whisperdesk.core.transcript import Transcript


@dataclass(frozen=True)
class Line:
    segment_index: int
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class SpeakerEvidence:
    name: str
    seconds: float  # time this speaker's segments cover
    share: float  # 0..1 of all labelled speech
    segments: int
    lines: tuple[Line, ...]  # the longest few, in time order


def speaker_evidence(transcript: Transcript, lines: int = 3, min_words: int = 3) -> list[SpeakerEvidence]:
    """One entry per speaker in order of first appearance (empty when the transcript has no labels).

    Lines are the speaker's longest segments (a long line says more about a voice and a topic than "Yes."),
    preferring ones of at least ``min_words`` words, shown in the order they were said.
    """
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    candidates: dict[str, list[Line]] = {}
    for i, seg in enumerate(transcript.segments):
        text = " ".join(seg.text.split())
        if seg.speaker is None or not text:
            continue
        seconds[seg.speaker] = seconds.get(seg.speaker, 0.0) + max(0.0, float(seg.end) - float(seg.start))
        counts[seg.speaker] = counts.get(seg.speaker, 0) + 1
        candidates.setdefault(seg.speaker, []).append(Line(i, float(seg.start), float(seg.end), text))
    total = sum(seconds.values())
    out = []
    for name in transcript.speakers:
        if name not in candidates:
            continue
        ranked = sorted(
            candidates[name],
            key=lambda line: (len(line.text.split()) >= min_words, line.end - line.start, len(line.text)),
            reverse=True,
        )
        chosen = tuple(sorted(ranked[: max(0, lines)], key=lambda line: line.start))
        share = seconds[name] / total if total > 0 else 1.0 / len(candidates)
        out.append(SpeakerEvidence(name, seconds[name], share, counts[name], chosen))
    return out
