"""GCN regression of scores on the kNN graph of all samples (``method: gnn``)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from dataset_pruning.runtime import numpy_rng, resolve_device, seeded_global_rng, torch_generator
from dataset_pruning.scoring.extrapolation.options import GnnOptions, check_extrapolation


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


def _build_gcn(in_dim: int, out_dim: int, hidden: tuple[int, ...], dropout: float) -> torch.nn.Module:
    """GCN layers of widths in_dim, *hidden, out_dim, with ReLU and dropout between them."""
    with warnings.catch_warnings():  # torch-geometric warns about torch.jit.script (import, first layers)
        warnings.simplefilter("ignore", FutureWarning)
        from torch_geometric.nn import GCNConv

        class GCN(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                widths = [in_dim, *hidden, out_dim]
                self.convs = torch.nn.ModuleList(
                    GCNConv(a, b, cached=True) for a, b in zip(widths[:-1], widths[1:])
                )

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
    options = options if isinstance(options, GnnOptions) else check_extrapolation({"gnn": options or {}}).gnn
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
        model = _build_gcn(x.shape[1], target.shape[1], options.hidden, options.dropout).to(dev)
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


__all__ = ["gnn_regress", "knn_graph"]
