"""Atomic file writes: a crash leaves either the old file or the complete new one, never a half.

``mkstemp`` creates its file with mode 0600; a transcript must get the mode any other new file of the user
gets (0666 less the umask), or the file it replaces keeps its own, so shares and media servers can read it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_umask_lock = threading.Lock()
_fallback_umask: int | None = None


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (changing it races other threads)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    global _fallback_umask
    with _umask_lock:
        if _fallback_umask is None:  # no /proc: set and restore once, early (settings load writes first)
            _fallback_umask = os.umask(0o022)
            os.umask(_fallback_umask)
        return _fallback_umask


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)  # replacing a file keeps its mode
    except OSError:
        return 0o666 & ~current_umask()


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write to a temp file in the same folder, flush, fsync, then rename over ``path``."""
    atomic_write_with(path, lambda fh: fh.write(data))


def atomic_write_with(
    path: Path | str, write: Callable[[BinaryIO], object], *, mode: int | None = None
) -> Path:
    """Stream ``write(fh)`` into a temp file beside ``path``, fsync, then rename it over ``path``.

    For content too large to hold in memory (a joined model file). If ``write`` raises (a failed check, a
    full disk), the temp file is removed and ``path`` is untouched. ``mode`` defaults to the user's normal
    mode for a new file, or the mode of the file being replaced.
    """
    path = Path(path)
    mode = _mode_for(path) if mode is None else mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".wdtmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself; not possible (nor needed) on Windows."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
