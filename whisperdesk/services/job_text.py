"""How a job's outcome reads in the window, the tray and notifications: one wording for all of them.

The core words its errors for every front end, and some of that advice is for the command line ("pass
--overwrite"). The window has buttons for those choices instead, so this module drops command-line advice
from what the window shows and says which window action helps. It also recognises the output problems the
user can fix from the window (a foreign file in the way, a folder that cannot be written) by the ``error_kind`` the
processor records with the failure.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from whisperdesk.core.errors import DISK_FULL, OUTPUT_EXISTS, OUTPUT_UNWRITABLE
from whisperdesk.core.jobstore import FAILED, Job


class OutputProblem(Enum):
    NONE = "none"
    IN_THE_WAY = "in_the_way"  # a file WhisperDesk did not write (or one the user edited) is in the way
    UNWRITABLE = "unwritable"  # the folder cannot be created or written (permissions, read-only, full)


_PROBLEMS = {OUTPUT_EXISTS: OutputProblem.IN_THE_WAY, OUTPUT_UNWRITABLE: OutputProblem.UNWRITABLE}
_PROBLEMS[DISK_FULL] = OutputProblem.UNWRITABLE  # another folder (on another disk) is the window's answer
_CLI_ADVICE = ("--overwrite", "overwrite=true")
_CORE_ADVICE = ("move or rename it", "choose another output folder")  # replaced by the window's actions

OVERWRITE_LABEL = "Overwrite"
CHOOSE_FOLDER_LABEL = "Choose another folder…"


def output_problem(job: Job) -> OutputProblem:
    """Which output problem made ``job`` fail, if any (from the kind the processor recorded)."""
    if job.state != FAILED:
        return OutputProblem.NONE
    return _PROBLEMS.get(job.error_kind or "", OutputProblem.NONE)


def window_error(job: Job) -> str:
    """The job's error as the window shows it: no command-line advice, the window's actions named.

    The first line is the summary the table shows; later lines (details) are kept as they are."""
    if not job.error:
        return ""
    first, *rest = job.error.splitlines() or [""]
    parts = [p.strip() for p in first.split(";")]
    kept = [p for p in parts if p and not any(a in p.lower() for a in _CLI_ADVICE)]
    kept = list(dict.fromkeys(kept))  # several files in the way repeat the same advice
    problem = output_problem(job)
    if problem is not OutputProblem.NONE:
        kept = [p for p in kept if not any(a in p.lower() for a in _CORE_ADVICE)]
    if problem is OutputProblem.IN_THE_WAY:
        kept.append(f'use "{OVERWRITE_LABEL}" to replace it or "{CHOOSE_FOLDER_LABEL}" to write elsewhere')
    elif problem is OutputProblem.UNWRITABLE:
        kept.append(f'use "{CHOOSE_FOLDER_LABEL}" to write the transcripts elsewhere')
    return "\n".join(["; ".join(kept), *rest])


def error_summary(job: Job) -> str:
    """One short line for the table's error column; :func:`window_error` is the whole story (tooltip).

    Output problems name the file in the way, not its full path, so the column shows what matters."""
    problem = output_problem(job)
    if problem is OutputProblem.IN_THE_WAY:
        first = (job.error or "").splitlines()[0]
        names = []
        for part in first.split(";"):
            for phrase in (" already exists", " holds the transcript", " was changed after"):
                if phrase in part:
                    names.append(Path(part.split(phrase)[0].strip()).name)
        shown = ", ".join(dict.fromkeys(names)) or "a file"
        return f"{shown} is in the way: {OVERWRITE_LABEL} or {CHOOSE_FOLDER_LABEL}"
    if problem is OutputProblem.UNWRITABLE:
        return f"the transcripts cannot be written there: {CHOOSE_FOLDER_LABEL}"
    return first_line(window_error(job))


def first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def count_phrase(count: int, singular: str, plural: str | None = None) -> str:
    """``1 transcript``, ``3 transcripts``."""
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"
