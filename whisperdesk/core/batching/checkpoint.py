"""A finished window of a job: what a checkpoint keeps and what a resumed job starts from.

Windows are decoded independently (no conditioning on the previous window's text), so a job interrupted
after window k and resumed from it decodes windows k+1… exactly as an uninterrupted run would: the seam
has no duplicated or missing text as long as a window is kept only once all of it (its follow-up tails
included) is decoded. The scheduler calls ``on_window`` at that moment; the queue stores it
(:mod:`whisperdesk.core.queue.checkpoints`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from whisperdesk.core.transcript import Segment, Word


@dataclass(frozen=True)
class WindowResult:
    """Window ``index`` of the job's plan, decoded to the end: its segments in file time, the job's
    language when it was decoded, and the last speech timestamp word alignment carries on from."""

    index: int
    segments: tuple[Segment, ...]
    language: str | None
    language_probability: float | None
    last_speech_timestamp: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "segments": [
                {
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "words": [[w.start, w.end, w.text, w.probability] for w in s.words],
                }
                for s in self.segments
            ],
            "language": self.language,
            "language_probability": self.language_probability,
            "last_speech_timestamp": self.last_speech_timestamp,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowResult:
        """Raises KeyError, TypeError or ValueError for data that is not a window (the caller ignores it)."""
        segments = tuple(
            Segment(
                float(s["start"]),
                float(s["end"]),
                str(s["text"]),
                tuple(Word(float(a), float(b), str(t), float(p)) for a, b, t, p in s.get("words", ())),
            )
            for s in data["segments"]
        )
        probability = data.get("language_probability")
        return cls(
            int(data["index"]),
            segments,
            data.get("language"),
            None if probability is None else float(probability),
            float(data.get("last_speech_timestamp") or 0.0),
        )


WindowFn = Callable[[WindowResult], None]
