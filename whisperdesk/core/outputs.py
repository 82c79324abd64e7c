"""Write a :class:`Transcript` as TXT, SRT, WebVTT, JSON, DOCX and Markdown next to the recording (or in an
output folder).

Safety rules: every format is rendered in memory before anything touches the disk; each file is written
atomically; a file WhisperDesk did not write (or that someone edited since) is never replaced unless the
caller says ``overwrite=True``; and if writing fails half-way, the files this call already replaced are put
back, so a failed job leaves either the previous set or nothing.

"WhisperDesk wrote it" is decided by an :class:`OutputLedger`: a small JSON file in the data dir mapping each
output path to the SHA-256 of what we wrote and the recording it came from. A file whose current hash matches
its entry is ours and unedited, so a re-run may replace it.

SRT/VTT are serialised here rather than through pysubs2: pysubs2 treats ``{...}`` and ``\\N`` in the text as
ASS markup and does not escape ``<``/``&`` for WebVTT, which would corrupt ordinary transcript text.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisperdesk import __version__
from whisperdesk.core.atomic import atomic_write_bytes, atomic_write_text, temp_name_bytes
from whisperdesk.core.errors import (
    DISK_FULL,
    NAME_TOO_LONG,
    OUTPUT_UNWRITABLE,
    OutputConflictError,
    OutputWriteError,
)
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import OUTPUT_FORMATS, OutputOptions
from whisperdesk.core.transcript import Segment, Transcript, Word

log = logging.getLogger(__name__)

FORMAT_EXTENSIONS: dict[str, str] = {
    "txt": ".txt",
    "srt": ".srt",
    "vtt": ".vtt",
    "json": ".json",
    "docx": ".docx",
    "md": ".md",
}
BINARY_FORMATS = frozenset({"docx"})  # rendered as bytes only (:func:`render_bytes`)
JSON_SCHEMA_VERSION = 1
MAX_LINES_PER_CUE = 2
# The free-space floor is sized from the outputs to write: transcripts are kilobytes, so a fixed floor of
# megabytes would call a nearly full disk "full" for nothing. Before transcribing, their size is estimated
# from these generous bounds per hour of fast speech (JSON carries every word's timing); when they are
# rendered, it is known exactly.
OUTPUT_BYTES_PER_HOUR: dict[str, int] = {"txt": 120_000, "srt": 300_000, "vtt": 300_000, "json": 3_000_000}
ASSUMED_SECONDS = 3600.0  # a recording whose length is not known yet
FREE_MARGIN = 64 * 1024  # the ledger and the folder's own entries: never fill a disk to the last byte

# One lock for check-then-write across jobs: two workers finishing "talk.mp3" and "talk.wav" into the same
# folder must not both decide "talk.txt" is free. Writes are small; serialising them costs nothing.
_WRITE_LOCK = threading.Lock()


# --- subtitle cues -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class _Token:
    text: str
    glue: bool  # joins the previous token without a space (CJK words, pieces of a split word)
    start: float | None = None
    end: float | None = None


def subtitle_cues(
    transcript: Transcript, max_line_length: int = 42, max_lines: int = MAX_LINES_PER_CUE
) -> list[Cue]:
    """Cut segments into cues of at most ``max_lines`` lines of at most ``max_line_length`` characters.

    A segment that fits stays one cue with the segment's times. A longer one is split between words; with word
    timestamps the cut falls at the words' times, otherwise time is shared out in proportion to characters.
    Only a single word longer than a line is broken inside (CJK text has no spaces to break at).
    """
    if max_line_length < 1 or max_lines < 1:
        raise ValueError("max_line_length and max_lines must be at least 1")
    cues: list[Cue] = []
    for segment in transcript.segments:
        cues.extend(_segment_cues(segment, max_line_length, max_lines))
    return cues


def _segment_cues(segment: Segment, width: int, max_lines: int) -> list[Cue]:
    tokens = _split_long(_tokens(segment), width)
    if not tokens:
        return []
    groups: list[list[_Token]] = [[]]
    lines_used, line_len = 1, 0
    for tok in tokens:
        add = len(tok.text) + (0 if tok.glue or line_len == 0 else 1)
        if line_len and line_len + add > width:
            if lines_used == max_lines:
                groups.append([])
                lines_used = 1
            else:
                lines_used += 1
            line_len = 0
            add = len(tok.text)
        groups[-1].append(tok)
        line_len += add
    start, end = float(segment.start), max(float(segment.start), float(segment.end))
    total_chars = sum(len(_join(g)) for g in groups) or 1
    cues: list[Cue] = []
    done_chars = 0
    for i, group in enumerate(groups):
        if all(t.start is not None and t.end is not None for t in group):
            c_start, c_end = float(group[0].start or 0.0), float(group[-1].end or 0.0)
        else:
            c_start = start + (end - start) * done_chars / total_chars
            c_end = start + (end - start) * (done_chars + len(_join(group))) / total_chars
        done_chars += len(_join(group))
        if i == 0:
            c_start = start
        if i == len(groups) - 1:
            c_end = end
        if cues:
            c_start = max(c_start, cues[-1].end)
        c_start = min(max(c_start, start), end)
        c_end = min(max(c_end, c_start), end)
        cues.append(Cue(c_start, c_end, _balance(group, width, max_lines), segment.speaker))
    return cues


def _tokens(segment: Segment) -> list[_Token]:
    if segment.words:
        out = []
        for w in segment.words:
            text = " ".join(w.text.split())
            if text:
                glue = bool(out) and not w.text[:1].isspace()
                out.append(_Token(text, glue, float(w.start), float(w.end)))
        return out
    return [_Token(word, False) for word in segment.text.split()]


def _split_long(tokens: list[_Token], width: int) -> list[_Token]:
    out: list[_Token] = []
    for tok in tokens:
        if len(tok.text) <= width:
            out.append(tok)
            continue
        pieces = [tok.text[i : i + width] for i in range(0, len(tok.text), width)]
        timed = tok.start is not None and tok.end is not None
        for k, piece in enumerate(pieces):
            if timed:
                assert tok.start is not None and tok.end is not None
                span = tok.end - tok.start
                p_start = tok.start + span * (k * width) / len(tok.text)
                p_end = tok.start + span * min(len(tok.text), (k + 1) * width) / len(tok.text)
                out.append(_Token(piece, tok.glue if k == 0 else True, p_start, p_end))
            else:
                out.append(_Token(piece, tok.glue if k == 0 else True))
    return out


def _join(tokens: list[_Token]) -> str:
    parts: list[str] = []
    for i, tok in enumerate(tokens):
        if i and not tok.glue:
            parts.append(" ")
        parts.append(tok.text)
    return "".join(parts)


def _balance(tokens: list[_Token], width: int, max_lines: int) -> tuple[str, ...]:
    """Lay a cue's words out on as few lines as possible, as evenly as possible (reads better than greedy)."""
    whole = _join(tokens)
    if len(whole) <= width or len(tokens) == 1:
        return (whole,)
    if max_lines == 2:
        best: tuple[str, str] | None = None
        for k in range(1, len(tokens)):
            first, second = _join(tokens[:k]), _join(tokens[k:])
            if (
                len(first) <= width
                and len(second) <= width
                and (best is None or max(len(first), len(second)) < max(len(best[0]), len(best[1])))
            ):
                best = (first, second)
        if best is not None:
            return best
    lines: list[list[_Token]] = [[]]
    for tok in tokens:  # greedy fallback (more than two lines allowed)
        if lines[-1] and len(_join([*lines[-1], tok])) > width:
            lines.append([])
        lines[-1].append(tok)
    return tuple(_join(line) for line in lines)


