"""A job's speaker-labelled transcript, kept in the data folder so its speakers can be renamed later.

Why keep it: renaming "Speaker 2" to "Grace" must rewrite every format the job wrote, and the user may not
have asked for JSON; so the full transcript (the JSON writer's output, which keeps every field) is stored
per job, and the outputs are re-rendered from it. Files the user has edited since are left alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whisperdesk.core.atomic import atomic_write_bytes, atomic_write_text
from whisperdesk.core.errors import OutputWriteError, WhisperDeskError
from whisperdesk.core.jobstore import Job
from whisperdesk.core.library import edit as library_edit
from whisperdesk.core.library.jobs import entry_for_job
from whisperdesk.core.library.store import LibraryError, TranscriptLibrary
from whisperdesk.core.outputs import (
    FORMAT_EXTENSIONS,
    OutputLedger,
    render_bytes,
    render_json,
    transcript_from_json,
)
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.settings import OutputOptions
from whisperdesk.core.speakers.assign import rename_speakers
from whisperdesk.core.speakers.diarize import Voiceprint
from whisperdesk.core.speakers.job import NOTE_KEY
from whisperdesk.core.speakers.voices import VoiceLibrary
from whisperdesk.core.transcript import Transcript

log = logging.getLogger(__name__)


def job_transcript_path(job_id: int, paths: AppPaths | None = None) -> Path:
    return (paths or AppPaths.default()).data_dir / "speakers" / f"job-{job_id}.json"


def _names_path(job_id: int, paths: AppPaths | None) -> Path:
    return job_transcript_path(job_id, paths).with_suffix(".names.json")


def _note_path(job_id: int, paths: AppPaths | None) -> Path:
    return job_transcript_path(job_id, paths).with_suffix(".note.txt")


def _voices_path(job_id: int, paths: AppPaths | None) -> Path:
    return job_transcript_path(job_id, paths).with_suffix(".voices.json")


def save_job_transcript(
    job_id: int,
    transcript: Transcript,
    paths: AppPaths | None = None,
    *,
    voiceprints: Mapping[str, Voiceprint] | None = None,
) -> Path:
    """Keep the transcript, plus its speaker names in a tiny file the queue window can read cheaply, the
    sentence saying why the count differs from the one asked for, when it does, and (only when the user
    keeps a voice library) each speaker's voiceprint, so that naming a speaker later can remember the voice."""
    path = job_transcript_path(job_id, paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, render_json(transcript))
    atomic_write_text(_names_path(job_id, paths), json.dumps(transcript.speakers, ensure_ascii=False))
    note = str(transcript.extra.get(NOTE_KEY) or "")
    if note:
        atomic_write_text(_note_path(job_id, paths), note)
    else:
        _note_path(job_id, paths).unlink(missing_ok=True)
    if voiceprints:
        _save_voiceprints(job_id, voiceprints, paths)
    return path


def _save_voiceprints(job_id: int, prints: Mapping[str, Voiceprint], paths: AppPaths | None) -> None:
    data = {
        label: {"embedding": v.embedding.astype(float).round(6).tolist(), "seconds": v.seconds}
        for label, v in prints.items()
    }
    atomic_write_text(_voices_path(job_id, paths), json.dumps(data, ensure_ascii=False))


