"""Atomic file writes: a crash leaves either the old file or the complete new one, never a half.

``mkstemp`` creates its file with mode 0600; a transcript must get the mode any other new file of the user
gets (0666 less the umask), or the file it replaces keeps its own permission bits, so shares and media servers
can read it. Special bits (setuid, setgid, sticky) are never carried over, and a symbolic link in the way is
replaced, never followed for its target's mode.

Temp files have short names (``.{first bytes of the name}.XXXXXXXX.wdtmp``, at most 48 bytes): a final name
at the file system's limit (255 bytes on most) must not fail because its temp name is longer.
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

TEMP_SUFFIX = ".wdtmp"
_TEMP_NAME_BYTES = 32  # of the final name kept in the temp name, so a stray temp file says what it was

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
    """The replaced regular file's permission bits (never its special bits), else the umask's mode."""
    try:
        st = os.lstat(path)  # a link is replaced by the new file, so its target's mode does not count
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode) & 0o777
    return 0o666 & ~current_umask()


def temp_file(path: Path) -> tuple[int, str]:
    """Create the temp file that will be renamed over ``path``: ``(fd, name)``, beside it, short-named."""
    return tempfile.mkstemp(prefix=f".{_short(path.name)}.", suffix=TEMP_SUFFIX, dir=path.parent)


def temp_name_bytes(path: Path) -> int:
    """How long (bytes) the temp name of ``path`` is: a dot, the short name, a dot, mkstemp's 8 random
    characters and the suffix. Lets a pre-check test the real temp name against the folder's limit without
    creating a file that a process killed mid-check would leave in the user's folder."""
    return 1 + len(_short(path.name).encode("utf-8", "surrogateescape")) + 1 + 8 + len(TEMP_SUFFIX)


def _short(name: str) -> str:
    """At most ``_TEMP_NAME_BYTES`` bytes of ``name`` (UTF-8), cut at a character boundary."""
    return name.encode("utf-8", "surrogateescape")[:_TEMP_NAME_BYTES].decode("utf-8", "ignore")


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
    fd, tmp = temp_file(path)
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
