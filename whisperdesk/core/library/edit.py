"""Saving a corrected transcript: the record first, then every file its job wrote, re-rendered.

The record is what was edited, so it is saved even when a file cannot be replaced. The files follow the
output ledger's rule: only a file that is still byte for byte what WhisperDesk wrote is replaced; one changed
outside the app since (someone fixed a subtitle by hand) is a *conflict*, reported and left alone until the
caller passes its path in ``overwrite`` (the window asks the user first). All replaced files are written
atomically and together: a failure puts back the ones already replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.library.store import LibraryEntry, TranscriptLibrary
from whisperdesk.core.outputs import FORMAT_EXTENSIONS, OutputLedger, render_bytes, rewrite_outputs
from whisperdesk.core.settings import OutputOptions
from whisperdesk.core.speakers import assign
from whisperdesk.core.transcript import Transcript


@dataclass(frozen=True)
class SaveReport:
    entry: LibraryEntry  # the record as saved (``version`` bumped, ``edited`` set)
    written: tuple[Path, ...]  # files replaced with the new rendering
    conflicts: tuple[Path, ...]  # changed outside WhisperDesk since it wrote them: not replaced (ask, then
    # call :func:`write_entry_outputs` with them in ``overwrite``)
    missing: tuple[Path, ...]  # files the job wrote that are gone: not made again

    @property
    def complete(self) -> bool:
        """True when every file of the job that still exists now shows the saved transcript."""
        return not self.conflicts


def save_edit(
    library: TranscriptLibrary,
    entry_id: int,
    transcript: Transcript,
    *,
    ledger: OutputLedger | None,
    overwrite: Iterable[Path | str] = (),
    base_version: int | None = None,
) -> SaveReport:
    """Store ``transcript`` as the corrected record of entry ``entry_id`` (marked edited, version + 1,
    search index updated) and re-render every output file of its job in every format the job produced.

    ``base_version`` (the entry's ``version`` when the editor opened it) guards against overwriting a save
    made elsewhere meanwhile (:class:`StaleEditError`). Raises ``OutputWriteError`` when the disk refuses a
    file: the record is saved then, the files are as they were, and a later :func:`write_entry_outputs`
    can try again.
    """
    entry = library.update_transcript(entry_id, transcript, base_version=base_version)
    return write_entry_outputs(library, entry, ledger=ledger, overwrite=overwrite)


def rendered_outputs(entry: LibraryEntry) -> dict[Path, bytes]:
    """``{path: bytes}``: each file the entry's job wrote, rendered anew from the record in its format (the
    heading date of DOCX/Markdown stays the transcription's)."""
    options = OutputOptions(max_line_length=entry.max_line_length)
    return {
        f.path: render_bytes(entry.transcript, f.format, options, when=entry.created_at)
        for f in entry.outputs
        if f.format in FORMAT_EXTENSIONS
    }


def write_entry_outputs(
    library: TranscriptLibrary,
    entry: LibraryEntry | int,
    *,
    ledger: OutputLedger | None,
    overwrite: Iterable[Path | str] = (),
) -> SaveReport:
    """Bring the entry's output files in line with its record (after a save, or after the user said to
    overwrite the conflicts a save reported). Files are ours when the ledger or the library's own record of
    what was written says their content is unchanged."""
    if isinstance(entry, int):
        entry = library.require(entry)
    ours = {f.path: f.sha256 for f in entry.outputs if f.sha256}
    result = rewrite_outputs(
        rendered_outputs(entry), entry.source, ledger=ledger, overwrite=overwrite, ours=ours
    )
    formats = {f.path: f.format for f in entry.outputs}
    if result.written:
        library.record_outputs(entry.id, {formats[p]: p for p in result.written})
    return SaveReport(library.require(entry.id), result.written, result.conflicts, result.missing)


def rename_speakers(
    library: TranscriptLibrary,
    entry_id: int,
    names: Mapping[str, str],
    *,
    ledger: OutputLedger | None,
    overwrite: Iterable[Path | str] = (),
    base_version: int | None = None,
) -> SaveReport:
    """Rename speakers everywhere in one transcript ({"Speaker 1": "Ada"}) and save it like any edit: the
    record, the search index (the speaker filter finds "Ada") and every file of the job."""
    cleaned = {old: " ".join(new.split()) for old, new in names.items()}
    if any(not new for new in cleaned.values()):
        raise WhisperDeskError("a speaker name cannot be empty; type a name or keep the old one")
    entry = library.require(entry_id)
    renamed = assign.rename_speakers(entry.transcript, cleaned)
    return save_edit(
        library,
        entry_id,
        renamed,
        ledger=ledger,
        overwrite=overwrite,
        base_version=entry.version if base_version is None else base_version,
    )
