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
"""

from __future__ import annotations

import copy
import difflib
import math
import time
import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from dataset_pruning.data.base import TensorData
from dataset_pruning.runtime import numpy_rng, resolve_device, seeded_global_rng, torch_generator
from dataset_pruning.scoring.base import SampleScores, score_samples, scorer_options

METHODS = ("knn", "gnn")
EMBEDDINGS = ("features", "logits", "input")
WEIGHTS = ("distance", "uniform")
TARGETS = ("rank", "value")


def _unknown_keys(given: dict, valid: list[str], where: str) -> None:
    unknown = sorted(set(given) - set(valid))
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, valid, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(f"{where}: unknown option(s) {', '.join(hints)}; valid: {', '.join(valid)}")


def _number(value: Any, name: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value) if integer else float(value)


@dataclass(frozen=True)
class GnnOptions:
    """The GNN of ``method: gnn`` (defaults: the reference's 3-layer GCN 512-256-out, k = 10, 35 epochs)."""

    hidden: tuple[int, ...] = (512, 256)  # hidden GCN widths; the output layer is added (1 or d outputs)
    epochs: int = 35  # passes over the scored (training) nodes
    holdout: float = 0.1  # share of the fitted nodes held out to pick the best epoch (early stopping)
    lr: float = 0.01  # Adam
    weight_decay: float = 5e-4  # Adam's L2
    dropout: float = 0.5
    graph_k: int = 10  # neighbours per node in the kNN graph (made undirected)
    batch_size: int | None = 128  # scored nodes per step (full-graph forward each step); None: all of them

    def __post_init__(self) -> None:
        hidden = self.hidden
        if isinstance(hidden, (int, float)) and not isinstance(hidden, bool):
            hidden = (hidden,)
        if not isinstance(hidden, (list, tuple)) or not hidden:
            raise ValueError(f"extrapolation.gnn.hidden must be a non-empty list of widths, got {self.hidden!r}")
        widths = tuple(_number(h, "extrapolation.gnn.hidden entries", integer=True) for h in hidden)
        if min(widths) < 1:
            raise ValueError(f"extrapolation.gnn.hidden widths must be >= 1, got {list(widths)}")
        object.__setattr__(self, "hidden", widths)
        checks = [
            ("epochs", _number(self.epochs, "extrapolation.gnn.epochs", integer=True) >= 1, ">= 1"),
            ("holdout", 0 < _number(self.holdout, "extrapolation.gnn.holdout") < 1, "in (0, 1)"),
            ("lr", _number(self.lr, "extrapolation.gnn.lr") > 0, "> 0"),
            ("weight_decay", _number(self.weight_decay, "extrapolation.gnn.weight_decay") >= 0, ">= 0"),
            ("dropout", 0 <= _number(self.dropout, "extrapolation.gnn.dropout") < 1, "in [0, 1)"),
            ("graph_k", _number(self.graph_k, "extrapolation.gnn.graph_k", integer=True) >= 1, ">= 1"),
        ]
        if self.batch_size is not None:
            checks.append(
                ("batch_size", _number(self.batch_size, "extrapolation.gnn.batch_size", integer=True) >= 1,
                 ">= 1 (or null: all scored nodes per step)")
            )
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"extrapolation.gnn.{name} must be {rule}, got {getattr(self, name)!r}")

    @classmethod
    def from_options(cls, options: "GnnOptions | dict | None") -> "GnnOptions":
        if isinstance(options, GnnOptions):
            return options
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"extrapolation.gnn must be a mapping of options, got {options!r}")
        options = dict(options or {})
        _unknown_keys(options, [f.name for f in fields(cls)], "extrapolation.gnn")
        return cls(**options)