# --- renderers ---------------------------------------------------------------------------------------
def render_txt(transcript: Transcript) -> str:
    if transcript.speakers:
        return _render_txt_turns(transcript)
    lines = [" ".join(s.text.split()) for s in transcript.segments]
    lines = [line for line in lines if line]
    return "\n".join(lines) + "\n" if lines else ""


def _render_txt_turns(transcript: Transcript) -> str:
    """One paragraph per speaker turn ("Speaker 1: …"), consecutive segments of one speaker joined."""
    paragraphs = [f"{t.speaker}: {t.text}" if t.speaker else t.text for t in speaker_turns(transcript)]
    return "\n\n".join(paragraphs) + "\n" if paragraphs else ""


@dataclass(frozen=True)
class Turn:
    speaker: str | None
    start: float
    end: float
    text: str


def speaker_turns(transcript: Transcript) -> list[Turn]:
    """Consecutive segments of one speaker joined into a turn; without speaker labels, one turn per segment
    (a whole recording as one paragraph would be unreadable, and its time stamps would say nothing)."""
    turns: list[Turn] = []
    labelled = bool(transcript.speakers)
    for seg in transcript.segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        if labelled and turns and turns[-1].speaker == seg.speaker:
            last = turns[-1]
            turns[-1] = Turn(last.speaker, last.start, max(last.end, float(seg.end)), f"{last.text} {text}")
        else:
            turns.append(Turn(seg.speaker, float(seg.start), float(seg.end), text))
    return turns


