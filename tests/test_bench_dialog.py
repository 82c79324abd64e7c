"""Tools → Benchmark runs the real compute type × batch size table (real tiny.en weights) off the GUI thread."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from whisperdesk.core.engine import Engine
from whisperdesk.core.settings import ModelConfig, Settings
from whisperdesk.devtools.synth_audio import noise, tone, write_audio
from whisperdesk.ui.bench_dialog import BenchmarkDialog


def test_benchmark_dialog_runs_and_offers_the_recommendation(
    qtbot: QtBot, tiny_en_model: Path, isolated_home: Path, tmp_path: Path
) -> None:
    settings = Settings(model=ModelConfig(model=str(tiny_en_model), device="cpu"))
    engine = Engine(settings.model, isolated_home / "models")
    dialog = BenchmarkDialog(engine, settings)
    qtbot.addWidget(dialog)
    files = [write_audio(tmp_path / f"m{i}.wav", noise(12.0, seed=i) + tone(200.0, 12.0)) for i in range(2)]
    dialog.set_files(files)
    dialog.batch_edit.setText("1,2")
    for name, box in dialog.compute_boxes.items():
        box.setChecked(name in ("int8", "float16"))
    chosen: list[tuple[str, int]] = []
    dialog.recommendationChosen.connect(lambda c, b: chosen.append((c, b)))

    dialog.start()
    assert not dialog.run_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.report is not None or dialog.run_button.isEnabled(), timeout=240_000)
    report = dialog.report
    assert report is not None, dialog.status.text()
    text = dialog.output.toPlainText()
    assert "int8" in text and "float16" in text
    skipped = [r for r in report.rows if r.compute_type == "float16"]
    assert skipped and all(r.status == "skipped" and r.reason for r in skipped)  # no float16 on this CPU
    assert {r.batch_size for r in report.rows if r.status == "ok"} == {1, 2}
    assert dialog.apply_button.isEnabled()
    dialog.apply_button.click()
    assert chosen == [(report.recommended.compute_type, report.recommended.batch_size)]  # type: ignore[union-attr]
    dialog.done(0)


def test_bad_batch_sizes_are_refused_with_a_reason(
    qtbot: QtBot, tiny_en_model: Path, isolated_home: Path
) -> None:
    settings = Settings(model=ModelConfig(model=str(tiny_en_model), device="cpu"))
    dialog = BenchmarkDialog(Engine(settings.model, isolated_home / "models"), settings)
    qtbot.addWidget(dialog)
    dialog.batch_edit.setText("4,zero")
    dialog.start()
    assert dialog.run_button.isEnabled() and dialog.report is None
    assert "batch sizes '4,zero' are invalid" in dialog.status.text()
