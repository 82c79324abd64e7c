"""`whisperdesk bench` and the side-by-side on a tiny synthetic corpus with the micro random model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whisperdesk.cli import main
from whisperdesk.core.bench import (
    BenchRow,
    MemoryCheck,
    format_matrix,
    recommend,
    short_memos,
    synthetic_corpus,
)

FAST = ["--beam-size", "1", "--max-new-tokens", "8"]


def test_bench_prints_its_table_and_a_recommendation(
    whisper_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "bench",
            "--synthetic",
            "0.3",
            "--model",
            str(whisper_model_dir),
            "--device",
            "cpu",
            "--compute-types",
            "int8,float16",
            "--batch-sizes",
            "1,4",
            *FAST,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("compute type"))
    for column in ("batch", "audio s/s", "RTF", "load s", "peak RSS", "peak VRAM"):
        assert column in header
    int8 = [line.split() for line in lines if line.startswith("int8 ")]
    assert [row[1] for row in int8] == ["1", "4"]
    for row in int8:
        assert row[-1] == "ok" and float(row[2]) > 0 and float(row[3]) > 0
    skipped = [line for line in lines if line.startswith("float16 ")]
    assert len(skipped) == 2
    assert all("skipped: cpu does not support float16" in line for line in skipped)
    assert any(line.startswith("recommended: --compute-type int8 --batch-size ") for line in lines)
    assert "0.3 min of audio" in lines[0] and "beam 1" in lines[0] and "max new tokens 8" in lines[0]


def test_bench_baseline_runs_a_b_c_d_and_the_memory_check(
    whisper_model_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "--baseline",
            "--synthetic",
            "0.5",
            "--model",
            str(whisper_model_dir),
            "--batch-size",
            "4",
            "--memory-jobs",
            "24",
            "--repeat",
            "2",
            "--json",
            str(report),
            *FAST,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    for run in (
        "(a) WhisperModel.transcribe",
        "(b) BatchedInferencePipeline",
        "(c) WhisperDesk scheduler",
        "(d) floor",
    ):
        assert any(line.startswith(run) for line in out.splitlines()), run
    assert "c/a = " in out and "c/b = " in out and "c/d = " in out
    assert "every job complete and in order: yes" in out
    assert "memory: peak RSS" in out and "with 24" in out
    assert "best of 2: " in out
    data = json.loads(report.read_text(encoding="utf-8"))
    assert set(data["runs"]) == {"a", "b", "c", "d"}
    assert data["complete"] is True
    assert data["tokens"]["c"] == data["tokens"]["d"] > 0  # the floor replays (c)'s exact work
    assert all(data["runs"][k]["audio_seconds"] == pytest.approx(30.0, abs=0.1) for k in "abcd")
    assert data["ratios"]["a"] > 0 and data["memory"]["jobs"] == 24


def test_bench_without_input_says_what_to_pass(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bench", "--model", "tiny"]) == 1
    assert "--synthetic MINUTES" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "missing.wav")]) == 1
    assert "not a file" in capsys.readouterr().err


def test_synthetic_corpus_mixes_memos_and_talks_and_is_cached(tmp_path: Path) -> None:
    files = synthetic_corpus(tmp_path, 7.0, seed=3)
    talks = [f for f in files if f.kind == "talk"]
    memos = [f for f in files if f.kind == "memo"]
    assert talks and memos
    assert all(180.0 <= f.seconds <= 360.0 for f in talks)
    assert all(10.0 <= f.seconds <= 60.0 for f in memos)
    assert sum(f.seconds for f in files) == pytest.approx(420.0, abs=1.0)
    import soundfile

    for f in files:
        assert soundfile.info(str(f.path)).duration == pytest.approx(f.seconds, abs=0.05)
    stamps = {f.path: f.path.stat().st_mtime_ns for f in files}
    again = synthetic_corpus(tmp_path, 7.0, seed=3)
    assert [f.path for f in again] == [f.path for f in files]
    assert {f.path: f.path.stat().st_mtime_ns for f in again} == stamps  # reused, not made again
    memos_short = short_memos(tmp_path, count=3)
    assert all(2.0 <= soundfile.info(str(p)).duration <= 5.0 for p in memos_short)


def test_recommendation_is_the_fastest_then_the_least_memory() -> None:
    mb = 1024 * 1024
    rows = [
        BenchRow("int8", 1, "ok", audio_seconds=600, wall_seconds=30, peak_rss_bytes=300 * mb),
        BenchRow("int8", 8, "ok", audio_seconds=600, wall_seconds=10, peak_rss_bytes=900 * mb),
        BenchRow("int8", 16, "ok", audio_seconds=600, wall_seconds=10.2, peak_rss_bytes=700 * mb),
        BenchRow(
            "float32", 8, "ok", audio_seconds=600, wall_seconds=9.0, files_failed=1, peak_rss_bytes=10 * mb
        ),
        BenchRow("float16", 8, "skipped", "cpu does not support float16"),
    ]
    best, text = recommend(rows, "cpu")
    assert best is rows[2]  # within 3 % of the fastest, and less memory; a row with failures never wins
    assert text.startswith("recommended: --compute-type int8 --batch-size 16")
    assert recommend([rows[4]], "cpu") == (None, "no setting completed: see the reasons in the table")


def test_memory_check_separates_what_was_left_behind_from_peaks() -> None:
    check = MemoryCheck(200, 32, 100, 300, 310, 160, 16, True)
    assert check.growth_bytes == 60  # idle after minus idle before
    assert check.peak_growth_bytes == 10


def test_matrix_table_lists_failed_rows_with_their_reason() -> None:
    from whisperdesk.core.bench import BenchReport
    from whisperdesk.core.settings import DecodeOptions

    rows = (
        BenchRow("int8", 4, "ok", audio_seconds=60, wall_seconds=2, load_seconds=0.5, peak_rss_bytes=1 << 28),
        BenchRow("float16", 4, "failed", "model load failed: no CUDA"),
    )
    best, text = recommend(rows, "cpu")
    report = BenchReport("tiny", "cpu", "chosen", 1, DecodeOptions(), rows, best, text, audio_seconds=60)
    table = format_matrix(report)
    assert "float16            4" in table and "failed: model load failed: no CUDA" in table
    assert "30.0" in table  # 60 s of audio in 2 s