def render_srt(transcript: Transcript, max_line_length: int = 42) -> str:
    blocks = [
        f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{_srt_text(c)}\n"
        for i, c in enumerate(subtitle_cues(transcript, max_line_length), start=1)
    ]
    return "\n".join(blocks)


def _srt_text(cue: Cue) -> str:
    return f"{cue.speaker}: {cue.text}" if cue.speaker else cue.text


def render_vtt(transcript: Transcript, max_line_length: int = 42) -> str:
    blocks = ["WEBVTT\n"]
    for cue in subtitle_cues(transcript, max_line_length):
        text = "\n".join(_vtt_escape(line) for line in cue.lines)
        if cue.speaker:
            text = f"<v {_vtt_escape(cue.speaker)}>{text}"
        blocks.append(f"{_stamp(cue.start, '.')} --> {_stamp(cue.end, '.')}\n{text}\n")
    return "\n".join(blocks)


def render_json(transcript: Transcript) -> str:
    segments = []
    for i, seg in enumerate(transcript.segments):
        item: dict[str, Any] = {
            "id": i,
            "start": _time(seg.start),
            "end": _time(seg.end),
            "text": " ".join(seg.text.split()),
        }
        if seg.speaker is not None:
            item["speaker"] = seg.speaker
        if seg.words:
            item["words"] = [
                {
                    "start": _time(w.start),
                    "end": _time(w.end),
                    "word": w.text,
                    "probability": _num(w.probability),
                    **({"speaker": w.speaker} if w.speaker is not None else {}),
                }
                for w in seg.words
            ]
        segments.append(item)
    data: dict[str, Any] = {
        "schema_version": JSON_SCHEMA_VERSION,
        "generator": f"WhisperDesk {__version__}",
        "source": transcript.source,
        "language": transcript.language,
        "language_probability": _num(transcript.language_probability),
        "duration": _num(transcript.duration),
        "model": transcript.model,
        "compute_type": transcript.compute_type,
        "device": transcript.device,
        "task": transcript.task,
        "processing_time": _num(transcript.processing_time),
        "text": transcript.text,
        "segments": segments,
    }
    if transcript.extra:
        data["extra"] = transcript.extra
    if transcript.edited:
        data["edited"] = True  # corrected by hand: a reader (or a re-import) must not take it for raw output
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=_json_default) + "\n"


