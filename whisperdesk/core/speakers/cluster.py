"""Group speaker embeddings into speakers: spectral clustering that estimates the count, chunked for long files.

Why spectral with a pruned affinity: on this model's embeddings it found the right count on every synthetic
conversation where agglomerative and sherpa-onnx's clustering did not (issue 11). Why chunks: the affinity
matrix is N x N, so a 2-hour file (~12k windows) would need gigabytes; clustering ~20-minute chunks and then
joining the chunks' speaker centroids keeps memory flat at any length.
"""

from __future__ import annotations

import numpy as np

from whisperdesk.core.speakers.count import SpeakerCount

PRUNE_FRACTION = 0.012  # keep each row's strongest 1.2 % of affinities…
PRUNE_MIN_KEEP = 15  # …but never fewer than this many neighbours (fewer split short files)
MERGE_SIMILARITY = 0.8  # clusters whose centroids are this alike are one speaker (auto/range only)
MIN_CLUSTER = 3  # a cluster of fewer windows is folded into its nearest neighbour (auto/range only)
CHUNK = 2000  # windows per clustering chunk (≈20 min of speech)
# Fewer windows than this (≈12 s of speech) are one speaker unless the user asks for more: short windows of
# one real voice scatter more than different synthetic voices do, so no similarity cut can split so few safely.
MIN_WINDOWS_TO_SPLIT = 20


def cluster(embeddings: np.ndarray, count: SpeakerCount, *, chunk: int = CHUNK) -> np.ndarray:
    """Label each L2-normalised embedding row with a speaker index 0..k-1, numbered by first appearance."""
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    labels = _chunked(embeddings, count, chunk) if n > chunk else _spectral(embeddings, count)
    return _by_first_appearance(labels)


def _spectral(emb: np.ndarray, count: SpeakerCount) -> np.ndarray:
    n = len(emb)
    if n < MIN_WINDOWS_TO_SPLIT:
        if count.minimum == 1:
            return np.zeros(n, dtype=np.int64)
        return _agglomerate_rows(emb, count)
    affinity = _pruned_affinity(emb)
    laplacian = np.diag(affinity.sum(axis=1)) - affinity
    values, vectors = np.linalg.eigh(laplacian)
    del laplacian, affinity
    k = _eigengap_count(values, count, n)
    labels = _kmeans(vectors[:, :k], k)
    if count.exact is None:
        labels = _merge_alike(emb, labels, count.minimum)
    return labels


def _pruned_affinity(emb: np.ndarray) -> np.ndarray:
    affinity = (emb @ emb.T).astype(np.float64)
    n = len(affinity)
    keep = max(PRUNE_MIN_KEEP, int(PRUNE_FRACTION * n))
    if keep < n:
        cut = np.argpartition(affinity, n - keep, axis=1)[:, : n - keep]
        np.put_along_axis(affinity, cut, 0.0, axis=1)
    np.clip(affinity, 0.0, None, out=affinity)
    return 0.5 * (affinity + affinity.T)


def _eigengap_count(values: np.ndarray, count: SpeakerCount, n: int) -> int:
    if count.exact is not None:
        return min(count.exact, n)
    top = min(count.maximum, n - 1)
    gaps = np.diff(values[: top + 1])
    k = int(np.argmax(gaps)) + 1 if len(gaps) else 1
    return int(min(max(k, count.minimum), top if top >= 1 else 1))


def _kmeans(points: np.ndarray, k: int, *, restarts: int = 5, iterations: int = 100) -> np.ndarray:
    """Plain Lloyd's k-means with k-means++ seeding; the best of a few seeded restarts (deterministic)."""
    if k <= 1:
        return np.zeros(len(points), dtype=np.int64)
    rng = np.random.default_rng(0)
    best, best_cost = np.zeros(len(points), dtype=np.int64), np.inf
    for _ in range(restarts):
        centres = _plus_plus(points, k, rng)
        for _ in range(iterations):
            dist = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
            labels = dist.argmin(1)
            moved = np.array(
                [points[labels == j].mean(0) if np.any(labels == j) else centres[j] for j in range(k)]
            )
            if np.allclose(moved, centres):
                break
            centres = moved
        cost = float(dist[np.arange(len(points)), labels].sum())
        if cost < best_cost:
            best, best_cost = labels, cost
    return best


def _plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        dist = np.min([((points - c) ** 2).sum(1) for c in centres], axis=0)
        total = dist.sum()
        pick = rng.choice(len(points), p=dist / total) if total > 0 else rng.integers(len(points))
        centres.append(points[pick])
    return np.array(centres)


def centroids(emb: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length mean embedding and member count of each label 0..max."""
    k = int(labels.max()) + 1
    sums = np.zeros((k, emb.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, emb)
    sizes = np.bincount(labels, minlength=k)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return sums / np.maximum(norms, 1e-12), sizes


def _merge_alike(emb: np.ndarray, labels: np.ndarray, minimum: int) -> np.ndarray:
    """Fold tiny clusters and clusters of one voice together, never going below ``minimum`` speakers."""
    labels = _compact(labels)
    while int(labels.max()) + 1 > minimum:
        cents, sizes = centroids(emb, labels)
        sim = cents @ cents.T
        np.fill_diagonal(sim, -np.inf)
        small = int(sizes.argmin())
        if sizes[small] < MIN_CLUSTER:
            a, b = small, int(sim[small].argmax())
        else:
            a, b = np.unravel_index(int(sim.argmax()), sim.shape)
            if sim[a, b] < MERGE_SIMILARITY:
                break
        labels = _compact(np.where(labels == max(a, b), min(a, b), labels))
    return labels


def _agglomerate_rows(emb: np.ndarray, count: SpeakerCount) -> np.ndarray:
    """For a handful of windows (too few for a graph): start with one cluster each and merge."""
    labels = np.arange(len(emb))
    target = count.exact if count.exact is not None else count.minimum
    while int(labels.max()) + 1 > max(target, 1):
        cents, _ = centroids(emb, labels)
        sim = cents @ cents.T
        np.fill_diagonal(sim, -np.inf)
        a, b = np.unravel_index(int(sim.argmax()), sim.shape)
        over_max = int(labels.max()) + 1 > count.maximum
        if count.exact is None and not over_max and sim[a, b] < MERGE_SIMILARITY:
            break
        labels = _compact(np.where(labels == max(a, b), min(a, b), labels))
    return labels


def _chunked(emb: np.ndarray, count: SpeakerCount, chunk: int) -> np.ndarray:
    """Cluster each chunk on its own, then join the chunks' speakers by their centroids."""
    lenient = SpeakerCount(1, count.maximum)
    local: list[np.ndarray] = []
    cents: list[np.ndarray] = []
    offset = 0
    parts = max(1, round(len(emb) / chunk))
    for rows in np.array_split(np.arange(len(emb)), parts):
        labels = _spectral(emb[rows], lenient)
        c, _ = centroids(emb[rows], labels)
        local.append(labels + offset)
        cents.append(c)
        offset += len(c)
    joined = _agglomerate_rows(np.concatenate(cents).astype(np.float32), count)
    return joined[np.concatenate(local)]


def _compact(labels: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.astype(np.int64)


def _by_first_appearance(labels: np.ndarray) -> np.ndarray:
    order: dict[int, int] = {}
    for label in labels.tolist():
        order.setdefault(label, len(order))
    return np.array([order[x] for x in labels.tolist()], dtype=np.int64)