def job_voiceprints(job_id: int, paths: AppPaths | None = None) -> dict[str, Voiceprint]:
    """The job's speakers' voiceprints by current label; empty when none were kept (no voice library)."""
    try:
        data = json.loads(_voices_path(job_id, paths).read_text(encoding="utf-8"))
        return {
            str(label): Voiceprint(np.asarray(item["embedding"], dtype=np.float32), float(item["seconds"]))
            for label, item in data.items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("job %d: its voiceprints cannot be read (%s)", job_id, exc)
        return {}


def remember_job_voices(
    job_id: int, names: Mapping[str, str], library: VoiceLibrary, paths: AppPaths | None = None
) -> list[str]:
    """After a rename ({"Speaker 2": "Grace"}, already applied): keep each newly named voice in the library.
    Returns the names remembered (a speaker without a voiceprint, e.g. too short to embed, is skipped)."""
    prints = job_voiceprints(job_id, paths)
    kept = []
    for new in dict.fromkeys(" ".join(n.split()) for n in names.values()):
        if new in prints:
            library.remember(new, prints[new].embedding, prints[new].seconds)
            kept.append(new)
    return kept


def follow_renamed_voices(job_id: int, names: Mapping[str, str], paths: AppPaths | None = None) -> None:
    """After a rename made elsewhere (the transcript window's, saved through the library): the job's
    voiceprints follow the new names, so :func:`remember_job_voices` finds them."""
    prints = job_voiceprints(job_id, paths)
    if prints:
        cleaned = {old: " ".join(new.split()) for old, new in names.items()}
        _save_voiceprints(job_id, {cleaned.get(label, label): v for label, v in prints.items()}, paths)


def job_speaker_note(job_id: int, paths: AppPaths | None = None) -> str:
    """Why the job found another number of speakers than the user asked for; "" when it found what was asked."""
    try:
        return _note_path(job_id, paths).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def load_transcript(path: Path) -> Transcript:
    """Read back what :func:`render_json` wrote; raises WhisperDeskError naming the file if it cannot."""
    try:
        return transcript_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WhisperDeskError(
            f"{path}: the saved speaker transcript cannot be read ({exc}); transcribe the file again"
        ) from None


def job_speakers(job_id: int, paths: AppPaths | None = None) -> list[str]:
    """The job's speaker names in order of first appearance; empty when it has no speaker labels."""
    path = _names_path(job_id, paths)
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("%s: speaker names cannot be read (%s)", path, exc)
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


@dataclass(frozen=True)
class RenameResult:
    rewritten: tuple[Path, ...]
    kept: tuple[Path, ...]  # edited by the user (or gone) since WhisperDesk wrote them: left untouched


def rename_job_speakers(
    job: Job,
    names: Mapping[str, str],
    ledger: OutputLedger,
    output: OutputOptions,
    paths: AppPaths | None = None,
) -> RenameResult:
    """Rename the job's speakers (e.g. {"Speaker 1": "Ada"}) and rewrite the transcripts it wrote."""
    cleaned = {old: " ".join(new.split()) for old, new in names.items()}
    if any(not new for new in cleaned.values()):
        raise WhisperDeskError("a speaker name cannot be empty; type a name or keep the old one")
    kept_in_library = _rename_in_library(job, cleaned, ledger, paths)
    if kept_in_library is not None:
        return kept_in_library
    path = job_transcript_path(job.id, paths)
    renamed = rename_speakers(load_transcript(path), cleaned)
    rewritten: list[Path] = []
    kept: list[Path] = []
    for target in job.outputs:
        fmt = next((f for f, ext in FORMAT_EXTENSIONS.items() if target.suffix.lower() == ext), None)
        if fmt is None or not target.is_file() or not ledger.owns(target):
            kept.append(target)
            continue
        data = render_bytes(renamed, fmt, output)
        entry = ledger.lookup(target)
        try:
            atomic_write_bytes(target, data)
        except OSError as exc:
            raise OutputWriteError(
                f"cannot rewrite {target} with the new speaker names: {exc.strerror or exc}; "
                "check that the folder is writable and try again"
            ) from exc
        ledger.record({target: hashlib.sha256(data).hexdigest()}, entry.source if entry else job.source)
        rewritten.append(target)
    prints = job_voiceprints(job.id, paths)
    save_job_transcript(
        job.id, renamed, paths, voiceprints={cleaned.get(label, label): v for label, v in prints.items()}
    )
    return RenameResult(tuple(rewritten), tuple(kept))


def _rename_in_library(
    job: Job, names: Mapping[str, str], ledger: OutputLedger, paths: AppPaths | None
) -> RenameResult | None:
    """The job's transcript of record is the library's (it may carry the user's corrections): rename there,
    which rewrites the job's files under the same rules, and keep this store's copy and names in step.
    None when the library has no transcript for the job (this store's copy is used instead)."""
    try:
        library = TranscriptLibrary((paths or AppPaths.default()).library_db)
    except (LibraryError, OSError, sqlite3.Error) as exc:
        log.warning("the transcript library cannot be opened (%s); renaming from the speaker store", exc)
        return None
    try:
        entry = entry_for_job(library, job)
        if entry is None:
            return None
        report = library_edit.rename_speakers(library, entry.id, names, ledger=ledger)
    finally:
        library.close()
    prints = job_voiceprints(job.id, paths)  # renamed with the speakers, so a named voice can be remembered
    save_job_transcript(
        job.id,
        report.entry.transcript,
        paths,
        voiceprints={names.get(label, label): v for label, v in prints.items()},
    )
    return RenameResult(report.written, report.conflicts + report.missing)