def transcript_from_json(data: Mapping[str, Any]) -> Transcript:
    """Read back what :func:`render_json` wrote (the library's record, the speaker store, a job's JSON output).

    Raises KeyError, TypeError or ValueError for a document that is not one; callers name the file.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("segments"), list):
        raise ValueError("not a WhisperDesk JSON transcript (no list of segments)")
    segments = []
    for item in data["segments"]:
        words = tuple(
            Word(
                float(w["start"]),
                float(w["end"]),
                str(w["word"]),
                float(w.get("probability") or 0.0),
                w.get("speaker"),
            )
            for w in item.get("words", ())
        )
        segments.append(
            Segment(float(item["start"]), float(item["end"]), str(item["text"]), words, item.get("speaker"))
        )
    return Transcript(
        source=str(data.get("source", "")),
        segments=segments,
        language=data.get("language"),
        language_probability=data.get("language_probability"),
        duration=float(data.get("duration") or 0.0),
        model=str(data.get("model", "")),
        compute_type=str(data.get("compute_type", "")),
        device=str(data.get("device", "")),
        processing_time=float(data.get("processing_time") or 0.0),
        task=str(data.get("task", "transcribe")),
        extra=dict(data.get("extra") or {}),
        edited=bool(data.get("edited", False)),
    )


def render_markdown(transcript: Transcript, when: float | None = None) -> str:
    """A heading with the file, the date and the duration, then one paragraph per speaker turn, each
    starting with its time stamp; the text is escaped so a word like ``*note*`` stays a word."""
    lines = [f"# {_md_escape(_title(transcript))}", "", f"*{_md_escape(_facts(transcript, when))}*", ""]
    for turn in speaker_turns(transcript):
        who = f" {_md_escape(turn.speaker)}:" if turn.speaker else ""
        lines += [f"**[{clock_time(turn.start)}]{who}** {_md_escape(turn.text)}", ""]
    return "\n".join(lines)


def render_docx(transcript: Transcript, when: float | None = None) -> bytes:
    """A Word document: a heading with the file, a line with the date and duration, then one paragraph per
    speaker turn with its time stamp (and the speaker in bold)."""
    import docx  # python-docx: only needed when someone asks for DOCX

    document = docx.Document()
    document.core_properties.title = _xml_safe(_title(transcript))
    document.core_properties.author = "WhisperDesk"
    document.add_heading(_xml_safe(_title(transcript)), level=1)
    document.add_paragraph(_xml_safe(_facts(transcript, when)))
    for turn in speaker_turns(transcript):
        paragraph = document.add_paragraph()
        paragraph.add_run(f"[{clock_time(turn.start)}] ")
        if turn.speaker:
            paragraph.add_run(_xml_safe(f"{turn.speaker}: ")).bold = True
        paragraph.add_run(_xml_safe(turn.text))
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def clock_time(seconds: float) -> str:
    """``hh:mm:ss`` for a time stamp a person reads (exports, search results)."""
    total = max(0, int(seconds)) if math.isfinite(seconds) else 0
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


def _title(transcript: Transcript) -> str:
    return Path(transcript.source).name or "Transcript"


def _facts(transcript: Transcript, when: float | None) -> str:
    date = time.strftime("%Y-%m-%d", time.localtime(time.time() if when is None else when))
    facts = [f"Date: {date}", f"Duration: {clock_time(transcript.duration)}"]
    if transcript.language:
        facts.append(f"Language: {transcript.language}")
    if transcript.edited:
        facts.append("Edited")
    return " · ".join(facts)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~!])")
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _xml_safe(text: str) -> str:
    """Word documents are XML: control characters (which a decoder can emit) would make python-docx refuse."""
    return _XML_INVALID.sub("", text)


def render(transcript: Transcript, fmt: str, options: OutputOptions | None = None) -> str:
    """A text format as a string; DOCX is binary: use :func:`render_bytes`."""
    width = (options or OutputOptions()).max_line_length
    if fmt == "txt":
        return render_txt(transcript)
    if fmt == "srt":
        return render_srt(transcript, width)
    if fmt == "vtt":
        return render_vtt(transcript, width)
    if fmt == "json":
        return render_json(transcript)
    if fmt == "md":
        return render_markdown(transcript)
    if fmt in BINARY_FORMATS:
        raise ValueError(f"{fmt} is a binary format: render it with render_bytes")
    raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")


def render_bytes(
    transcript: Transcript, fmt: str, options: OutputOptions | None = None, *, when: float | None = None
) -> bytes:
    """Any format as the bytes to write; ``when`` (epoch seconds) is the date DOCX and Markdown headings
    show: the transcription's, so a later re-render after an edit keeps it (default: now)."""
    if fmt == "docx":
        return render_docx(transcript, when)
    if fmt == "md":
        return render_markdown(transcript, when).encode("utf-8")
    return render(transcript, fmt, options).encode("utf-8")


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _time(value: float) -> float | None:
    return round(float(value), 3) if math.isfinite(value) else None


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None  # JSON has no NaN/inf


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    raise TypeError(f"transcript extra value {value!r} ({type(value).__name__}) cannot be stored as JSON")


# --- where outputs go --------------------------------------------------------------------------------
def output_paths(
    source: Path | str, options: OutputOptions, output_dir: Path | str | None = None
) -> dict[str, Path]:
    """``{format: path}`` for ``source``: ``talk.mp3`` → ``talk.txt``, ``talk.srt``, ...

    The folder is ``output_dir`` if given, else ``options.output_dir`` (a relative one is taken relative to the
    recording's folder, so "transcripts" means a subfolder beside each recording), else the recording's folder.
    """
    source = Path(source)
    if output_dir is not None:
        folder = Path(output_dir).expanduser()
    elif options.output_dir:
        folder = Path(options.output_dir).expanduser()
        if not folder.is_absolute():
            folder = source.parent / folder
    else:
        folder = source.parent
    paths: dict[str, Path] = {}
    for fmt in options.formats:
        if fmt not in FORMAT_EXTENSIONS:
            raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
        paths[fmt] = folder / (source.stem + FORMAT_EXTENSIONS[fmt])
    return paths


# --- ledger ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LedgerEntry:
    sha256: str
    source: str
    written_at: float
    pending: str | None = None  # hash about to be written: a crash mid-write must not orphan our own file

    @property
    def hashes(self) -> tuple[str, ...]:
        return (self.sha256,) if self.pending is None else (self.sha256, self.pending)


