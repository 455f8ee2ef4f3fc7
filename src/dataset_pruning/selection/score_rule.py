"""Score-rule selection: turn one scalar score per sample into the indices to remove.

Every scalar scorer says which end it keeps (``SampleScores.keep``: ``highest`` or ``lowest``); the rule removes
the m = round(ratio * n) samples at the other end. Ties are broken by sample index (stable), so the result is
deterministic. ``class_balanced`` removes m_c = round(ratio * n_c) from every class c instead (MoSo's and Data
Diet's equal budget per class).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from dataset_pruning.selection.objective import removal_count


def remove_by_score(
    scores: np.ndarray,
    keep: Literal["highest", "lowest"],
    ratio: float,
    *,
    labels: np.ndarray | None = None,
    class_balanced: bool = False,
) -> np.ndarray:
    """Indices to remove, int64 of shape (m,), sorted: the round(ratio * n) samples at the end not kept.

    scores : ndarray of shape (n_samples,)
    labels : ndarray of shape (n_samples,), needed when ``class_balanced``
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(
            f"a score rule needs one score per sample, shape (n,), got {scores.shape}; influence vectors (n, d) "
            "go to the Eq. 3 / Eq. 4 solvers instead"
        )
    if not np.isfinite(scores).all():
        raise FloatingPointError("scores contain NaN or infinite values; rescore (check the trained model)")
    if keep not in ("highest", "lowest"):
        raise ValueError(f"keep must be 'highest' or 'lowest', got {keep!r}")
    n = len(scores)
    m = removal_count(n, ratio)  # refuses m = 0 and m = n
    removal_order = scores if keep == "highest" else -scores  # ascending: the first ones are removed

    def lowest(indices: np.ndarray, m: int) -> np.ndarray:
        return indices[np.argsort(removal_order[indices], kind="stable")[:m]]

    if not class_balanced:
        return np.sort(lowest(np.arange(n), m)).astype(np.int64)
    if labels is None:
        raise ValueError("class_balanced score-rule selection needs the labels")
    labels = np.asarray(labels)
    if labels.shape != scores.shape:
        raise ValueError(f"labels must have shape {scores.shape}, got {labels.shape}")
    removed = [
        lowest(members, int(round(ratio * len(members))))
        for members in (np.flatnonzero(labels == c) for c in np.unique(labels))
    ]
    return np.sort(np.concatenate(removed)).astype(np.int64)


__all__ = ["remove_by_score"]
