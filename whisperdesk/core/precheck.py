"""Answers before work (issue 17.6): what can be known about a recording and its transcripts without the
model, checked before the model loads or the job waits its turn.

Why: ``transcribe`` into a conflicting output reported the conflict only after the model had loaded (11–15 s
for an answer that needs none), and a queued job with an unwritable output folder failed only when its turn
came, perhaps an hour later behind a long recording. These checks take milliseconds: the file's header and
container (:func:`whisperdesk.core.audio.probe`, the same errors decoding raises except a cut-off tail), then
the output folder and names (:func:`whisperdesk.core.outputs.check_outputs`, the same rules writing
follows). The job processor keeps its own check at the start of each job: the disk may change meanwhile.
"""

from __future__ import annotations

from pathlib import Path

from whisperdesk.core.audio import probe
from whisperdesk.core.outputs import OutputLedger, check_outputs
from whisperdesk.core.settings import OutputOptions


def precheck_file(
    source: Path | str,
    output: OutputOptions,
    *,
    output_dir: Path | str | None = None,
    ledger: OutputLedger | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Raise now what transcribing ``source`` and writing its transcripts would raise for reasons the model
    has nothing to do with: an :class:`AudioError` (missing, unreadable, empty, not audio) or an
    :class:`OutputError` (a file in the way, a folder that cannot be made or written). Returns the planned
    transcript paths."""
    probe(source)
    return check_outputs(source, output, output_dir=output_dir, ledger=ledger, overwrite=overwrite)
