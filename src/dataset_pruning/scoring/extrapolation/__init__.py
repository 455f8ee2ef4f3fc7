"""Score extrapolation: score a random subset with any registered scorer, predict the rest from embeddings.

The expensive part of a scorer (training runs for EL2N / GraNd, per-sample gradients and solves for influence)
runs on a (class-stratified) random subset of ``fraction * n`` samples only; every sample is embedded by the ERM
model's penultimate features (``model.features``; ``embedding: logits``: its outputs, the head applied to them),
and the scores of the others are regressed from the scored ones (Effective Data Pruning through Score
Extrapolation; reference ``prasangadhungel/Data-Pruning-with-Extrapolated-Scores``, ``src/extrapolate/``):

- ``knn``: scikit-learn ``KNeighborsRegressor`` over the embeddings (k neighbours, ``distance`` = 1/d weights or
  ``uniform``), by default among the scored samples of the same class (``by_class``): scores depend on the label
  (a sample inside another class's cluster is hard, its neighbours of that class are easy).
- ``gnn``: a graph convolutional network (torch-geometric ``GCNConv``, hidden sizes ``gnn.hidden``) on the
  kNN graph of all embeddings (``gnn.graph_k`` neighbours, undirected, edge weight exp(-d / (2 sigma)) with sigma
  the median edge length, the reference's sqrt(exp(-d)) made independent of the feature scale); node features =
  standardised embedding + one-hot label; trained by MSE on the scored nodes (standardised scores), a held-out
  part of them (``gnn.holdout``) picks the epoch (early stopping: the best held-out loss is kept).

Scored samples keep their own scores. Vector scores (influence vectors, (n, d)) are extrapolated as vectors
(multi-output regression), not as norms: the Eq. 3 / Eq. 4 solvers need vectors (the group effect lives in the
directions, which cancel in sums), and a scalar would turn a vector method into a score rule. Neighbours of the
same class and similar features have nearly parallel influence vectors (grad l = (p - e_y) (x) u for the head),
so their average is a fair estimate; averaging shrinks norms where neighbours disagree in direction.

How well it worked is measured on the scored subset itself: ``holdout`` of the scored samples are left out of the
regression fit, predicted, and compared with their true scores (Spearman; for vectors the Spearman of the norms,
the mean cosine and the relative error). kNN is then refit on all scored samples (free; the estimate is slightly
pessimistic), the GNN is not retrained (its held-out nodes keep their true scores in the output all the same).

How a scorer scores the subset: a scorer with an ``indices`` option (``whole_network_influence``,
``sgd_influence``, ``last_layer_influence``, ``influence_norm``) scores those rows against the full data (the
full Hessian or SGD trajectory, n in 1/n); any other scorer is run on the subset as if it were the training set
(EL2N and GraNd train their short runs on the subset only, at ``fraction`` of the cost; herding and MoSo compare
within the subset), with the ERM trace restricted to the subset's samples for the trace-based scorers (their cost
is in ERM, so extrapolating them saves nothing in this pipeline; the benchmark measures the paper's setting).

Modules: ``options`` (``ExtrapolationConfig``, ``check_extrapolation``), ``subset`` (the scored subset, the
embeddings), ``knn`` (kNN regression, leave-one-out choice), ``gnn`` (the GCN); here: ``extrapolate`` and
``extrapolate_scores``, which put them together.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from dataset_pruning.data.base import TensorData
from dataset_pruning.runtime import numpy_rng
from dataset_pruning.scoring.base import SampleScores, score_samples, scorer_options
from dataset_pruning.scoring.extrapolation.gnn import gnn_regress, knn_graph
from dataset_pruning.scoring.extrapolation.knn import agreement, knn_regress, loo_knn, select_knn
from dataset_pruning.scoring.extrapolation.options import (
    EMBEDDINGS,
    METHODS,
    TARGETS,
    WEIGHTS,
    ExtrapolationConfig,
    GnnOptions,
    check_extrapolation,
)
from dataset_pruning.scoring.extrapolation.subset import choose_subset, embed, restrict_trace


def _quantiles(values: torch.Tensor) -> torch.Tensor:
    """The rank of each value among ``values`` as a quantile in [0, 1] (ties share their mean rank), float64."""
    from scipy.stats import rankdata

    if len(values) < 2:
        return torch.full((len(values),), 0.5, dtype=torch.float64)
    return torch.from_numpy((rankdata(values.double().numpy()) - 1) / (len(values) - 1))


def _from_quantiles(quantiles: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Predicted quantiles back on the scale of ``reference`` (its empirical quantile function): monotone, so the
    order of the predictions is kept and extrapolated scores read like scored ones."""
    q = quantiles.double().clamp(0, 1).numpy()
    return torch.from_numpy(np.quantile(reference.double().numpy(), q))


