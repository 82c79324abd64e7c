"""Where WhisperDesk keeps config, data, cache and logs.

``WHISPERDESK_HOME=DIR`` puts everything under DIR: tests use it to stay away from the user's real dirs and
portable installs use it to live on a USB stick.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from whisperdesk.core.errors import WhisperDeskError

APP_NAME = "WhisperDesk"
HOME_ENV = "WHISPERDESK_HOME"
PRIVATE_DIR_MODE = 0o700  # the job list names every recording; settings and logs name folders


class AppFolderError(WhisperDeskError):
    """One of the app's own folders cannot be created or written: nothing can start without it."""

    def __init__(self, folder: Path, role: str, reason: str, *, verb: str = "create") -> None:
        self.folder = folder
        advice = _ADVICE.get(reason, "check that it is available").format(
            where=folder.parent, blocker=_blocker(folder)
        )
        super().__init__(
            f"cannot {verb} WhisperDesk's {role} folder {folder}: {reason}; {advice}, or set {HOME_ENV} to a "
            "folder you can write to (e.g. WHISPERDESK_HOME=~/WhisperDesk)"
        )


_ADVICE = {
    "permission denied": "fix the permissions of {where}",
    "the disk is read-only": "mount the disk writable",
    "the disk is full": "free some space on the disk holding {where}",
    "a file is in the way": "move or rename {blocker}, which is a file, not a folder",
}


def _blocker(folder: Path) -> Path:
    """The nearest existing path at or above ``folder``: the file in the way of creating it."""
    probe = folder
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    return probe


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "the disk is read-only"
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return "the disk is full"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a file is in the way"
    return (exc.strerror or str(exc)).lower()


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def window_state_file(self) -> Path:
        """The window's size, panels and column widths between runs (not settings: nothing to validate)."""
        return self.config_dir / "window-state.json"

    @property
    def jobs_db(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def library_db(self) -> Path:
        """The transcripts of record and their search index, beside the queue (its own file: see
        ``core/library``)."""
        return self.data_dir / "library.sqlite3"

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "whisperdesk.log"

    def ensure(self) -> AppPaths:
        """Create the folders (data, config and logs private to the user) or raise :class:`AppFolderError`
        naming the one that cannot be made or written, and what to do."""
        folders = (
            (self.config_dir, "settings", True),
            (self.data_dir, "data", True),
            (self.cache_dir, "cache", False),
            (self.log_dir, "log", True),
        )
        for folder, role, private in folders:
            _make(folder, role, private)
        return self

    @classmethod
    def under(cls, root: Path) -> AppPaths:
        root = Path(root)
        return cls(root / "config", root / "data", root / "cache", root / "logs")

    @classmethod
    def default(cls) -> AppPaths:
        home = os.environ.get(HOME_ENV)
        if home:
            return cls.under(Path(home).expanduser())
        import platformdirs

        return cls(
            Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
        )


def _make(folder: Path, role: str, private: bool) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE if private else 0o777)
    except OSError as exc:
        raise AppFolderError(folder, role, _reason(exc)) from exc
    if not folder.is_dir():  # a dangling link, or something else that is not a folder
        raise AppFolderError(folder, role, "a file is in the way")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AppFolderError(folder, role, "permission denied", verb="write in")
    if private:
        _make_private(folder)


def _make_private(folder: Path) -> None:
    """Folders an older version made under the umask (0755) lose group and other access; a file system
    without permissions (a FAT stick) simply keeps what it has."""
    with contextlib.suppress(OSError):
        st = folder.stat()
        mine = not hasattr(os, "geteuid") or st.st_uid == os.geteuid()
        if stat.S_IMODE(st.st_mode) & 0o077 and mine:
            folder.chmod(stat.S_IMODE(st.st_mode) & ~0o077)
