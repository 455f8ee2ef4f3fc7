"""The project's config loader: Kedro's OmegaConfigLoader, with ``influence_scoring.method: recommended`` resolved
in the parameters (``recommendation.resolve``) so that every reader sees the method the run uses."""

from __future__ import annotations

from typing import Any

from kedro.config import OmegaConfigLoader

from dataset_pruning.recommendation import resolve


class ProjectConfigLoader(OmegaConfigLoader):
    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return resolve(value) if key == "parameters" else value