def extrapolate(
    embeddings: torch.Tensor | dict[str, torch.Tensor],
    labels: torch.Tensor,
    num_classes: int,
    indices: torch.Tensor,
    values: torch.Tensor,
    config: ExtrapolationConfig | dict,
    *,
    seed: int = 0,
    device: str = "auto",
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Scores for all n samples from ``values`` ((m,) or (m, d)) of the samples ``indices``: shape (n,) or (n, d),
    float32; the scored samples keep their values. ``embeddings``: (n, a), or {name: (n, a_name)} candidates.
    With several candidates (embeddings, ``config.k``, ``config.by_class``) the one whose leave-one-out kNN
    predictions on the fitted samples agree best (``select_knn``) is used; the held-out samples take no part in
    the choice, so their agreement stays an honest estimate. Info: fraction, method, the choice (embedding, k,
    by_class, loo_spearman, every candidate under ``selection``), scored and extrapolated
    counts, the held-out agreement (``holdout_spearman`` ...) and the regression's seconds."""
    config = check_extrapolation(config)
    seed = int(config.seed if config.seed is not None else seed)
    if isinstance(embeddings, torch.Tensor):
        embeddings = {config.embedding[0] if len(config.embedding) == 1 else "given": embeddings}
    n = len(next(iter(embeddings.values())))
    indices = torch.as_tensor(indices).long()
    values = torch.as_tensor(values)
    if len(values) != len(indices):
        raise ValueError(f"{len(values)} scores for {len(indices)} scored indices; they must match")
    start = time.perf_counter()
    unscored_mask = torch.ones(n, dtype=torch.bool)
    unscored_mask[indices] = False
    unscored = unscored_mask.nonzero().flatten()
    order = torch.as_tensor(numpy_rng(seed + 1).permutation(len(indices)))
    n_eval = round(config.holdout * len(indices))
    n_eval = n_eval if n_eval >= 3 and len(indices) - n_eval >= 2 else 0
    eval_rows, fit_rows = order[:n_eval].sort().values, order[n_eval:].sort().values
    info: dict[str, Any] = {
        "fraction": len(indices) / n, "method": config.method, "scored_samples": len(indices),
        "extrapolated_samples": len(unscored), "holdout_samples": n_eval,
        "vector_scores": values.ndim == 2,
    }
    ranks = config.target == "rank" and values.ndim == 1
    info["target"] = "rank" if ranks else "value"

    def encode(v: torch.Tensor) -> torch.Tensor:
        return _quantiles(v) if ranks else v

    def decode(predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return _from_quantiles(predicted, reference) if ranks else predicted

    choice = {"embedding": next(iter(embeddings)), "by_class": config.by_class[0], "k": config.k[0]}
    # candidates: the kNN's embeddings x neighbourhoods x k; the GNN's embeddings only (it uses no k)
    knn_options = len(config.by_class) * len(config.k) if config.method == "knn" else 1
    if len(embeddings) * knn_options > 1 and len(fit_rows) >= 3:
        choice, rows = select_knn(
            embeddings, labels, indices[fit_rows], encode(values[fit_rows]), k=config.k, by_class=config.by_class,
            weights=config.weights, samples=config.selection_samples, seed=seed + 2,
        )
        info["selection"] = rows  # every candidate's leave-one-out agreement on the fitted samples
        info["loo_spearman"] = choice["spearman"]
    info["embedding"] = choice["embedding"]
    embeddings = embeddings[choice["embedding"]]
    if config.method == "knn":
        knn = dict(k=choice["k"], weights=config.weights, by_class=choice["by_class"])
        info.update(knn)
        if n_eval:
            fit = values[fit_rows]
            held = knn_regress(embeddings, labels, indices[fit_rows], encode(fit), indices[eval_rows], **knn)
            info.update({f"holdout_{key}": v for key, v in agreement(decode(held, fit), values[eval_rows]).items()})
        predicted = decode(knn_regress(embeddings, labels, indices, encode(values), unscored, **knn), values)
    else:
        fit = values[fit_rows]
        everything, gnn_info = gnn_regress(
            embeddings, labels, num_classes, indices[fit_rows], encode(fit), options=config.gnn, seed=seed,
            device=device,
        )
        everything = decode(everything, fit)
        info.update(gnn_info, graph_k=config.gnn.graph_k)
        if n_eval:
            info.update({f"holdout_{key}": v for key, v in agreement(everything[indices[eval_rows]], values[eval_rows]).items()})
        predicted = everything[unscored]
    full = torch.zeros((n, *values.shape[1:]), dtype=torch.float64)
    full[indices] = values.double()
    full[unscored] = predicted.double()
    info["regression_seconds"] = time.perf_counter() - start
    if n_eval == 0:
        info["holdout_spearman"] = None  # too few scored samples to hold any out (or holdout: 0)
    return full.float(), info


def extrapolate_scores(
    method: str,
    model: torch.nn.Module,
    train: TensorData,
    *,
    trace: Any = None,
    config: ExtrapolationConfig | dict,
    options: dict[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
) -> SampleScores:
    """Score a (stratified) ``config.fraction`` of ``train`` with scorer ``method`` (its ``options``), embed all
    samples with ``model.features`` and extrapolate the rest (see the package docstring).

    Returns ``SampleScores`` for all n samples, of the scorer's shape, kept end and method name; ``info`` holds the
    scorer's own info and ``info["extrapolation"]``: fraction, method, counts, held-out agreement
    (``holdout_spearman``, for vectors of the norms), and seconds (scoring, embedding, regression, total).
    """
    config = check_extrapolation(config)
    if not config.enabled:
        raise ValueError("extrapolation.fraction is null (off): set it in (0, 1), or call score_samples")
    options = dict(options or {})
    seed = int(config.seed if config.seed is not None else seed)
    start = time.perf_counter()
    index = choose_subset(train.y, config.fraction, stratified=config.stratified, seed=seed)
    if "indices" in scorer_options(method):
        subset = score_samples(method, model, train, trace=trace, indices=index, **options)
        how = "indices against the full data"
    else:
        part = train.subset(index, name=f"{train.name}-scored-subset")
        subset = score_samples(method, model, part, trace=restrict_trace(trace, index), **options)
        how = "the subset as training set"
    scored_at = time.perf_counter()
    embeddings = embed(model, train, embedding=list(config.embedding), batch_size=config.batch_size, device=device)
    embedded_at = time.perf_counter()
    values, info = extrapolate(
        embeddings, train.y, train.num_classes, index, subset.values, config, seed=seed, device=device
    )
    info.update(
        subset_scoring=how,
        scoring_seconds=scored_at - start,
        embedding_seconds=embedded_at - scored_at,
        total_seconds=time.perf_counter() - start,
    )
    return SampleScores(values, method=subset.method, keep=subset.keep, info={**subset.info, "extrapolation": info})


__all__ = [
    "EMBEDDINGS",
    "METHODS",
    "TARGETS",
    "WEIGHTS",
    "ExtrapolationConfig",
    "GnnOptions",
    "agreement",
    "check_extrapolation",
    "choose_subset",
    "embed",
    "extrapolate",
    "extrapolate_scores",
    "gnn_regress",
    "knn_graph",
    "knn_regress",
    "loo_knn",
    "restrict_trace",
    "select_knn",
]
