"""Longer test conversations with known turns, cut from recordings of real people (not synthetic voices).

Why: the real recordings with reference turns are 30 s and two people each, too few to choose clustering
parameters on. Interleaving utterances of different real people (the LJ and Harvard readers, the seven
Picovoice readers, and the meeting and phone-call speakers cut out of their recordings by their RTTM turns)
gives 2–6-speaker conversations of minutes whose turns are known exactly. A caveat the reports must keep:
people from different recordings also differ by microphone and room, which makes them easier to tell apart
than people at one table; the pairs cut from one recording (MEE009/MEE012, speaker90/speaker91) do not
have that help, so every built set mixes such a pair in where it can.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from whisperdesk.devtools.real_speakers import SAMPLE_RATE, SINGLE, recording, solo_spans

# Voice name -> the (recording, reference speaker or None for a single-speaker file) pairs it is cut from.
VOICES: dict[str, tuple[tuple[str, str | None], ...]] = {
    "lj": (("lj_printing_a", None),),
    "harvard": (("osr_harvard_0034", None),),
    **{name.removeprefix("leopard_"): ((name, None),) for name in SINGLE if name.startswith("leopard_")},
    "MEE009": (("ami_dev00", "MEE009"), ("ami_dev01", "MEE009")),  # one person in both meeting excerpts
    "MEE012": (("ami_dev00", "MEE012"), ("ami_dev01", "MEE012")),
    "speaker90": (("pyannote_sample", "speaker90"),),
    "speaker91": (("pyannote_sample", "speaker91"),),
}

# The sets the clustering was measured on: (voices, seconds, seed). Same-recording pairs are in most.
SETS: dict[str, tuple[tuple[str, ...], float, int]] = {
    "2-meeting": (("MEE009", "MEE012"), 60, 1),
    "2-phone": (("speaker90", "speaker91"), 50, 2),
    "2-readers": (("lj", "harvard"), 90, 3),
    "3-mixed": (("MEE009", "MEE012", "lj"), 90, 4),
    "3-phone-lang": (("speaker90", "speaker91", "de"), 75, 5),
    "3-readers": (("harvard", "en", "fr"), 60, 9),
    "4-mixed": (("MEE009", "MEE012", "harvard", "es"), 120, 6),
    "4-languages": (("de", "it", "ja", "pt"), 60, 10),
    "5-mixed": (("speaker90", "speaker91", "lj", "fr", "it"), 150, 7),
    "6-mixed": (("MEE009", "MEE012", "speaker90", "lj", "harvard", "pt"), 180, 8),
}


@dataclass
class BuiltConversation:
    name: str
    audio: np.ndarray  # float32 mono 16 kHz
    turns: list[tuple[float, float, int]]  # reference (start, end, speaker index), non-overlapping
    voices: tuple[str, ...]

    @property
    def speakers(self) -> int:
        return len({t[2] for t in self.turns})


def available() -> bool:
    return all(recording(rec) is not None for sources in VOICES.values() for rec, _ in sources)


@lru_cache(maxsize=32)
def utterances(voice: str) -> tuple[np.ndarray, ...]:
    """The voice's speech cut into pieces of 1–5 s at its own pauses (VAD), where only it speaks."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    vad = VadOptions(min_silence_duration_ms=250, speech_pad_ms=30, min_speech_duration_ms=300)
    pieces: list[np.ndarray] = []
    for name, speaker in VOICES[voice]:
        rec = recording(name)
        if rec is None:
            raise FileNotFoundError(f"{name}: the real recordings are not beside the checkout")
        audio = rec.audio()
        spans = solo_spans(rec, speaker, min_length=0.8) if speaker else [(0.0, len(audio) / SAMPLE_RATE)]
        for start, end in spans:
            part = np.ascontiguousarray(audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)])
            for stamp in get_speech_timestamps(part, vad):
                speech = part[stamp["start"] : stamp["end"]]
                step = 5 * SAMPLE_RATE
                for at in range(0, len(speech), step):
                    piece = speech[at : at + step]
                    if len(piece) >= 0.7 * SAMPLE_RATE:
                        pieces.append(np.array(piece, dtype=np.float32))
    return tuple(pieces)


def build(voices: tuple[str, ...], seconds: float, *, seed: int = 0, name: str = "") -> BuiltConversation:
    """Alternate the voices at random (never one twice in a row while another has speech left), each turn
    one to three of its utterances in order, 0.2–0.9 s apart, until ``seconds`` are filled or the voices'
    speech runs out; each voice's level is evened out. No utterance is used twice: a repeated recording
    would make one voice look far more consistent than a person is."""
    rng = np.random.default_rng(seed)
    index = {v: i for i, v in enumerate(voices)}
    pools = {v: list(utterances(v)) for v in voices}
    pieces = [np.zeros(int(0.5 * SAMPLE_RATE), dtype=np.float32)]
    turns: list[tuple[float, float, int]] = []
    clock, last = 0.5, ""
    while clock < seconds and any(pools.values()):
        left = [v for v in voices if pools[v]]
        voice = str(rng.choice([v for v in left if v != last] or left))
        parts = []
        for _ in range(min(int(rng.integers(1, 4)), len(pools[voice]))):
            parts += [pools[voice].pop(0), np.zeros(int(0.15 * SAMPLE_RATE), dtype=np.float32)]
        speech = np.concatenate(parts[:-1])
        speech = speech * (0.1 / max(float(np.sqrt(np.mean(speech**2))), 1e-6))
        gap = np.zeros(int(rng.uniform(0.2, 0.9) * SAMPLE_RATE), dtype=np.float32)
        turns.append((clock, clock + len(speech) / SAMPLE_RATE, index[voice]))
        pieces += [speech.astype(np.float32), gap]
        clock += (len(speech) + len(gap)) / SAMPLE_RATE
        last = voice
    audio = np.concatenate(pieces)
    audio *= 0.7 / max(float(np.abs(audio).max()), 1e-9)
    return BuiltConversation(name, audio.astype(np.float32), turns, voices)


def built_set(name: str) -> BuiltConversation:
    voices, seconds, seed = SETS[name]
    return build(voices, seconds, seed=seed, name=name)