class OutputLedger:
    """Which output files WhisperDesk wrote, with their content hash: the licence to replace them later.

    Thread-safe. Every operation re-reads the file under a lock and writes it back atomically, so a CLI run
    and the GUI sharing one data dir lose at most an entry in a race — and a lost entry only makes a later
    run refuse to overwrite (the safe direction). An unreadable ledger counts as empty for the same reason.
    """

    FILE_NAME = "outputs-ledger.json"
    VERSION = 1
    PRUNE_ABOVE = 5000  # entries; beyond this, entries whose file is gone are dropped

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    def default(cls, paths: AppPaths | None = None) -> OutputLedger:
        return cls((paths or AppPaths.default()).data_dir / cls.FILE_NAME)

    def lookup(self, target: Path | str) -> LedgerEntry | None:
        with self._lock:
            raw = self._load().get(_key(target))
        if not isinstance(raw, dict):
            return None
        try:
            pending = raw.get("pending")
            return LedgerEntry(
                str(raw["sha256"]),
                str(raw.get("source", "")),
                float(raw.get("written_at", 0)),
                str(pending) if pending else None,
            )
        except (KeyError, TypeError, ValueError):
            return None

    def owns(self, target: Path | str, source: Path | str | None = None) -> bool:
        """True when ``target`` is, byte for byte, what we last wrote there (for ``source``, if given)."""
        entry = self.lookup(target)
        if entry is None or (source is not None and entry.source != _key(source)):
            return False
        return file_sha256(Path(target)) in entry.hashes

    def record(self, written: Mapping[Path, str], source: Path | str) -> None:
        """Remember ``{path: sha256}`` as written by WhisperDesk for ``source``."""
        now = time.time()
        with self._lock:
            entries = self._load()
            for target, digest in written.items():
                entries[_key(target)] = {"sha256": digest, "source": _key(source), "written_at": now}
            if len(entries) > self.PRUNE_ABOVE:
                entries = {k: v for k, v in entries.items() if os.path.lexists(k)}
            self._save(entries)

    def record_pending(self, about_to_write: Mapping[Path, str], source: Path | str) -> None:
        """Before writing: remember the hashes we are about to put there, beside what was there before.

        If the process dies between the writes and :meth:`record`, the next run still recognises the files
        as ours (either content) instead of refusing to replace them.
        """
        now = time.time()
        with self._lock:
            entries = self._load()
            for target, digest in about_to_write.items():
                old = entries.get(_key(target))
                base = (
                    old.get("sha256") if isinstance(old, dict) and old.get("source") == _key(source) else None
                )
                entries[_key(target)] = {
                    "sha256": base or digest,
                    "pending": digest,
                    "source": _key(source),
                    "written_at": now,
                }
            self._save(entries)

    def has_entries(self) -> bool:
        """True once WhisperDesk has written any transcript with this data folder."""
        with self._lock:
            return bool(self._load())

    def transcripts_of(self, source: Path | str, *, written_after: float) -> list[Path]:
        """Transcripts recorded for ``source`` that are still on disk and were written after
        ``written_after`` (the recording's modification time): the recording as it is now was transcribed."""
        with self._lock:
            entries = self._load()
        key = _key(source)
        found = []
        for target, raw in entries.items():
            if not isinstance(raw, dict) or raw.get("source") != key:
                continue
            try:
                when = float(raw.get("written_at", 0))
            except (TypeError, ValueError):
                continue
            if when >= written_after and os.path.isfile(target):
                found.append(Path(target))
        return sorted(found)

    def forget(self, targets: Iterable[Path | str]) -> None:
        with self._lock:
            entries = self._load()
            removed = [entries.pop(_key(t), None) for t in targets]
            if any(r is not None for r in removed):
                self._save(entries)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            log.warning(
                "output ledger %s is unreadable (%s); treating existing outputs as not ours", self.path, exc
            )
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return dict(entries) if isinstance(entries, dict) else {}

    def _save(self, entries: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            self.path, json.dumps({"version": self.VERSION, "entries": entries}, indent=1) + "\n"
        )


def _key(path: Path | str) -> str:
    return os.path.normcase(str(Path(path).expanduser().resolve(strict=False)))


def file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


# --- writing -----------------------------------------------------------------------------------------
_ABSENT = object()  # rollback marker: the target did not exist before this call
_UNKNOWN = object()  # the target existed but could not be read: leave whatever is there on rollback


