"""D2-pruning (Maharana et al., ICLR 2024, "D2 Pruning: Message Passing for Balancing Diversity & Difficulty").

Within each class, on the model's penultimate features: a kNN graph (``n_neighbor`` neighbours, Euclidean
distances d_ij), forward message passing of the importance s (a difficulty score: forgetting by default)

    density_i = s_i + sum_{j in kNN(i)} exp(-gamma d_ij) s_j                                   (graph mode "sum")

then greedy selection: take the densest sample, lower each neighbour's density by exp(-gamma d_ij) density_i
(reverse message passing, "weighted"), repeat. The order of the picks is the score (1 - rank / n_c, as herding):
the first ``count`` picks of a class are D2's kept set of that size (the greedy does not depend on the count), so
class-balanced selection keeps exactly them; the HIGHEST are kept.
Reference: adymaharana/d2pruning, core/data/sampling.py (``GraphDensitySampler``) and its README's CIFAR-10 command
(forgetting, ``--coreset-mode class``, n_neighbor 5, gamma 0.1, graph mode sum, sampling mode weighted). Differences:
the importance is shifted to a minimum of 0 (the reference floors it at 1e-7); its ``mis_ratio`` cut of the hardest
samples (0.4 in the README's example at 90 % removed, tuned per ratio in the paper) is ``hard_cut`` here, 0 by default:
those samples are picked last.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field

from dataset_pruning.data.base import TensorData
from dataset_pruning.runtime import resolve_device
from dataset_pruning.scoring.base import SampleScores, score_samples, scorer
from dataset_pruning.scoring.herding import class_members, feature_matrix, rank_scores


def d2_order(features: np.ndarray, importance: np.ndarray, *, n_neighbor: int, gamma: float,
             mode: str = "sum") -> np.ndarray:
    """features (n, f), importance (n,) >= 0 -> the greedy pick order, a permutation of range(n), int64."""
    n = len(features)
    k = min(n_neighbor, n - 1)
    if k < 1:
        return np.arange(n, dtype=np.int64)
    from sklearn.neighbors import NearestNeighbors  # imported on use: scikit-learn and SciPy at every start cost ~0.1 GB

    distances, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    distances, neighbours = distances[:, 1:], neighbours[:, 1:]  # the sample itself comes first
    weights = np.exp(-gamma * distances)
    passed = (weights * importance[neighbours]).sum(1)
    density = passed + importance if mode == "sum" else passed * importance
    order = np.empty(n, dtype=np.int64)
    for rank in range(n):
        pick = int(np.argmax(density))
        order[rank] = pick
        density[neighbours[pick]] -= weights[pick] * density[pick]
        density[pick] = -np.inf
    return order


@scorer("d2", output="scalar", needs=("dynamics",))
def d2(model: torch.nn.Module, train: TensorData, *, trace=None, importance: str = "forgetting",
       n_neighbor: Annotated[int, Field(ge=1)] = 5, gamma: Annotated[float, Field(gt=0)] = 0.1,
       mode: Literal["sum", "product"] = "sum", hard_cut: Annotated[float, Field(ge=0, lt=1)] = 0.0,
       batch_size: int = 1024, device: str = "auto") -> SampleScores:
    """scores : Tensor of shape (n_samples,), 1 - (D2 pick rank within the class) / n_c; keep highest.
    ``importance``: a scalar scorer with its default options (its kept end counts as important)."""
    base = score_samples(importance, model, train, trace=trace)
    if base.is_vector:
        raise ValueError(f"d2's importance must be a scalar score; {importance!r} gives vectors")
    values = base.values.double().numpy()
    values = values if base.keep == "highest" else -values
    values = values - values.min()
    features = feature_matrix(model, train, batch_size, resolve_device(device)).cpu().numpy()
    members = class_members(train.y, train.num_classes)
    orders = []
    for index in members:
        rows = index.numpy()
        importance_c = values[rows].copy()
        cut = int(round(hard_cut * len(rows)))
        hardest = np.argsort(-importance_c, kind="stable")[:cut]
        rest = np.setdiff1d(np.arange(len(rows)), hardest)
        order = rest[d2_order(features[rows[rest]], importance_c[rest], n_neighbor=n_neighbor, gamma=gamma,
                              mode=mode)]
        orders.append(torch.from_numpy(np.concatenate([order, hardest[::-1]])))  # the cut ones last, hardest last
    scores = rank_scores(members, orders, len(train))
    return SampleScores(scores, method="d2", keep="highest",
                        info={"importance": importance, "n_neighbor": n_neighbor, "gamma": gamma, "mode": mode,
                              "hard_cut": hard_cut})


__all__ = ["d2", "d2_order"]