@dataclass(frozen=True)
class ExtrapolationConfig:
    """``influence_scoring.extrapolation``; ``fraction: None`` (the default) is off."""

    fraction: float | None = None  # share of the samples scored by the scorer, in (0, 1)
    method: str = "knn"  # knn | gnn
    stratified: bool = True  # the same fraction of every class (at least one sample each)
    # k, by_class, embedding: one value, or a list of candidates chosen by leave-one-out kNN on the scored subset
    k: int | tuple[int, ...] = (5, 10, 20, 50, 100)  # kNN neighbours
    weights: str = "distance"  # kNN weights: distance (1/d; a duplicate of a scored point gets its score) | uniform
    by_class: bool | tuple[bool, ...] = (True, False)  # kNN among the scored samples of the same class
    embedding: str | tuple[str, ...] = EMBEDDINGS  # features (model.features(x)) | logits (model(x)) | input (x)
    target: str = "rank"  # scalar scores: regress their ranks (rank) or the values themselves (value)
    selection_samples: int | None = 1000  # at most this many fitted samples predicted to choose (None: all)
    holdout: float = 0.2  # share of the scored subset left out of the fit to measure Spearman (0: no estimate)
    seed: int | None = None  # None: the scorer's seed (influence_scoring.seed, else the ERM seed)
    batch_size: int = 1024  # embedding batch
    gnn: GnnOptions = field(default_factory=GnnOptions)

    def __post_init__(self) -> None:
        if self.fraction is not None and not 0 < _number(self.fraction, "extrapolation.fraction") < 1:
            raise ValueError(
                f"extrapolation.fraction must lie in (0, 1) (the share of samples scored), or be null (off); "
                f"got {self.fraction!r}"
            )
        if self.method not in METHODS:
            raise ValueError(f"extrapolation.method must be one of {', '.join(METHODS)}; got {self.method!r}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"extrapolation.weights must be one of {', '.join(WEIGHTS)}; got {self.weights!r}")
        if self.target not in TARGETS:
            raise ValueError(f"extrapolation.target must be one of {', '.join(TARGETS)}; got {self.target!r}")
        if not isinstance(self.stratified, bool):
            raise ValueError(f"extrapolation.stratified must be true or false, got {self.stratified!r}")

        rules = {
            "embedding": (lambda v: v in EMBEDDINGS, f"one of {', '.join(EMBEDDINGS)}"),
            "by_class": (lambda v: isinstance(v, bool), "true or false"),
            "k": (lambda v: _number(v, "extrapolation.k", integer=True) >= 1, "an integer >= 1"),
        }
        for name, (ok, rule) in rules.items():
            object.__setattr__(self, name, _candidates(getattr(self, name), name, ok, rule))
        samples = self.selection_samples
        if samples is not None and _number(samples, "extrapolation.selection_samples", integer=True) < 3:
            raise ValueError(f"extrapolation.selection_samples must be >= 3 (or null: all), got {samples!r}")
        if not 0 <= _number(self.holdout, "extrapolation.holdout") < 1:
            raise ValueError(f"extrapolation.holdout must lie in [0, 1), got {self.holdout!r}")
        if self.seed is not None:
            _number(self.seed, "extrapolation.seed", integer=True)
        if _number(self.batch_size, "extrapolation.batch_size", integer=True) < 1:
            raise ValueError(f"extrapolation.batch_size must be >= 1, got {self.batch_size!r}")
        if isinstance(self.gnn, dict):
            object.__setattr__(self, "gnn", GnnOptions.from_options(self.gnn))

    @property
    def enabled(self) -> bool:
        return self.fraction is not None

    @classmethod
    def from_options(cls, options: "ExtrapolationConfig | dict | None") -> "ExtrapolationConfig":
        """From the parameters block; an unknown key or a bad value is a ``ValueError`` saying what is valid."""
        if isinstance(options, ExtrapolationConfig):
            return options
        options = dict(options or {})
        _unknown_keys(options, [f.name for f in fields(cls)], "extrapolation")
        if "gnn" in options:
            options["gnn"] = GnnOptions.from_options(options["gnn"])
        return cls(**options)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("k", "by_class", "embedding"):
            out[name] = list(out[name])
        out["gnn"] = {f.name: getattr(self.gnn, f.name) for f in fields(self.gnn)}
        out["gnn"]["hidden"] = list(out["gnn"]["hidden"])
        return out




def _candidates(value: Any, name: str, ok, rule: str) -> tuple:
    """One option value or a list of candidates, as a tuple without repeats (order kept)."""
    items = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    bad = [item for item in items if not ok(item)]
    if not items or bad:
        got = bad[0] if bad else value
        raise ValueError(f"extrapolation.{name} must be {rule}, or a non-empty list of candidates; got {got!r}")
    return tuple(dict.fromkeys(int(v) if name == "k" else v for v in items))


def check_extrapolation(options: dict | None) -> ExtrapolationConfig:
    """Validate ``influence_scoring.extrapolation`` (used by ``config.ScoringParams``)."""
    if options is not None and not isinstance(options, (dict, ExtrapolationConfig)):
        raise ValueError(f"extrapolation must be a mapping of options, got {options!r}")
    return ExtrapolationConfig.from_options(options)


# ----------------------------------------------------------------------------------------------------------------
# subset, embeddings


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
        dev = resolve_device(device)
        module = copy.deepcopy(model).to(dev).eval()
        for i in range(0, len(data), batch_size):
            x = data.x[i : i + batch_size].to(dev)
            features = module.features(x)
            if "features" in out:
                out["features"].append(features.float().flatten(1).cpu())
            if "logits" in out:
                logits = module.head(features) if hasattr(module, "head") else module(x)
                out["logits"].append(logits.float().flatten(1).cpu())
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


# ----------------------------------------------------------------------------------------------------------------
# regressors


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


def knn_graph(embeddings: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Undirected kNN graph of the rows of ``embeddings`` (scikit-learn ``NearestNeighbors``, self excluded):
    edge_index (2, E) and edge weights exp(-d / (2 sigma)), sigma = the median edge length."""
    from sklearn.neighbors import NearestNeighbors

    with warnings.catch_warnings():  # torch-geometric's import warns about torch.jit.script
        warnings.simplefilter("ignore", FutureWarning)
        from torch_geometric.utils import to_undirected

    n = len(embeddings)
    k = min(k, n - 1)
    distances, neighbours = NearestNeighbors(n_neighbors=k).fit(embeddings.double().numpy()).kneighbors()
    source = torch.from_numpy(neighbours.reshape(-1)).long()
    target = torch.arange(n).repeat_interleave(k)
    distance = torch.from_numpy(distances.reshape(-1)).float()
    sigma = float(distance.median()) or float(distance.mean()) or 1.0
    weight = torch.exp(-distance / (2 * sigma))
    edge_index, weight = to_undirected(torch.stack([source, target]), weight, num_nodes=n, reduce="mean")
    return edge_index, weight


def _gnn_model(in_dim: int, out_dim: int, hidden: tuple[int, ...], dropout: float) -> torch.nn.Module:
    with warnings.catch_warnings():  # torch-geometric warns about torch.jit.script (import, first layers)
        warnings.simplefilter("ignore", FutureWarning)
        return _build_gcn(in_dim, out_dim, hidden, dropout)


def _build_gcn(in_dim: int, out_dim: int, hidden: tuple[int, ...], dropout: float) -> torch.nn.Module:
    from torch_geometric.nn import GCNConv

    class GCN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [in_dim, *hidden, out_dim]
            self.convs = torch.nn.ModuleList(GCNConv(a, b, cached=True) for a, b in zip(widths[:-1], widths[1:]))

        def forward(self, x, edge_index, edge_weight):
            for i, conv in enumerate(self.convs):
                x = conv(x, edge_index, edge_weight)
                if i < len(self.convs) - 1:
                    x = torch.nn.functional.dropout(torch.relu(x), p=dropout, training=self.training)
            return x

    return GCN()


def gnn_regress(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    fit_index: torch.Tensor,
    fit_values: torch.Tensor,
    *,
    options: GnnOptions | dict | None = None,
    seed: int = 0,
    device: str = "auto",
) -> tuple[torch.Tensor, dict[str, Any]]:
    """GCN regression on the kNN graph of all samples, trained on ``fit_values`` ((m,) or (m, d)) at ``fit_index``.

    Returns the prediction for every sample, shape (n,) or (n, d), float64 CPU, and info {gnn_best_epoch,
    gnn_holdout_mse (standardised units), gnn_edges}. Deterministic for a seed on the CPU.
    """
    options = GnnOptions.from_options(options)
    dev = resolve_device(device)
    n = len(embeddings)
    vector = fit_values.ndim == 2
    y = fit_values.double().reshape(len(fit_values), -1)
    mean = y.mean(0)
    scale = float((y - mean).std()) if len(y) > 1 else 1.0
    scale = scale if scale > 0 and math.isfinite(scale) else 1.0
    target = ((y - mean) / scale).float()

    rng = numpy_rng(seed)
    order = rng.permutation(len(fit_index))
    n_val = max(1, round(options.holdout * len(fit_index)))
    if len(fit_index) - n_val < 1:
        raise ValueError(
            f"the GNN needs at least 2 scored samples to fit (one to train, one for early stopping), got "
            f"{len(fit_index)}; raise extrapolation.fraction"
        )
    val, train_rows = order[:n_val], order[n_val:]

    features = embeddings.float()
    features = (features - features.mean(0)) / features.std(0).clamp_min(1e-6) if n > 1 else features
    x = torch.cat([features, torch.nn.functional.one_hot(labels.long(), num_classes).float()], dim=1).to(dev)
    edge_index, edge_weight = knn_graph(embeddings, options.graph_k)
    edge_index, edge_weight = edge_index.to(dev), edge_weight.to(dev)
    nodes = fit_index.long().to(dev)
    target = target.to(dev)

    with seeded_global_rng(seed, devices=[dev] if dev.type == "cuda" else []):
        model = _gnn_model(x.shape[1], target.shape[1], options.hidden, options.dropout).to(dev)
        optimizer = torch.optim.Adam(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
        generator = torch_generator(seed)
        batch = options.batch_size or len(train_rows)
        best = (math.inf, -1, None)
        train_rows_t = torch.as_tensor(train_rows, dtype=torch.long)
        for epoch in range(options.epochs):
            model.train()
            shuffled = train_rows_t[torch.randperm(len(train_rows_t), generator=generator)]
            for start in range(0, len(shuffled), batch):
                rows = shuffled[start : start + batch].to(dev)
                optimizer.zero_grad(set_to_none=True)
                out = model(x, edge_index, edge_weight)
                loss = torch.nn.functional.mse_loss(out[nodes[rows]], target[rows])
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                out = model(x, edge_index, edge_weight)
                val_rows = torch.as_tensor(val, device=dev)
                val_loss = float(torch.nn.functional.mse_loss(out[nodes[val_rows]], target[val_rows]))
            if val_loss < best[0]:
                best = (val_loss, epoch, out.detach().double().cpu())
    if best[2] is None or not torch.isfinite(best[2]).all():
        raise FloatingPointError("the extrapolation GNN diverged (NaN predictions); lower extrapolation.gnn.lr")
    prediction = best[2] * scale + mean
    prediction = prediction if vector else prediction[:, 0]
    info = {"gnn_best_epoch": best[1] + 1, "gnn_holdout_mse": best[0], "gnn_edges": int(edge_index.shape[1])}
    return prediction, info


# ----------------------------------------------------------------------------------------------------------------
# the whole step


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
    out["spearman"] = float(spearmanr(p.numpy(), t.numpy()).statistic)
    out["pearson"] = float(np.corrcoef(p.numpy(), t.numpy())[0, 1])
    return out


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
    config = ExtrapolationConfig.from_options(config)
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
    samples with ``model.features`` and extrapolate the rest (see the module docstring).

    Returns ``SampleScores`` for all n samples, of the scorer's shape, kept end and method name; ``info`` holds the
    scorer's own info and ``info["extrapolation"]``: fraction, method, counts, held-out agreement
    (``holdout_spearman``, for vectors of the norms), and seconds (scoring, embedding, regression, total).
    """
    config = ExtrapolationConfig.from_options(config)
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
