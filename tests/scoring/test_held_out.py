"""held_out_choice (scoring/held_out.py): each candidate measured on a held-out part of the training set as the
docs say, the best one chosen, and its own selection on the whole training set returned as the kept end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dataset_pruning.data import kept_indices
from dataset_pruning.scoring import TraceRecorder, run_options, score_samples
from dataset_pruning.run_report import held_out_line
from dataset_pruning.scoring.held_out import mcnemar_z, select_scalar
from dataset_pruning.selection import remove_by_score, validation_split
from dataset_pruning.training import ModelSpec, TrainingConfig, evaluate, fit

from .conftest import blobs

METHODS = {
    "random": {"scorer": "random"},
    "herding": {"scorer": "herding"},
    "d2_cut04": {"scorer": "d2", "options": {"hard_cut": 0.4}, "selection": {"class_balanced": True}},
    "eq4": {"scorer": "last_layer_influence"},
}


@pytest.fixture(scope="module")
def trained():
    data = blobs(n=90, features=6, classes=3, seed=2, spread=1.0)
    spec = ModelSpec("mlp", data.input_shape, data.num_classes, {"hidden": 8, "depth": 1})
    recipe = TrainingConfig(epochs=8, batch_size=16, lr=0.05, amp=False, device="cpu", seed=3)
    model = spec.build(seed=3)
    recorder = TraceRecorder(model, data, recipe, spec, dynamics=True)
    fit(model, data, recipe, progress=False, **recorder.callbacks())
    return model.eval(), data, recorder.finish()


def choice(trained, candidates, ratio=0.7, **options):
    model, data, trace = trained
    return score_samples("held_out_choice", model, data, trace=trace, candidates=candidates, methods=METHODS,
                         ratio=ratio, device="cpu", seed=3, **options)


def test_the_kept_end_is_the_winners_own_selection_on_the_whole_set(trained):
    model, data, trace = trained
    out = choice(trained, ["herding", "d2_cut04"])
    record = out.info["held_out"]
    assert record["chosen"] == max(record["accuracy"], key=record["accuracy"].get)
    method = METHODS[record["chosen"]]
    own = score_samples(method["scorer"], model, data, trace=trace,
                        **run_options(method["scorer"], method.get("options", {}), TrainingConfig(**trace.config),
                                      device="cpu", seed=3, progress=False))
    expected = select_scalar(own, 0.7, data.y.numpy(), method.get("selection", {}), seed=3)
    removed = remove_by_score(out.values.numpy(), out.keep, 0.7)  # the pipeline's default selection
    assert np.array_equal(removed, expected)
    assert torch.equal(out.values, choice(trained, ["herding", "d2_cut04"]).values)  # deterministic for a seed


def measured_by_hand(trained, split_seed: int, ratio: float = 0.7) -> float:
    """herding's held-out accuracy as the docs say: select at the ratio on the rest, train a fresh model (the ERM's
    architecture and recipe, the split's seed) on what it keeps, evaluate on the held-out 20 %."""
    model, data, trace = trained
    part, held = validation_split(data.y.numpy(), 0.2, split_seed)
    scores = score_samples("herding", model, data, device="cpu")
    removed = remove_by_score(scores.values.numpy()[part], scores.keep, ratio)
    fresh = ModelSpec(**trace.spec).build(seed=split_seed)
    kept = torch.from_numpy(part[kept_indices(len(part), removed)])
    assert not set(kept.tolist()) & set(held.tolist())
    fit(fresh, data.subset(kept), TrainingConfig(**{**trace.config, "seed": split_seed}), progress=False)
    return evaluate(fresh, data.subset(torch.from_numpy(held)))["accuracy"]


