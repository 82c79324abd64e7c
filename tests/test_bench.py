"""`whisperdesk bench` and the side-by-side on real tiny.en weights over a spoken corpus with known text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile

from whisperdesk.benchmark.app_path import run_app_path
from whisperdesk.benchmark.corpus import references, short_memos, synthetic_corpus
from whisperdesk.benchmark.matrix import BenchReport, BenchRow, format_matrix, recommend
from whisperdesk.benchmark.memory import MemoryCheck
from whisperdesk.benchmark.run import score_texts
from whisperdesk.benchmark.wer import Score, edit_distance, normalise, score, total
from whisperdesk.cli import main
from whisperdesk.core.engine import Engine
from whisperdesk.core.queue.workers import workers_for
from whisperdesk.core.settings import DecodeOptions, ModelConfig, Settings
from whisperdesk.devtools.synth_audio import make_not_audio

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (the CI installs it)"
)
FAST = ["--beam-size", "1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list:  # type: ignore[type-arg]
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (the CI installs it)")
    return synthetic_corpus(tmp_path_factory.mktemp("corpus"), 0.5, seed=1)


# --- WER ----------------------------------------------------------------------------------------------
def test_wer_normalises_case_punctuation_and_spelled_numbers() -> None:
    assert normalise("The Office, closed on Friday!") == ["the", "office", "closed", "on", "friday"]
    assert normalise("Forty-two people and one hundred and five chairs") == [
        "42",
        "people",
        "and",
        "105",
        "chairs",
    ]
    assert normalise("It costs 42 dollars") == normalise("it costs forty two dollars.")
    assert normalise("It costs $42.") == normalise("it costs forty two dollars.")
    assert score("The cat sat.", "the cat sat") == Score(0, 3)


def test_wer_counts_substitutions_deletions_and_insertions() -> None:
    assert edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1
    assert edit_distance(["a", "b"], ["a", "b", "c", "d"]) == 2
    pooled = total([score("one two three four", "one two three four"), score("a b c d e f", "a b")])
    assert (pooled.errors, pooled.words) == (4, 10) and str(pooled) == "40.0 %" and pooled.rate == 0.4
    missing = score_texts({}, {Path("x.wav"): "some words here"})
    assert missing == Score(3, 3)  # a file without a transcript lost every word


# --- corpus -------------------------------------------------------------------------------------------
@needs_espeak
def test_corpus_mixes_memos_talks_and_a_lecture_with_their_text_and_is_cached(tmp_path: Path) -> None:
    files = synthetic_corpus(tmp_path, 3.5, seed=3)
    kinds = {f.kind for f in files}
    assert kinds == {"memo", "talk", "lecture"}
    lecture = next(f for f in files if f.kind == "lecture")
    assert lecture.seconds >= 0.4 * 210
    assert sum(f.seconds for f in files) >= 210
    for f in files:
        assert soundfile.info(str(f.path)).duration == pytest.approx(f.seconds, abs=0.05)
        assert len(f.text.split()) >= 3 and f.text.endswith((".", "?"))
    stamps = {f.path: f.path.stat().st_mtime_ns for f in files}
    again = synthetic_corpus(tmp_path, 3.5, seed=3)
    assert [(f.path, f.text) for f in again] == [(f.path, f.text) for f in files]
    assert {f.path: f.path.stat().st_mtime_ns for f in again} == stamps  # reused, not made again
    memos = short_memos(tmp_path, count=3)
    assert all(2.0 <= m.seconds <= 6.0 and m.text for m in memos)


# --- the app's path -----------------------------------------------------------------------------------
def test_app_path_runs_jobs_through_the_processor_with_the_apps_worker_count(
    corpus: list,
    tiny_en_model: Path,
    isolated_home: Path,
    tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    engine = Engine(
        ModelConfig(model=str(tiny_en_model), device="cpu", batch_size=4), isolated_home / "models"
    )
    bad = make_not_audio(tmp_path / "notes.wav")
    files = [f.path for f in corpus]
    try:
        run = run_app_path(
            engine, Settings(model=engine.config, decode=DecodeOptions(beam_size=1)), [*files, bad]
        )
    finally:
        engine.close()
    assert run.workers == workers_for(4) > 1
    assert len(run.failed) == 1 and run.failed[0].startswith(str(bad))  # failed as a job, not a crash
    assert run.audio_seconds == pytest.approx(sum(f.seconds for f in corpus), abs=0.1)
    wer = score_texts(run.texts, references(corpus))
    assert wer is not None and wer.rate < 0.2, (wer, run.texts)


# --- whisperdesk bench --------------------------------------------------------------------------------
@needs_espeak
def test_bench_prints_speed_and_wer_per_row_and_a_recommendation(
    tiny_en_model: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "bench.json"
    args = ["bench", "--synthetic", "0.3", "--model", str(tiny_en_model), "--device", "cpu"]
    args += ["--compute-types", "int8,float16", "--batch-sizes", "1,4", "--memory-jobs", "12"]
    code = main([*args, *FAST, "--json", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("compute type"))
    for column in ("batch", "audio s/s", "WER", "RTF", "load s", "peak RSS", "peak VRAM", "jobs"):
        assert column in header
    int8 = [line.split() for line in lines if line.startswith("int8 ")]
    assert [row[1] for row in int8] == ["1", "4"]
    for row in int8:
        assert row[-1] == "ok" and float(row[2]) > 0 and row[4] == "%" and float(row[3]) < 20
    assert [row[-2] for row in int8] == [str(workers_for(1)), str(workers_for(4))]
    skipped = [line for line in lines if line.startswith("float16 ")]
    assert len(skipped) == 2 and all("skipped: cpu does not support float16" in line for line in skipped)
    assert any(line.startswith("recommended: --compute-type int8 --batch-size ") for line in lines)
    assert "beam 1" in lines[0] and "VAD on" in lines[0]
    assert "memory: peak RSS" in out and "with 3 short files queued" in out and "with 12 (" in out
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["rows"][0]["wer"]["words"] > 20 and 0 <= data["rows"][0]["wer"]["rate"] < 0.2


def test_bench_without_input_says_what_to_pass(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bench", "--model", "tiny"]) == 1
    assert "--synthetic MINUTES" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "missing.wav")]) == 1
    assert "not a file" in capsys.readouterr().err


# --- the side-by-side (bench/side_by_side.py) ---------------------------------------------------------
@needs_espeak
def test_side_by_side_reports_speed_rss_and_wer_for_a_b_c_d(
    tiny_en_model: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from bench.side_by_side import main as side_by_side

    report = tmp_path / "sbs.json"
    args = ["--model", str(tiny_en_model), "--minutes", "0.4", "--beam-size", "1"]
    assert side_by_side([*args, "--corpus-dir", str(tmp_path), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    for run in (
        "(a) WhisperModel.transcribe",
        "(b) BatchedInferencePipeline",
        "(c) WhisperDesk app path",
        "(d) floor",
    ):
        line = next((x for x in out.splitlines() if x.startswith(run)), None)
        assert line is not None and " %" in line and " MB" in line, (run, out)
    assert "c/a = " in out and "c/b = " in out and "c/d = " in out
    data = json.loads(report.read_text(encoding="utf-8"))
    runs = data["runs"]
    assert set(runs) == {"a", "b", "c", "d"}
    seconds = runs["a"]["audio_seconds"]
    assert all(runs[k]["audio_seconds"] == pytest.approx(seconds, abs=0.1) for k in "abcd")
    for k in "abcd":
        assert runs[k]["wer"]["words"] > 20 and runs[k]["wer"]["errors"] / runs[k]["wer"]["words"] < 0.2, k
    assert "job threads" in runs["c"]["label"]
    assert all(runs[k]["cpu_seconds"] > 0 for k in "abc") and runs["d"]["cpu_seconds"] is None


# --- tables -------------------------------------------------------------------------------------------
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
    check = MemoryCheck(200, 32, 100, 300, 310, 160, True)
    assert check.growth_bytes == 60  # idle after minus idle before
    assert check.peak_growth_bytes == 10


def test_matrix_table_lists_failed_rows_with_their_reason_and_wer() -> None:
    rows = (
        BenchRow(
            "int8", 4, "ok", audio_seconds=60, wall_seconds=2, load_seconds=0.5, peak_rss_bytes=1 << 28,
            workers=4, wer=Score(3, 100),
        ),
        BenchRow("float16", 4, "failed", "model load failed: no CUDA"),
    )  # fmt: skip
    best, text = recommend(rows, "cpu")
    report = BenchReport("tiny", "cpu", "chosen", 1, DecodeOptions(), rows, best, text, audio_seconds=60)
    table = format_matrix(report)
    assert "float16            4" in table and "failed: model load failed: no CUDA" in table
    assert "30.0   3.0 %" in table  # 60 s of audio in 2 s, 3 errors in 100 words
