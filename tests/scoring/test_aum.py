"""AUM (area under the margin): the recorder stores every training pass's logit margin at the right sample, and
the score is their mean over epochs, high = easy (kept), hard end lowest."""

from __future__ import annotations

import pytest
import torch

from dataset_pruning.scoring import TraceRecorder, TrainingTrace, score_samples, scorer_needs
from dataset_pruning.selection import select_by_rule
from dataset_pruning.training import ModelSpec, TrainingConfig, fit

from .conftest import blobs


def _trace(n: int, **parts) -> TrainingTrace:
    return TrainingTrace(spec={}, config={}, n_samples=n, step_lrs=torch.zeros(0, dtype=torch.float64), **parts)


def test_aum_is_the_mean_margin_over_epochs():
    margins = torch.tensor([[2.0, -1.0, 0.5], [4.0, -3.0, 0.5], [6.0, 1.0, 0.5]])  # (E, n)
    data = blobs(n=3)
    scores = score_samples("aum", None, data, trace=_trace(3, margins=margins))
    assert torch.allclose(scores.values, torch.tensor([4.0, -1.0, 0.5]))
    assert scores.keep == "highest" and scores.info == {"hard": "lowest", "epochs": 3}
    first_two = score_samples("aum", None, data, trace=_trace(3, margins=margins), epochs=2)
    assert torch.allclose(first_two.values, torch.tensor([3.0, -2.0, 0.5]))
    with pytest.raises(ValueError, match=r"epochs must lie in \[1, 3\]"):
        score_samples("aum", None, data, trace=_trace(3, margins=margins), epochs=4)


def test_recorder_stores_the_training_pass_margin_of_each_sample():
    """lr ~ 0: the model never changes, so every epoch's margin is the initial model's, sample by sample."""
    data = blobs(n=40, classes=3, seed=2)
    spec = ModelSpec("mlp", data.input_shape, 3, {"hidden": 4, "depth": 1})
    model = spec.build(seed=0)
    with torch.no_grad():
        logits = model.eval()(data.x)
    true = logits[torch.arange(40), data.y]
    other = logits.clone()
    other[torch.arange(40), data.y] = -torch.inf
    expected = true - other.max(1).values
    config = TrainingConfig(epochs=3, batch_size=8, lr=1e-30, momentum=0.0, weight_decay=0.0, amp=False, device="cpu")
    recorder = TraceRecorder(model, data, config, spec, dynamics=True)
    fit(model, data, config, progress=False, **recorder.callbacks())
    trace = recorder.finish()
    assert trace.margins.shape == (3, 40)
    assert torch.allclose(trace.margins, expected.expand(3, 40), atol=1e-5)
    assert torch.allclose(score_samples("aum", model, data, trace=trace).values, expected, atol=1e-5)
    assert ((trace.margins > 0) == trace.correct).all()  # margin > 0 exactly when the pass classified it right


def test_aum_needs_the_dynamics_and_says_what_to_record():
    assert scorer_needs("aum") == ("dynamics",)
    data = blobs(n=3)
    with pytest.raises(ValueError, match="trace"):
        score_samples("aum", None, data, trace=None)
    with pytest.raises(ValueError, match="erm_training.trace.dynamics: true"):
        score_samples("aum", None, data, trace=_trace(3))
    old = _trace(3, correct=torch.ones(2, 3, dtype=torch.bool))  # dynamics recorded before margins were
    with pytest.raises(ValueError, match="rerun erm_training"):
        score_samples("aum", None, data, trace=old)


def test_ccs_on_aum_cuts_the_lowest_margins():
    margins = torch.linspace(-2.0, 5.0, 100).expand(4, 100)  # sample i has AUM increasing with i
    scores = score_samples("aum", None, blobs(n=100), trace=_trace(100, margins=margins))
    removed = select_by_rule(
        scores.values.numpy(), scores.keep, 0.5, rule="ccs", hard=scores.info["hard"], options={"beta": 0.2}
    )
    assert set(range(20)) <= set(removed.tolist())  # the 20 most likely mislabelled go first
