"""Diarization error rate: (missed + false-alarm + confused speech) / reference speech, with a forgiveness collar.

Scored on a 10-ms grid; frames within ``collar`` seconds of a reference turn boundary are not scored (the usual
0.25-s collar), and hypothesis speakers are mapped one-to-one onto reference speakers to maximise overlap.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np

STEP = 0.01


def _grid(turns: Iterable[tuple[float, float, int]], frames: int) -> np.ndarray:
    labels = np.full(frames, -1, dtype=np.int64)
    for start, end, speaker in turns:
        labels[round(start / STEP) : round(end / STEP)] = speaker
    return labels


def der(
    reference: Sequence[tuple[float, float, int]],
    hypothesis: Sequence[tuple[float, float, int]],
    *,
    collar: float = 0.25,
) -> float:
    """DER of ``hypothesis`` against ``reference`` turns (start, end, speaker); non-overlapping speech."""
    end = max([t[1] for t in reference] + [t[1] for t in hypothesis] + [0.0])
    frames = int(np.ceil(end / STEP)) + 1
    ref, hyp = _grid(reference, frames), _grid(hypothesis, frames)
    scored = np.ones(frames, dtype=bool)
    pad = round(collar / STEP)
    for start, stop, _ in reference:
        for edge in (round(start / STEP), round(stop / STEP)):
            scored[max(0, edge - pad) : edge + pad] = False
    ref, hyp = ref[scored], hyp[scored]
    total = int((ref >= 0).sum())
    if total == 0:
        return 0.0
    missed = int(((ref >= 0) & (hyp < 0)).sum())
    false_alarm = int(((ref < 0) & (hyp >= 0)).sum())
    both = (ref >= 0) & (hyp >= 0)
    matched = _best_matching(ref[both], hyp[both])
    confused = int(both.sum()) - matched
    return (missed + false_alarm + confused) / total


def _best_matching(ref: np.ndarray, hyp: np.ndarray) -> int:
    """Largest number of frames agreeing under a one-to-one speaker mapping."""
    if len(ref) == 0:
        return 0
    r_ids, r_idx = np.unique(ref, return_inverse=True)
    h_ids, h_idx = np.unique(hyp, return_inverse=True)
    overlap = np.zeros((len(r_ids), len(h_ids)), dtype=np.int64)
    np.add.at(overlap, (r_idx, h_idx), 1)
    if overlap.shape[0] > overlap.shape[1]:
        overlap = overlap.T
    rows, cols = overlap.shape
    if cols <= 8:
        return max(
            sum(overlap[i, j] for i, j in enumerate(perm))
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
