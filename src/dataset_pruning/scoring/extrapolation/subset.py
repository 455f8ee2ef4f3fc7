"""Which samples the scorer scores (``choose_subset``), the trace it reads for them (``restrict_trace``), and the
embeddings every sample is extrapolated from (``embed``)."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from dataset_pruning.data.base import TensorData
from dataset_pruning.models.base import feature_batches
from dataset_pruning.runtime import numpy_rng, resolve_device
from dataset_pruning.scoring.extrapolation.options import EMBEDDINGS


def choose_subset(labels: torch.Tensor, fraction: float, *, stratified: bool = True, seed: int = 0) -> torch.Tensor:
    """Sorted int64 indices of the samples to score: round(fraction * n_c) of every class c (at least 1 of each
    class present) when ``stratified``, else round(fraction * n) uniformly. At least 2 are scored and at least
    one sample is left to extrapolate."""
    labels = torch.as_tensor(labels).long()
    n = len(labels)
    if n < 3:
        raise ValueError(f"score extrapolation needs at least 3 samples, got {n}")
    rng = numpy_rng(seed)
    if stratified:
        chosen = []
        for c in torch.unique(labels).tolist():
            members = (labels == c).nonzero().flatten().numpy()
            take = min(len(members), max(1, round(fraction * len(members))))
            chosen.append(rng.choice(members, size=take, replace=False))
        index = np.concatenate(chosen)
    else:
        index = rng.choice(n, size=max(2, round(fraction * n)), replace=False)
    if len(index) >= n:
        raise ValueError(
            f"extrapolation.fraction {fraction} scores every one of the n = {n} samples (at least one per class); "
            "lower the fraction or turn extrapolation off"
        )
    if len(index) < 2:
        raise ValueError(f"extrapolation.fraction {fraction} scores fewer than 2 of the n = {n} samples; raise it")
    return torch.as_tensor(np.sort(index), dtype=torch.long)


@torch.no_grad()
def embed(
    model: torch.nn.Module,
    data: TensorData,
    *,
    embedding: str | tuple[str, ...] | list[str] = "features",
    batch_size: int = 1024,
    device: str = "auto",
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Every sample's embedding, a float32 CPU tensor: the penultimate features ``model.features(x)`` (n, a), the
    ``logits`` ``model(x)`` = head(features) (n, C), the directions of the features that the classifier reads
    (scores such as losses and influence norms follow the margins, which kNN over all a feature directions blurs),
    or the ``input`` x itself, flattened (n, prod(input_shape)): what scores of untrained models (GraNd at
    initialisation) depend on. A list of names gives {name: tensor}, from one forward pass."""
    names = (embedding,) if isinstance(embedding, str) else tuple(embedding)
    for name in names:
        if name not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {', '.join(EMBEDDINGS)}; got {name!r}")
    out: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    if "input" in out:
        out["input"] = [data.x.float().flatten(1)]
    if {"features", "logits"} & set(names):
        if not hasattr(model, "features"):
            raise ValueError("score extrapolation embeds samples by model.features(x): the model has no features part")
        module = copy.deepcopy(model)  # the caller's model stays where it is
        for _, features in feature_batches(module, data.x, batch_size, resolve_device(device)):
            if "features" in out:
                out["features"].append(features.float().flatten(1).cpu())
            if "logits" in out:
                out["logits"].append(module.head(features).float().flatten(1).cpu())
    tensors = {name: torch.cat(parts) for name, parts in out.items()}
    return tensors[embedding] if isinstance(embedding, str) else tensors


def restrict_trace(trace: Any, indices: torch.Tensor) -> Any:
    """The trace as if ERM had recorded only these samples: the per-sample dynamics (correctness, true-class and
    softmax probabilities) at ``indices``, n_samples = len(indices). Checkpoints are kept (they hold no per-sample
    data); the recorded steps are dropped (their minibatches index the full data; the scorer that reads them,
    sgd_influence, scores subsets with its ``indices`` option instead)."""
    if trace is None:
        return None
    index = torch.as_tensor(indices).long()
    pick = {
        name: None if getattr(trace, name) is None else getattr(trace, name)[:, index]
        for name in ("correct", "true_probability", "probabilities")
    }
    return replace(trace, n_samples=len(index), step_parameters=None, step_batches=None, **pick)


__all__ = ["choose_subset", "embed", "restrict_trace"]
