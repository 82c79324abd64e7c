"""One typed settings object, saved as versioned JSON under the user's config dir.

A bad file never stops the app: each invalid key is reported (by name and value) and replaced by its
default; an unreadable file is kept as ``settings.json.bak`` and defaults are used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from whisperdesk.core.atomic import atomic_write_text

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1

DEVICES = ("auto", "cpu", "cuda")
TASKS = ("transcribe", "translate")
OUTPUT_FORMATS = ("txt", "srt", "vtt", "json", "docx", "md")
AFTER_PROCESSING = ("leave", "move", "delete")
KNOWN_MODELS = (
    "tiny",
    "tiny.en",
    "base",
    "base.en",
    "small",
    "small.en",
    "medium",
    "medium.en",
    "large-v1",
    "large-v2",
    "large-v3",
    "large-v3-turbo",
    "distil-large-v3",
)
COMPUTE_TYPES = (
    "default",
    "auto",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)
DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class SettingsWarning(UserWarning):
    """A settings value was invalid and its default was used instead."""


@dataclass(frozen=True)
class ModelConfig:
    """What decides which model object is loaded; changing any field reloads the shared model."""

    model: str = "builtin"  # the built-in model: works offline from the first start
    device: str = "auto"
    compute_type: str = "int8"
    batch_size: int = 8
    cpu_threads: int = 0  # 0: CTranslate2 picks (physical cores)

    def validate(self) -> None:
        _check(bool(self.model.strip()), "model", self.model, "a model name or a local model folder")
        _check(self.device in DEVICES, "device", self.device, f"one of {', '.join(DEVICES)}")
        _check(
            self.compute_type in COMPUTE_TYPES,
            "compute_type",
            self.compute_type,
            f"one of {', '.join(COMPUTE_TYPES)}",
        )
        _check(1 <= self.batch_size <= 256, "batch_size", self.batch_size, "an integer from 1 to 256")
        _check(0 <= self.cpu_threads <= 512, "cpu_threads", self.cpu_threads, "0 (automatic) or a count")


@dataclass(frozen=True)
class DecodeOptions:
    """Per-job decoding options; jobs with equal options may share a batch."""

    beam_size: int = 5
    language: str | None = None  # None: detect
    task: str = "transcribe"
    vad: bool = True
    vad_min_silence_ms: int = 1000
    word_timestamps: bool = False
    initial_prompt: str | None = None
    temperature: tuple[float, ...] = DEFAULT_TEMPERATURES
    max_new_tokens: int | None = None

    def validate(self) -> None:
        _check(1 <= self.beam_size <= 32, "beam_size", self.beam_size, "an integer from 1 to 32")
        _check(
            self.language is None or (isinstance(self.language, str) and 2 <= len(self.language) <= 8),
            "language",
            self.language,
            "a language code such as 'en' or 'de', or null for auto-detect",
        )
        _check(self.task in TASKS, "task", self.task, f"one of {', '.join(TASKS)}")
        _check(
            0 <= self.vad_min_silence_ms <= 60_000,
            "vad_min_silence_ms",
            self.vad_min_silence_ms,
            "milliseconds from 0 to 60000",
        )
        _check(
            len(self.temperature) >= 1 and all(0.0 <= t <= 2.0 for t in self.temperature),
            "temperature",
            self.temperature,
            "one or more values from 0.0 to 2.0",
        )
        _check(
            self.max_new_tokens is None or 1 <= self.max_new_tokens <= 448,
            "max_new_tokens",
            self.max_new_tokens,
            "null or an integer from 1 to 448",
        )


@dataclass(frozen=True)
class OutputOptions:
    formats: tuple[str, ...] = ("txt", "srt", "vtt", "json")
    output_dir: str | None = None  # None: beside the source file
    max_line_length: int = 42

    def validate(self) -> None:
        _check(
            len(self.formats) >= 1 and all(f in OUTPUT_FORMATS for f in self.formats),
            "formats",
            self.formats,
            f"one or more of {', '.join(OUTPUT_FORMATS)}",
        )
        _check(10 <= self.max_line_length <= 200, "max_line_length", self.max_line_length, "10 to 200")


@dataclass(frozen=True)
class WatchedFolder:
    path: str
    enabled: bool = True
    recursive: bool = False
    output_dir: str | None = None  # None: the global output folder (or beside the source)
    after_processing: str = "leave"  # leave | move (to a "done" subfolder) | delete
    polling: bool = False
    speakers: str | None = None  # speaker labels: None off, else "auto", "N" or "MIN-MAX"

    def validate(self) -> None:
        _check(bool(self.path), "path", self.path, "a folder path")
        _check(
            _speakers_ok(self.speakers), "speakers", self.speakers, "null, auto, a number or a range like 2-4"
        )
        _check(
            self.after_processing in AFTER_PROCESSING,
            "after_processing",
            self.after_processing,
            f"one of {', '.join(AFTER_PROCESSING)}",
        )


def _speakers_ok(value: object) -> bool:
    from whisperdesk.core.speakers.count import InvalidSpeakerCount, parse_speaker_count

    if value is None:
        return True
    try:
        parse_speaker_count(str(value))
    except InvalidSpeakerCount:
        return False
    return isinstance(value, str)


@dataclass(frozen=True)
class UiOptions:
    close_to_tray: bool = False
    notify_on_finish: bool = True
    settle_seconds: float = 2.0
    rescan_minutes: float = 5.0
    remember_voices: bool = False  # keep the voices the user names, to name them in later recordings (opt-in)

    def validate(self) -> None:
        _check(0 <= self.settle_seconds <= 600, "settle_seconds", self.settle_seconds, "0 to 600 seconds")
        _check(0.1 <= self.rescan_minutes <= 1440, "rescan_minutes", self.rescan_minutes, "0.1 to 1440")


@dataclass(frozen=True)
class Settings:
    model: ModelConfig = field(default_factory=ModelConfig)
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    watched: tuple[WatchedFolder, ...] = ()
    ui: UiOptions = field(default_factory=UiOptions)

    def validate(self) -> None:
        self.model.validate()
        self.decode.validate()
        self.output.validate()
        self.ui.validate()
        for folder in self.watched:
            folder.validate()

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["version"] = SETTINGS_VERSION
        return data


class InvalidSetting(ValueError):
    def __init__(self, key: str, value: object, expected: str) -> None:
        self.key = key
        self.value = value
        super().__init__(f"{key}={value!r} is invalid: expected {expected}")


def _check(ok: bool, key: str, value: object, expected: str) -> None:
    if not ok:
        raise InvalidSetting(key, value, expected)


# --- (de)serialisation --------------------------------------------------------------------------------
_SECTIONS = {"model": ModelConfig, "decode": DecodeOptions, "output": OutputOptions, "ui": UiOptions}


def _coerce(value: Any, default: Any) -> Any:
    """Bring JSON values back to the dataclass field's type (lists to tuples, ints to floats)."""
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple):
            raise TypeError("expected a list")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("expected a number")
        return float(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("expected an integer")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise TypeError("expected a string")
        return value
    return value  # Optional fields: validated by the section's validate()


def _build_section(cls: type, raw: Any, prefix: str, problems: list[str], default: Any = None) -> Any:
    default = cls() if default is None else default
    if not isinstance(raw, dict):
        if raw is not None:
            problems.append(f"{prefix}: expected an object, got {raw!r}; using defaults")
        return default
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in raw:
            continue
        try:
            candidate = dataclasses.replace(
                default, **{f.name: _coerce(raw[f.name], getattr(default, f.name))}
            )
            candidate.validate()
        except (TypeError, InvalidSetting) as exc:
            detail = exc if isinstance(exc, InvalidSetting) else f"{f.name}={raw[f.name]!r}: {exc}"
            problems.append(f"{prefix}.{detail}; using default {getattr(default, f.name)!r}")
            continue
        values[f.name] = getattr(candidate, f.name)
    unknown = sorted(set(raw) - {f.name for f in fields(cls)})
    for key in unknown:
        problems.append(f"{prefix}.{key}: unknown setting, ignored")
    result = dataclasses.replace(default, **values)
    try:
        result.validate()
    except InvalidSetting as exc:  # a combination of individually valid values
        problems.append(f"{prefix}.{exc}; using defaults for {prefix}")
        return default
    return result


def settings_from_dict(raw: dict[str, Any]) -> tuple[Settings, list[str]]:
    """Build settings from parsed JSON; returns the settings and a list of human-readable problems."""
    problems: list[str] = []
    version = raw.get("version", SETTINGS_VERSION)
    if not isinstance(version, int) or version > SETTINGS_VERSION:
        problems.append(
            f"version={version!r} is newer than this WhisperDesk understands; reading what it can"
        )
    sections = {name: _build_section(cls, raw.get(name), name, problems) for name, cls in _SECTIONS.items()}
    watched: list[WatchedFolder] = []
    raw_watched = raw.get("watched", [])
    if not isinstance(raw_watched, list):
        problems.append(f"watched: expected a list, got {raw_watched!r}; no folders watched")
        raw_watched = []
    for i, item in enumerate(raw_watched):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            problems.append(f"watched[{i}]: expected an object with a 'path', got {item!r}; skipped")
            continue
        base = WatchedFolder(path=item["path"])
        if not base.path:
            problems.append(f"watched[{i}]: empty path; skipped")
            continue
        watched.append(_build_section(WatchedFolder, item, f"watched[{i}]", problems, base))
    return Settings(watched=tuple(watched), **sections), problems


def load_settings(path: Path) -> tuple[Settings, list[str]]:
    """Read settings; never raises for bad content. Problems are logged and returned."""
    path = Path(path)
    if not path.exists():
        return Settings(), []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("the top level is not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        backup = path.with_name(path.name + ".bak")
        try:
            shutil.copy2(path, backup)
            kept = f"kept as {backup}"
        except OSError as copy_exc:
            kept = f"could not keep a copy ({copy_exc})"
        problem = f"{path} is not valid settings ({exc}); using defaults, the bad file {kept}"
        log.warning(problem)
        return Settings(), [problem]
    settings, problems = settings_from_dict(raw)
    if problems:
        backup = path.with_name(path.name + ".bak")
        with contextlib.suppress(OSError):
            shutil.copy2(path, backup)
        for p in problems:
            log.warning("settings %s: %s", path, p)
    return settings, problems


def save_settings(path: Path, settings: Settings) -> None:
    settings.validate()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(settings.to_dict(), indent=2, ensure_ascii=False) + "\n")


def save_merged(path: Path, base: Settings, mine: Settings) -> Settings:
    """Save this process's changes (``base`` → ``mine``) over what is in the file now; returns the result.

    The window and ``whisperdesk watch`` (or a second window) may each have read the file earlier; saving
    whole settings would silently undo what the other saved since. Instead, under a lock shared by every
    process, the file is read again, only the values this process changed are applied to it, and the
    merge is written. Values both changed: this save wins (it is the newer request).
    """
    from whisperdesk.core.instance import locked

    path = Path(path)
    mine.validate()
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.with_name(path.name + ".lock")):
        theirs, _problems = load_settings(path) if path.exists() else (base, [])
        merged_dict = _merge(_as_json(base), _as_json(mine), _as_json(theirs))
        merged, problems = settings_from_dict(merged_dict)
        if problems:  # never write a half-valid merge: this process's settings win whole
            log.warning("settings %s: could not merge with the saved ones (%s)", path, "; ".join(problems))
            merged = mine
        save_settings(path, merged)
    return merged


