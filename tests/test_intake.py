"""Dropped or picked paths become the files to queue; everything else is named, never silently lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from whisperdesk.core.intake import IntakeResult, describe_rejections, expand_paths


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folders_expand_recursively_to_supported_files_sorted(tmp_path: Path) -> None:
    a = touch(tmp_path / "rec" / "b.MP3")
    b = touch(tmp_path / "rec" / "a.wav")
    c = touch(tmp_path / "rec" / "deep" / "er" / "talk.mkv")
    touch(tmp_path / "rec" / "notes.txt")
    touch(tmp_path / "rec" / "cover.jpg")
    result = expand_paths([tmp_path / "rec"])
    assert result.supported == [b, a, c]
    assert result.unsupported == []  # files inside folders are filtered, not reported one by one
    assert describe_rejections(result) == ""


def test_hidden_files_and_folders_inside_folders_are_skipped(tmp_path: Path) -> None:
    keep = touch(tmp_path / "f" / "keep.flac")
    touch(tmp_path / "f" / ".partial.flac")
    touch(tmp_path / "f" / ".sync" / "copy.flac")
    result = expand_paths([str(tmp_path / "f")])
    assert result.supported == [keep]


def test_explicit_unsupported_and_missing_files_are_named(tmp_path: Path) -> None:
    song = touch(tmp_path / "song.ogg")
    doc = touch(tmp_path / "minutes.docx")
    gone = tmp_path / "gone.wav"
    result = expand_paths([song, doc, gone])
    assert result == IntakeResult(supported=[song], unsupported=[doc], missing=[gone])
    message = describe_rejections(result)
    assert "minutes.docx" in message and "not an audio or video file" in message
    assert "gone.wav" in message and "not found" in message


def test_duplicates_are_queued_once_in_given_order(tmp_path: Path) -> None:
    one = touch(tmp_path / "d" / "one.wav")
    two = touch(tmp_path / "d" / "two.wav")
    result = expand_paths([two, tmp_path / "d", tmp_path / "d" / ".." / "d" / "one.wav"])
    assert result.supported == [two, one]


def test_folder_without_audio_gives_empty_result(tmp_path: Path) -> None:
    touch(tmp_path / "docs" / "readme.md")
    result = expand_paths([tmp_path / "docs"])
    assert result.supported == [] and result.empty_folders


def test_long_rejection_lists_are_shortened(tmp_path: Path) -> None:
    files = [touch(tmp_path / f"f{i}.pdf") for i in range(8)]
    message = describe_rejections(expand_paths(files), limit=3)
    assert "f0.pdf, f1.pdf, f2.pdf and 5 more" in message


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions and a non-root user"
)
def test_unreadable_folder_is_reported(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    touch(locked / "a.wav")
    locked.chmod(0)
    try:
        result = expand_paths([tmp_path])
    finally:
        locked.chmod(0o755)
    assert [p for p, _ in result.unreadable] == [locked]
    assert "could not read folder" in describe_rejections(result)


def test_symlinked_folder_loops_do_not_hang(tmp_path: Path) -> None:
    wav = touch(tmp_path / "a" / "x.wav")
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a", target_is_directory=True)
    assert expand_paths([tmp_path / "a"]).supported == [wav]
