"""Running one queued job end to end: transcribe, write transcripts, record the result, tidy the source.

The headless ``whisperdesk watch`` loop and the GUI's job runner both call :class:`JobProcessor`, so a job
behaves the same wherever it runs. Nothing here raises for a bad file: the job is marked failed with a
reason the user can act on. Only an engine problem (a model that cannot load, a device or compute type the
machine lacks), which would fail every job the same way, propagates — with the job put back in the queue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from whisperdesk.core.engine import Engine
from whisperdesk.core.errors import (
    Cancelled,
    ConfigError,
    FileDisappearedError,
    ModelError,
    WhisperDeskError,
)
from whisperdesk.core.fingerprint import fingerprint_file
from whisperdesk.core.jobstore import (
    CANCELED,
    DONE,
    FAILED,
    ORIGINS,
    QUEUED,
    RUNNING,
    Job,
    JobStateError,
    JobStore,
    JobStoreError,
    Origin,
)
from whisperdesk.core.library.jobs import entry_for_job, keep_job_transcript
from whisperdesk.core.library.store import LibraryEntry, LibraryError, TranscriptLibrary
from whisperdesk.core.outputs import (
    FORMAT_EXTENSIONS,
    OutputLedger,
    check_outputs,
    write_outputs,
    write_rendered,
)
from whisperdesk.core.precheck import precheck_file
from whisperdesk.core.queue.checkpoints import JobCheckpoints, checkpoint_key
from whisperdesk.core.settings import AFTER_PROCESSING, DecodeOptions, OutputOptions, Settings
from whisperdesk.core.speakers.count import InvalidSpeakerCount, parse_speaker_count
from whisperdesk.core.speakers.diarize import Voiceprint
from whisperdesk.core.speakers.job import transcribe_with_speakers
from whisperdesk.core.speakers.saved import save_job_transcript
from whisperdesk.core.speakers.voices import VoiceLibrary
from whisperdesk.core.transcript import Transcript

log = logging.getLogger(__name__)

JobProgressFn = Callable[[int, float, float], None]  # (job id, seconds done, seconds total)
PROGRESS_STORE_INTERVAL = 0.5  # seconds between progress writes to the database
DONE_SUBFOLDER = "done"  # where after-processing "move" puts sources, inside their watched folder

# What a job that hit a bug says (in the window too): plain words, no exception text.
UNEXPECTED_REASON = (
    "something went wrong inside WhisperDesk while transcribing this file; the log has the details. "
    "Retry may work; if it fails again, please report it"
)

# Errors that are the engine's, not the file's: every job would fail the same way, so none is failed.
ENGINE_ERRORS: tuple[type[Exception], ...] = (ModelError, ConfigError)


def job_settings(
    settings: Settings,
    *,
    output_dir: str | Path | None = None,
    after_processing: str = "leave",
    speakers: str | None = None,
) -> dict[str, Any]:
    """What a job records at queue time: its decoding and output options and what to do with the source.

    Recording them with the job means a job runs as it was queued even if the settings change meanwhile
    or another process (GUI, ``watch``) runs it.
    """
    if after_processing not in AFTER_PROCESSING:
        raise ValueError(
            f"after_processing={after_processing!r} is invalid: expected one of {', '.join(AFTER_PROCESSING)}"
        )
    output = settings.output
    if output_dir is not None:
        output = dataclasses.replace(output, output_dir=os.fspath(output_dir))
    record = {
        "decode": dataclasses.asdict(settings.decode),
        "output": dataclasses.asdict(output),
        "after_processing": after_processing,
    }
    if speakers is not None:
        record["speakers"] = str(parse_speaker_count(speakers))  # raises InvalidSpeakerCount if unreadable
    return record


def _section(cls: type, raw: Any) -> Any:
    """Rebuild an options dataclass from a job's JSON, tolerating keys added or dropped across versions."""
    default = cls()
    if not isinstance(raw, Mapping):
        return default
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            value = raw[f.name]
            values[f.name] = tuple(value) if isinstance(value, list) else value
    candidate = dataclasses.replace(default, **values)
    candidate.validate()
    return candidate


