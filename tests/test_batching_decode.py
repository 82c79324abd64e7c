"""The pure decoding steps of the batch scheduler, on real Whisper weights and espeak-ng speech."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from whisperdesk.core.batching import decode as dec
from whisperdesk.core.batching.layout import ModelHandle
from whisperdesk.core.batching.scheduler import default_decode
from whisperdesk.core.batching.windows import plan_windows, window_features
from whisperdesk.core.settings import DecodeOptions
from whisperdesk.devtools.speech_corpus import CorpusFile, Utterance, speak

NO_VAD = DecodeOptions(vad=False, temperature=(0.0,))


@pytest.fixture(scope="module")
def tiny(tiny_en_model: Path) -> ModelHandle:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(tiny_en_model), device="cpu", compute_type="int8", cpu_threads=2)
    return ModelHandle(model, "cpu", "int8", "tiny.en", 8)


def _decode(handle: ModelHandle, features: np.ndarray, options: DecodeOptions = NO_VAD) -> dec.Decoded:
    model = handle.model
    tokenizer = handle.tokenizer("transcribe", "en")
    prompts = dec.prompts_for(handle, [tokenizer], options.initial_prompt)
    kwargs = dec.generate_kwargs(model, tokenizer, options, len(prompts[0]))
    results = model.model.generate(model.encode(features[None]), prompts, **kwargs)
    return dec.read_results(results, options.temperature[0])[0]


@pytest.fixture(scope="module")
def fixed_windows(tiny: ModelHandle, speech_corpus: CorpusFile) -> list[tuple[Any, np.ndarray]]:
    """The corpus cut in fixed 30-s windows: sentences run across the cuts."""
    plan, pieces = plan_windows(default_decode(speech_corpus.path), NO_VAD)
    return [
        (span, window_features(tiny.model.feature_extractor, p))
        for span, p in zip(plan.spans, pieces, strict=True)
    ]


def _text(items: list[dict[str, Any]]) -> str:
    return " ".join(item["text"] for item in items).lower()


def test_a_window_cut_mid_sentence_reports_where_its_unfinished_tail_starts(
    tiny: ModelHandle, fixed_windows: list[tuple[Any, np.ndarray]], speech_corpus: CorpusFile
) -> None:
    span, features = fixed_windows[0]
    cut = [s for s in speech_corpus.sentences if s.start < span.end_time < s.end]
    assert cut, "the corpus must put a sentence across the first 30-s boundary"
    out = _decode(tiny, features)
    text = dec.split_window(tiny.model, tiny.tokenizer("transcribe", "en"), out, span.offset, span.duration)
    assert text.resume is not None and 0.0 < text.resume < span.duration
    assert all(item["end"] <= span.offset + text.resume + 1e-6 for item in text.items)
    # Decoding again from the resume point finds the sentence the first pass left out.
    tail = dec.tail_features(features, text.resume, span.duration, tiny.model.frames_per_second)
    again = _decode(tiny, tail)
    follow = dec.split_window(
        tiny.model,
        tiny.tokenizer("transcribe", "en"),
        again,
        span.offset + text.resume,
        span.duration - text.resume,
    )
    first_words = cut[0].text.lower().split()[:3]
    assert " ".join(first_words) not in _text(text.items)
    assert " ".join(first_words) in _text(follow.items)
    assert all(
        span.offset + text.resume <= i["start"] <= i["end"] <= span.offset + span.duration
        for i in follow.items
    )


def test_keeping_the_undecoded_tail_would_not_recover_that_sentence(
    tiny: ModelHandle, fixed_windows: list[tuple[Any, np.ndarray]], speech_corpus: CorpusFile
) -> None:
    """Why the scheduler decodes tails again: the first pass often has no text after its last timestamp."""
    span, features = fixed_windows[0]
    cut = next(s for s in speech_corpus.sentences if s.start < span.end_time < s.end)
    out = _decode(tiny, features)
    kept = dec.split_window(
        tiny.model, tiny.tokenizer("transcribe", "en"), out, span.offset, span.duration, keep_tail=True
    )
    assert kept.resume is None
    assert " ".join(cut.text.lower().split()[:3]) not in _text(kept.items)


def test_the_last_window_of_a_file_ends_complete(
    tiny: ModelHandle, fixed_windows: list[tuple[Any, np.ndarray]]
) -> None:
    span, features = fixed_windows[-1]
    text = dec.split_window(
        tiny.model, tiny.tokenizer("transcribe", "en"), _decode(tiny, features), span.offset, span.duration
    )
    assert text.resume is None and text.items
    starts = [i["start"] for i in text.items]
    assert starts == sorted(starts) and text.items[-1]["end"] <= span.offset + span.duration


def test_tail_features_are_the_window_frames_from_the_resume_point() -> None:
    features = np.arange(80 * 3000, dtype=np.float32).reshape(80, 3000)
    tail = dec.tail_features(features, resume=12.5, duration=20.0, frames_per_second=100)
    assert tail.shape == (80, 3000) and tail.dtype == np.float32
    np.testing.assert_array_equal(tail[:, :750], features[:, 1250:2000])
    assert not tail[:, 750:].any()  # padded like the sequential path pads its last window


def test_fallback_rule_matches_the_sequential_path() -> None:
    fine = dec.Decoded([1, 2, 3], avg_logprob=-0.3, no_speech_prob=0.1, temperature=0.0)
    unlikely = dec.Decoded([1, 2, 3], avg_logprob=-1.5, no_speech_prob=0.1, temperature=0.0)
    silence = dec.Decoded([1, 2, 3], avg_logprob=-1.5, no_speech_prob=0.9, temperature=0.0)
    assert not dec.needs_fallback("a perfectly ordinary sentence", fine)
    assert dec.needs_fallback("a perfectly ordinary sentence", unlikely)
    assert dec.needs_fallback("the the the the the the the the the the the the the the the", fine)
    assert not dec.needs_fallback("anything", silence)


def test_fallback_decodes_again_only_the_window_that_needs_it(
    tiny: ModelHandle, fixed_windows: list[tuple[Any, np.ndarray]]
) -> None:
    model = tiny.model
    tokenizer = tiny.tokenizer("transcribe", "en")
    options = DecodeOptions(vad=False, temperature=(0.0, 0.4, 0.8))
    features = np.stack([fixed_windows[0][1], fixed_windows[1][1]])
    encoder_output = model.encode(features)
    prompts = dec.prompts_for(tiny, [tokenizer, tokenizer], None)
    kwargs = dec.generate_kwargs(model, tokenizer, options, len(prompts[0]))
    first = dec.read_results(model.model.generate(encoder_output, prompts, **kwargs), 0.0)
    assert not any(dec.needs_fallback(tokenizer.decode(d.tokens), d) for d in first)
    # A first pass stuck repeating itself (what Whisper does on hard audio) is retried at a higher temperature.
    stuck = tokenizer.encode(" the" * 60)
    first[1] = dec.Decoded(stuck, -0.2, 0.01, 0.0)
    out = dec.fallback(model, options, encoder_output, prompts, [tokenizer] * 2, first, dec.StorageHolder())
    assert out[0] is first[0]
    assert out[1].temperature > 0.0 and out[1].tokens != stuck
    assert len(set(tokenizer.decode(out[1].tokens).split())) > 5


def test_languages_are_read_off_the_batch_encoder_output(base_model: Path, tmp_path: Path) -> None:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(base_model), device="cpu", compute_type="int8", cpu_threads=2)
    english = speak(Utterance("The train to the airport leaves every twenty minutes.", "en-us+m3", 160, 50))
    german = speak(Utterance("Der Zug zum Flughafen fährt alle zwanzig Minuten ab.", "de+f2", 150, 50))
    features = np.stack([window_features(model.feature_extractor, a) for a in (english, german)])
    found = [dec.vote([row]) for row in dec.language_distributions(model, model.encode(features))]
    assert [code for code, _p in found] == ["en", "de"]
    assert all(0.5 < p <= 1.0 for _c, p in found)


def test_segments_map_back_to_file_time_and_stay_inside_the_file() -> None:
    """Under VAD a window's times are in the speech-only timeline; to_segments puts them back in the file."""
    chunks = [{"start": 16000 * 5, "end": 16000 * 15}, {"start": 16000 * 40, "end": 16000 * 50}]
    items = [
        {
            "text": " first",
            "tokens": [1],
            "start": 1.0,
            "end": 4.0,
            "seek": 0,
            "avg_logprob": -0.1,
            "no_speech_prob": 0.0,
            "compression_ratio": 1.0,
        },
        {
            "text": " second",
            "tokens": [2],
            "start": 12.0,
            "end": 19.5,
            "seek": 0,
            "avg_logprob": -0.1,
            "no_speech_prob": 0.0,
            "compression_ratio": 1.0,
        },
    ]
    segments = dec.to_segments(items, 0.0, 20.0, words=False, speech_chunks=chunks, duration=52.0)
    assert [(s.start, s.end) for s in segments] == [(6.0, 9.0), (42.0, 49.5)]


