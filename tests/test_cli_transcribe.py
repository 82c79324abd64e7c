"""End to end through `whisperdesk transcribe` with the real engine and real tiny.en weights on espeak-ng speech."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pysubs2
import pytest

from whisperdesk import __version__
from whisperdesk.cli import main
from whisperdesk.devtools.synth_audio import (
    make_empty,
    make_not_audio,
    make_truncated,
    speech_like,
    write_audio,
    write_video_only,
)

FAST = ["--beam-size", "1", "--temperature", "0", "--device", "cpu"]
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call the office before noon tomorrow.",
    "The garden looks beautiful in the spring.",
)
_SPOKEN: dict[int, np.ndarray] = {}


def _signal(seconds: float, seed: int = 0) -> np.ndarray:
    """About ``seconds`` of espeak-ng speech (sentence ``seed``), padded with silence, at 16 kHz."""
    import soundfile

    from whisperdesk.core.audio import decode

    key = seed % len(SENTENCES)
    if key not in _SPOKEN:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            wav = speech_like(SENTENCES[key], Path(tmp) / "s.wav", voice="en-us")
            if wav is None:
                pytest.skip("espeak-ng is not installed (the CI installs it)")
            assert soundfile.info(str(wav)).duration < 6.0
            _SPOKEN[key] = decode(wav)
    spoken = _SPOKEN[key]
    out = np.zeros(max(int(seconds * 16000), len(spoken)), dtype=np.float32)
    out[: len(spoken)] = spoken
    return out


def _said(seed: int) -> str:
    """A word of sentence ``seed`` every decent transcript of it contains."""
    return ("quick", "office", "garden")[seed % len(SENTENCES)]


@pytest.fixture
def model_args(tiny_en_model: Path) -> list[str]:
    return ["--model", str(tiny_en_model), *FAST]


def _outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "m4a", "ogg", "opus", "mp4", "mkv", "webm", "mov"])
def test_every_container_gives_all_four_formats(
    ext: str, tmp_path: Path, model_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_audio(tmp_path / f"rec {ext}.{ext}", _signal(6.0))
    out = tmp_path / "out"
    code = main(
        ["transcribe", *model_args, "--format", "txt,srt,vtt,json", "--output-dir", str(out), str(source)]
    )
    assert code == 0, capsys.readouterr().err
    stem = f"rec {ext}"
    assert _outputs(out) == sorted(f"{stem}.{f}" for f in ("json", "srt", "txt", "vtt"))
    data = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
    assert data["duration"] == pytest.approx(6.0, abs=0.15)
    assert data["model"] and data["compute_type"].startswith("int8") and data["language"] == "en"
    assert _said(0) in data["text"].lower(), data["text"]
    srt = pysubs2.load(str(out / f"{stem}.srt"))
    vtt = pysubs2.load(str(out / f"{stem}.vtt"))
    assert len(srt) == len(vtt)
    for event in srt:
        assert 0 <= event.start <= event.end <= 6200
    assert capsys.readouterr().err == ""  # quiet when not a terminal


def test_good_and_bad_files_mixed(
    tmp_path: Path, model_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    good_wav = write_audio(tmp_path / "good.wav", _signal(5.0, 1))
    good_mp3 = write_audio(tmp_path / "good.mp3", _signal(5.0, 2))
    corrupt = make_truncated(write_audio(tmp_path / "whole.wav", _signal(5.0)), tmp_path / "corrupt.wav")
    empty = make_empty(tmp_path / "empty.mp3")
    text = make_not_audio(tmp_path / "notes.wav")
    video_only = write_video_only(tmp_path / "screen.mp4")
    missing = tmp_path / "missing.flac"
    out = tmp_path / "out"
    files = [good_wav, corrupt, empty, good_mp3, text, video_only, missing]
    code = main(
        [
            "transcribe",
            *model_args,
            "--format",
            "txt,srt,vtt,json",
            "--output-dir",
            str(out),
            *map(str, files),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    errors = captured.err.strip().splitlines()
    assert len(errors) == 5
    for bad, line in zip([corrupt, empty, text, video_only, missing], errors, strict=True):
        assert line.startswith(f"whisperdesk: error: {bad}: ")
    assert len(set(errors)) == 5  # each problem has its own reason
    # good.wav and good.mp3 share a stem: the second gets its extension in the name instead of replacing
    # the first's transcripts; the bad files leave nothing behind.
    formats = ("json", "srt", "txt", "vtt")
    assert _outputs(out) == sorted([*(f"good.{f}" for f in formats), *(f"good.mp3.{f}" for f in formats)])
    good = json.loads((out / "good.json").read_text())
    assert good["source"] == str(good_wav) and _said(1) in good["text"].lower()
    good = json.loads((out / "good.mp3.json").read_text())
    assert good["source"] == str(good_mp3) and _said(2) in good["text"].lower()


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["transcribe"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["transcribe", "--format", "txt,pdf", "x.wav"])
    assert info.value.code == 2
    assert "pdf" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["transcribe", "--batch-size", "0", "x.wav"])
    assert info.value.code == 2


def test_foreign_file_is_not_overwritten(
    tmp_path: Path, model_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_audio(tmp_path / "memo.wav", _signal(4.0))
    mine = tmp_path / "memo.txt"
    mine.write_text("my own notes\n", encoding="utf-8")
    assert main(["transcribe", *model_args, "--format", "txt", str(source)]) == 1
    assert mine.read_text(encoding="utf-8") == "my own notes\n"
    assert "memo.txt" in capsys.readouterr().err
    assert main(["transcribe", *model_args, "--format", "txt", "--overwrite", str(source)]) == 0
    assert _said(0) in mine.read_text(encoding="utf-8").lower()
    # our own output may be refreshed without --overwrite
    assert main(["transcribe", *model_args, "--format", "txt", str(source)]) == 0


def test_console_script_version_and_module_entry(tmp_path: Path) -> None:
    env = {**os.environ}
    out = subprocess.run(
        [sys.executable, "-m", "whisperdesk", "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.strip() == f"whisperdesk {__version__}"


def test_uncached_model_offline_reports_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav = write_audio(tmp_path / "a.wav", _signal(2.0))
    code = main(["transcribe", "--model", "small", "--device", "cpu", str(wav), str(wav)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "model small" in err[0] and "model folder" in err[0]


def test_several_files_share_batches_and_are_written_in_the_order_given(
    tmp_path: Path, tiny_en_model: Path
) -> None:
    """`transcribe A B C` runs files at once like the app's queue does (their windows share the scheduler's
    batches); outputs still come in the order given, so one stem's names never depend on which ends first."""
    from whisperdesk.commands.transcribe import transcribe_files
    from whisperdesk.core.engine import Engine
    from whisperdesk.core.outputs import OutputLedger
    from whisperdesk.core.settings import DecodeOptions, ModelConfig, OutputOptions, Settings

    names = []
    for seed, (stem, ext) in enumerate((("talk", "wav"), ("talk", "flac"), ("memo", "wav"))):
        names.append(str(write_audio(tmp_path / f"{stem}.{ext}", _signal(20.0 + 10 * seed, seed))))
    settings = Settings(
        model=ModelConfig(model=str(tiny_en_model), device="cpu", compute_type="int8", batch_size=8),
        decode=DecodeOptions(beam_size=1, temperature=(0.0,)),
        output=OutputOptions(formats=("txt",), output_dir=str(tmp_path / "out")),
    )
    engine = Engine(settings.model, tmp_path / "models")
    try:
        code = transcribe_files(
            engine,
            names,
            settings,
            output_dir=tmp_path / "out",
            ledger=OutputLedger(tmp_path / "ledger.json"),
        )
        history = list(engine.scheduler.history)
    finally:
        engine.close()
    assert code == 0
    assert any(len(set(batch.sources)) >= 2 for batch in history), [b.sources for b in history]
    assert _outputs(tmp_path / "out") == ["memo.txt", "talk.flac.txt", "talk.txt"]
    for seed, name in enumerate(("talk.txt", "talk.flac.txt", "memo.txt")):
        assert _said(seed) in (tmp_path / "out" / name).read_text().lower()


def test_docx_and_markdown_formats(
    tmp_path: Path, model_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    import docx

    source = write_audio(tmp_path / "memo.wav", _signal(5.0, seed=1))
    out = tmp_path / "out"
    code = main(["transcribe", *model_args, "--format", "docx,md", "--output-dir", str(out), str(source)])
    assert code == 0, capsys.readouterr().err
    assert _outputs(out) == ["memo.docx", "memo.md"]
    paragraphs = [p.text for p in docx.Document(str(out / "memo.docx")).paragraphs]
    assert paragraphs[0] == "memo.wav" and paragraphs[1].startswith("Date: ")
    assert "Duration: 00:00:05" in paragraphs[1] and "Language: en" in paragraphs[1]
    assert paragraphs[2].startswith("[00:00:00] ") and _said(1) in " ".join(paragraphs[2:]).lower()
    markdown = (out / "memo.md").read_text(encoding="utf-8")
    assert markdown.startswith("# memo.wav\n\n*Date: ") and "**[00:00:00]**" in markdown
    assert _said(1) in markdown.lower()
