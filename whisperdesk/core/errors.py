"""User-facing errors.

Every message names the file or value at fault, says what is wrong and, where there is one, what to do.
The CLI prints ``str(error)``; the GUI shows it in the job's error column; the job store records it.
"""

from __future__ import annotations


class WhisperDeskError(Exception):
    """Base for errors that are the user's input or environment, not a bug."""


class Cancelled(Exception):
    """Raised inside a job when the user canceled it; never shown as a failure."""


# --- audio -------------------------------------------------------------------------------------------
class AudioError(WhisperDeskError):
    """A source file cannot be turned into audio."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(reason)


class FileDisappearedError(AudioError):
    pass


class EmptyFileError(AudioError):
    pass


class TruncatedFileError(AudioError):
    pass


class NotAudioError(AudioError):
    pass


class NoAudioStreamError(AudioError):
    pass


class UnreadableFileError(AudioError):
    pass


# --- model / engine ----------------------------------------------------------------------------------
class ModelError(WhisperDeskError):
    pass


class ModelUnavailableError(ModelError):
    """A named model is not cached and cannot be downloaded (offline, unknown name)."""


class ModelLoadError(ModelError):
    pass


class ConfigError(WhisperDeskError):
    """An option value the engine cannot use (e.g. a compute type the device lacks)."""


class UnsupportedComputeTypeError(ConfigError):
    def __init__(self, compute_type: str, device: str, supported: list[str]) -> None:
        self.compute_type = compute_type
        self.device = device
        self.supported = sorted(supported)
        super().__init__(
            f"compute type {compute_type!r} is not supported on {device}; "
            f"choose one of: {', '.join(self.supported)}"
        )


class CudaUnavailableError(ModelError):
    """CUDA libraries (cuBLAS/cuDNN) failed at first use; the engine falls back to CPU."""


# --- outputs -----------------------------------------------------------------------------------------
# Error kinds a failed job records, so the window can offer the action that fixes it.
OUTPUT_EXISTS = "output_exists"  # a file in the way: "Overwrite" or "Choose another folder"
OUTPUT_UNWRITABLE = "output_unwritable"  # no permission, read-only, gone: "Choose another folder"
DISK_FULL = "disk_full"  # free some space, or "Choose another folder" on another disk
NAME_TOO_LONG = "name_too_long"  # a transcript's file name is longer than the folder allows: rename it
# Not a failure: the recording was replaced by a newer one (queued as its own job); nothing was written.
SUPERSEDED = "superseded"


class OutputError(WhisperDeskError):
    kind = OUTPUT_UNWRITABLE

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class OutputConflictError(OutputError):
    """An output path holds a file WhisperDesk did not write; we never overwrite it silently."""

    kind = OUTPUT_EXISTS


class OutputWriteError(OutputError):
    """The disk refused: full (``kind`` DISK_FULL), read-only or no permission (OUTPUT_UNWRITABLE)."""
