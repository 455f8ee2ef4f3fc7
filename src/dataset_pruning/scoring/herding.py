"""Herding (Welling, ICML 2009; as a coreset baseline in Rebuffi et al. 2017): greedy class-mean matching.

Per class, in the penultimate feature space of the trained model: repeatedly pick the sample that brings the mean
of the picked samples closest to the class mean, argmin_j || mu_c - (s + f_j) / t ||_2 (DeepCore's herding.py
takes the argmax, a bug). The score is the pick order within the class, 1 - rank / n_c, so the first-picked
(most representative) samples score highest and keeping the top fraction keeps about the same fraction of every
class. The HIGHEST scores are kept. Cost: O(n_c^2 a) per class for features of width a (one matrix-vector product
per pick), one forward pass. ``kernel: rbf`` is kernel herding (Chen, Welling & Smola, UAI 2010,
``kernel_herding_order``): the picks match the class's distribution, not only its mean.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field

from dataset_pruning.data.base import TensorData
from dataset_pruning.models.base import feature_batches
from dataset_pruning.runtime import resolve_device
from dataset_pruning.scoring.base import SampleScores, scorer


def herding_order(features: torch.Tensor, max_gram_bytes: int = 2**29) -> torch.Tensor:
    """Greedy herding order of the rows of ``features`` (m, a): int64 indices of shape (m,), first = best match.

    Step t picks argmin_j ||mu - (s + f_j) / t||, which is argmin_j ||f_j||^2 - 2 <f_j, t mu - s> (the rest does
    not depend on j). F mu is computed once and F s is kept up to date by adding F f_j after each pick: a row of the
    Gram matrix F F^T, formed once when it fits in ``max_gram_bytes`` (float64), else one matrix-vector product per
    pick. A step costs O(m), not a fresh (m, a) difference and norm.
    """
    x = features.detach().cpu().double()
    f = x.numpy()
    m = len(f)
    # the Gram matrix by torch's BLAS, whose threads the forward pass just used: on a Fashion-MNIST class (6,000 x 128)
    # numpy's f @ f.T took 1.24 s against 0.70 s (2 shared cores), the same bits
    gram = (x @ x.T).numpy() if m * m * 8 <= max_gram_bytes else None
    squares = np.einsum("ij,ij->i", f, f)
    along_mean = f @ f.mean(0)
    along_sum = np.zeros(m)
    order = np.empty(m, dtype=np.int64)
    step = np.empty(m)
    for t in range(1, m + 1):  # greedy and sequential by definition
        np.multiply(along_mean, t, out=step)  # squares - 2 (t mu - s) . f_j, in place: no temporaries per step
        np.subtract(step, along_sum, out=step)
        np.multiply(step, 2.0, out=step)
        np.subtract(squares, step, out=step)
        j = int(step.argmin())
        order[t - 1] = j
        squares[j] = np.inf  # picked: never again
        along_sum += gram[j] if gram is not None else f @ f[j]
    return torch.from_numpy(order)


def kernel_herding_order(features: torch.Tensor, max_gram_bytes: int = 2**29, bandwidth: float = 1.0) -> torch.Tensor:
    """Kernel herding (Chen, Welling & Smola, UAI 2010) of the rows of ``features`` (m, a): int64 indices (m,).

    Step t picks argmax_j mean_i k(f_j, f_i) - (1 / t) sum_{s picked} k(f_j, f_s) with the RBF kernel
    k = exp(-||f - f'||^2 / h), h the (lower) median of the nonzero squared distances from the first 2,048 rows (the
    median heuristic), times ``bandwidth``: it matches the whole class distribution in the kernel's feature space,
    not just its mean (linear herding), so the picks spread over the class's modes. The kernel matrix is formed when
    it fits in ``max_gram_bytes`` (float64), else one row per pick.
    """
    x = features.detach().cpu().double()
    m = len(x)
    squares = (x * x).sum(1)

    def rows(index: torch.Tensor) -> torch.Tensor:
        return (squares[index, None] + squares[None, :] - 2.0 * x[index] @ x.T).clamp_min_(0.0)

    blocks = [torch.arange(m)[i: i + 2048] for i in range(0, m, 2048)]
    first = rows(blocks[0])  # the median heuristic's sample, then the kernel's first block
    h = bandwidth * (float(first[first > 0].median()) if (first > 0).any() else 1.0)

    def kernel_blocks():  # rows of k, 2,048 at a time, once (the first block, computed for h, turns into k in place)
        yield first.div_(-h).exp_()
        for block in blocks[1:]:
            yield rows(block).div_(-h).exp_()

    kernel = torch.cat(list(kernel_blocks())) if m * m * 8 <= max_gram_bytes else None
    mean_similarity = (kernel.mean(1) if kernel is not None else
                       torch.cat([block.mean(1) for block in kernel_blocks()])).numpy()
    picked_sum = np.zeros(m)
    available = np.ones(m, dtype=bool)
    order = np.empty(m, dtype=np.int64)
    for t in range(1, m + 1):  # greedy and sequential by definition
        objective = np.where(available, mean_similarity - picked_sum / t, -np.inf)
        j = int(objective.argmax())
        order[t - 1], available[j] = j, False
        picked_sum += (kernel[j] if kernel is not None else rows(torch.tensor([j]))[0].div_(-h).exp_()).numpy()
    return torch.from_numpy(order)


def herding_class(features: torch.Tensor, kernel: str, bandwidth: float = 1.0) -> torch.Tensor:
    """The pick order (int64 (m,)) of one class's ``features`` (m, a) under herding's ``kernel`` option."""
    if kernel == "linear":
        return herding_order(features)
    if kernel == "rbf":
        return kernel_herding_order(features, bandwidth=bandwidth)
    raise ValueError(f"unknown herding kernel {kernel!r}; known: linear, rbf")


@torch.no_grad()
def feature_matrix(model: torch.nn.Module, train: TensorData, batch_size: int, device: torch.device) -> torch.Tensor:
    """Penultimate features ``model.features(x)`` (n, a), float64, or the flattened inputs for a model without."""
    if not hasattr(model, "features"):
        raise ValueError("herding in feature space needs a Classifier (features + head); use space: input")
    return torch.cat([h.double() for _, h in feature_batches(model, train.x, batch_size, device)])


def herding_space(model: torch.nn.Module, train: TensorData, space: str, batch_size: int,
                  device: torch.device) -> torch.Tensor:
    """The vectors herded, float64 of shape (n, a): ``features`` (``feature_matrix``) or ``input`` (flattened x)."""
    if space == "features":
        return feature_matrix(model, train, batch_size, device)
    if space == "input":
        return train.x.flatten(1).double().to(device)
    raise ValueError(f"unknown space {space!r}; known: features, input")


def class_members(y: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """The sample indices of each class that has samples, in index order: int64 tensors of shape (n_c,)."""
    members = [(y == c).nonzero().flatten() for c in range(num_classes)]
    return [index for index in members if len(index)]


def rank_scores(members: list[torch.Tensor], orders: list[torch.Tensor], n: int) -> torch.Tensor:
    """1 - rank / n_c of each sample from each class's ``members`` and herding ``orders``: shape (n,), float32."""
    scores = torch.zeros(n)
    for index, order in zip(members, orders):
        scores[index[order]] = 1.0 - torch.arange(len(index), dtype=torch.float32) / len(index)
    return scores


@scorer("herding", output="scalar")
def herding(
    model: torch.nn.Module,
    train: TensorData,
    *,
    space: str = "features",
    kernel: Literal["linear", "rbf"] = "linear",
    bandwidth: Annotated[float, Field(gt=0)] = 1.0,
    batch_size: int = 1024,
    device: str = "auto",
) -> SampleScores:
    """scores : Tensor of shape (n_samples,), 1 - (herding rank within the class) / n_c; keep highest.
    ``kernel``: linear (Welling's herding: the class mean) or rbf (kernel herding, ``kernel_herding_order``, whose
    width is ``bandwidth`` times the median heuristic's)."""
    dev = resolve_device(device)
    features = herding_space(model, train, space, batch_size, dev)
    members = class_members(train.y, train.num_classes)
    orders = [herding_class(features[index.to(dev)], kernel, bandwidth) for index in members]
    scores = rank_scores(members, orders, len(train))
    return SampleScores(scores, method="herding", keep="highest",
                        info={"space": space, "kernel": kernel, "bandwidth": bandwidth})


__all__ = ["class_members", "feature_matrix", "herding", "herding_order", "herding_space",
           "herding_class", "kernel_herding_order", "rank_scores"]
