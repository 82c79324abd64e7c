"""Warnings every headless command gives before its own output (the window shows them as banners)."""

from __future__ import annotations

import sys

from whisperdesk.core.jobstore import JobStore
from whisperdesk.core.queue.reset import reset_notice


def warn_if_reset(store: JobStore) -> None:
    """One line on stderr when the job list was reset (damaged and kept aside, or missing)."""
    notice = reset_notice(store)
    if notice is not None:
        print(f"whisperdesk: warning: {notice}", file=sys.stderr, flush=True)
