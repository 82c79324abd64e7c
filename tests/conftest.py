"""Shared fixtures. Qt runs offscreen and every test gets its own WHISPERDESK_HOME."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test away from the user's real config, data, cache and log dirs."""
    home = tmp_path_factory.mktemp("wdhome")
    monkeypatch.setenv("WHISPERDESK_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture(scope="session")
def whisper_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real CTranslate2 Whisper model with random weights (micro shape), built once per session offline."""
    from whisperdesk.devtools.random_model import build_random_whisper_model

    return build_random_whisper_model(tmp_path_factory.mktemp("model") / "whisper-micro", shape="micro")
