"""No invented lines (issue 17, point 8): silence and next-to-no speech give no text on the scheduler's path.

Real weights: base on the real audiobook recording (skipped without ``../shared``) and on generated noise
and music; tiny.en's tokenizer for the sequential path's "no voice activity" rule on one window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from whisperdesk.core.batching import decode as dec
from whisperdesk.core.batching.layout import ModelHandle, load_for_batching
from whisperdesk.core.batching.scheduler import BatchInfo, BatchScheduler
from whisperdesk.core.settings import DecodeOptions
from whisperdesk.devtools.synth_audio import noise

SR = 16000


def music(seconds: float, seed: int = 0) -> np.ndarray:
    """A random melody of plucked notes with harmonics over a bass line: tonal, rhythmic, not speech."""
    rng = np.random.default_rng(seed)
    scale = (261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3)
    t = np.arange(int(0.25 * SR)) / SR
    envelope = np.exp(-t * 6)
    notes = []
    for _ in range(int(seconds / 0.25)):
        f = scale[int(rng.integers(len(scale)))]
        note = sum((0.3 / k) * np.sin(2 * np.pi * f * k * t) for k in range(1, 5)) * envelope
        notes.append(note + 0.2 * np.sin(2 * np.pi * (f / 4) * t))
    return np.concatenate(notes).astype(np.float32)


@pytest.fixture(scope="module")
def base_handle(base_model: Path) -> ModelHandle:
    """base at the app's default batch size, in the layout the app loads for batching."""
    return ModelHandle(load_for_batching(str(base_model), "cpu", "int8"), "cpu", "int8", "base", 8)


def test_a_window_the_model_hears_as_silence_gives_no_segment(tiny_en_model: Path) -> None:
    """The sequential path's rule: no-speech probability over 0.6 with a mean log-probability at or below
    -1 drops the window; the same tokens with a confident score are kept."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(tiny_en_model), device="cpu", compute_type="int8", cpu_threads=1)
    tokenizer = ModelHandle(model, "cpu", "int8", "tiny.en", 1).tokenizer("transcribe", None)
    begin = tokenizer.timestamp_begin
    tokens = [begin, *tokenizer.encode(" Thank you very much."), begin + 11, tokenizer.eot]
    invented = dec.Decoded(tokens, avg_logprob=-1.36, no_speech_prob=0.73, temperature=0.0)
    heard = dec.Decoded(tokens, avg_logprob=-0.3, no_speech_prob=0.73, temperature=0.0)
    assert dec.is_silence(invented) and not dec.is_silence(heard)
    assert dec.split_window(model, tokenizer, invented, 114.26, 0.23).items == []
    kept = dec.split_window(model, tokenizer, heard, 100.0, 5.0).items
    assert [item["text"] for item in kept] == [" Thank you very much."]


@pytest.mark.slow
def test_the_audiobook_ends_with_its_last_word(base_handle: ModelHandle) -> None:
    """lj_printing_a.flac once ended with `114.26–114.48 "Thank you very much."` on the silence after the
    last word ("therefore"); faster-whisper's sequential and batched paths add nothing there."""
    from whisperdesk.devtools.speech_corpus import shared_data

    data = shared_data()
    path = data / "real-speech" / "lj_printing_a.flac" if data is not None else None
    if path is None or not path.is_file():
        pytest.skip("../shared/data/real-speech is not here (optional real recordings)")
    batches: list[BatchInfo] = []
    scheduler = BatchScheduler(on_batch=batches.append)
    try:
        transcript = scheduler.transcribe(base_handle, path, DecodeOptions())
    finally:
        scheduler.close()
    texts = [s.text for s in transcript.segments]
    assert not any("thank you" in t.lower() for t in texts), texts[-3:]
    assert texts[-1].strip().rstrip(".,").lower().endswith("therefore"), texts[-3:]
    assert transcript.segments[-1].end <= 114.3


@pytest.mark.slow
def test_noise_and_music_give_no_text_on_the_default_path(base_handle: ModelHandle) -> None:
    """Two minutes of noise and music at the app's defaults: no text at all, and no window decoded."""
    batches: list[BatchInfo] = []
    scheduler = BatchScheduler(on_batch=batches.append)
    try:
        for name, audio in (("noise", noise(60.0, amplitude=0.3, seed=3)), ("music", music(60.0))):
            transcript = scheduler.transcribe(base_handle, name, DecodeOptions(), audio=audio)
            assert [s.text for s in transcript.segments] == [], name
    finally:
        scheduler.close()
    assert batches == []


@pytest.mark.slow
def test_noise_decoded_without_vad_gives_no_text(base_handle: ModelHandle) -> None:
    """With VAD off the window is decoded; what base hears in white noise is dropped as silence."""
    decoded: list[Any] = []
    scheduler = BatchScheduler(on_batch=decoded.append)
    try:
        transcript = scheduler.transcribe(
            base_handle, "noise", DecodeOptions(vad=False), audio=noise(30.0, amplitude=0.3, seed=3)
        )
    finally:
        scheduler.close()
    assert len(decoded) == 1
    assert [s.text for s in transcript.segments] == []
