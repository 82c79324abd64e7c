"""The random-weight model must drive the real faster-whisper path like a trained one, structurally."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from whisperdesk.devtools.random_model import SHAPES, build_random_whisper_model, main

SR = 16000


def _noise(seconds: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(SR * seconds)) * 0.1).astype(np.float32)


@pytest.fixture(scope="module")
def model(whisper_model_dir: Path):  # -> faster_whisper.WhisperModel
    from faster_whisper import WhisperModel

    return WhisperModel(str(whisper_model_dir), device="cpu", compute_type="int8", cpu_threads=2)


def test_folder_has_every_file_faster_whisper_reads(whisper_model_dir: Path) -> None:
    names = {p.name for p in whisper_model_dir.iterdir()}
    assert {"model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"} <= names
    assert names & {"vocabulary.json", "vocabulary.txt"}
    config = json.loads((whisper_model_dir / "config.json").read_text(encoding="utf-8"))
    assert config["lang_ids"] == list(range(50259, 50259 + 99))
    assert config["suppress_ids_begin"] == [220, 50257]
    assert 50258 in config["suppress_ids"] and 50359 in config["suppress_ids"]
    assert config["alignment_heads"] and all(len(pair) == 2 for pair in config["alignment_heads"])
    prep = json.loads((whisper_model_dir / "preprocessor_config.json").read_text(encoding="utf-8"))
    assert prep["feature_size"] == SHAPES["micro"].n_mels


def test_vocabulary_has_whisper_layout(whisper_model_dir: Path) -> None:
    import tokenizers

    vocab = json.loads((whisper_model_dir / "vocabulary.json").read_text(encoding="utf-8"))
    assert len(vocab) == SHAPES["micro"].vocab_size == 51865
    assert len(set(vocab)) == len(vocab)
    assert vocab[50256] == ""  # CTranslate2 reads "multilingual" from this token
    assert vocab[50257:50260] == ["<|endoftext|>", "<|startoftranscript|>", "<|en|>"]
    assert vocab[50358:50364] == [
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
    ]
    assert vocab[50364] == "<|0.00|>" and vocab[-1] == "<|30.00|>"
    tok = tokenizers.Tokenizer.from_file(str(whisper_model_dir / "tokenizer.json"))
    for token_id in (50257, 50258, 50259, 50359, 50362, 50363):
        assert tok.token_to_id(vocab[token_id]) == token_id
    for token_id in (300, 7000, 50000):
        assert tok.id_to_token(token_id) == vocab[token_id]
    assert tok.decode(tok.encode(" hello, world").ids) == " hello, world"


def test_ctranslate2_sees_a_multilingual_whisper(whisper_model_dir: Path) -> None:
    import ctranslate2

    model = ctranslate2.models.Whisper(str(whisper_model_dir), device="cpu", compute_type="int8")
    assert model.is_multilingual
    assert model.n_mels == 80
    assert model.num_languages == 99


def test_noise_decodes_to_bounded_segments_without_fallback(model) -> None:
    duration = 10.0
    segments, info = model.transcribe(_noise(duration), vad_filter=False)
    segments = list(segments)
    assert info.language in model.supported_languages
    assert 0.0 < info.language_probability <= 1.0
    assert segments
    previous_end = 0.0
    for seg in segments:
        assert seg.text.strip()
        assert previous_end <= seg.start < seg.end <= duration
        assert seg.temperature == 0.0  # decoded greedily/beam at T=0, no fallback
        assert seg.avg_logprob > -1.0
        assert seg.compression_ratio < 2.4
        assert any(t >= 50364 for t in seg.tokens)  # timestamp tokens
        previous_end = seg.end
    window_tokens = sum(len(seg.tokens) for seg in segments)
    assert 3 <= window_tokens <= 60


def test_short_clip_still_gets_text_inside_the_audio(model) -> None:
    segments = list(model.transcribe(_noise(1.5), vad_filter=False, language="en")[0])
    assert segments
    assert all(seg.text.strip() and 0.0 <= seg.start < seg.end <= 1.5 for seg in segments)


def test_long_audio_advances_window_by_window(model) -> None:
    duration = 65.0
    segments = list(model.transcribe(_noise(duration), vad_filter=False, language="en")[0])
    assert len({seg.seek for seg in segments}) == 3  # one decode per 30-s window, no stalls
    ends = [seg.end for seg in segments]
    assert ends == sorted(ends) and ends[-1] <= duration
    assert ends[-1] > 30.0


def test_word_timestamps_spread_across_the_audio(model) -> None:
    duration = 10.0
    segments = list(model.transcribe(_noise(duration), vad_filter=False, word_timestamps=True)[0])
    words = [w for seg in segments for w in seg.words]
    assert len(words) >= 3
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(0.0 <= w.start <= w.end <= duration for w in words)
    assert words[-1].end > 0.25 * duration  # not all piled up at the start


def test_batched_pipeline_decodes_every_chunk(model) -> None:
    from faster_whisper import BatchedInferencePipeline

    audio = _noise(70.0, seed=2)
    clips = [{"start": 0.0, "end": 25.0}, {"start": 25.0, "end": 52.0}, {"start": 52.0, "end": 70.0}]
    pipeline = BatchedInferencePipeline(model)
    segments, info = pipeline.transcribe(audio, batch_size=4, vad_filter=False, clip_timestamps=clips)
    segments = list(segments)
    assert 0.0 < info.language_probability <= 1.0
    for clip in clips:
        inside = [s for s in segments if clip["start"] <= s.start < clip["end"]]
        assert inside, clip
        assert all(s.text.strip() and s.end <= clip["end"] for s in inside)


def test_language_detection_returns_a_code_and_probability(model) -> None:
    language, probability, all_probs = model.detect_language(_noise(5.0))
    assert language in model.supported_languages
    assert 0.0 < probability <= 1.0
    assert len(all_probs) == 99


def test_build_is_deterministic_per_seed(tmp_path: Path) -> None:
    a = build_random_whisper_model(tmp_path / "a", seed=3)
    b = build_random_whisper_model(tmp_path / "b", seed=3)
    c = build_random_whisper_model(tmp_path / "c", seed=4)
    assert (a / "model.bin").read_bytes() == (b / "model.bin").read_bytes()
    assert (a / "model.bin").read_bytes() != (c / "model.bin").read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()


def test_refuses_to_overwrite_and_names_the_problem(tmp_path: Path) -> None:
    target = tmp_path / "m"
    target.mkdir()
    (target / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        build_random_whisper_model(target)
    assert (target / "keep.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(ValueError, match="unknown shape 'huge'"):
        build_random_whisper_model(tmp_path / "x", shape="huge")
    assert not (tmp_path / "x").exists()


def test_shapes_cover_tests_and_benchmarks() -> None:
    assert SHAPES["tiny"].d_model == 384 and SHAPES["tiny"].encoder_layers == 4
    large = SHAPES["large-v3"]
    assert (large.d_model, large.decoder_layers, large.heads, large.n_mels) == (1280, 32, 20, 128)
    assert large.vocab_size == 51866 and large.default_quantization == "float16"


def test_cli_builds_and_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "cli"), "--shape", "micro", "--seed", "1"]) == 0
    assert (tmp_path / "cli" / "model.bin").is_file()
    assert "micro model written" in capsys.readouterr().out
    assert main([str(tmp_path / "cli")]) == 2
    assert "already exists" in capsys.readouterr().err
