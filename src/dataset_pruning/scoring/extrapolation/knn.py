"""kNN regression of scores over embeddings (``knn_regress``), its leave-one-out form (``loo_knn``) and the choice
of the candidate (embedding, neighbourhood, k) that predicts the scored samples best (``select_knn``, by
``agreement``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from dataset_pruning.runtime import numpy_rng


def knn_regress(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    fit_index: torch.Tensor,
    fit_values: torch.Tensor,
    query_index: torch.Tensor,
    *,
    k: int = 20,
    weights: str = "distance",
    by_class: bool = True,
) -> torch.Tensor:
    """kNN regression (scikit-learn ``KNeighborsRegressor``) of ``fit_values`` ((m,) or (m, d)) at the samples
    ``fit_index`` onto the samples ``query_index``: shape (len(query_index),) or (len(query_index), d), float64.

    ``by_class``: each query sample looks only among the fitted samples of its own class (all of them when its
    class has none). k is capped by the number of candidates."""
    from sklearn.neighbors import KNeighborsRegressor

    x = embeddings.double().numpy()
    y_fit = fit_values.double().numpy()
    fit_index, query_index = fit_index.numpy(), query_index.numpy()
    out = np.zeros((len(query_index), *y_fit.shape[1:]))
    groups = [(np.arange(len(query_index)), np.arange(len(fit_index)))]
    if by_class:
        lab = labels.numpy()
        fit_labels, query_labels = lab[fit_index], lab[query_index]
        groups = []
        for c in np.unique(query_labels):
            candidates = np.flatnonzero(fit_labels == c)
            groups.append((np.flatnonzero(query_labels == c), candidates if len(candidates) else np.arange(len(fit_index))))
    for queries, candidates in groups:
        if len(queries) == 0:
            continue
        regressor = KNeighborsRegressor(n_neighbors=min(k, len(candidates)), weights=weights)
        regressor.fit(x[fit_index[candidates]], y_fit[candidates])
        out[queries] = regressor.predict(x[query_index[queries]]).reshape(len(queries), *y_fit.shape[1:])
    return torch.from_numpy(out)


def loo_knn(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    values: torch.Tensor,
    *,
    k: tuple[int, ...],
    weights: str = "distance",
    by_class: bool | tuple[bool, ...] = (True, False),
    queries: torch.Tensor | None = None,
    chunk: int = 1024,
) -> dict[tuple[bool, int], torch.Tensor]:
    """Leave-one-out kNN predictions of ``values`` ((m,) or (m, d)) at the m points ``embeddings`` (m, a), or at
    the positions ``queries`` (q,) among them, each from the other m - 1 points (``by_class``: of its class, all
    when its class has no other point), as ``knn_regress`` would make them: {(by_class, k): (q,) or (q, d)
    float64}, from one distance pass (chunks of ``chunk`` rows, O(chunk * m) memory) shared by every k and both
    neighbourhoods."""
    modes = (by_class,) if isinstance(by_class, bool) else tuple(by_class)
    x = embeddings.double()
    y = values.double()
    labels = torch.as_tensor(labels).long()
    m = len(x)
    k_max = min(max(k), m - 1)
    alone = torch.bincount(labels)[labels] < 2  # no other point of its class: its neighbours are all points
    found: dict[bool, list[tuple[torch.Tensor, torch.Tensor]]] = {mode: [] for mode in modes}
    queries = torch.arange(m) if queries is None else torch.as_tensor(queries).long()
    for start in range(0, len(queries), chunk):
        rows = queries[start : start + chunk]
        d = torch.cdist(x[rows], x)
        d[torch.arange(len(rows)), rows] = math.inf
        for mode in modes:
            if mode:
                other = (labels[None, :] != labels[rows, None]) & ~alone[rows, None]
                found[mode].append(d.masked_fill(other, math.inf).topk(k_max, dim=1, largest=False))
            else:
                found[mode].append(d.topk(k_max, dim=1, largest=False))
    out = {}
    for mode in modes:
        dist = torch.cat([f[0] for f in found[mode]])
        index = torch.cat([f[1] for f in found[mode]])
        for kk in k:
            dk, yk = dist[:, :kk], y[index[:, :kk]]
            valid = torch.isfinite(dk)
            if weights == "uniform":
                w = valid.double()
            else:  # 1/d; exact matches (d = 0) take all the weight, as in scikit-learn
                zero = valid & (dk == 0)
                w = torch.where(zero.any(1, keepdim=True), zero.double(), torch.where(valid, 1 / dk, 0.0))
            w = w if y.ndim == 1 else w[..., None]
            out[(mode, kk)] = (w * yk).sum(1) / w.sum(1)
    return out


def select_knn(
    embeddings: dict[str, torch.Tensor],
    labels: torch.Tensor,
    index: torch.Tensor,
    values: torch.Tensor,
    *,
    k: tuple[int, ...],
    by_class: tuple[bool, ...],
    weights: str = "distance",
    samples: int | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The kNN candidate (embedding, by_class, k) whose leave-one-out predictions of ``values`` ((m,) or (m, d))
    at the samples ``index`` agree best with them: the highest Spearman (for vectors, of the norms, as
    ``holdout_spearman``; the relative error would favour large k, whose averages shrink towards zero and rank the
    norms badly: measured in docs/extrapolation.md). ``samples``: predict at most that many
    of the m (a seeded random choice; each still from all the others), so the cost stays O(samples * m). Ties go
    to the earlier candidate. Returns the choice {embedding, by_class, k, spearman} and every candidate's row."""
    m = len(index)
    queries = None
    if samples is not None and samples < m:
        queries = torch.as_tensor(np.sort(numpy_rng(seed).choice(m, size=samples, replace=False)))
    target = values if queries is None else values[queries]
    rows = []
    for name, x in embeddings.items():
        predictions = loo_knn(x[index], labels[index], values, k=k, weights=weights, by_class=by_class,
                              queries=queries)
        for (same_class, kk), predicted in predictions.items():
            fit = agreement(predicted, target)["spearman"]
            rows.append({"embedding": name, "by_class": same_class, "k": kk, "spearman": fit})
    best = max(rows, key=lambda r: r["spearman"] if math.isfinite(r["spearman"]) else -math.inf)
    return dict(best), rows


def agreement(predicted: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """How well ``predicted`` matches ``true`` ((m,) or (m, d)): Spearman (of the norms for vectors), Pearson,
    and for vectors the mean cosine and the relative error ||P - T||_F / ||T||_F."""
    p, t = predicted.double(), true.double()
    out: dict[str, float] = {}
    if t.ndim == 2:
        cosine = torch.nn.functional.cosine_similarity(p, t, dim=1)
        out["cosine"] = float(cosine.mean())
        out["relative_error"] = float((p - t).norm() / t.norm().clamp_min(1e-300))
        p, t = p.norm(dim=1), t.norm(dim=1)
    if len(t) < 3 or float(t.std()) == 0 or float(p.std()) == 0:
        return {**out, "spearman": float("nan"), "pearson": float("nan")}
    from scipy.stats import spearmanr  # imported on use (SciPy's stats: ~60 MB at every start)

    out["spearman"] = float(spearmanr(p.numpy(), t.numpy()).statistic)
    out["pearson"] = float(np.corrcoef(p.numpy(), t.numpy())[0, 1])
    return out


__all__ = ["agreement", "knn_regress", "loo_knn", "select_knn"]