def test_each_candidate_is_measured_on_the_held_out_part_it_never_trains_on(trained):
    record = choice(trained, ["herding"], validation=0.2, budget="epochs").info["held_out"]
    assert record["accuracy"]["herding"] == measured_by_hand(trained, 3)
    assert record["chosen"] == "herding" and record["validation"] == 0.2 and record["repeats"] == 1
    repeated = choice(trained, ["herding"], repeats=2).info["held_out"]  # splits of seeds 3 and 4, averaged
    assert repeated["accuracy"]["herding"] == pytest.approx((measured_by_hand(trained, 3) + measured_by_hand(trained, 4)) / 2)
    # min_held_out: as many splits as that many held-out samples need (18 of the 90 per split), the same averages
    at_least_30 = choice(trained, ["herding"], min_held_out=30).info["held_out"]
    assert at_least_30["accuracy"] == repeated["accuracy"] and at_least_30["splits"] == 2
    assert choice(trained, ["herding"], min_held_out=18).info["held_out"] == {**record, "min_held_out": 18}
    _, data, _ = trained
    part, _ = validation_split(data.y.numpy(), 0.2, 3)
    inner = 1 - 0.3 * len(data) / len(part)  # keep_count: 30 % of the whole set's size kept of the part
    assert round((1 - inner) * len(part)) == round(0.3 * len(data))
    counted = choice(trained, ["herding"], keep_count=True).info["held_out"]
    assert counted["accuracy"]["herding"] == measured_by_hand(trained, 3, inner) and counted["keep_count"] is True
    with pytest.raises(ValueError, match="keeps 90% of the data, more than the 80% left"):
        choice(trained, ["herding"], ratio=0.1, keep_count=True)


def test_mcnemar_z_counts_only_the_samples_the_two_disagree_on():
    right = torch.tensor([True, True, True, False, True])
    assert mcnemar_z(right, torch.tensor([False, False, True, False, True])) == pytest.approx(2 / 2 ** 0.5)
    assert mcnemar_z(right, torch.tensor([True, False, True, True, True])) == 0.0  # one each way
    assert mcnemar_z(right, right) == 0.0


def test_switch_z_keeps_the_first_listed_unless_the_best_leads_significantly(trained):
    """random then herding at 70 %: herding is right on 7 held-out samples random misses and wrong on none
    random gets (z = 7 / sqrt(7) = 2.65); d2_cut04 then herding: z 1.0, within noise at 1.64."""
    plain = choice(trained, ["random", "herding"]).info["held_out"]
    assert plain["best"] == plain["chosen"] == "herding" and plain["z"] == pytest.approx(7 / 7 ** 0.5)
    switched = choice(trained, ["random", "herding"], switch_z=1.64).info["held_out"]
    assert switched["chosen"] == "herding"
    assert "; herding's lead over random: McNemar z 2.65 > 1.64)" in held_out_line(switched)
    assert choice(trained, ["random", "herding"], switch_z=3.0).info["held_out"]["chosen"] == "random"
    close = choice(trained, ["d2_cut04", "herding"], switch_z=1.64)
    record = close.info["held_out"]
    assert record["best"] == "herding" and record["chosen"] == "d2_cut04" and record["z"] == pytest.approx(1.0)
    assert torch.equal(close.values, choice(trained, ["d2_cut04"]).values)  # the first listed's own selection
    assert "; herding's lead over d2_cut04: McNemar z 1.00 <= 1.64, within noise)" in held_out_line(record)


def test_bad_candidates_are_named(trained):
    model, data, trace = trained
    with pytest.raises(ValueError, match=r"\['tdds_typo'\] are not defined in sweep.methods"):
        choice(trained, ["herding", "tdds_typo"])
    with pytest.raises(ValueError, match=r"scalar scorers only; \[.eq4.\] are not"):
        choice(trained, ["eq4", "herding"])
    with pytest.raises(ValueError, match="needs the removal ratio"):
        choice(trained, ["herding"], ratio=None)
    with pytest.raises(ValueError, match="needs the ERM trace"):
        score_samples("held_out_choice", model, data, candidates=["herding"], methods=METHODS, ratio=0.5)