def options_for(job: Job, fallback: Settings) -> tuple[DecodeOptions, OutputOptions, str]:
    """The options a job runs with: those it recorded, else the current settings. Raises ValueError or
    TypeError when the recorded ones are unusable (the job is failed with that reason)."""
    raw = job.settings or {}
    decode = _section(DecodeOptions, raw.get("decode")) if "decode" in raw else fallback.decode
    output = _section(OutputOptions, raw.get("output")) if "output" in raw else fallback.output
    after = raw.get("after_processing", "leave")
    return decode, output, after if after in AFTER_PROCESSING else "leave"


class JobProcessor:
    """Runs claimed jobs through the shared engine; safe to use from several threads at once."""

    def __init__(
        self,
        store: JobStore,
        engine: Engine,
        ledger: OutputLedger,
        settings: Callable[[], Settings],
        library: TranscriptLibrary | None = None,
    ) -> None:
        """``library`` keeps each finished transcript; by default the one beside the job database."""
        self._store = store
        self._engine = engine
        self._ledger = ledger
        self._settings = settings
        self._library = library
        self._library_lock = threading.Lock()
        self._library_failed = False

    @property
    def ledger(self) -> OutputLedger:
        """Which transcripts WhisperDesk wrote: the queue also asks it (:mod:`core.queue.reset`)."""
        return self._ledger

    def process(
        self,
        job: Job,
        *,
        cancel: threading.Event | None = None,
        progress: JobProgressFn | None = None,
        shutdown: threading.Event | None = None,
    ) -> Job:
        """Run a job already claimed (state running); returns its final record.

        ``cancel`` is the user's cancel (the job ends canceled); setting ``shutdown`` as well means the app
        is quitting, and the job goes back to the queue to run again next time. A job canceled or removed
        elsewhere meanwhile (another window, ``whisperdesk jobs``) is stopped and left as it is; for a
        removed job the record passed in is returned. Raises only the :data:`ENGINE_ERRORS`, after putting
        the job back in the queue.
        """
        cancel = cancel or threading.Event()
        try:
            decode, output, after = options_for(job, self._settings())
        except (ValueError, TypeError) as exc:
            return self._finish(
                job,
                "fail",
                f"the job's saved options are invalid ({exc}); remove the job and add the file again",
            )
        store_progress = _StoreProgress(self._store, job.id, cancel, progress)
        overwrite = overwrite_for(job)
        try:
            if not job.source.exists():
                raise FileDisappearedError(
                    job.source,
                    "file disappeared before it could be transcribed (moved, renamed or deleted); "
                    "add it again from where it is now",
                )
            # Output problems fail the job now, not after the whole transcription.
            check_outputs(
                job.source, output, ledger=self._ledger, overwrite=overwrite, duration=_length_of(job)
            )
            _require_queued_content(job, "queued")
            copied = self._copy_twin(job, output, overwrite)
            if copied is not None:
                return self._record_done(job, *copied, after)
            transcript = self._transcribe(job, decode, store_progress, cancel)
            if not job.source.exists():
                raise FileDisappearedError(
                    job.source,
                    "file disappeared while it was being transcribed (moved, renamed or deleted); "
                    "no transcript was written; add it again from where it is now",
                )
            _require_queued_content(job, "transcribed")
            written = write_outputs(transcript, job.source, output, ledger=self._ledger, overwrite=overwrite)
            self._keep(job, transcript, written, output)
        except _Superseded as superseded:
            return self._supersede(job, superseded)
        except Cancelled:
            if shutdown is not None and shutdown.is_set():
                log.info("job %d interrupted by shutdown; it stays queued: %s", job.id, job.source)
                return self._finish(job, "release")
            log.info("job %d canceled: %s", job.id, job.source)
            return self._finish(job, "cancel")
        except ENGINE_ERRORS:
            self._finish(job, "release")  # the engine, not the file, is at fault: keep the job queued
            raise
        except WhisperDeskError as exc:
            # A recording replaced mid-read fails its decode (the streamed second pass finds another
            # length): that is new content to transcribe, not a damaged file.
            replaced = _replaced_since_queued(job)
            if replaced is not None:
                return self._supersede(job, replaced)
            reason = getattr(exc, "reason", None) or str(exc)
            log.info("job %d failed: %s: %s", job.id, job.source, reason)
            return self._finish(job, "fail", reason, getattr(exc, "kind", None))
        except Exception:  # a bug must fail one job, never the app; the log keeps the details
            log.exception("job %d failed unexpectedly: %s", job.id, job.source)
            return self._finish(job, "fail", UNEXPECTED_REASON)
        return self._record_done(
            job, written, transcript.duration, transcript.language, transcript.processing_time, after
        )

    def _supersede(self, job: Job, superseded: _Superseded) -> Job:
        """End a job whose recording was replaced: nothing is written for the old content, and the new
        content has a job (the watcher's, if it already queued it; the queue's dedupe keeps it to one)."""
        origin = cast(Origin, job.origin if job.origin in ORIGINS else "dropped")
        try:
            # The store's dedupe finds the watcher's job for the new content, queued, running or already
            # done (another worker); only when it can only point back at this job (same size and time,
            # other bytes) is the new content queued by force.
            for force in (False, True):
                newer = self._store.add(
                    job.source, job.settings, origin=origin, watch_folder=job.watch_folder, force=force
                ).job
                if newer.id != job.id:
                    break
        except WhisperDeskError as exc:  # replaced, then gone or unreadable: say that instead
            reason = getattr(exc, "reason", None) or str(exc)
            return self._finish(job, "fail", reason, getattr(exc, "kind", None))
        where = _STATE_WORDS.get(newer.state, f"is {newer.state}")
        if superseded.when == "queued":
            what = f"{job.source.name} changed after it was queued; nothing was transcribed"
        else:
            what = (
                f"{job.source.name} was replaced while it was being transcribed; the transcript of the "
                "old recording was not written"
            )
        reason = f"{what}; the new recording {where} as job {newer.id}"
        log.info("job %d superseded: %s: %s", job.id, job.source, reason)
        try:
            return self._store.mark_superseded(job.id, reason)
        except JobStoreError:  # canceled or removed elsewhere meanwhile: leave it as it is
            return self._store.get(job.id) or job

    def precheck(self, job: Job) -> Job:
        """Answers before work (issue 17.6): at queue time, the checks that need no model — the recording can
        be read, its transcripts can be written (core/precheck.py) — so a job that would fail at its turn
        fails now, with the reason and the kind of fix process() would give. Returns the job as it is now
        (failed, or unchanged); a job no longer queued is left alone. Never raises for the file's problems.
        """
        if job.state != QUEUED:
            return job
        try:
            _decode, output, _after = options_for(job, self._settings())
            precheck_file(job.source, output, ledger=self._ledger, overwrite=overwrite_for(job))
        except (ValueError, TypeError):
            return job  # process() fails it with the full reason; nothing to answer early
        except FileDisappearedError:
            return job  # may come back (a file being moved in); process() decides at its turn
        except WhisperDeskError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            log.info("job %d fails before it runs: %s: %s", job.id, job.source, reason)
            try:
                return self._store.mark_failed(
                    job.id, reason, kind=getattr(exc, "kind", None), only_queued=True
                )
            except JobStoreError:  # claimed (its worker checks again), canceled or removed meanwhile
                return self._store.get(job.id) or job
        return job

    def _record_done(
        self,
        job: Job,
        written: Mapping[str, Path],
        duration: float | None,
        language: str | None,
        processing_time: float | None,
        after: str,
    ) -> Job:
        try:
            done = self._store.mark_done(
                job.id,
                outputs=list(written.values()),
                duration=duration,
                language=language,
                processing_time=processing_time,
            )
        except JobStoreError as exc:  # canceled or removed while its transcripts were being written
            log.info("job %d finished after it was %s elsewhere; its transcripts are kept", job.id, exc)
            current = self._store.get(job.id)
            library = self.library() if current is None else None
            if library is not None:  # removed: its transcript stays searchable but claims no job
                with contextlib.suppress(LibraryError, OSError, sqlite3.Error):
                    library.detach(job.id)
            return current or job
        self._after_processing(done, after)
        return done

    def _copy_twin(
        self, job: Job, output: OutputOptions, overwrite: bool
    ) -> tuple[dict[str, Path], float | None, str | None, float | None] | None:
        """Transcripts for a copy of a done recording, from that recording's: no second transcription.

        None (transcribe as usual) unless the twin is done and every wanted format is on disk.
        """
        if job.copy_of is None:
            return None
        twin = self._store.get(job.copy_of)
        if twin is None or twin.state != DONE:
            log.info("job %d: the job it copies is gone or not done; transcribing it instead", job.id)
            return None
        kept = self._entry_for(twin)
        if kept is not None:  # rendered from the twin's record: headings and JSON name this recording
            transcript = dataclasses.replace(kept.transcript, source=str(job.source))
            written = write_outputs(transcript, job.source, output, ledger=self._ledger, overwrite=overwrite)
        else:
            data = _twin_transcripts(twin, job, output.formats)
            if data is None:
                log.info(
                    "job %d: job %d's transcripts are missing or changed; transcribing instead",
                    job.id,
                    twin.id,
                )
                return None
            written = write_rendered(data, job.source, output, ledger=self._ledger, overwrite=overwrite)
            transcript = None
        log.info("job %d: transcripts copied from job %d (%s)", job.id, twin.id, twin.source)
        if transcript is not None:
            self._keep(job, transcript, written, output)
        return written, twin.duration, twin.language, 0.0

    def library(self) -> TranscriptLibrary | None:
        """The library finished transcripts go to; None when it cannot be opened (logged once: the jobs
        still run and their JSON outputs can be imported later)."""
        if self._library is None and not self._library_failed:
            with self._library_lock:
                if self._library is None and not self._library_failed:
                    try:
                        self._library = TranscriptLibrary.beside(self._store.path)
                    except (LibraryError, OSError, sqlite3.Error) as exc:
                        self._library_failed = True
                        log.warning(
                            "the transcript library cannot be opened (%s); transcripts are not kept", exc
                        )
        return self._library

    def _keep(
        self, job: Job, transcript: Transcript, written: Mapping[str, Path], output: OutputOptions
    ) -> None:
        """Keep the finished transcript in the library; a library problem never fails the job."""
        library = self.library()
        if library is None:
            return
        try:
            keep_job_transcript(library, job, transcript, dict(written), output)
        except (LibraryError, OSError, sqlite3.Error) as exc:
            log.warning("job %d: the transcript could not be kept in the library (%s)", job.id, exc)
        except Exception:  # its files are written: a library bug must not fail the job
            log.exception("job %d: keeping the transcript in the library failed", job.id)

    def _entry_for(self, job: Job) -> LibraryEntry | None:
        library = self.library()
        if library is None:
            return None
        try:
            return entry_for_job(library, job)
        except (LibraryError, OSError, sqlite3.Error) as exc:
            log.warning("job %d: its transcript could not be read from the library (%s)", job.id, exc)
            return None
        except Exception:  # fall back to copying the files, as before the library
            log.exception("job %d: reading its transcript from the library failed", job.id)
            return None

    def _transcribe(
        self, job: Job, decode: DecodeOptions, progress: _StoreProgress, cancel: threading.Event
    ) -> Transcript:
        """Speaker labels, when the job asked for them, run beside the engine (core/speakers/job.py)."""
        speakers = (job.settings or {}).get("speakers")
        if not speakers:
            config = self._engine.config
            kept = JobCheckpoints(
                self._store, job, checkpoint_key(job, decode, f"{config.model}|{config.compute_type}")
            )
            return self._engine.transcribe(
                job.source,
                decode,
                progress=progress,
                cancel=cancel,
                on_language=progress.language,
                resume=kept.load(),
                on_window=kept.save,
                on_waiting=progress.waiting,
            )
        try:
            count = parse_speaker_count(str(speakers))
        except InvalidSpeakerCount as exc:
            raise WhisperDeskError(
                f"the job's speaker setting is invalid ({exc}); remove the job and add the file again"
            ) from None
        voices = VoiceLibrary.for_settings(self._settings())  # names known voices (opt-in); None when off
        prints: dict[str, Voiceprint] = {}
        transcript = transcribe_with_speakers(
            self._engine,
            job.source,
            decode,
            count,
            progress=progress,
            cancel=cancel,
            on_language=progress.language,
            voices=voices,
            voiceprints=prints if voices is not None else None,
        )
        save_job_transcript(job.id, transcript, voiceprints=prints)
        return transcript

    def _finish(self, job: Job, action: str, reason: str = "", kind: str | None = None) -> Job:
        """Record how a job ended; a job canceled or removed elsewhere meanwhile is left as it is."""
        try:
            if action == "fail":
                return self._store.mark_failed(job.id, reason, kind=kind)
            if action == "cancel":
                return self._store.mark_canceled(job.id)
            return self._store.release(job.id)
        except JobStateError:
            current = self._store.get(job.id)
            if current is not None and current.state == CANCELED:
                return current
            if current is not None and action == "release" and current.state == QUEUED:
                return current  # quitting already put it back (JobRunner.abandon) while its window ran
            raise
        except JobStoreError:
            if self._store.get(job.id) is None:
                log.info("job %d was removed while it ran: %s", job.id, job.source)
                return job
            raise

    def _after_processing(self, job: Job, policy: str) -> None:
        """Move or delete the source only once every transcript is on disk and the source is unchanged."""
        if policy == "leave":
            return
        missing = [p for p in job.outputs if not p.is_file()]
        if missing or not job.outputs:
            log.warning(
                "not %s %s: its transcripts are missing (%s)",
                "moving" if policy == "move" else "deleting",
                job.source,
                ", ".join(map(str, missing)) or "none recorded",
            )
            return
        try:
            st = job.source.stat()
        except FileNotFoundError:
            return  # already gone: nothing to tidy
        except OSError as exc:
            log.warning("could not %s %s after transcribing it: %s", policy, job.source, exc)
            return
        if (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns):
            log.warning(
                "not %s %s: it changed while it was being transcribed; it will be transcribed again",
                "moving" if policy == "move" else "deleting",
                job.source,
            )
            return
        try:
            if policy == "move":
                target = _free_name(done_path(job))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(os.fspath(job.source), os.fspath(target))
                log.info("moved %s to %s", job.source, target)
            elif policy == "delete":
                job.source.unlink()
                log.info("deleted %s after transcribing it", job.source)
        except OSError as exc:  # the transcript is done; a tidy-up failure is only worth a warning
            log.warning("could not %s %s after transcribing it: %s", policy, job.source, exc)


