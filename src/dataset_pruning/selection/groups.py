"""The groups a budget is split over: classes, equal-width score strata, or k-means clusters.

Every solver takes group codes (int64 of shape (n,), 0..G-1) with a quota per group (Eq. 4) or a cap per group
(Eq. 3); every rule of ``rules/`` takes the same codes. ``make_groups`` builds them by name:

- ``class``: the labels (the same budgets as ``class_balanced``).
- ``strata``: ``n_groups`` equal-width strata of a score (CCS's strata, Zheng et al. ICLR 2023): the scalar
  score when one is given, else ||S_i||. The top edge is closed, so the largest score is in the last stratum.
- ``clusters``: k-means (scikit-learn, seeded) with ``n_groups`` clusters on given features (e.g. the penultimate
  embedding), else on the unit rows S_i / ||S_i|| (the direction of a sample's influence; its norm spans orders
  of magnitude and would make the clusters norm bands).
"""

from __future__ import annotations

import numpy as np

GROUPINGS = ("class", "strata", "clusters")


def equal_width_strata(scores: np.ndarray, strata: int) -> np.ndarray:
    """Stratum of each score, int64 of shape (n,) in 0..strata-1: [min, max] cut into ``strata`` equal widths."""
    scores = np.asarray(scores, dtype=np.float64)
    if strata < 1:
        raise ValueError(f"the number of strata must be >= 1, got {strata}")
    if scores.size == 0:
        return np.zeros(0, dtype=np.int64)
    low, high = float(scores.min()), float(scores.max())
    if high <= low:
        return np.zeros(scores.shape, dtype=np.int64)
    position = (scores - low) / (high - low) * strata
    return np.clip(np.floor(position), 0, strata - 1).astype(np.int64)


def kmeans_clusters(features: np.ndarray, clusters: int, seed: int = 0) -> np.ndarray:
    """k-means cluster of each row, int64 of shape (n,) (scikit-learn; MiniBatchKMeans beyond 100,000 rows)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    clusters = int(min(clusters, len(features)))
    if clusters <= 1:
        return np.zeros(len(features), dtype=np.int64)
    if len(features) > 100_000:
        model = MiniBatchKMeans(n_clusters=clusters, random_state=seed, n_init=3, batch_size=4096)
    else:
        model = KMeans(n_clusters=clusters, random_state=seed, n_init=3)
    _, codes = np.unique(model.fit_predict(features), return_inverse=True)
    return codes.reshape(-1).astype(np.int64)


def make_groups(
    kind: str | np.ndarray | None,
    n_groups: int = 10,
    *,
    n: int,
    labels: np.ndarray | None = None,
    vectors: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    features: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray | None:
    """Group codes of shape (n,), int64, for a grouping name (module docstring), or the given codes; None: none."""
    if kind is None:
        return None
    if not isinstance(kind, str):
        codes = np.asarray(kind)
        if codes.shape != (n,):
            raise ValueError(f"group codes must have shape ({n},), got {codes.shape}")
        return np.unique(codes, return_inverse=True)[1].reshape(n).astype(np.int64)
    if kind not in GROUPINGS:
        raise ValueError(f"unknown grouping {kind!r}; known: {', '.join(GROUPINGS)} (or null: no groups)")
    if isinstance(n_groups, bool) or int(n_groups) != n_groups or n_groups < 1:
        raise ValueError(f"n_groups must be an integer >= 1, got {n_groups!r}")
    if kind == "class":
        if labels is None:
            raise ValueError("groups 'class' needs the class labels")
        return np.unique(np.asarray(labels), return_inverse=True)[1].reshape(n).astype(np.int64)
    if kind == "strata":
        if scores is None:
            if vectors is None:
                raise ValueError("groups 'strata' needs a score or the influence vectors")
            scores = np.linalg.norm(np.asarray(vectors, dtype=np.float64), axis=1)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.shape != (n,):
            raise ValueError(f"strata need one score per sample, shape ({n},), got {scores.shape}")
        return equal_width_strata(scores, int(n_groups))
    if features is None:
        if vectors is None:
            raise ValueError("groups 'clusters' needs features or the influence vectors")
        rows = np.asarray(vectors, dtype=np.float64)
        features = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-300)
    if len(features) != n:
        raise ValueError(f"cluster features must have {n} rows, got {len(features)}")
    return kmeans_clusters(features, int(n_groups), seed)


__all__ = ["GROUPINGS", "equal_width_strata", "kmeans_clusters", "make_groups"]
