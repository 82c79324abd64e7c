"""The transcript produced by the engine and consumed by output writers, the job store and the UI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float
    speaker: str | None = None  # "Speaker 1" or the name the user gave; None when speakers are off


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None  # set by speaker labelling, which splits segments at every change of speaker


@dataclass
class Transcript:
    source: str
    segments: list[Segment]
    language: str | None
    language_probability: float | None
    duration: float
    model: str
    compute_type: str
    device: str
    processing_time: float = 0.0
    task: str = "transcribe"
    extra: dict[str, Any] = field(default_factory=dict)
    edited: bool = False  # corrected by the user since the engine made it (the JSON output says so too)

    @property
    def speakers(self) -> list[str]:
        """Distinct speaker labels in order of first appearance (empty when speakers are off)."""
        seen: dict[str, None] = {}
        for seg in self.segments:
            if seg.speaker is not None:
                seen.setdefault(seg.speaker)
        return list(seen)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
