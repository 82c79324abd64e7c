"""Where WhisperDesk keeps config, data, cache and logs.

``WHISPERDESK_HOME=DIR`` puts everything under DIR: tests use it to stay away from the user's real dirs and
portable installs use it to live on a USB stick.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "WhisperDesk"
HOME_ENV = "WHISPERDESK_HOME"


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
        for d in (self.config_dir, self.data_dir, self.cache_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
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
