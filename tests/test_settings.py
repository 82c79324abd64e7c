from __future__ import annotations

import json
from pathlib import Path

import pytest

from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import (
    SETTINGS_VERSION,
    DecodeOptions,
    ModelConfig,
    Settings,
    WatchedFolder,
    load_settings,
    save_settings,
)


def test_defaults_are_valid_and_int8() -> None:
    settings = Settings()
    settings.validate()
    assert settings.model.compute_type == "int8"


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "settings.json"
    original = Settings(
        model=ModelConfig(model="large-v3", device="cpu", compute_type="float32", batch_size=4),
        decode=DecodeOptions(beam_size=2, language="de", task="translate", vad=False, temperature=(0.0, 0.5)),
        watched=(WatchedFolder(path="/rec", recursive=True, after_processing="move"),),
    )
    save_settings(path, original)
    data = json.loads(path.read_text())
    assert data["version"] == SETTINGS_VERSION
    loaded, problems = load_settings(path)
    assert problems == []
    assert loaded == original


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "nope.json") == (Settings(), [])


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "\xff\xfe garbage"])
def test_corrupt_file_keeps_backup_and_uses_defaults(tmp_path: Path, content: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(content, encoding="latin-1")
    settings, problems = load_settings(path)
    assert settings == Settings()
    assert len(problems) == 1 and "settings.json" in problems[0] and "defaults" in problems[0]
    backup = tmp_path / "settings.json.bak"
    assert backup.read_bytes() == path.read_bytes()


def test_invalid_values_named_and_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "settings.json"
    data = Settings().to_dict()
    data["model"]["batch_size"] = 0
    data["model"]["compute_type"] = "int3"
    data["decode"]["beam_size"] = "five"
    data["decode"]["language"] = "de"
    data["output"]["formats"] = ["txt", "pdf"]
    data["ui"]["mystery"] = True
    data["watched"] = [{"path": "/a", "after_processing": "shred"}, {"nopath": 1}]
    path.write_text(json.dumps(data))
    settings, problems = load_settings(path)
    text = "\n".join(problems)
    for fragment in ("batch_size=0", "int3", "beam_size='five'", "pdf", "mystery", "shred", "watched[1]"):
        assert fragment in text
    assert settings.model.batch_size == 8
    assert settings.model.compute_type == "int8"
    assert settings.decode.language == "de"  # valid keys survive beside invalid ones
    assert settings.output.formats == Settings().output.formats
    assert settings.watched == (WatchedFolder(path="/a"),)
    assert "batch_size=0" in caplog.text
    assert (tmp_path / "settings.json.bak").exists()


def test_save_is_atomic_and_refuses_invalid(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    save_settings(path, Settings())
    before = path.read_bytes()
    bad = Settings(model=ModelConfig(batch_size=0))
    with pytest.raises(ValueError, match="batch_size"):
        save_settings(path, bad)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


def test_whisperdesk_home_puts_everything_under_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPERDESK_HOME", str(tmp_path / "portable"))
    paths = AppPaths.default().ensure()
    for d in (paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir):
        assert d.is_dir() and d.is_relative_to(tmp_path / "portable")
    assert paths.settings_file.parent == paths.config_dir
