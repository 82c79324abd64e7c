"""Renames a job's speakers off the GUI thread and rewrites the transcripts it wrote.

Why a service: rewriting four transcript files is disk work the window must not wait on; the result comes
back as signals (renamed: the job id, for the table to re-read; failed: a sentence for the user).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.jobstore import JobStore
from whisperdesk.core.outputs import OutputLedger
from whisperdesk.core.processor import options_for
from whisperdesk.core.settings import Settings
from whisperdesk.core.speakers.saved import follow_renamed_voices, remember_job_voices, rename_job_speakers
from whisperdesk.core.speakers.voices import VoiceLibrary

log = logging.getLogger(__name__)


class _Signals(QObject):
    renamed = Signal(int, str)  # job id, what was done (for the status line)
    failed = Signal(str)


class _RenameTask(QRunnable):
    def __init__(self, renamer: SpeakerRenamer, job_id: int, names: dict[str, str]) -> None:
        super().__init__()
        self._renamer = renamer
        self._job_id = job_id
        self._names = names

    def run(self) -> None:
        self._renamer._run(self._job_id, self._names)


class _NamedTask(_RenameTask):
    def run(self) -> None:
        self._renamer._run_named(self._job_id, self._names)


class SpeakerRenamer(QObject):
    """Signals: renamed(int job_id, str summary), failed(str message)."""

    renamed = Signal(int, str)
    failed = Signal(str)

    def __init__(
        self,
        store: JobStore,
        ledger: OutputLedger,
        settings: Callable[[], Settings],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._ledger = ledger
        self._settings = settings
        self._signals = _Signals(self)
        self._signals.renamed.connect(self.renamed)
        self._signals.failed.connect(self.failed)
        self._pool = QThreadPool(self)
        self._pool.setObjectName("SpeakerRenamer.pool")
        self._pool.setMaxThreadCount(1)  # renames of one job must not interleave

    @Slot(int, object)
    def rename(self, job_id: int, names: object) -> None:
        """Start renaming; ``names`` maps old names to new ones ({"Speaker 1": "Ada"})."""
        if not isinstance(names, Mapping) or not names:
            return
        self._pool.start(_RenameTask(self, job_id, {str(k): str(v) for k, v in names.items()}))

    @Slot(int, object)
    def voices_named(self, job_id: int, names: object) -> None:
        """Speakers renamed and saved in the transcript window ({"Speaker 1": "Ada"}): remember the named
        voices as a rename from the queue does (the same opt-in, the same code)."""
        if isinstance(names, Mapping) and names:
            self._pool.start(_NamedTask(self, job_id, {str(k): str(v) for k, v in names.items()}))

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self._pool.waitForDone(timeout_ms)

    def _run(self, job_id: int, names: dict[str, str]) -> None:
        job = self._store.get(job_id)
        if job is None:
            self._signals.failed.emit("The job was removed, so its speakers cannot be renamed.")
            return
        try:
            settings = self._settings()
            _, output, _ = options_for(job, settings)
            result = rename_job_speakers(job, names, self._ledger, output)
            remembered = self._remember(job_id, names, settings)
        except WhisperDeskError as exc:
            self._signals.failed.emit(f"{job.name}: speakers not renamed: {exc}")
            return
        except Exception:  # a bug must not take the window down
            log.exception("renaming speakers of job %d failed", job_id)
            self._signals.failed.emit(f"{job.name}: speakers not renamed (details in the log).")
            return
        summary = f"{job.name}: {len(result.rewritten)} transcript(s) rewritten with the new speaker names"
        if result.kept:
            summary += f"; {len(result.kept)} left as they were because they were edited or moved"
        if remembered:
            summary += f"; voice{'s' if len(remembered) > 1 else ''} remembered: {', '.join(remembered)}"
        self._signals.renamed.emit(job_id, summary)

    @staticmethod
    def _remember(job_id: int, names: dict[str, str], settings: Settings) -> list[str]:
        """The one place that decides whether naming a speaker remembers the voice: only under "Remember
        voices I name" (opt-in), for every way of naming (the queue's dialog, the transcript window)."""
        library = VoiceLibrary.for_settings(settings)
        return remember_job_voices(job_id, names, library) if library is not None else []

    def _run_named(self, job_id: int, names: dict[str, str]) -> None:
        try:
            follow_renamed_voices(job_id, names)
            remembered = self._remember(job_id, names, self._settings())
        except (WhisperDeskError, OSError) as exc:
            log.warning("job %d: the named voices could not be remembered (%s)", job_id, exc)
            self._signals.failed.emit("The voices you named could not be remembered (details in the log).")
            return
        except Exception:
            log.exception("remembering the voices named in job %d failed", job_id)
            self._signals.failed.emit("The voices you named could not be remembered (details in the log).")
            return
        if remembered:
            self._signals.renamed.emit(
                job_id, f"voice{'s' if len(remembered) > 1 else ''} remembered: {', '.join(remembered)}"
            )