def check_outputs(
    source: Path | str,
    options: OutputOptions,
    *,
    output_dir: Path | str | None = None,
    ledger: OutputLedger | None = None,
    overwrite: bool = False,
    duration: float | None = None,
) -> dict[str, Path]:
    """Before transcribing: raise now what writing would raise later, so a job fails in a moment instead of
    after its whole transcription. Creates the output folder, tries a file in it, looks at the free space
    (enough for the transcripts of ``duration`` seconds, an hour when not known) and runs the same "is
    anything in the way" checks as :func:`write_outputs`. Returns the planned paths.
    """
    options.validate()
    source = Path(source)
    paths = output_paths(source, options, output_dir)
    folder = next(iter(paths.values())).parent
    with _WRITE_LOCK:
        _make_folder(folder)
        _try_writing(folder, estimated_output_bytes(options.formats, duration))
        if ledger is not None and _taken_by_another_recording(paths.values(), source, ledger):
            paths = _full_name_paths(source, paths)
        _check_names(paths.values())
        _check_targets(source, paths.values(), ledger, overwrite)
    return paths


def check_output_folder(folder: Path | str) -> None:
    """Create ``folder`` if needed and try writing in it; raises :class:`OutputWriteError` as writing would.

    For a start-up answer (``whisperdesk watch``) before any recording is known or the model loads: the
    room asked for is the margin alone, since no recording's length is known yet (each job checks its own)."""
    with _WRITE_LOCK:
        _make_folder(Path(folder))
        _try_writing(Path(folder), FREE_MARGIN)


