"""Group speaker embeddings into speakers: agglomerative clustering with a similarity threshold, chunked for
long files, that obeys the user's count.

Why agglomerative (issue 16): on real voices the spectral eigengap of issue 11 counted one speaker on
real meeting excerpts and too many on longer real conversations, and needed a 20-window floor that made
every short recording one speaker. Measured on CAM++ 1.5-s windows (BENCHMARKS.md, "Speaker counting on
real voices"): windows of one real person agree at cosine 0.46-0.84 on average and two people at -0.01-0.33;
the mean embeddings of two real people agree at 0.0-0.49 (the highest: two people on one telephone line),
of two espeak-ng voices at 0.47-0.64. The mean of a few windows of one person is noisy (two small clusters
of one person may agree at only ~0.6), the mean of many is sure (they agree at 0.8 or more). Hence two
thresholds: clusters merge at MERGE_SIMILARITY, but two large ones only at MERGE_SIMILARITY_LARGE; then a
cluster of fewer than MIN_SPEAKER_WINDOWS windows is folded into its nearest one (too little speech to be a
speaker of its own). Every real recording, every conversation built from real voices and every espeak-ng
set got its right count for 0.54-0.60 / 0.79 / 8-10 windows / 4-5 windows (the real sets alone allow
0.77-0.81 for the large threshold; the espeak-ng five-voice set pins it to 0.79).

Why chunks: the similarity matrix is N x N, so a 2-hour file (~12k windows) would need gigabytes; clustering
~20-minute chunks and then joining the chunks' clusters by the same rule keeps memory flat at any length.
"""

from __future__ import annotations

import numpy as np

from whisperdesk.core.speakers.count import SpeakerCount

MERGE_SIMILARITY = 0.57  # two clusters whose mean embeddings agree this much are one voice…
MERGE_SIMILARITY_LARGE = 0.79  # …or this much when both are large: the mean of many windows is sure
LARGE_CLUSTER = 10  # windows (≈7 s of speech at the default hop)
# …and in a long recording, fewer than this share of all windows: an hour of 4 espeak-ng voices kept 1-2 extra
# "speakers" of 26-56 windows (windows spanning two voices' turns) without it; 1 % of an hour is ~20 s.
MIN_SPEAKER_SHARE = 0.01
MIN_SPEAKER_WINDOWS = 4  # fewer windows (≈3 s of speech at the default hop) are no speaker of their own
CHUNK = 2000  # windows per clustering chunk (≈20 min of speech)
# Within one chunk, clusters merge only when this alike (at most MAX_SPEAKERS are kept per chunk): a voice that
# is short in one chunk must not be swallowed there before the join sees how much it says elsewhere. All sets
# kept their counts with 0.75 at chunks of 40 and 60 windows (0.56 lost espeak-ng voices, 0.79 one at 100).
CHUNK_SIMILARITY = 0.75


def cluster(
    embeddings: np.ndarray, count: SpeakerCount, *, chunk: int = CHUNK, min_windows: int = MIN_SPEAKER_WINDOWS
) -> np.ndarray:
    """Label each L2-normalised embedding row with a speaker index 0..k-1, numbered by first appearance.

    ``count`` is obeyed whenever there are enough windows: exactly N clusters for N, never outside a range.
    """
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    min_windows = max(min_windows, int(np.ceil(MIN_SPEAKER_SHARE * n)))
    if n > chunk:
        labels = _chunked(embeddings, count, chunk, min_windows)
    else:
        emb = embeddings.astype(np.float64)
        labels = agglomerate(emb, np.ones(n), count, min_windows)
    return _by_first_appearance(_nearest_centroid(embeddings, labels))


