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


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


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

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
