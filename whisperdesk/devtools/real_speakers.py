"""Recordings of real people with reference speaker turns (RTTM), read from ``../shared/data/real-speech``.

Why a module: tests, the DER benchmark and the conversation builder all need the same few things: where the
recordings are (None when ``../shared`` is absent, so tests skip cleanly), the audio at 16 kHz, the reference
turns with their speaker names, and which files hold one speaker. The recordings are never copied into the
repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from whisperdesk.devtools.speech_corpus import shared_data

SAMPLE_RATE = 16000
MULTI = ("pyannote_sample", "ami_dev00", "ami_dev01")  # the files with reference turns
SINGLE = (
    "lj_printing_a",
    "osr_harvard_0034",
    *(f"leopard_{lang}" for lang in ("en", "de", "es", "fr", "it", "ja", "ko", "pt")),
)


@dataclass(frozen=True)
class RealRecording:
    name: str
    path: Path
    speakers: int  # the true number, from refs.json
    turns: tuple[tuple[float, float, str], ...]  # reference (start, end, speaker name); may overlap

    def numbered_turns(self) -> list[tuple[float, float, int]]:
        """Reference turns with speakers numbered 0.. in order of first appearance (for the DER scorer)."""
        ids: dict[str, int] = {}
        return [(s, e, ids.setdefault(k, len(ids))) for s, e, k in self.turns]

    def audio(self) -> np.ndarray:
        return _read(self.path)


def real_speech_dir() -> Path | None:
    """The folder of real recordings beside the checkout, or None when it is not there."""
    data = shared_data()
    folder = data / "real-speech" if data is not None else None
    return folder if folder is not None and (folder / "refs.json").is_file() else None


def recording(name: str) -> RealRecording | None:
    """One real recording by stem (``ami_dev00``), or None when the shared folder or the file is absent."""
    folder = real_speech_dir()
    if folder is None or not (folder / f"{name}.flac").is_file():
        return None
    refs = json.loads((folder / "refs.json").read_text(encoding="utf-8"))
    info = refs.get(f"{name}.flac", {})
    rttm = folder / f"{name}.rttm"
    turns = read_rttm(rttm) if rttm.is_file() else ()
    return RealRecording(name, folder / f"{name}.flac", int(info.get("speakers", 1)), turns)


def read_rttm(path: Path) -> tuple[tuple[float, float, str], ...]:
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            start, length = float(parts[3]), float(parts[4])
            turns.append((start, start + length, parts[7]))
    return tuple(sorted(turns))


@lru_cache(maxsize=32)
def _read(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32", always_2d=False)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: expected 16 kHz audio, got {rate} Hz")
    audio.setflags(write=False)  # shared between callers through the cache
    return audio


def solo_spans(rec: RealRecording, speaker: str, *, min_length: float = 0.5) -> list[tuple[float, float]]:
    """Where ``speaker`` talks alone (nobody overlaps), pieces of at least ``min_length`` seconds."""
    others = [(s, e) for s, e, k in rec.turns if k != speaker]
    spans = []
    for start, end, who in rec.turns:
        if who != speaker:
            continue
        pieces = [(start, end)]
        for o_start, o_end in others:
            cut = []
            for s, e in pieces:
                if o_end <= s or o_start >= e:
                    cut.append((s, e))
                    continue
                if o_start > s:
                    cut.append((s, o_start))
                if o_end < e:
                    cut.append((o_end, e))
            pieces = cut
        spans += [(s, e) for s, e in pieces if e - s >= min_length]
    return sorted(spans)