def write_outputs(
    transcript: Transcript,
    source: Path | str,
    options: OutputOptions,
    *,
    output_dir: Path | str | None = None,
    ledger: OutputLedger | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Render and write every format in ``options.formats``; returns ``{format: path}`` as written.

    Paths are :func:`output_paths`' unless the ledger shows one of them holds another recording's transcript
    (``talk.wav`` done before ``talk.mp3``): then the whole set is named after the full file name instead
    (``talk.mp3.txt``, ...).

    Raises :class:`OutputConflictError` (nothing written) when a target exists that the ``ledger`` does not
    show as ours and unedited — without a ledger every existing file is foreign — unless ``overwrite``.
    Raises :class:`OutputWriteError` when the disk refuses (full, read-only, no permission); files replaced
    by this call are restored (or removed, if new) first.
    """
    options.validate()  # at least one known format, a sane line length
    data = {fmt: render_bytes(transcript, fmt, options) for fmt in options.formats}
    return write_rendered(data, source, options, output_dir=output_dir, ledger=ledger, overwrite=overwrite)


def write_rendered(
    data: Mapping[str, bytes],
    source: Path | str,
    options: OutputOptions,
    *,
    output_dir: Path | str | None = None,
    ledger: OutputLedger | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write already rendered transcripts (``{format: bytes}``, every format of ``options``) for ``source``
    under the same rules as :func:`write_outputs`; a copy of a recording reuses its twin's transcripts."""
    source = Path(source)
    paths = output_paths(source, options, output_dir)
    missing = [fmt for fmt in paths if fmt not in data]
    if missing:
        raise ValueError(f"no rendered {', '.join(missing)} transcript to write for {source}")
    folder = next(iter(paths.values())).parent
    with _WRITE_LOCK:
        _make_folder(folder)
        if ledger is not None and _taken_by_another_recording(paths.values(), source, ledger):
            paths = _full_name_paths(source, paths)
        previous = _check_targets(source, paths.values(), ledger, overwrite)
        _check_free_space(folder, sum(len(data[fmt]) for fmt in paths) + FREE_MARGIN)
        _write_set({paths[fmt]: data[fmt] for fmt in paths}, previous, source, ledger)
    return paths


def _write_set(
    data: Mapping[Path, bytes],
    previous: Mapping[Path, object],
    source: Path | str,
    ledger: OutputLedger | None,
) -> None:
    """Write every file or none (under ``_WRITE_LOCK``): the ledger hears of each before and after, and a
    failure puts back what this call replaced. ``previous`` holds each target's old bytes, or ``_ABSENT``."""
    digests = {target: hashlib.sha256(content).hexdigest() for target, content in data.items()}
    if ledger is not None:
        try:
            ledger.record_pending(digests, source)
        except OSError as exc:
            log.warning("could not update the output ledger %s (%s)", ledger.path, exc)
    written: list[Path] = []
    for target, content in data.items():
        try:
            atomic_write_bytes(target, content)
        except OSError as exc:
            _roll_back(written, previous)
            if ledger is not None:  # the pending entries of files that never came to be
                with contextlib.suppress(OSError):
                    ledger.forget([t for t in data if previous.get(t) is _ABSENT])
            raise _write_error(
                f"cannot write {target}: {_os_reason(exc)}; {_write_advice(exc)}"
                + ("; the files already written for this recording were rolled back" if written else ""),
                exc,
            ) from exc
        written.append(target)
    if ledger is not None:
        try:
            ledger.record(digests, source)
        except OSError as exc:
            log.warning(
                "could not update the output ledger %s (%s); a re-run will ask before replacing",
                ledger.path,
                exc,
            )


@dataclass(frozen=True)
class RewriteResult:
    """What :func:`rewrite_outputs` did with each file of a transcript's set."""

    written: tuple[Path, ...]
    conflicts: tuple[Path, ...]  # changed outside WhisperDesk since it wrote them (or not ours): left alone
    missing: tuple[Path, ...]  # no longer there (deleted or moved by the user): not made again


def rewrite_outputs(
    data: Mapping[Path, bytes],
    source: Path | str,
    *,
    ledger: OutputLedger | None,
    overwrite: Iterable[Path | str] = (),
    ours: Mapping[Path, str] | None = None,
) -> RewriteResult:
    """Replace files WhisperDesk wrote earlier (``{path: new bytes}``) with a new rendering, all or none.

    The ledger's rule decides what may be replaced: a file is ours while its content hash is what we wrote
    (the ledger's entry, or ``ours[path]``, a hash the caller recorded when it was written). Any other file
    is a conflict and stays as it is unless its path is in ``overwrite`` (the user said so). A file that is
    gone is left gone. Raises :class:`OutputWriteError` when the disk refuses; nothing is then changed.
    """
    forced = {_key(p) for p in overwrite}
    known = {_key(p): digest for p, digest in (ours or {}).items()}
    todo: dict[Path, bytes] = {}
    conflicts: list[Path] = []
    missing: list[Path] = []
    with _WRITE_LOCK:
        previous: dict[Path, object] = {}
        for target, content in data.items():
            target = Path(target)
            if not os.path.lexists(target) or target.is_dir():
                missing.append(target)
                continue
            current = file_sha256(target)
            owned = current is not None and (
                (ledger is not None and ledger.owns(target)) or known.get(_key(target)) == current
            )
            if not owned and _key(target) not in forced:
                conflicts.append(target)
                continue
            try:
                previous[target] = target.read_bytes()
            except OSError:
                previous[target] = _UNKNOWN
            todo[target] = content
        if todo:
            _write_set(todo, previous, source, ledger)
    return RewriteResult(tuple(todo), tuple(conflicts), tuple(missing))


def _full_name_paths(source: Path, paths: Mapping[str, Path]) -> dict[str, Path]:
    return {fmt: target.with_name(source.name + FORMAT_EXTENSIONS[fmt]) for fmt, target in paths.items()}


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(
            f"cannot create the output folder {folder}: {_os_reason(exc)}; {_write_advice(exc)}", exc
        ) from exc


def estimated_output_bytes(formats: Iterable[str], duration: float | None) -> int:
    """A generous bound on the bytes the transcripts of ``duration`` seconds take, plus the margin."""
    seconds = duration if duration is not None and duration > 0 else ASSUMED_SECONDS
    per_hour = sum(OUTPUT_BYTES_PER_HOUR.get(fmt, max(OUTPUT_BYTES_PER_HOUR.values())) for fmt in formats)
    return FREE_MARGIN + int(per_hour * seconds / 3600)


def _check_free_space(folder: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot be asked (some network file systems): the write itself will tell
    if free < needed:
        raise OutputWriteError(
            f"the disk holding {folder} is full ({free // 1024} KB free, the transcripts need about "
            f"{-(-needed // 1024)} KB); {_write_advice_for(errno.ENOSPC)}",
            kind=DISK_FULL,
        )


def _try_writing(folder: Path, needed: int) -> None:
    """Create and remove a small file: permissions, read-only mounts and a full disk all show here."""
    _check_free_space(folder, needed)
    try:
        fd, probe = _open_probe(folder)
    except OSError as exc:
        raise _write_error(f"cannot write in {folder}: {_os_reason(exc)}; {_write_advice(exc)}", exc) from exc
    try:
        os.write(fd, b"\0" * 4096)
    except OSError as exc:
        raise _write_error(f"cannot write in {folder}: {_os_reason(exc)}; {_write_advice(exc)}", exc) from exc
    finally:
        os.close(fd)
        if probe is not None:
            with contextlib.suppress(OSError):
                os.unlink(probe)


def _check_names(targets: Iterable[Path]) -> None:
    """Each final name, and the temp name it is written under, within the folder's limit: a name the file
    system refuses fails the job now, with advice that fits, not after the whole transcription. Nothing is
    created here (a named probe left behind by a process killed mid-check would litter the user's folder;
    writability is :func:`_try_writing`'s unnamed probe)."""
    for target in targets:
        limit = _name_max(target.parent)
        size = max(len(os.fsencode(target.name)), temp_name_bytes(target))
        if size > limit:
            raise OutputWriteError(
                f"cannot write {target}: the file name is {size} bytes, longer than this folder allows "
                f"({limit}); {_write_advice_for(errno.ENAMETOOLONG)}",
                kind=NAME_TOO_LONG,
            )


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) the folder's file system takes; 255 where it cannot be asked."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):
        return 255


def _open_probe(folder: Path) -> tuple[int, str | None]:
    """A file to test-write in ``folder``: unnamed where the OS allows (Linux ``O_TMPFILE``), so a process
    killed mid-check leaves nothing behind in the user's folder; else a hidden temp file removed after."""
    unnamed = getattr(os, "O_TMPFILE", None)
    if unnamed is not None:
        try:
            return os.open(folder, unnamed | os.O_WRONLY, 0o600), None
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise  # permissions, a read-only mount, a full disk: the answer the check is for
    fd, probe = tempfile.mkstemp(prefix=".whisperdesk-check.", dir=folder)
    return fd, probe


def _write_error(message: str, exc: OSError) -> OutputWriteError:
    if exc.errno == errno.ENAMETOOLONG:
        return OutputWriteError(message, kind=NAME_TOO_LONG)
    full = exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1))
    return OutputWriteError(message, kind=DISK_FULL if full else OUTPUT_UNWRITABLE)


