"""Options shared by `transcribe`, `watch` and `bench`, merged over the saved settings."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from whisperdesk.core.settings import (
    COMPUTE_TYPES,
    DEVICES,
    OUTPUT_FORMATS,
    TASKS,
    InvalidSetting,
    Settings,
)
from whisperdesk.core.speakers.count import InvalidSpeakerCount, SpeakerCount, parse_speaker_count


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _temperatures(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a temperature or a comma-separated fallback list such as 0,0.2,0.4"
        ) from None
    if not values or any(not 0.0 <= v <= 2.0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: temperatures must be between 0 and 2")
    return values


def _formats(text: str) -> tuple[str, ...]:
    values = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    bad = [v for v in values if v not in OUTPUT_FORMATS]
    if not values or bad:
        raise argparse.ArgumentTypeError(
            f"unknown format(s) {', '.join(bad) or text!r}; choose from {','.join(OUTPUT_FORMATS)}"
        )
    return values


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", help="model name (e.g. small, large-v3) or a local CTranslate2 model folder"
    )
    group.add_argument("--device", choices=DEVICES)
    group.add_argument("--compute-type", choices=COMPUTE_TYPES, dest="compute_type")
    group.add_argument("--batch-size", type=_positive_int, dest="batch_size")
    group.add_argument("--cpu-threads", type=int, dest="cpu_threads", help="0: automatic")


def add_decode_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding")
    group.add_argument("--beam-size", type=_positive_int, dest="beam_size")
    group.add_argument("--language", help="language code such as en or de; 'auto' detects it")
    group.add_argument("--task", choices=TASKS)
    group.add_argument("--no-vad", action="store_true", dest="no_vad", help="transcribe silence too")
    group.add_argument("--vad-min-silence-ms", type=int, dest="vad_min_silence_ms")
    group.add_argument("--word-timestamps", action="store_true", dest="word_timestamps")
    group.add_argument("--initial-prompt", dest="initial_prompt")
    group.add_argument(
        "--temperature",
        type=_temperatures,
        help="a temperature or a fallback list, e.g. 0 or 0,0.2,0.4 (default: 0,0.2,…,1.0)",
    )
    group.add_argument("--max-new-tokens", type=_positive_int, dest="max_new_tokens")


def add_output_options(parser: argparse.ArgumentParser, *, formats: bool = True) -> None:
    group = parser.add_argument_group("output")
    if formats:
        group.add_argument(
            "--format", type=_formats, dest="formats", help=f"comma list of {','.join(OUTPUT_FORMATS)}"
        )
    group.add_argument(
        "--output-dir", dest="output_dir", help="write transcripts here (default: beside source)"
    )
    group.add_argument("--max-line-length", type=int, dest="max_line_length")


def _speaker_count(text: str) -> SpeakerCount:
    try:
        return parse_speaker_count(text)
    except InvalidSpeakerCount as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_speaker_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speakers")
    group.add_argument(
        "--speakers",
        type=_speaker_count,
        metavar="auto|N|MIN-MAX",
        help="label who speaks when: auto-detect the number of speakers, exactly N, or a range such as 2-4",
    )


def _override(section: Any, args: argparse.Namespace, names: tuple[str, ...]) -> Any:
    changes = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    return dataclasses.replace(section, **changes) if changes else section


def settings_from_args(base: Settings, args: argparse.Namespace) -> Settings:
    """Apply command-line overrides to the saved settings; raises InvalidSetting naming the bad option."""
    model = _override(base.model, args, ("model", "device", "compute_type", "batch_size", "cpu_threads"))
    decode = _override(
        base.decode,
        args,
        ("beam_size", "task", "vad_min_silence_ms", "initial_prompt", "temperature", "max_new_tokens"),
    )
    language = getattr(args, "language", None)
    if language is not None:
        decode = dataclasses.replace(decode, language=None if language.lower() == "auto" else language)
    if getattr(args, "no_vad", False):
        decode = dataclasses.replace(decode, vad=False)
    if getattr(args, "word_timestamps", False):
        decode = dataclasses.replace(decode, word_timestamps=True)
    output = _override(base.output, args, ("formats", "output_dir", "max_line_length"))
    settings = dataclasses.replace(base, model=model, decode=decode, output=output)
    settings.validate()
    return settings


__all__ = [
    "InvalidSetting",
    "add_decode_options",
    "add_model_options",
    "add_output_options",
    "add_speaker_options",
    "settings_from_args",
]