def test_unsure_windows_vote_on_the_language_by_mean_probability() -> None:
    """memo-007 of the benchmark corpus on base: Swahili 0.48 on its first window, English 0.44 on its second."""
    first = {"sw": 0.48, "en": 0.34, "la": 0.04}
    second = {"en": 0.44, "sw": 0.22, "ja": 0.06}
    assert dec.vote([first]) == ("sw", 0.48)
    language, probability = dec.vote([first, second])
    assert language == "en" and probability == pytest.approx(0.39)


def test_a_segment_starting_just_before_a_vad_join_starts_after_the_removed_silence() -> None:
    """Chunks of 5 s and 10 s of speech joined in the speech-only timeline at 5.0 s."""
    chunks = [{"start": 16000 * 1, "end": 16000 * 6}, {"start": 16000 * 36, "end": 16000 * 46}]
    starts = dec.snap_starts([0.0, 4.98, 4.5, 6.0], [4.98, 9.0, 4.9, 8.0], chunks)
    assert starts[0] == 0.0  # nowhere near the join
    assert 5.0 < starts[1] < 5.001  # 20 ms before the join, ending after it: moved onto the later chunk
    assert starts[2] == 4.5  # ends before the join: a segment of the earlier chunk
    assert starts[3] == 6.0
    assert dec.snap_starts([4.98], [5.00005], chunks) == [4.98]  # would end before its new start
    # where VAD split long speech (or shared a short pause's padding) nothing was removed: no snapping
    split = [{"start": 0, "end": 16000 * 30}, {"start": 16000 * 30, "end": 16000 * 50}]
    assert dec.snap_starts([29.7], [33.0], split) == [29.7]
    items = [
        {
            "text": " the second sentence",
            "tokens": [1],
            "start": 4.98,
            "end": 9.0,
            "seek": 0,
            "avg_logprob": -0.1,
            "no_speech_prob": 0.0,
            "compression_ratio": 1.0,
        }
    ]
    (segment,) = dec.to_segments(items, 0.0, 15.0, words=False, speech_chunks=chunks, duration=50.0)
    assert segment.start == pytest.approx(36.0, abs=0.01) and segment.end == pytest.approx(40.0, abs=0.01)