_STATE_WORDS = {
    QUEUED: "is queued",
    RUNNING: "is being transcribed",
    DONE: "was transcribed",
    FAILED: "failed",
    CANCELED: "was canceled",
}


class _Superseded(Exception):
    """The recording is no longer the content its job was queued for (replaced, re-exported, synced)."""

    def __init__(self, when: str) -> None:
        super().__init__(when)
        self.when = when  # "queued" (changed before the job started) or "transcribed" (while it ran)


def _require_queued_content(job: Job, when: str) -> None:
    """Raise :class:`_Superseded` unless ``job.source`` still holds the content the job was queued with.

    The job row's size and fingerprint were taken when it was queued (the watcher updates a waiting job
    when its file changes). A new modification time with the same bytes (a sync tool touching the file)
    is the same recording, as in the queue's dedupe; a different size or fingerprint is new content,
    whose transcript must not be overwritten by this one's. Raises FileDisappearedError /
    UnreadableFileError when the file is gone or cannot be read.
    """
    now = fingerprint_file(job.source)
    if now.size != job.size or now.digest != job.fingerprint:
        raise _Superseded(when)


def _replaced_since_queued(job: Job) -> _Superseded | None:
    """After a failure: a :class:`_Superseded` when the file now holds other content than the job was queued
    with (so the failure came from reading a file being replaced), else None (gone or unreadable too)."""
    try:
        _require_queued_content(job, "transcribed")
    except _Superseded as superseded:
        return superseded
    except WhisperDeskError:
        return None
    return None


