"""Diarization error rate: (missed + false-alarm + confused speech) / reference speech, with a forgiveness collar.

Scored on a 10-ms grid; frames within ``collar`` seconds of a reference turn boundary are not scored (the usual
0.25-s collar), and hypothesis speakers are mapped one-to-one onto reference speakers to maximise overlap.
Overlapping speech counts as in the NIST scorer: a frame where two reference speakers talk holds two speaker
units, so a hypothesis with one speaker there misses one of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STEP = 0.01


@dataclass(frozen=True)
class DerParts:
    """Seconds of missed, falsely detected and confused speech, over ``total`` seconds of reference speech."""

    missed: float
    false_alarm: float
    confusion: float
    total: float

    @property
    def der(self) -> float:
        return (self.missed + self.false_alarm + self.confusion) / self.total if self.total > 0 else 0.0

    def share(self, part: str) -> float:
        return float(getattr(self, part)) / self.total if self.total > 0 else 0.0


def _grid(turns: Sequence[tuple[float, float, int]], frames: int) -> tuple[np.ndarray, list[int]]:
    """Frames x speakers activity matrix, and the speaker id of each column."""
    ids = sorted({int(k) for _, _, k in turns})
    column = {k: i for i, k in enumerate(ids)}
    active = np.zeros((frames, len(ids)), dtype=bool)
    for start, end, speaker in turns:
        active[round(start / STEP) : round(end / STEP), column[int(speaker)]] = True
    return active, ids


def der_parts(
    reference: Sequence[tuple[float, float, int]],
    hypothesis: Sequence[tuple[float, float, int]],
    *,
    collar: float = 0.25,
) -> DerParts:
    """Missed, false-alarm and confused speech of ``hypothesis`` against ``reference`` (start, end, speaker)."""
    end = max([t[1] for t in reference] + [t[1] for t in hypothesis] + [0.0])
    frames = int(np.ceil(end / STEP)) + 1
    ref, _ = _grid(reference, frames)
    hyp, _ = _grid(hypothesis, frames)
    scored = np.ones(frames, dtype=bool)
    pad = round(collar / STEP)
    for start, stop, _ in reference:
        for edge in (round(start / STEP), round(stop / STEP)):
            scored[max(0, edge - pad) : edge + pad] = False
    ref, hyp = ref[scored], hyp[scored]
    n_ref, n_hyp = ref.sum(axis=1), hyp.sum(axis=1)
    total = int(n_ref.sum())
    missed = int(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = int(np.maximum(n_hyp - n_ref, 0).sum())
    overlap = ref.T.astype(np.int64) @ hyp.astype(np.int64)  # frames each (ref, hyp) pair shares
    confused = int(np.minimum(n_ref, n_hyp).sum()) - _best_matching(overlap)
    return DerParts(missed * STEP, false_alarm * STEP, confused * STEP, total * STEP)


def der(
    reference: Sequence[tuple[float, float, int]],
    hypothesis: Sequence[tuple[float, float, int]],
    *,
    collar: float = 0.25,
) -> float:
    """DER of ``hypothesis`` against ``reference`` turns (start, end, speaker)."""
    return der_parts(reference, hypothesis, collar=collar).der


def _best_matching(overlap: np.ndarray) -> int:
    """Largest number of frames agreeing under a one-to-one speaker mapping."""
    if overlap.size == 0:
        return 0
    if overlap.shape[0] > overlap.shape[1]:
        overlap = overlap.T
    rows, cols = overlap.shape
    if cols <= 8:
        return max(
            int(sum(overlap[i, j] for i, j in enumerate(perm)))
            for perm in itertools.permutations(range(cols), rows)
        )
    total, used_r, used_c = 0, set(), set()
    for flat in np.argsort(overlap, axis=None)[::-1]:
        i, j = divmod(int(flat), cols)
        if i not in used_r and j not in used_c:
            used_r.add(i)
            used_c.add(j)
            total += int(overlap[i, j])
    return total
