"""Model downloads against a loopback hub serving the real tiny.en files: no test touches the internet.

huggingface_hub is pointed at the loopback server through its endpoint (HF_ENDPOINT for child processes);
the suite's HF_HUB_OFFLINE=1 is lifted only inside these tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from whisperdesk.cli import main
from whisperdesk.core.errors import ModelUnavailableError
from whisperdesk.core.models import resolve
from whisperdesk.core.models.download import (
    DownloadCancelled,
    DownloadError,
    DownloadProgress,
    NotEnoughSpaceError,
    check_space,
    download_model,
)
from whisperdesk.core.models.store import (
    installed_path,
    model_folder,
    partial_bytes,
    staging_folder,
    verify_download,
)
from whisperdesk.core.paths import AppPaths
from whisperdesk.devtools.loopback_hub import LoopbackHub

REPO = "Systran/faster-whisper-tiny.en"
NAME = "tiny.en"


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lift the suite's offline switch for the loopback hub (huggingface_hub reads it at import)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def hub(tiny_en_model: Path, online: None, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    with LoopbackHub({REPO: tiny_en_model}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture
def models_dir() -> Path:
    return AppPaths.default().models_dir


def _model_bin_size(folder: Path) -> int:
    return (folder / "model.bin").stat().st_size


def test_download_reports_progress_and_gives_a_verified_model(
    hub: LoopbackHub, models_dir: Path, tiny_en_model: Path
) -> None:
    seen: list[DownloadProgress] = []
    folder = download_model(NAME, models_dir, progress=seen.append)
    assert folder == model_folder(NAME, models_dir)
    total = sum(p.stat().st_size for p in tiny_en_model.iterdir() if not p.name.startswith("."))
    assert seen[-1].done_bytes == seen[-1].total_bytes == total
    done = [p.done_bytes for p in seen]
    assert done == sorted(done) and len(seen) >= 3
    assert any(p.bytes_per_second > 0 and p.eta_seconds is not None for p in seen[1:])
    assert verify_download(NAME, models_dir).ok
    assert installed_path(NAME, models_dir) == folder
    assert resolve.resolve(NAME, models_dir, local_files_only=True) == folder
    assert not staging_folder(NAME, models_dir).exists()


def test_cancel_keeps_the_partial_file_and_the_next_download_resumes_it(
    hub: LoopbackHub, models_dir: Path, tiny_en_model: Path
) -> None:
    hub.faults.bytes_per_second = 8_000_000
    cancel = threading.Event()

    def stop_after_some(progress: DownloadProgress) -> None:
        if progress.done_bytes > 3_000_000:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        download_model(NAME, models_dir, progress=stop_after_some, cancel=cancel)
    kept = partial_bytes(NAME, models_dir)
    assert kept > 3_000_000 and installed_path(NAME, models_dir) is None
    hub.faults.bytes_per_second = 0
    hub.served.clear()
    download_model(NAME, models_dir)
    size = _model_bin_size(tiny_en_model)
    resumed = [s for s in hub.served if s.file == "model.bin"][-1]  # the canceled request may log late
    assert 0 < resumed.start <= kept
    assert resumed.sent == size - resumed.start < size
    assert verify_download(NAME, models_dir).ok


def test_download_killed_mid_file_resumes_in_the_next_process(
    hub: LoopbackHub, models_dir: Path, tiny_en_model: Path
) -> None:
    hub.faults.bytes_per_second = 6_000_000
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0"}
    child = subprocess.Popen(
        [sys.executable, "-m", "whisperdesk", "models", "download", NAME],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    part = staging_folder(NAME, models_dir) / "model.bin.part"
    try:
        while child.poll() is None and not (part.is_file() and part.stat().st_size > 4_000_000):
            time.sleep(0.05)
    finally:
        child.kill()
        _, err = child.communicate(timeout=60)
    assert child.returncode == -9, err.decode()  # killed, not finished
    kept = part.stat().st_size
    assert 4_000_000 < kept < _model_bin_size(tiny_en_model)
    hub.faults.bytes_per_second = 0
    hub.served.clear()
    assert main(["models", "download", NAME]) == 0
    last = [s for s in hub.served if s.file == "model.bin"][-1]
    assert 0 < last.start <= kept and last.sent == _model_bin_size(tiny_en_model) - last.start
    assert main(["models", "verify", NAME]) == 0


def test_a_corrupt_file_from_the_server_is_detected_and_never_installed(
    hub: LoopbackHub, models_dir: Path
) -> None:
    hub.faults.corrupt = {"model.bin"}
    with pytest.raises(DownloadError, match=r"model\.bin of tiny\.en is damaged"):
        download_model(NAME, models_dir)
    assert installed_path(NAME, models_dir) is None
    assert not (staging_folder(NAME, models_dir) / "model.bin.part").exists()  # bad bytes are not resumed
    hub.faults.corrupt = set()
    assert verify_download(NAME, models_dir).ok is False
    download_model(NAME, models_dir)
    assert verify_download(NAME, models_dir).ok


def test_a_truncated_installed_copy_is_detected_before_use_and_by_verify(
    hub: LoopbackHub, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = download_model(NAME, models_dir)
    with open(folder / "model.bin", "r+b") as fh:
        fh.truncate(fh.seek(0, 2) - 1000)
    assert installed_path(NAME, models_dir) is None
    with pytest.raises(ModelUnavailableError, match=r"is damaged: model\.bin"):
        resolve.resolve(NAME, models_dir, local_files_only=True)
    assert main(["models", "verify", NAME]) == 1
    assert "damaged: model.bin" in capsys.readouterr().err


def test_server_gone_mid_download_is_one_plain_error_and_a_new_server_resumes(
    tiny_en_model: Path, online: None, models_dir: Path
) -> None:
    with LoopbackHub({REPO: tiny_en_model}) as hub:
        hub.faults.drop_after = {"model.bin": 5_000_000}
        with pytest.raises(DownloadError) as info:
            download_model(NAME, models_dir, hub=hub.url)
        port = hub.port
    message = str(info.value)
    assert (
        "could not be reached or the connection broke" in message and "continues where it stopped" in message
    )
    assert partial_bytes(NAME, models_dir) >= 4_000_000
    with pytest.raises(DownloadError, match="could not be reached"):  # nobody listens any more
        download_model(NAME, models_dir, hub=f"http://127.0.0.1:{port}")
    with LoopbackHub({REPO: tiny_en_model}) as again:
        download_model(NAME, models_dir, hub=again.url)
        first = next(s for s in again.served if s.file == "model.bin")
    assert first.start >= 4_000_000  # the rest only
    assert verify_download(NAME, models_dir).ok


def test_offline_refuses_plainly_without_touching_the_network(
    hub: LoopbackHub, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline"):
        download_model(NAME, models_dir)
    with pytest.raises(ModelUnavailableError, match="not downloaded yet"):
        resolve.resolve(NAME, models_dir)
    assert hub.api_calls == 0 and hub.served == []


def test_not_enough_disk_space_stops_before_any_byte(tmp_path: Path) -> None:
    with pytest.raises(NotEnoughSpaceError, match="Not enough disk space"):
        check_space(tmp_path / "not-yet" / "there", 10**18)


def test_cli_lists_downloads_verifies_and_removes(
    hub: LoopbackHub, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "download", NAME]) == 0
    assert "tiny.en: downloaded and verified" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    line = next(row for row in listing.splitlines() if row.startswith("tiny.en "))
    assert "English only" in line and "downloaded" in line
    assert "Built-in (base, multilingual)" in listing and "included, in use" in listing
    assert main(["models", "verify"]) == 0
    assert "tiny.en: intact" in capsys.readouterr().out
    assert main(["models", "remove", NAME]) == 0
    assert installed_path(NAME, models_dir) is None
    assert main(["models", "remove", NAME]) == 1
    assert main(["models", "download", "huge-v9"]) == 1
    assert "not a model WhisperDesk knows" in capsys.readouterr().err


# --- a damaged download says so (issue 18, point 6) ---------------------------------------------------------
@pytest.mark.parametrize("name", ["model.bin", "tokenizer.json", "config.json"])
def test_a_truncated_download_is_damaged_not_missing_for_jobs_and_verify(
    name: str,
    hub: LoopbackHub,
    models_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = download_model(NAME, models_dir)
    with open(folder / name, "r+b") as fh:
        fh.truncate(fh.seek(0, 2) // 2)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # and the server is unreachable now
    for local_only in (True, False):
        with pytest.raises(ModelUnavailableError) as info:
            resolve.resolve(NAME, models_dir, local_files_only=local_only)
        message = str(info.value)
        assert f"The downloaded model tiny.en is damaged: {name}" in message, message
        assert "not downloaded" not in message and "could not be reached" not in message
        assert (
            f"whisperdesk models remove {NAME}" in message
            and f"whisperdesk models download {NAME}" in message
        )
    assert main(["models", "verify", NAME]) == 1
    err = capsys.readouterr().err
    assert f"damaged: {name}" in err and f"whisperdesk models download {NAME}" in err


def test_a_local_model_folder_with_a_truncated_tokenizer_names_it(
    tiny_en_model: Path, tmp_path: Path
) -> None:
    import shutil

    from whisperdesk.core.models.store import local_folder_problems

    folder = tmp_path / "my-model"
    shutil.copytree(tiny_en_model, folder)
    with open(folder / "tokenizer.json", "r+b") as fh:
        fh.truncate(fh.seek(0, 2) // 2)
    assert local_folder_problems(folder) == ["tokenizer.json cannot be read (cut off or damaged)"]


def test_a_download_damaged_inside_model_bin_fails_the_load_with_verifys_words(
    hub: LoopbackHub, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same size, other bytes: the cheap check before a load passes, CTranslate2 refuses the file; the job's
    error then names the damaged file and the fix, as `models verify` does, not the library's words."""
    from whisperdesk.core.engine import Engine
    from whisperdesk.core.settings import ModelConfig

    folder = download_model(NAME, models_dir)
    with open(folder / "model.bin", "r+b") as fh:
        fh.write(b"\xff" * 4096)  # the header CTranslate2 reads first
    engine = Engine(
        ModelConfig(model=NAME, device="cpu", compute_type="int8"), models_dir, local_files_only=True
    )
    with pytest.raises(ModelUnavailableError) as info:
        engine.load()
    assert str(info.value).startswith(f"The downloaded model {NAME} is damaged: model.bin")
    assert main(["models", "verify", NAME]) == 1
    assert str(info.value) in capsys.readouterr().err
