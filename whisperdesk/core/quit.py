"""Quit means quit (issue 17.5): how long a quitting process gives running work, and how it then ends.

A job stops between segments or windows, but a window already inside CTranslate2's ``generate`` (or a model
load) cannot be interrupted from Python: on a CPU it holds its thread for seconds to tens of seconds. So
the window and ``whisperdesk watch`` give running work :data:`QUIT_GRACE_S`, put the jobs still running back
in the queue themselves (released: queued again, the attempt not counted), and then end the process with
:func:`end_process` rather than wait. A normal interpreter exit would wait for Qt's pools, and with a
CTranslate2 thread still running it aborts ("terminate called without an active exception").
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

QUIT_GRACE_S = 1.0

log = logging.getLogger(__name__)


def end_process(code: int) -> None:
    """Flush the log and the standard streams, then ``os._exit(code)``: no thread is waited for.

    Safe for the data: jobs were released in the job store first (SQLite keeps committed writes without a
    close), and transcripts are written by atomic rename, so a write cut short leaves no half transcript,
    at worst a hidden ``.wdtmp`` temp file, as after ``kill -9``.
    """
    log.info("exiting now, status %d, without waiting for work that cannot be interrupted", code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
