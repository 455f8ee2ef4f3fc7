"""Nodes trust the blocks the hook validated (issue 25): ``config.block`` returns the model ``validate_parameters``
built for the same values, and validates values it has not seen (a node called outside a run)."""

from __future__ import annotations

import pytest

from dataset_pruning.config import ErmTrainingParams, block, validate_parameters


def test_a_node_gets_the_validated_block_and_unseen_values_are_validated():
    values = {"model": {"name": "mlp"}, "training": {"epochs": 3}}
    parsed = validate_parameters({"erm_training": values, "ingest": {}})
    assert block("erm_training", dict(values)) is parsed["erm_training"]
    assert block("ingest", None) is parsed["ingest"]
    other = block("erm_training", {"training": {"epochs": 4}})
    assert isinstance(other, ErmTrainingParams) and other.training.epochs == 4
    with pytest.raises(ValueError, match="epochs"):
        block("erm_training", {"training": {"epochs": 0}})
