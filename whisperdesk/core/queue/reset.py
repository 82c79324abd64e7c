"""When the job list was lost: say so once, and keep the watched folders from turning into duplicate work.

A damaged job database is kept aside and a new one started (:class:`JobStore`); a missing one is simply
created again. Either way the queue the user had is gone, and a silent empty list would let the next scan
of the watched folders transcribe every recording again. The outputs ledger survives (it is its own file)
and knows which recordings have transcripts, so a watched recording that the new job list does not know
but that has transcripts written after its last change is not queued again; the user can still add it by
hand (dropping it in the window, ``whisperdesk transcribe``), which is the agreement to run it again.
"""

from __future__ import annotations

import os
from pathlib import Path

from whisperdesk.core.jobstore import JobStore
from whisperdesk.core.outputs import OutputLedger

RESET_TITLE = "Job list reset"
SKIP_RULE = (
    "recordings in watched folders that already have transcripts are not queued again; add one by hand "
    "(drop it on the window, or run `whisperdesk transcribe`) to transcribe it again"
)


def reset_notice(store: JobStore) -> str | None:
    """What the window's banner and the CLI's warning say when the queue was reset; None when it was not."""
    if store.recovered_from is not None:
        return (
            f"the job list {store.path} could not be read: {store.recovery_reason}. It was kept as "
            f"{store.recovered_from} and a new, empty job list was started; {SKIP_RULE}"
        )
    if store.lost_before:
        return (
            f"the job list {store.path} was not found (moved or deleted?), so a new, empty one was started "
            f"although one was kept there before; {SKIP_RULE}"
        )
    return None


def already_transcribed(store: JobStore, ledger: OutputLedger, path: Path) -> list[Path]:
    """Transcripts of ``path`` that the ledger shows and the job list has no job for; [] when the job
    list knows the file (its own rules decide) or the recording changed after its transcripts were written."""
    if store.find(path):
        return []
    try:
        changed = os.stat(path).st_mtime
    except OSError:
        return []  # the store's add will say what is wrong with it
    return ledger.transcripts_of(path, written_after=changed)
