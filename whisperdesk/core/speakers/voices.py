"""The voice library: voices the user has named, kept (only when they opted in) so later recordings say
"Grace" instead of "Speaker 2".

Local only: one small JSON file in the data folder (``voices.json``), written atomically, holding per voice
its name, its average speaker embedding (192 numbers: what the voice sounds like, not what it said) and how
many seconds of speech that average rests on. Forgetting a voice rewrites the file without it, so its
embedding is gone from disk. Nothing is ever sent anywhere.

Why MATCH_SIMILARITY = 0.6 (measured, BENCHMARKS.md "Voices remembered"): the mean embeddings of one real
person in two different recordings or halves of one agreed at 0.555-0.995 (12 pairs: the two AMI meeting
excerpts' speakers, halves of the LJ, Harvard and Picovoice readings), of two different people at most 0.530
(313 pairs; the highest two people on one telephone line, then 0.366). At 0.6 no stranger got a known name
and 3 of the 12 pairs were missed, all halves of 2-3-s sentences: a stranger given a known name is worse
than a voice left as "Speaker N". A recording's speaker is matched only on MIN_MATCH_SECONDS of speech.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whisperdesk.core.atomic import atomic_write_text
from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import Settings

log = logging.getLogger(__name__)

MATCH_SIMILARITY = 0.6
MIN_MATCH_SECONDS = 2.0
FILE_NAME = "voices.json"


@dataclass(frozen=True)
class Voice:
    id: str
    name: str
    embedding: np.ndarray  # unit length, float32
    seconds: float  # of speech the embedding rests on
    updated: float  # time.time() of the last change


def _encode(embedding: np.ndarray) -> str:
    return base64.b64encode(np.asarray(embedding, dtype="<f4").tobytes()).decode("ascii")


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


class VoiceLibrary:
    """The named voices in ``path`` (a JSON file); safe to use from several threads of one process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    def in_folder(cls, data_dir: Path) -> VoiceLibrary:
        return cls(Path(data_dir) / FILE_NAME)

    @classmethod
    def for_settings(cls, settings: Settings, paths: AppPaths | None = None) -> VoiceLibrary | None:
        """The library in the data folder when the user keeps one ("Remember voices I name"), else None."""
        if not settings.ui.remember_voices:
            return None
        return cls.in_folder((paths or AppPaths.default()).data_dir)

    # --- reading --------------------------------------------------------------------------------------
    def voices(self) -> list[Voice]:
        """Every voice, by name."""
        with self._lock:
            return sorted(self._load().values(), key=lambda v: v.name.casefold())

    def _load(self) -> dict[str, Voice]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise WhisperDeskError(
                f"{self.path}: the voice library cannot be read ({exc}); move the file away to start a new one"
            ) from None
        voices = {}
        for item in data.get("voices", []):
            try:
                voice = Voice(
                    str(item["id"]),
                    str(item["name"]),
                    _decode(item["embedding"]),
                    float(item["seconds"]),
                    float(item.get("updated", 0.0)),
                )
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("%s: a damaged voice entry was skipped (%s)", self.path, exc)
                continue
            voices[voice.id] = voice
        return voices

    def _save(self, voices: Mapping[str, Voice]) -> None:
        data = {
            "version": 1,
            "voices": [
                {
                    "id": v.id,
                    "name": v.name,
                    "embedding": _encode(v.embedding),
                    "seconds": round(v.seconds, 2),
                    "updated": v.updated,
                }
                for v in voices.values()
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(data, ensure_ascii=False, indent=1))

    # --- changing -------------------------------------------------------------------------------------
    def remember(self, name: str, embedding: np.ndarray, seconds: float) -> Voice:
        """Keep ``name``'s voice: a new voice, or the one already called so, averaged with this recording
        (weighted by seconds of speech)."""
        name = " ".join(name.split())
        if not name:
            raise WhisperDeskError("a voice needs a name")
        with self._lock:
            voices = self._load()
            same = next((v for v in voices.values() if v.name.casefold() == name.casefold()), None)
            if same is None:
                voice = Voice(uuid.uuid4().hex, name, _unit(embedding), float(seconds), time.time())
            else:
                mixed = same.embedding * same.seconds + _unit(embedding) * seconds
                voice = Voice(same.id, same.name, _unit(mixed), same.seconds + float(seconds), time.time())
            voices[voice.id] = voice
            self._save(voices)
            return voice

    def rename(self, voice_id: str, name: str) -> None:
        name = " ".join(name.split())
        if not name:
            raise WhisperDeskError("a voice needs a name")
        with self._lock:
            voices = self._load()
            if voice_id not in voices:
                raise WhisperDeskError("that voice is no longer in the library")
            if any(v.name.casefold() == name.casefold() and v.id != voice_id for v in voices.values()):
                raise WhisperDeskError(f"another voice is already called {name}; merge the two instead")
            old = voices[voice_id]
            voices[voice_id] = Voice(old.id, name, old.embedding, old.seconds, time.time())
            self._save(voices)

    def merge(self, voice_ids: list[str], name: str | None = None) -> Voice:
        """One voice from several (the same person named twice): the seconds-weighted mean, under ``name``
        or the first one's name; the others are deleted."""
        with self._lock:
            voices = self._load()
            chosen = [voices[i] for i in voice_ids if i in voices]
            if not chosen:
                raise WhisperDeskError("none of those voices is in the library any more")
            total = sum(v.seconds for v in chosen)
            mixed = sum(v.embedding.astype(np.float64) * max(v.seconds, 1e-3) for v in chosen)
            kept = Voice(
                chosen[0].id, " ".join((name or chosen[0].name).split()), _unit(mixed), total, time.time()
            )
            for voice in chosen:
                voices.pop(voice.id)
            voices[kept.id] = kept
            self._save(voices)
            return kept

    def forget(self, voice_id: str) -> None:
        """Delete the voice and its embedding (the file is rewritten without it)."""
        with self._lock:
            voices = self._load()
            if voices.pop(voice_id, None) is not None:
                self._save(voices)

    # --- matching -------------------------------------------------------------------------------------
    def match(self, speakers: Mapping[str, tuple[np.ndarray, float]]) -> dict[str, str]:
        """Names for a recording's speakers ({"Speaker 2": (embedding, seconds)}) whose voice is in the library:
        {"Speaker 2": "Grace"}. One name per speaker and one speaker per name, the surest pairs first;
        only pairs at MATCH_SIMILARITY or more, for speakers with MIN_MATCH_SECONDS of speech."""
        voices = self.voices()
        if not voices or not speakers:
            return {}
        known = np.stack([v.embedding for v in voices])
        pairs = []
        for label, (embedding, seconds) in speakers.items():
            if seconds < MIN_MATCH_SECONDS:
                continue
            scores = known @ _unit(embedding)
            pairs += [
                (float(s), label, voices[i].name) for i, s in enumerate(scores) if s >= MATCH_SIMILARITY
            ]
        names: dict[str, str] = {}
        for _, label, name in sorted(pairs, reverse=True):
            if label not in names and name not in names.values():
                names[label] = name
        return names