def _length_of(job: Job) -> float | None:
    """The recording's length, to size the free space its transcripts need: known once probed, else read
    from its header (milliseconds); None when it cannot be (the transcription will say why)."""
    if job.duration:
        return job.duration
    from whisperdesk.core.audio import probe

    try:
        return probe(job.source).duration or None
    except Exception:  # a damaged file is the decoder's to report, in its own words
        return None


def overwrite_for(job: Job) -> bool:
    """True when the user chose "Overwrite" for this job: files in the way of its transcripts go."""
    return bool((job.settings or {}).get("overwrite", False))


def _twin_transcripts(twin: Job, job: Job, formats: tuple[str, ...]) -> dict[str, bytes] | None:
    """``{format: bytes}`` of the twin's transcript files for ``job``, or None if one is missing."""
    by_suffix = {p.suffix.lower(): p for p in twin.outputs}
    data: dict[str, bytes] = {}
    for fmt in formats:
        path = by_suffix.get(FORMAT_EXTENSIONS[fmt])
        if path is None:
            return None
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        data[fmt] = _renamed_json(raw, str(job.source)) if fmt == "json" else raw
    return data


def _renamed_json(raw: bytes, source: str) -> bytes:
    """The JSON transcript names its recording: the copy names its own."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(doc, dict) and "source" in doc:
        doc["source"] = source
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return raw


def done_path(job: Job) -> Path:
    """Where "move" puts a processed source: ``<watched folder>/done/<same subfolders>/<name>``, so one
    excluded folder per watched folder holds them all; beside the source for jobs from no watched folder."""
    source = job.source
    if job.watch_folder:
        root = Path(os.path.realpath(os.path.expanduser(job.watch_folder)))
        try:
            relative = Path(os.path.realpath(source)).relative_to(root)
        except ValueError:
            relative = None
        if relative is not None and relative.parts[:1] != (DONE_SUBFOLDER,):
            return root / DONE_SUBFOLDER / relative
    return source.parent / DONE_SUBFOLDER / source.name


def _free_name(path: Path) -> Path:
    if not path.exists():
        return path
    for i in range(1, 10_000):
        candidate = path.with_name(f"{path.stem} ({i}){path.suffix}")
        if not candidate.exists():
            return candidate
    raise OSError(f"no free name for {path}")


class _StoreProgress:
    """Forwards engine progress to the caller at once and to the database at most twice a second.

    The database write also notices a job canceled or removed elsewhere (another window, the CLI) and sets
    the cancel flag so the engine stops at the next segment.
    """

    def __init__(
        self, store: JobStore, job_id: int, cancel: threading.Event, forward: JobProgressFn | None
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._cancel = cancel
        self._forward = forward
        self._last = 0.0
        self._duration_saved = False
        self._fraction = 0.0

    def __call__(self, done: float, total: float) -> None:
        if self._forward is not None:
            try:
                self._forward(self._job_id, done, total)
            except Exception:  # a display problem must not fail the job
                log.exception("progress listener failed")
        now = time.monotonic()
        if now - self._last < PROGRESS_STORE_INTERVAL and done < total and self._duration_saved:
            return
        self._last = now
        fraction = done / total if total > 0 else 0.0
        duration = None if self._duration_saved else total
        if self._store.mark_progress(self._job_id, fraction, duration=duration) is None:
            self._cancel.set()
        self._duration_saved = True
        self._fraction = fraction

    def waiting(self, waiting: bool) -> None:
        """Whether the job waits for the model (True) or is being decoded; the caller's progress callable
        hears it when it has a ``waiting(job_id, waiting)`` method (the window's runner does)."""
        listener = getattr(self._forward, "waiting", None)
        if listener is None:
            return
        try:
            listener(self._job_id, waiting)
        except Exception:  # a display problem must not fail the job
            log.exception("waiting listener failed")

    def language(self, code: str, probability: float) -> None:
        """Record the language on the job row as soon as the engine knows it (seconds after the start), not
        only when the job ends."""
        if self._store.mark_progress(self._job_id, self._fraction, language=code) is None:
            self._cancel.set()
