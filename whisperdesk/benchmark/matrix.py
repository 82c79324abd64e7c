"""The compute type × batch size table: what is asked, what each row measured, which setting wins.

Data and text only, so the window can show a report without running anything; :mod:`.run` fills it. Each
row runs the files through the job processor with the app's worker count for that batch size (see
:mod:`whisperdesk.benchmark.app_path`) on a model loaded as the app loads it, and reports speed, peak
memory and — where the files' texts are known — word error rate, so a fast row that loses words shows it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisperdesk.benchmark.memory import MemoryCheck, mb, memory_line
from whisperdesk.benchmark.wer import Score
from whisperdesk.core.settings import DecodeOptions

DEFAULT_COMPUTE_TYPES = ("int8", "int8_float16", "float16", "float32")
DEFAULT_BATCH_SIZES = (1, 4, 8, 16)


@dataclass(frozen=True)
class BenchRequest:
    files: tuple[Path, ...]
    model: str
    models_dir: Path
    device: str = "auto"
    compute_types: tuple[str, ...] = DEFAULT_COMPUTE_TYPES
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    options: DecodeOptions = field(default_factory=DecodeOptions)  # the app's defaults
    cpu_threads: int = 0
    local_files_only: bool = False
    references: Mapping[Path, str] = field(default_factory=dict, hash=False)  # known texts, for WER
    memory_jobs: int = 0  # > 0: queue this many short files at once and report RSS growth
    memory_files: tuple[Path, ...] = ()  # the short files to copy into ``memory_jobs`` distinct files


@dataclass(frozen=True)
class BenchRow:
    compute_type: str
    batch_size: int
    status: str  # "ok" | "skipped" | "failed"
    reason: str = ""
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    load_seconds: float | None = None
    peak_rss_bytes: int | None = None
    peak_vram_bytes: int | None = None
    files_ok: int = 0
    files_failed: int = 0
    workers: int = 1
    wer: Score | None = None

    @property
    def speed(self) -> float:
        """Audio seconds transcribed per wall-clock second (× realtime)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def rtf(self) -> float:
        """Realtime factor: wall-clock seconds per audio second (lower is faster)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds > 0 else math.inf


@dataclass(frozen=True)
class BenchReport:
    model: str
    device: str
    device_note: str
    files: int
    options: DecodeOptions
    rows: tuple[BenchRow, ...]
    recommended: BenchRow | None
    recommendation: str
    memory: MemoryCheck | None = None
    audio_seconds: float = 0.0


def recommend(rows: Sequence[BenchRow], device: str) -> tuple[BenchRow | None, str]:
    """Fastest setting; within 3 % of it, the one needing least memory (VRAM on GPU, RSS on CPU)."""
    ok = [r for r in rows if r.status == "ok" and r.files_failed == 0 and r.speed > 0]
    if not ok:
        return None, "no setting completed: see the reasons in the table"
    fastest = max(r.speed for r in ok)
    near = [r for r in ok if r.speed >= 0.97 * fastest]

    def memory(row: BenchRow) -> float:
        gpu = device == "cuda" and row.peak_vram_bytes is not None
        value = row.peak_vram_bytes if gpu else row.peak_rss_bytes
        return float(value) if value is not None else math.inf

    best = min(near, key=lambda r: (memory(r), -r.speed))
    peak = mb(best.peak_vram_bytes if device == "cuda" else best.peak_rss_bytes)
    return best, (
        f"recommended: --compute-type {best.compute_type} --batch-size {best.batch_size} "
        f"({best.speed:.1f}× realtime, peak {'VRAM' if device == 'cuda' else 'RSS'} {peak})"
    )


def options_line(o: DecodeOptions) -> str:
    return (
        f"beam {o.beam_size}, temperature {','.join(f'{t:g}' for t in o.temperature)}, "
        f"language {o.language or 'auto'}, max new tokens {o.max_new_tokens or 'none'}, "
        f"VAD {'on' if o.vad else 'off'}"
    )


def format_matrix(report: BenchReport) -> str:
    lines = [
        f"model {report.model} on {report.device} ({report.device_note}); {report.files} files, "
        f"{report.audio_seconds / 60:.1f} min of audio; {options_line(report.options)}",
        "",
        f"{'compute type':<14}{'batch':>6}{'audio s/s':>11}{'WER':>8}{'RTF':>8}{'load s':>8}{'peak RSS':>11}"
        f"{'peak VRAM':>11}{'jobs':>6}  status",
    ]
    for r in report.rows:
        if r.status == "ok":
            lines.append(
                f"{r.compute_type:<14}{r.batch_size:>6}{r.speed:>11.1f}{(str(r.wer) if r.wer else 'n/a'):>8}"
                f"{r.rtf:>8.3f}{(r.load_seconds or 0.0):>8.1f}{mb(r.peak_rss_bytes):>11}"
                f"{mb(r.peak_vram_bytes):>11}{r.workers:>6}  ok"
                + (f" ({r.files_failed} files failed: {r.reason})" if r.files_failed else "")
            )
        else:
            dashes = "".join(f"{'-':>{w}}" for w in (11, 8, 8, 8, 11, 11, 6))
            lines.append(f"{r.compute_type:<14}{r.batch_size:>6}{dashes}  {r.status}: {r.reason}")
    lines += [
        "",
        "every row runs the app's own path: the files queued, claimed by the job processor on the app's "
        "number of job threads ('jobs'), transcripts written; WER n/a where the files' texts are unknown",
        report.recommendation,
    ]
    if report.memory is not None:
        lines.append(memory_line(report.memory))
    return "\n".join(lines)


def to_json(report: Any) -> str:
    """A report as JSON (paths as text, each WER also as a rate)."""
    import json

    def default(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        raise TypeError(type(value).__name__)

    def with_rates(data: Any) -> Any:
        if isinstance(data, dict):
            out = {k: with_rates(v) for k, v in data.items()}
            if {"errors", "words"} <= set(out) and len(out) == 2:
                out["rate"] = out["errors"] / out["words"] if out["words"] else 0.0
            return out
        if isinstance(data, (list, tuple)):
            return [with_rates(v) for v in data]
        return data

    return json.dumps(with_rates(dataclasses.asdict(report)), indent=2, default=default)
