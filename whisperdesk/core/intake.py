"""Turn what the user dropped or picked (files and folders) into the audio/video files to queue.

Pure and Qt-free so the window, the CLI and tests share one rule: folders expand recursively to supported
files, hidden files and folders inside them are skipped, and anything that cannot be queued is reported
by path instead of being dropped silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from whisperdesk.core.audio import is_supported


@dataclass(frozen=True)
class IntakeResult:
    supported: list[Path] = field(default_factory=list)  # in the order given, folders sorted, no duplicates
    unsupported: list[Path] = field(default_factory=list)  # files given explicitly that are not audio/video
    missing: list[Path] = field(default_factory=list)  # paths that do not exist (or vanished while listed)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # folders that could not be listed, why

    @property
    def empty_folders(self) -> bool:
        """True when nothing was found and nothing was explicitly wrong: only folders without audio."""
        return not (self.supported or self.unsupported or self.missing or self.unreadable)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(folder: Path, unreadable: list[tuple[Path, str]]) -> list[Path]:
    """Supported files under ``folder``, sorted; symlinked folders are not followed (no loops)."""
    found: list[Path] = []

    def on_error(exc: OSError) -> None:
        unreadable.append((Path(exc.filename or folder), exc.strerror or str(exc)))

    for root, dirs, files in os.walk(folder, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
        base = Path(root)
        for name in sorted(files):
            if _is_hidden(name):
                continue
            path = base / name
            if is_supported(path) and path.is_file():
                found.append(path)
    return found


def expand_paths(paths: Iterable[Path | str]) -> IntakeResult:
    """Expand files and folders to the supported files to queue; explicit files are kept even if hidden."""
    result = IntakeResult()
    seen: set[Path] = set()

    def keep(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            result.supported.append(path)

    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for found in _walk(path, result.unreadable):
                keep(found)
        elif path.is_file():
            if is_supported(path):
                keep(path)
            else:
                result.unsupported.append(path)
        else:
            result.missing.append(path)
    return result


def describe_rejections(result: IntakeResult, *, limit: int = 5) -> str:
    """One human sentence naming what was not queued and why; empty when everything was accepted."""
    parts: list[str] = []
    if result.unsupported:
        parts.append(f"not an audio or video file: {_names(result.unsupported, limit)}")
    if result.missing:
        parts.append(f"not found: {_names(result.missing, limit)}")
    if result.unreadable:
        shown = ", ".join(f"{p} ({why})" for p, why in result.unreadable[:limit])
        more = len(result.unreadable) - limit
        parts.append(f"could not read folder: {shown}" + (f" and {more} more" if more > 0 else ""))
    return "; ".join(parts)


def _names(paths: list[Path], limit: int) -> str:
    shown = ", ".join(p.name or str(p) for p in paths[:limit])
    more = len(paths) - limit
    return shown + (f" and {more} more" if more > 0 else "")
