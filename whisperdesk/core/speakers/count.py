"""How many speakers the user expects: `auto`, an exact number, or a range such as `2-4`."""

from __future__ import annotations

from dataclasses import dataclass

MAX_SPEAKERS = 20


class InvalidSpeakerCount(ValueError):
    """The user's speaker-count text cannot be read; the message says what to type instead."""


@dataclass(frozen=True)
class SpeakerCount:
    """A range of speaker counts; `auto` is 1..MAX_SPEAKERS, an exact number has minimum == maximum."""

    minimum: int = 1
    maximum: int = MAX_SPEAKERS

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum <= MAX_SPEAKERS:
            raise InvalidSpeakerCount(
                f"speaker count {self.minimum}-{self.maximum} is out of range; "
                f"use auto, a number from 1 to {MAX_SPEAKERS}, or a range such as 2-4"
            )

    @property
    def exact(self) -> int | None:
        return self.minimum if self.minimum == self.maximum else None

    def __str__(self) -> str:
        if self.minimum == 1 and self.maximum == MAX_SPEAKERS:
            return "auto"
        if self.exact is not None:
            return str(self.exact)
        return f"{self.minimum}-{self.maximum}"


def parse_speaker_count(text: str) -> SpeakerCount:
    """Read `auto`, `N` or `MIN-MAX`; raises InvalidSpeakerCount with advice in plain words."""
    value = text.strip().lower()
    if value == "auto":
        return SpeakerCount()
    low, sep, high = value.partition("-")
    try:
        minimum = int(low)
        maximum = int(high) if sep else minimum
    except ValueError:
        raise InvalidSpeakerCount(
            f"{text!r} is not a speaker count; use auto, a number such as 2, or a range such as 2-4"
        ) from None
    return SpeakerCount(minimum, maximum)