def _as_json(settings: Settings) -> dict[str, Any]:
    """The settings as they read back from the file (lists, not tuples)."""
    return dict(json.loads(json.dumps(settings.to_dict())))


def _merge(base: dict[str, Any], mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Three-way merge by key: a value this side changed is taken from ``mine``, any other from ``theirs``.
    Lists (watched folders, formats) are whole values."""
    merged = dict(theirs)
    for key, value in mine.items():
        old = base.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and isinstance(theirs.get(key), dict):
            merged[key] = _merge(old, value, theirs[key])
        elif key == "watched" and all(isinstance(x, list) for x in (value, old, theirs.get(key))):
            merged[key] = _merge_folders(old, value, theirs[key])
        elif value != old or key not in theirs:
            merged[key] = value
    return merged


def _merge_folders(base: list[Any], mine: list[Any], theirs: list[Any]) -> list[Any]:
    """Watched folders by path: a folder one side added, removed or changed stays so, whoever saved last."""

    def by_path(items: list[Any]) -> dict[str, Any]:
        return {str(i.get("path")): i for i in items if isinstance(i, dict)}

    old, new, other = by_path(base), by_path(mine), by_path(theirs)
    result = dict(other)
    for path in old.keys() - new.keys():
        result.pop(path, None)  # removed here
    for path, folder in new.items():
        if folder != old.get(path):
            result[path] = folder  # added or changed here
    return list(result.values())
