"""Logging to a rotating file in the log dir (always) and to stderr (CLI)."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path
from typing import TextIO

_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"
_OWNED_LOGGERS = ("whisperdesk", "faster_whisper")
_MARK = "_whisperdesk_handler"


def setup_logging(
    log_dir: Path, *, stderr: TextIO | None = None, stderr_level: int = logging.WARNING
) -> None:
    """Install our handlers, replacing any we installed before (safe to call again, e.g. in tests)."""
    log_dir = Path(log_dir)
    handlers: list[logging.Handler] = []
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_dir / "whisperdesk.log", maxBytes=2_000_000, backupCount=5, encoding="utf-8", delay=True
        )
        file_handler.setLevel(logging.INFO)
        file_handler.setFormatter(logging.Formatter(_FORMAT))
        handlers.append(file_handler)
    except OSError as exc:  # a read-only log dir must not stop transcription
        logging.getLogger(__name__).warning("cannot write logs to %s: %s", log_dir, exc)
    if stderr is not None:
        console = logging.StreamHandler(stderr)
        console.setLevel(stderr_level)
        console.setFormatter(logging.Formatter("whisperdesk: %(levelname)s: %(message)s"))
        handlers.append(console)
    for name in _OWNED_LOGGERS:
        logger = logging.getLogger(name)
        teardown_handlers(logger)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        for handler in handlers:
            setattr(handler, _MARK, True)
            logger.addHandler(handler)


def teardown_handlers(logger: logging.Logger | None = None) -> None:
    loggers = [logger] if logger else [logging.getLogger(n) for n in _OWNED_LOGGERS]
    for lg in loggers:
        for handler in list(lg.handlers):
            if getattr(handler, _MARK, False):
                lg.removeHandler(handler)
                handler.close()
        lg.propagate = True
