"""What the window says when a model cannot be used: our own sentences, never a library's exception text.

WhisperDesk's own errors (ModelUnavailableError, ConfigError, DownloadError) are written for people and are
shown as they are. Anything else (CTranslate2 refusing a file, a library bug) becomes one plain sentence;
the log keeps the original text for a bug report.
"""

from __future__ import annotations

from pathlib import Path

from whisperdesk.core.errors import ModelLoadError, WhisperDeskError
from whisperdesk.core.models.builtin import BUILTIN_LABEL, is_builtin


def model_label(model: str) -> str:
    if is_builtin(model):
        return BUILTIN_LABEL
    path = Path(model).expanduser()
    return path.name if path.is_dir() else model


def plain_message(error_type: type[BaseException] | None, message: str, model: str) -> str:
    """One sentence for the window about an error of ``error_type`` whose own text is ``message``."""
    if (
        error_type is not None
        and issubclass(error_type, WhisperDeskError)
        and error_type is not ModelLoadError
    ):
        return message
    return (
        f"The model {model_label(model)} could not be loaded: its files may be damaged, or it is not a "
        "faster-whisper model. The log (View → Log) has the details."
    )
