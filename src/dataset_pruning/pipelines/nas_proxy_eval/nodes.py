"""NAS proxy evaluation (step 5): not implemented yet (issue 6)."""

from __future__ import annotations


def evaluate_nas_proxy(train_set, test_set, removed_indices, params: dict):
    raise NotImplementedError(
        "nas_proxy_eval is not implemented yet (issue 6): run `kedro run --pipeline=prune` for the pruning itself"
    )
