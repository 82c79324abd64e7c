"""The named models a user can pick, with the facts a person needs to choose between them.

Repository ids come from faster-whisper's own mapping, so a name means the same model as in
``WhisperModel("small")``. Sizes are those of the published float16 ``model.bin`` plus tokenizer files on
the Hugging Face hub (rounded); the download itself uses the exact sizes the hub reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from whisperdesk.core.models.builtin import BUILTIN, BUILTIN_LABEL

MB = 1_000_000


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    label: str
    size_bytes: int
    english_only: bool
    hint: str  # speed/quality in a few words

    @property
    def languages(self) -> str:
        return "English only" if self.english_only else "multilingual"


_FACTS: tuple[tuple[str, int, str], ...] = (
    ("tiny", 77, "fastest, lowest accuracy"),
    ("tiny.en", 77, "fastest, lowest accuracy"),
    ("base", 147, "fast, basic accuracy"),
    ("base.en", 147, "fast, basic accuracy"),
    ("small", 486, "good accuracy; slower on a CPU"),
    ("small.en", 486, "good accuracy; slower on a CPU"),
    ("distil-small.en", 336, "fast, good accuracy"),
    ("medium", 1530, "very good accuracy; slow on a CPU"),
    ("medium.en", 1530, "very good accuracy; slow on a CPU"),
    ("distil-medium.en", 790, "fast on a GPU, very good accuracy"),
    ("large-v3-turbo", 1620, "near-best accuracy, fast on a GPU"),
    ("distil-large-v3", 1520, "fast on a GPU, very good accuracy"),  # distil-whisper: English only
    ("large-v3", 3090, "best accuracy; needs a GPU"),
    ("large-v2", 3090, "best accuracy; needs a GPU"),
    ("large-v1", 3090, "older large model; needs a GPU"),
)

BUILTIN_ENTRY = CatalogueEntry(BUILTIN, BUILTIN_LABEL, 147 * MB, False, "fast, basic accuracy; no download")


def catalogue() -> tuple[CatalogueEntry, ...]:
    """The built-in model first, then every downloadable named model faster-whisper knows."""
    known = set(repo_ids())
    named = tuple(
        CatalogueEntry(name, name, mb * MB, name.endswith(".en") or name.startswith("distil-"), hint)
        for name, mb, hint in _FACTS
        if name in known
    )
    return (BUILTIN_ENTRY, *named)


def entry(name: str) -> CatalogueEntry | None:
    return next((e for e in catalogue() if e.name == name), None)


def repo_ids() -> dict[str, str]:
    """Name → Hugging Face repository id, from faster-whisper (which the engine loads with)."""
    from faster_whisper.utils import _MODELS

    return dict(_MODELS)


def repo_id_for(name: str) -> str | None:
    """The repository of a catalogue name, or the name itself when it already is a repo id."""
    if "/" in name:
        return name
    return repo_ids().get(name)
