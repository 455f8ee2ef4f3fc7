"""Project hooks: validate every parameter block before any node runs."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl

from dataset_pruning.config import validate_parameters


class ValidateParameters:
    @hook_impl
    def after_context_created(self, context) -> None:
        validate_parameters(context.params)
