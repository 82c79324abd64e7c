"""Synthetic conversations with known speaker turns, spoken by espeak-ng, for diarization tests and benchmarks.

Why synthetic: no permissively licensed multi-speaker recording with reference turns is small enough for the
repository. espeak-ng voice variants at chosen pitches give speakers that differ a lot (male/female, far
pitches) or little (two male variants a few pitch steps apart), and pink noise at a set SNR makes it hard.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
_TEXT = (
    "the meeting starts at nine and we will review the budget for next quarter before lunch "
    "please send me the report when you have a moment because the numbers changed again yesterday "
    "our team finished the design and the customer liked it but they want a cheaper version "
    "I think we should wait until Friday then decide who travels to the office in Berlin "
    "that sounds reasonable although the schedule is tight and the printer is broken again "
    "could you call the supplier about the delivery of the new chairs and the coffee machine"
)
WORDS = tuple(_TEXT.split())


@dataclass(frozen=True)
class Voice:
    variant: str  # espeak-ng voice, e.g. "en-us+m3"
    pitch: int  # 0..99
    speed: int = 165


DISTINCT = (
    Voice("en-us+m3", 25),
    Voice("en-gb+f2", 75),
    Voice("en-us+m7", 50),
    Voice("en+f4", 60),
    Voice("en-gb-scotland+m1", 35),
)
SIMILAR = (Voice("en-us+m1", 45), Voice("en-us+m3", 52))


@dataclass
class Conversation:
    audio: np.ndarray  # float32 mono, 16 kHz
    turns: list[tuple[float, float, int]]  # reference (start, end, speaker index)

    @property
    def speakers(self) -> int:
        return len({t[2] for t in self.turns})


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: Voice) -> np.ndarray:
    """One utterance at 16 kHz with its leading and trailing silence trimmed off."""
    cmd = ["espeak-ng", "--stdout", "-v", voice.variant, "-p", str(voice.pitch), "-s", str(voice.speed), text]
    wav = subprocess.run(cmd, check=True, capture_output=True, timeout=60).stdout
    data, rate = sf.read(io.BytesIO(wav), dtype="float32")
    if data.ndim > 1:
        data = data.mean(axis=1)
    positions = np.arange(0, len(data) * SAMPLE_RATE / rate) * rate / SAMPLE_RATE
    audio = np.interp(positions, np.arange(len(data)), data).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio


def pink_noise(samples: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n=samples)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def conversation(
    voices: tuple[Voice, ...],
    seconds: float,
    *,
    seed: int = 0,
    snr_db: float | None = None,
    min_turn: float = 1.0,
    max_turn: float = 3.0,
) -> Conversation:
    """Turns of ``min_turn``–``max_turn`` s by randomly alternating voices (never the same one twice in a
    row), 0.25–0.7 s apart, until ``seconds`` are filled; pink noise at ``snr_db`` over the speech if given."""
    rng = np.random.default_rng(seed)
    pieces: list[np.ndarray] = []
    turns: list[tuple[float, float, int]] = []
    clock, last = 0.3, -1
    pieces.append(np.zeros(int(clock * SAMPLE_RATE), dtype=np.float32))
    while clock < seconds:
        speaker = int(rng.choice([i for i in range(len(voices)) if i != last] or [0]))
        audio = _turn_audio(voices[speaker], rng, min_turn, max_turn)
        gap = float(rng.uniform(0.25, 0.7))
        pieces += [audio, np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32)]
        turns.append((clock, clock + len(audio) / SAMPLE_RATE, speaker))
        clock += len(audio) / SAMPLE_RATE + int(gap * SAMPLE_RATE) / SAMPLE_RATE
        last = speaker
    signal = np.concatenate(pieces)
    signal *= 0.5 / max(float(np.abs(signal).max()), 1e-9)
    if snr_db is not None:
        speech_power = float(np.mean(np.concatenate([signal[_span(t)] for t in turns]) ** 2))
        noise = pink_noise(len(signal), rng) * np.sqrt(speech_power / 10 ** (snr_db / 10))
        signal = signal + noise
    return Conversation(signal.astype(np.float32), turns)


def _span(turn: tuple[float, float, int]) -> slice:
    return slice(int(turn[0] * SAMPLE_RATE), int(turn[1] * SAMPLE_RATE))


def _turn_audio(voice: Voice, rng: np.random.Generator, min_turn: float, max_turn: float) -> np.ndarray:
    words = int(rng.integers(3, 8))
    for _ in range(6):
        start = int(rng.integers(0, len(WORDS) - words))
        audio = speak(" ".join(WORDS[start : start + words]), voice)
        if len(audio) >= min_turn * SAMPLE_RATE:
            return audio[: int(max_turn * SAMPLE_RATE)]
        words += 3
    return audio[: int(max_turn * SAMPLE_RATE)]
