"""The raw CTranslate2 floor: encode + generate over the app's windows with nothing around them.

The same windows the app decodes (``whisperdesk.core.batching.windows.plan_windows`` at the same options), log-mel
computed up front and not timed, then only ``encode`` and ``generate`` are timed at each batch size tried,
the windows dealt evenly over the model's CTranslate2 workers. The best encode plus the best generate is
the floor: no file decoding, no VAD, no scheduling, no segment building. Prompts are the plain first-window
prompt in English without previous text, so the floor's work is close to, not equal to, the app's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whisperdesk.core.settings import DecodeOptions

_SR = 16000
_MAX_LENGTH = 448


@dataclass(frozen=True)
class Floor:
    seconds: float
    audio_seconds: float
    windows: int
    detail: str
    texts: dict[Path, str]  # each file's windows decoded and joined, for WER


def app_windows(extractor: Any, files: Sequence[Path], options: DecodeOptions) -> tuple[list, float]:
    """[(path, features)] for every window the app would decode, and the seconds of audio."""
    from whisperdesk.core.audio import decode
    from whisperdesk.core.batching.windows import plan_windows, window_features

    windows = []
    audio = 0.0
    for path in files:
        samples = decode(path)
        audio += len(samples) / _SR
        _plan, pieces = plan_windows(samples, options)
        windows += [(path, window_features(extractor, piece)) for piece in pieces]
    return windows, audio


def generate_kwargs(model: Any, tokenizer: Any, options: DecodeOptions) -> dict[str, Any]:
    """faster-whisper's defaults for the first temperature: beam search, blank and non-speech tokens
    suppressed, the first timestamp within 1 s."""
    from faster_whisper.transcribe import get_suppressed_tokens

    max_length = _MAX_LENGTH
    if options.max_new_tokens is not None:
        max_length = min(_MAX_LENGTH, 4 + options.max_new_tokens)
    return {
        "beam_size": options.beam_size,
        "patience": 1.0,
        "length_penalty": 1.0,
        "max_length": max_length,
        "suppress_blank": True,
        "suppress_tokens": list(get_suppressed_tokens(tokenizer, [-1])),
        "max_initial_timestamp_index": round(1.0 / model.time_precision),
    }


def measure_floor(
    models: Sequence[tuple[Any, int, str]],
    files: Sequence[Path],
    options: DecodeOptions,
    *,
    encode_sizes: Sequence[int] = (1, 4, 8),
    decode_sizes: Sequence[int] = (8, 32),
) -> Floor:
    """For each (model, CTranslate2 workers, layout name) the best batch sizes; the fastest layout wins."""
    from faster_whisper.tokenizer import Tokenizer

    first = models[0][0]
    windows, audio = app_windows(first.feature_extractor, files, options)
    feats = np.stack([f for _p, f in windows])
    tokenizer = Tokenizer(first.hf_tokenizer, first.model.is_multilingual, task="transcribe", language="en")
    prompt = first.get_prompt(tokenizer, previous_tokens=[], without_timestamps=False)
    kwargs = generate_kwargs(first, tokenizer, options)
    best: tuple[float, str, list[list[int]]] | None = None
    details = []
    for model, workers, layout in models:
        seconds, detail, tokens = _best_of(model, workers, feats, prompt, kwargs, encode_sizes, decode_sizes)
        details.append(f"{layout}: {detail}")
        if best is None or seconds < best[0]:
            best = (seconds, layout, tokens)
    assert best is not None
    texts: dict[Path, list[str]] = {}
    for (path, _f), ids in zip(windows, best[2], strict=True):
        texts.setdefault(path, []).append(tokenizer.decode([t for t in ids if t < tokenizer.eot]))
    return Floor(
        best[0],
        audio,
        len(windows),
        f"best {best[1]}; " + "; ".join(details),
        {p: " ".join(t) for p, t in texts.items()},
    )


def _best_of(
    model: Any,
    workers: int,
    feats: np.ndarray,
    prompt: list[int],
    kwargs: dict[str, Any],
    encode_sizes: Sequence[int],
    decode_sizes: Sequence[int],
) -> tuple[float, str, list[list[int]]]:
    """Best encode + generate time for one model layout; returns (seconds, what was best, tokens by window)."""
    import ctranslate2

    n = len(feats)
    lanes = [list(range(i, n, workers)) for i in range(workers)]  # windows dealt out like cards

    def encode_lane(lane: list[int], size: int, out: dict[int, np.ndarray]) -> None:
        for i in range(0, len(lane), size):
            idx = lane[i : i + size]
            result = model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[idx])))
            rows = np.asarray(result)
            for k, j in enumerate(idx):
                out[j] = rows[k].copy()

    def generate_lane(
        lane: list[int], size: int, encoded: dict, out: dict, barrier: threading.Barrier
    ) -> None:
        batches = [lane[i : i + size] for i in range(0, len(lane), size)]
        inputs = [ctranslate2.StorageView.from_array(np.stack([encoded[j] for j in b])) for b in batches]
        barrier.wait()  # inputs are built; only the generate calls are timed
        for b, enc in zip(batches, inputs, strict=True):
            results = model.model.generate(enc, [prompt] * len(b), **kwargs)
            for j, r in zip(b, results, strict=True):
                out[j] = r.sequences_ids[0]

    def timed(target: Callable[..., None], *args: Any, barrier: threading.Barrier | None = None) -> float:
        threads = [threading.Thread(target=target, args=(lane, *args)) for lane in lanes]
        for t in threads:
            t.start()
        if barrier is not None:
            barrier.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        return time.perf_counter() - began

    encode_times: dict[int, float] = {}
    encoded: dict[int, np.ndarray] = {}
    for size in encode_sizes:
        encoded = {}
        encode_times[size] = timed(encode_lane, size, encoded)
    generate_times: dict[int, float] = {}
    tokens: dict[int, list[list[int]]] = {}
    for size in decode_sizes:
        out: dict[int, list[int]] = {}
        barrier = threading.Barrier(workers + 1)
        generate_times[size] = timed(generate_lane, size, encoded, out, barrier, barrier=barrier)
        tokens[size] = [out[j] for j in range(n)]
    enc = min(encode_times, key=encode_times.__getitem__)
    gen = min(generate_times, key=generate_times.__getitem__)
    detail = (
        f"encode batch {enc} ({', '.join(f'{k}: {v:.1f} s' for k, v in encode_times.items())}), "
        f"generate batch {gen} ({', '.join(f'{k}: {v:.1f} s' for k, v in generate_times.items())})"
    )
    return encode_times[enc] + generate_times[gen], detail, tokens[gen]
