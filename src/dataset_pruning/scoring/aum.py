"""AUM, the area under the margin (Pleiss et al., NeurIPS 2020, "Identifying Mislabeled Data using the Area
Under the Margin Ranking").

At every training pass e over sample i (the forward pass of its minibatch, before the update), the margin is
the true-class logit minus the largest other logit, M_e(i) = z_y - max_{c != y} z_c; AUM is its mean over the
first ``epochs`` epochs (default: every recorded epoch):

    AUM_i = (1 / E) sum_{e < E} M_e(i)

A high AUM is an easy, clearly learned sample; a low or negative one is hard, ambiguous or likely mislabelled
(the network only fits it by memorising against the pull of its look-alikes). The HIGHEST scores are kept
(``keep='highest'``), and the hard end is the LOWEST (``info['hard'] = 'lowest'``: what CCS cuts, docs/selection.md).
Cost: none beyond ERM with ``erm_training.trace.dynamics: true`` (the trace records the margins, E x n floats).
Reference: Pleiss et al. 2020 (``asappresearch/aum``); CCS (Zheng et al. ICLR 2023) prunes CIFAR-10 with it.
"""

from __future__ import annotations

import torch

from dataset_pruning.data.base import TensorData
from dataset_pruning.scoring.base import SampleScores, scorer
from dataset_pruning.scoring.trace import require_trace


def area_under_margin(margins: torch.Tensor, epochs: int | None = None) -> torch.Tensor:
    """margins : Tensor of shape (E, n) -> mean over the first ``epochs`` rows (all when None), shape (n,), float64."""
    if margins.ndim != 2:
        raise ValueError(f"margins must have shape (epochs, n), got {tuple(margins.shape)}")
    total = margins.shape[0]
    epochs = total if epochs is None else int(epochs)
    if not 1 <= epochs <= total:
        raise ValueError(f"epochs must lie in [1, {total}] (the recorded epochs), got {epochs}")
    return margins[:epochs].double().mean(0)


@scorer("aum", output="scalar", needs=("dynamics",))
def aum(model: torch.nn.Module, train: TensorData, *, trace=None, epochs: int | None = None) -> SampleScores:
    """scores : Tensor of shape (n_samples,), the mean training-pass logit margin; keep highest (hard: lowest)."""
    if trace is not None and trace.margins is None and "dynamics" in trace.recorded:
        raise ValueError(
            "scoring method 'aum' reads the training-pass logit margins, which this trace (recorded before they were "
            "part of erm_training.trace.dynamics) lacks: rerun erm_training with erm_training.trace.dynamics: true"
        )
    trace = require_trace(trace, "dynamics", "aum", "margins")
    if trace.n_samples != len(train):
        raise ValueError(f"the training trace has {trace.n_samples} samples but train has {len(train)}")
    values = area_under_margin(trace.margins, epochs)
    used = trace.margins.shape[0] if epochs is None else int(epochs)
    return SampleScores(values.float(), method="aum", keep="highest", info={"hard": "lowest", "epochs": used})


__all__ = ["area_under_margin", "aum"]