def _nearest_centroid(emb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each window moved to the speaker whose mean it is most like. Agglomeration decides a window once, when
    the clusters were still small; a window straddling two people's turns often went the wrong way then.
    Kept as it was if a speaker would be left with no window (the count must not change)."""
    if labels.max() < 1:
        return labels
    cents, _ = centroids(emb, labels)
    moved = (emb @ cents.T.astype(emb.dtype)).argmax(axis=1)
    return moved if len(np.unique(moved)) == len(cents) else labels


def agglomerate(
    sums: np.ndarray,
    sizes: np.ndarray,
    count: SpeakerCount,
    min_windows: float,
    *,
    small_threshold: float = MERGE_SIMILARITY,
) -> np.ndarray:
    """Centroid-linkage clustering of clusters given as embedding sums with their window counts.

    Each step merges the two clusters whose means agree most above their threshold (MERGE_SIMILARITY, or
    MERGE_SIMILARITY_LARGE when both hold LARGE_CLUSTER windows or more); then a cluster of fewer than
    ``min_windows`` windows is folded into its most alike neighbour; then, only while there are more clusters
    than the count allows, the most alike pair is merged anyway. Never goes below ``count.minimum`` clusters.
    Returns each input row's cluster, numbered 0..k-1.
    """
    n = len(sums)
    sums = np.array(sums, dtype=np.float64)
    sizes = np.array(sizes, dtype=np.float64)
    alive = np.ones(n, dtype=bool)
    owner = np.arange(n)
    cents = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    sim = cents @ cents.T
    np.fill_diagonal(sim, -np.inf)
    excess = sim - _thresholds(sizes, sizes, small_threshold)
    best = excess.argmax(axis=1) if n > 1 else np.zeros(1, dtype=np.int64)  # each row's most mergeable
    lowest = max(count.minimum, 1)
    k = n
    rows = np.arange(n)
    while k > lowest:
        scores = np.where(alive, excess[rows, best], -np.inf)
        a = int(scores.argmax())
        b = int(best[a])
        if scores[a] < 0:
            small = np.flatnonzero(alive & (sizes < min_windows))
            if len(small):  # fold the smallest cluster, before merging two real ones for an exact count
                a = int(small[sizes[small].argmin()])
                b = int(sim[a].argmax())
            elif k <= count.maximum:
                break
            else:
                a, b = np.unravel_index(int(sim.argmax()), sim.shape)
        a, b = int(min(a, b)), int(max(a, b))
        sums[a] += sums[b]
        sizes[a] += sizes[b]
        alive[b] = False
        owner[owner == b] = a
        cents[a] = sums[a] / max(float(np.linalg.norm(sums[a])), 1e-12)
        row = cents @ cents[a]
        row[~alive] = -np.inf
        row[a] = -np.inf
        sim[a, :] = sim[:, a] = row
        sim[b, :] = sim[:, b] = -np.inf
        row_excess = row - _thresholds(sizes, sizes[a : a + 1], small_threshold)[:, 0]
        excess[a, :] = excess[:, a] = row_excess
        excess[b, :] = excess[:, b] = -np.inf
        k -= 1
        stale = np.flatnonzero(alive & ((best == a) | (best == b)))
        best[stale] = excess[stale].argmax(axis=1)
        better = alive & (row_excess > excess[rows, best])
        best[better] = a
        best[a] = int(row_excess.argmax())
    _, labels = np.unique(owner, return_inverse=True)
    return labels.astype(np.int64)


def _thresholds(sizes_a: np.ndarray, sizes_b: np.ndarray, small: float) -> np.ndarray:
    """The merge threshold of every pair: stricter when both clusters are large (their means are sure)."""
    both = np.logical_and.outer(sizes_a >= LARGE_CLUSTER, sizes_b >= LARGE_CLUSTER)
    return np.where(both, MERGE_SIMILARITY_LARGE, small)


def centroids(emb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length mean embedding and member count of each label 0..max."""
    k = int(labels.max()) + 1
    sums = np.zeros((k, emb.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, emb)
    sizes = np.bincount(labels, minlength=k)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return sums / np.maximum(norms, 1e-12), sizes


def _chunked(emb: np.ndarray, count: SpeakerCount, chunk: int, min_windows: int) -> np.ndarray:
    """Cluster each chunk on its own, cautiously (only the large-cluster threshold, keeping even short
    voices: they may be long in another chunk), then join the chunks' clusters by the full rule, weighted by
    their window counts: a chunk's clusters are then large or small by how much speech they hold."""
    lenient = SpeakerCount()
    local: list[np.ndarray] = []
    sums: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    offset = 0
    parts = max(1, round(len(emb) / chunk))
    for rows in np.array_split(np.arange(len(emb)), parts):
        part = emb[rows].astype(np.float64)
        labels = agglomerate(part, np.ones(len(rows)), lenient, 1, small_threshold=CHUNK_SIMILARITY)
        size = np.bincount(labels)
        total = np.zeros((len(size), part.shape[1]))
        np.add.at(total, labels, part)
        local.append(labels + offset)
        sums.append(total)
        sizes.append(size)
        offset += len(size)
    joined = agglomerate(np.concatenate(sums), np.concatenate(sizes), count, min_windows)
    return joined[np.concatenate(local)]


def _by_first_appearance(labels: np.ndarray) -> np.ndarray:
    order: dict[int, int] = {}
    for label in labels.tolist():
        order.setdefault(label, len(order))
    return np.array([order[x] for x in labels.tolist()], dtype=np.int64)
