import math

import pytest
import torch

from dataset_pruning.data import TensorData
from dataset_pruning.training import ModelSpec, TrainingConfig, evaluate, fit, learning_rate, load_model, save_model


def _blobs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 8, generator=g) + 3.0 * torch.nn.functional.one_hot(y, 8).float()
    return TensorData(x, y, 3, "blobs")


def test_fit_learns_and_is_reproducible():
    data = _blobs()
    spec = ModelSpec("mlp", data.input_shape, 3, {"hidden": 16})
    config = TrainingConfig(epochs=15, batch_size=32, lr=0.1, seed=3, device="cpu")
    models = [spec.build(seed=1) for _ in range(2)]
    for model in models:
        fit(model, data, config, progress=False)
    assert evaluate(models[0], data)["accuracy"] > 0.9
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(a, b)


def test_saved_model_round_trip():
    data = _blobs(50)
    spec = ModelSpec("cnn1d", data.input_shape, 3)
    model = spec.build(seed=0)
    restored = load_model(save_model(model, spec))
    assert torch.equal(restored(data.x), model.eval()(data.x))


def test_nan_loss_stops_with_advice():
    data = _blobs(64)
    data.x[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit(ModelSpec("mlp", data.input_shape, 3).build(seed=0), data, TrainingConfig(epochs=1), progress=False)


def test_cosine_schedule_ends_near_zero():
    config = TrainingConfig(lr=0.1)
    assert learning_rate(config, 0, 100) == pytest.approx(0.1)
    assert learning_rate(config, 50, 100) == pytest.approx(0.05)
    assert learning_rate(config, 99, 100) < 0.1 * (1 - math.cos(math.pi / 100))


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="must match"):
        TensorData(torch.zeros(5, 2), torch.zeros(4), 2, "broken")


def test_an_empty_training_set_is_a_clear_error():
    empty = _blobs(10).subset(torch.tensor([], dtype=torch.long), name="blobs-pruned")
    model = ModelSpec("mlp", empty.input_shape, 3).build(seed=0)
    with pytest.raises(ValueError, match=r"fit: the training set is empty \(0 samples.*optimization_selection\.ratio"):
        fit(model, empty, TrainingConfig(epochs=1, device="cpu"), progress=False)
    with pytest.raises(ValueError, match="evaluate: the data set 'blobs-pruned' is empty"):
        evaluate(model, empty)


def test_the_library_defaults_are_the_pipelines():
    """``TrainingConfig()`` trains as a default ``kedro run`` does (conf/base/parameters_erm_training.yml)."""
    from dataclasses import asdict
    from pathlib import Path

    import yaml

    conf = Path(__file__).resolve().parents[1] / "conf/base/parameters_erm_training.yml"
    pipeline = yaml.safe_load(conf.read_text())["erm_training"]["training"]
    library = asdict(TrainingConfig())
    assert library.pop("steps") is None  # set by retraining.budget: steps, not a block key
    assert library == pipeline
    assert TrainingConfig().lr == 0.1


def test_a_step_budget_takes_exactly_that_many_steps_and_retraining_matches_erm():
    from dataset_pruning.training import retraining_recipe

    data = TensorData(torch.randn(100, 4), torch.arange(100) % 2, 2, "tiny")
    model = ModelSpec("mlp", (4,), 2).build(seed=0)
    steps = []
    losses = fit(model, data, TrainingConfig(epochs=1, batch_size=32, steps=7), progress=False,
                 on_step=lambda step, *_: steps.append(step))
    assert steps == list(range(7)) and len(losses) == 2  # 4 steps per epoch: 2 epochs, the last one cut
    recipe = TrainingConfig(epochs=3, batch_size=32)
    assert retraining_recipe(recipe, 100, "epochs") == recipe
    assert retraining_recipe(recipe, 100, "steps").steps == 3 * 4  # ERM's steps on the full set
    with pytest.raises(ValueError, match="unknown retraining budget"):
        retraining_recipe(recipe, 100, "time")
