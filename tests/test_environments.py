"""Configuration environments (conf/<env>/) with runtime parameters: both layers override key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset_pruning.config import validate_parameters
from dataset_pruning.config_loader import ProjectConfigLoader
from dataset_pruning.settings import CONFIG_LOADER_ARGS

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize("env", ["local", "fashion_mnist", "cifar10"])
def test_an_environment_and_params_override_only_the_keys_they_name(env):
    base = ProjectConfigLoader(str(CONF), **CONFIG_LOADER_ARGS)["parameters"]
    loader = ProjectConfigLoader(str(CONF), env=env, runtime_params={"sweep": {"preset": "quick"}}, **CONFIG_LOADER_ARGS)
    params = loader["parameters"]
    assert params["sweep"]["preset"] == "quick"
    assert params["sweep"]["presets"] == base["sweep"]["presets"]  # lost with the destructive merge
    validate_parameters(params)
    if env == "fashion_mnist":
        assert params["ingest"]["dataset"] == "fashion_mnist" and params["erm_training"]["model"]["name"] == "cnn2d"
