"""How many jobs run at once: one rule for the window and ``whisperdesk watch``."""

from __future__ import annotations

MAX_WORKERS = 4  # beyond this, more jobs in flight only add memory: the scheduler's batches are full


def workers_for(batch_size: int) -> int:
    """Jobs to run at once. More than one only helps when the engine's scheduler can pack their windows
    into shared batches, so batch size 1 means one job at a time."""
    return 1 if batch_size <= 1 else min(batch_size, MAX_WORKERS)
