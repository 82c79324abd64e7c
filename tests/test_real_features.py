"""Whisper's features on real weights, through `whisperdesk transcribe` at the app's default batch size.

Language detection and translation need the multilingual base model; the rest runs on tiny.en. Speech is
espeak-ng's, with known text, so each test can tell a working feature from a broken one: the name the
prompt spells is one the model spells differently without it, and the stretch VAD must drop is 30 s of
noise and silence between two sentences it must keep.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from whisperdesk.cli import main
from whisperdesk.devtools.synth_audio import noise

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (the CI installs it)"
)

ENGLISH = "The weather is nice today and the children are playing in the garden."
GERMAN = "Ich habe heute keine Zeit. Das Wetter ist schön und die Sonne scheint."
NAME = "Please send the report to Jaxon before the meeting tomorrow."
GAP = 30.0  # seconds of noise then silence between two sentences


def _speak(text: str, voice: str, folder: Path) -> tuple[np.ndarray, int]:
    wav = folder / "piece.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
    samples, rate = soundfile.read(str(wav), dtype="float32")
    return samples, int(rate)


def _write(path: Path, samples: np.ndarray, rate: int) -> Path:
    soundfile.write(str(path), samples, rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("speech")
    files: dict[str, Any] = {}
    for name, text, voice in (("en", ENGLISH, "en-us"), ("de", GERMAN, "de"), ("name", NAME, "en-us")):
        files[name] = _write(folder / f"{name}.wav", *_speak(text, voice, folder))
    first, rate = _speak("The first sentence comes before the long pause.", "en-us", folder)
    second, _ = _speak("The second sentence comes after the long pause.", "en-us", folder)
    lead = np.zeros(rate // 2, dtype=np.float32)
    gap = np.concatenate([noise(GAP / 2, sr=rate, amplitude=0.05, seed=4), np.zeros(int(GAP / 2 * rate))])
    files["vad"] = _write(folder / "vad.wav", np.concatenate([lead, first, gap, second]), rate)
    files["gap_start"] = (len(lead) + len(first)) / rate
    return files


def _transcribe(model: Path, source: Path, out: Path, *extra: str) -> dict[str, Any]:
    """`whisperdesk transcribe` at the app's defaults (batch size 8) into JSON; returns it parsed."""
    args = ["transcribe", "--model", str(model), "--device", "cpu", "--format", "json"]
    code = main([*args, "--output-dir", str(out), "--overwrite", *extra, str(source)])
    assert code == 0, f"transcribe {source.name} {extra} failed"
    return json.loads((out / f"{source.stem}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def base_runs(base_model: Path, speech: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("base-out")
    return {
        "en": _transcribe(base_model, speech["en"], out / "en"),
        "de": _transcribe(base_model, speech["de"], out / "de"),
        "translate": _transcribe(base_model, speech["de"], out / "translate", "--task", "translate"),
    }


def _words(data: dict[str, Any]) -> str:
    return data["text"].lower()


def test_language_is_detected_english_and_german(base_runs: dict) -> None:  # type: ignore[type-arg]
    assert base_runs["en"]["language"] == "en"
    assert base_runs["de"]["language"] == "de"
    assert "garden" in _words(base_runs["en"])
    assert "zeit" in _words(base_runs["de"]) and "time" not in _words(base_runs["de"])


def test_translate_turns_german_speech_into_english_words(base_runs: dict) -> None:  # type: ignore[type-arg]
    translated = _words(base_runs["translate"])
    assert base_runs["translate"]["task"] == "translate"
    assert "time" in translated and "weather" in translated, translated
    assert "zeit" not in translated and "wetter" not in translated


def test_word_timestamps_lie_inside_their_segment(
    tiny_en_model: Path, speech: dict[str, Any], tmp_path: Path
) -> None:
    data = _transcribe(tiny_en_model, speech["en"], tmp_path, "--word-timestamps")
    segments = data["segments"]
    assert segments and all(seg.get("words") for seg in segments)
    for seg in segments:
        words = seg["words"]
        for w in words:
            assert seg["start"] - 0.01 <= w["start"] <= w["end"] <= seg["end"] + 0.01, (seg, w)
        starts = [w["start"] for w in words]
        assert starts == sorted(starts)
        assert "".join(w["word"] for w in words).split() == seg["text"].split()
    assert "garden" in _words(data)


def test_initial_prompt_decides_how_a_name_is_spelled(
    tiny_en_model: Path, speech: dict[str, Any], tmp_path: Path
) -> None:
    plain = _transcribe(tiny_en_model, speech["name"], tmp_path / "plain")
    prompted = _transcribe(
        tiny_en_model, speech["name"], tmp_path / "prompted", "--initial-prompt", "Meeting notes for Jaxon."
    )
    assert "jaxon" not in _words(plain)  # without the prompt the model writes the name another way
    assert "jaxon" in _words(prompted), prompted["text"]
    assert "report" in _words(prompted) and "meeting" in _words(prompted)


def _inside_gap(items: list[dict[str, Any]], start: float) -> list[dict[str, Any]]:
    return [i for i in items if i["end"] > start + 1.0 and i["start"] < start + GAP - 1.0]


def test_vad_keeps_no_text_from_30_s_of_noise_and_silence(
    tiny_en_model: Path, speech: dict[str, Any], tmp_path: Path
) -> None:
    """Word timestamps place every recognised word; none may come from the 30 s of noise and silence."""
    data = _transcribe(tiny_en_model, speech["vad"], tmp_path, "--word-timestamps")
    start = speech["gap_start"]
    words = [w for seg in data["segments"] for w in seg["words"]]
    assert _inside_gap(words, start) == []
    assert _inside_gap([s for s in data["segments"] if s["text"].strip()], start) == []
    text = _words(data)
    assert "first sentence" in text and "second sentence" in text, text


def test_segments_without_word_timestamps_do_not_span_the_dropped_stretch(
    tiny_en_model: Path, speech: dict[str, Any], tmp_path: Path
) -> None:
    data = _transcribe(tiny_en_model, speech["vad"], tmp_path)
    assert _inside_gap(data["segments"], speech["gap_start"]) == []
