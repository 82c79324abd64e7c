"""The scheduler's CPU stage for one file: speech regions, ≤ 30-s windows and their log-mel features.

It reuses faster-whisper's own pieces (Silero VAD ``get_speech_timestamps``, ``collect_chunks``, the model's
``FeatureExtractor`` and ``pad_or_trim``) so a window here is exactly the window faster-whisper's batched
pipeline would decode; only *when* and *in which batch* it is decoded changes. The plan kept per job holds no
audio (only sample offsets), so a long queue costs a few bytes per file until its features are computed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from whisperdesk.core.settings import DecodeOptions

SAMPLE_RATE = 16000
WINDOW_SECONDS = 30
N_FRAMES = 3000  # log-mel frames per 30-s window, what the encoder expects


@dataclass(frozen=True)
class WindowSpan:
    """One window's place in the file; ``offset``/``duration`` are in the speech-only timeline under VAD."""

    index: int
    offset: float
    duration: float
    end_time: float  # where the window ends in the original file, for progress


@dataclass(frozen=True)
class WindowPlan:
    duration: float
    spans: tuple[WindowSpan, ...]
    speech_chunks: tuple[dict[str, int], ...] | None  # VAD regions in samples; None when VAD is off

    def timestamp_map(self) -> Any:
        """faster-whisper's map from the speech-only timeline back to the file (None without VAD)."""
        if not self.speech_chunks:
            return None
        from faster_whisper.vad import SpeechTimestampsMap

        return SpeechTimestampsMap(list(self.speech_chunks), SAMPLE_RATE)


def vad_options(options: DecodeOptions) -> Any:
    """The batched pipeline's VAD settings: speech regions at most one window long, the user's silence gap."""
    from faster_whisper.vad import VadOptions

    return VadOptions(
        min_silence_duration_ms=options.vad_min_silence_ms, max_speech_duration_s=WINDOW_SECONDS
    )


def plan_windows(audio: np.ndarray, options: DecodeOptions) -> tuple[WindowPlan, list[np.ndarray]]:
    """Split ``audio`` into windows; returns the plan and each window's samples (copies under VAD, views without)."""
    duration = float(len(audio)) / SAMPLE_RATE
    if len(audio) == 0:
        return WindowPlan(duration, (), None), []
    if not options.vad:
        step = WINDOW_SECONDS * SAMPLE_RATE
        pieces = [audio[start : start + step] for start in range(0, len(audio), step)]
        spans = tuple(
            WindowSpan(
                i, i * float(WINDOW_SECONDS), len(p) / SAMPLE_RATE, i * WINDOW_SECONDS + len(p) / SAMPLE_RATE
            )
            for i, p in enumerate(pieces)
        )
        return WindowPlan(duration, spans, None), pieces

    from faster_whisper.vad import collect_chunks, get_speech_timestamps

    chunks = get_speech_timestamps(audio, vad_options(options), sampling_rate=SAMPLE_RATE)
    if not chunks:
        return WindowPlan(duration, (), ()), []
    raw_pieces, metadata = collect_chunks(
        audio, chunks, sampling_rate=SAMPLE_RATE, max_duration=WINDOW_SECONDS
    )
    plan = WindowPlan(duration, (), tuple(dict(c) for c in chunks))
    ts_map = plan.timestamp_map()
    spans: list[WindowSpan] = []
    pieces: list[np.ndarray] = []
    for piece, meta in zip(raw_pieces, metadata, strict=True):
        if len(piece) == 0:  # collect_chunks can emit an empty leading chunk; nothing to decode there
            continue
        offset, length = float(meta["offset"]), float(meta["duration"])
        end = float(ts_map.get_original_time(offset + length, is_end=True))
        spans.append(WindowSpan(len(spans), offset, length, min(end, duration)))
        pieces.append(piece)
    return WindowPlan(duration, tuple(spans), plan.speech_chunks), pieces


def window_features(feature_extractor: Any, samples: np.ndarray) -> np.ndarray:
    """Log-mel features of one window, padded to 30 s: what ``BatchedInferencePipeline`` feeds the encoder."""
    from faster_whisper.audio import pad_or_trim

    features = feature_extractor(samples)[..., :-1]
    return np.ascontiguousarray(pad_or_trim(features, N_FRAMES), dtype=np.float32)


def iter_features(feature_extractor: Any, pieces: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Features window by window, dropping each window's samples as soon as they are used (bounded memory)."""
    while pieces:
        yield window_features(feature_extractor, pieces.pop(0))