def _taken_by_another_recording(targets: Iterable[Path], source: Path, ledger: OutputLedger) -> bool:
    """``talk.wav`` and ``talk.mp3`` in one folder both map to ``talk.txt``: the second must not replace the
    first's transcripts, so it gets ``talk.mp3.txt`` etc. instead (the whole set, to keep it together)."""
    source_key = _key(source)
    for target in targets:
        if os.path.lexists(target):
            entry = ledger.lookup(target)
            if entry is not None and entry.source != source_key:
                return True
    return False


def _check_targets(
    source: Path, targets: Iterable[Path], ledger: OutputLedger | None, overwrite: bool
) -> dict[Path, object]:
    """Refuse before writing anything; returns each target's old bytes for rollback."""
    previous: dict[Path, object] = {}
    problems: list[str] = []
    advice = "move or rename it, or choose another output folder (or overwrite it)"
    source_key = _key(source)
    for target in targets:
        if _key(target) == source_key:
            problems.append(f"{target} is the recording itself; choose another output folder")
            continue
        if target.is_dir():
            problems.append(f"{target} is a folder; rename it or choose another output folder")
            continue
        if not os.path.lexists(target):
            previous[target] = _ABSENT
            continue
        if not overwrite:
            entry = ledger.lookup(target) if ledger is not None else None
            if entry is None:
                problems.append(f"{target} already exists and was not written by WhisperDesk; {advice}")
                continue
            if entry.source != source_key:
                problems.append(
                    f"{target} holds the transcript of another recording ({entry.source}); {advice}"
                )
                continue
            if file_sha256(target) not in entry.hashes:
                problems.append(f"{target} was changed after WhisperDesk wrote it; {advice}")
                continue
        try:
            previous[target] = target.read_bytes()
        except OSError:
            previous[target] = _UNKNOWN
    if problems:
        raise OutputConflictError("; ".join(problems))
    return previous


def _roll_back(written: list[Path], previous: Mapping[Path, object]) -> None:
    for target in reversed(written):
        old = previous.get(target, _UNKNOWN)
        try:
            if old is _ABSENT:
                target.unlink()
            elif isinstance(old, bytes):
                atomic_write_bytes(target, old)
        except OSError as exc:
            log.warning("could not restore %s after a failed write (%s); removing it", target, exc)
            with contextlib.suppress(OSError):
                target.unlink()


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _write_advice(exc: OSError) -> str:
    return _write_advice_for(exc.errno)


def _write_advice_for(code: int | None) -> str:
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return "the disk is full: free some space or choose an output folder on another disk"
    if code == errno.ENAMETOOLONG:
        return "rename the recording to a shorter name (its transcripts are named after it)"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "WhisperDesk may not write there: choose another output folder or fix the folder's permissions"
    return "check the folder is still available, or choose another output folder"
