"""One window per data folder: an OS file lock in the data folder says whether one already runs.

Why a file lock: the OS drops it when the process ends, crash or SIGKILL included, so a stale lock never
keeps the app from starting (a pid file would). The lock only answers "is a window running on this data
folder?"; handing files to it goes through a local socket in a private folder (core/handover.py,
services/single_instance.py), and ``whisperdesk watch`` refuses to run beside it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

WINDOW_LOCK = "window.lock"


class FileLock:
    """An exclusive, non-blocking (or blocking) lock on ``path``; the file itself stays."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fh: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self, *, blocking: bool = False) -> bool:
        """True when this process now holds the lock; False when another one does (non-blocking)."""
        if self._fh is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+b")  # noqa: SIM115 - held open for as long as the lock is held
        try:
            if not _lock(fh, blocking):
                fh.close()
                return False
        except BaseException:
            fh.close()
            raise
        self._fh = fh
        return True

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError):
                _unlock(fh)
            fh.close()

    def __enter__(self) -> FileLock:
        self.acquire(blocking=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def window_lock(data_dir: Path) -> FileLock:
    return FileLock(Path(data_dir) / WINDOW_LOCK)


def window_running(data_dir: Path) -> bool:
    """True when a window holds this data folder's lock (checked by taking and dropping it)."""
    probe = window_lock(data_dir)
    if probe.acquire():
        probe.release()
        return False
    return True


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold ``path``'s lock (blocking) for a short read-modify-write shared with other processes."""
    lock = FileLock(path)
    lock.acquire(blocking=True)
    try:
        yield
    finally:
        lock.release()


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fh: IO[bytes], blocking: bool) -> bool:
        fh.seek(0)
        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fh: IO[bytes], blocking: bool) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

    def _unlock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
