"""From a settings value ("builtin", "small", "org/repo", a folder) to a model folder on this disk."""

from __future__ import annotations

import logging
from pathlib import Path

from whisperdesk.core.errors import ModelUnavailableError
from whisperdesk.core.models.builtin import (
    BUILTIN_LABEL,
    builtin_dir,
    ensure_builtin,
    installed_source,
    is_builtin,
)
from whisperdesk.core.models.builtin import damaged_files as builtin_damaged_files
from whisperdesk.core.models.catalogue import repo_id_for
from whisperdesk.core.models.download import DownloadError, download_model, offline
from whisperdesk.core.models.store import (
    damage_message,
    damaged_download,
    damaged_files,
    installed_path,
    local_folder_problems,
    model_folder,
    read_manifest,
)

log = logging.getLogger(__name__)

_WAYS_OUT = "Use the built-in model, download it in Models…, or choose a model folder you already have."


def looks_like_folder(model: str) -> bool:
    path = Path(model).expanduser()
    return model.startswith((".", "~", "/", "\\")) or path.exists() or (len(model) > 1 and model[1] == ":")


def resolve(model: str, models_dir: Path, *, local_files_only: bool = False) -> Path:
    """The folder to load for ``model``; raises ModelUnavailableError with what to do."""
    if is_builtin(model):
        return ensure_builtin(models_dir).path
    if looks_like_folder(model):
        return _local_folder(model)
    repo_id = repo_id_for(model)
    if repo_id is None:
        raise ModelUnavailableError(
            f"WhisperDesk does not know a model called {model!r}. {_WAYS_OUT} "
            "(`whisperdesk models list` shows the names.)"
        )
    found = installed_path(model, models_dir, repo_id)
    if found is not None:
        return found
    damaged = damaged_download(model, models_dir)
    if damaged:
        raise ModelUnavailableError(damage_message(model, damaged))
    if local_files_only or offline():
        raise ModelUnavailableError(
            f"The model {model} is not downloaded yet. Use the built-in model, download it (in the window: "
            f"Tools → Models…; on the command line: whisperdesk models download {model}), or choose a model "
            "folder you already have."
        )
    try:
        return download_model(model, models_dir)
    except DownloadError as exc:
        raise ModelUnavailableError(f"The model {model} is not downloaded yet and {_lower(exc)}") from exc


def damage_behind_failed_load(model: str, models_dir: Path) -> str | None:
    """After a load failed: hash every file of a downloaded model against its manifest (the check before
    a load only sizes model.bin), so a damaged file is named with the fix, in `models verify`'s words,
    instead of the library's guess. None when nothing is damaged or there is no hash list (a folder)."""
    if is_builtin(model) or looks_like_folder(model) or repo_id_for(model) is None:
        return None  # the built-in model was hashed in full just before the load
    folder = model_folder(model, models_dir)
    manifest = read_manifest(folder)
    bad = damaged_files(folder, manifest, full=True) if manifest is not None else []
    return damage_message(model, bad) if bad else None


def _local_folder(model: str) -> Path:
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ModelUnavailableError(
            f"The model folder {folder} does not exist (moved or deleted?). {_WAYS_OUT}"
        )
    problems = local_folder_problems(folder)
    if problems:
        raise ModelUnavailableError(
            f"The model folder {folder} cannot be used: {'; '.join(problems)}. Choose a faster-whisper "
            "(CTranslate2) model folder with model.bin, config.json, tokenizer.json and vocabulary, "
            "or use the built-in model."
        )
    return folder


def _lower(exc: Exception) -> str:
    text = str(exc)
    return text[:1].lower() + text[1:]


def availability(model: str, models_dir: Path) -> tuple[bool, str]:
    """Whether ``model`` can be loaded right now without a download, and what it is; writes nothing."""
    if is_builtin(model):
        copy = builtin_dir(models_dir) / "model.bin"
        if not builtin_damaged_files(copy.parent):
            return True, f"{BUILTIN_LABEL}: available ({copy.parent})"
        source = installed_source()
        if source is not None and not source.missing():
            damaged = " (the cached copy is damaged; it is rebuilt at first use)" if copy.is_file() else ""
            return True, f"{BUILTIN_LABEL}: available, prepared at first use{damaged}"
        return (
            False,
            f"{BUILTIN_LABEL}: NOT available: its installed files are missing; reinstall WhisperDesk",
        )
    try:
        path = resolve(model, models_dir, local_files_only=True)
    except ModelUnavailableError as exc:
        return False, f"{model}: NOT available: {exc}"
    return True, f"{model}: available ({path})"
