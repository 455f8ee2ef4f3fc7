"""Keyword options of registry entries (scorers, loaders, models, solvers, rules), checked before any work: each value
must have the type its function's signature names and lie in the range its name implies (``RANGES``), unless the
signature gives the option its own range (``Annotated[int, Field(ge=0)]``), so ``num_samples=abc`` or ``damping=-1``
stops a run with the option's name instead of failing after training."""

from __future__ import annotations

import typing
from typing import Any, Callable

from pydantic import ConfigDict, Field, ValidationError, create_model

_COUNTS = ("batch_size", "cg_steps", "channels", "checkpoints", "depth", "epochs", "hessian_samples", "hidden",
           "image_size", "max_classes", "max_dim", "max_exact_dim", "num_samples", "projection_dim", "reduction",
           "repeats", "runs", "samples_per_class", "steps", "vector_chunk", "width", "window", "workers")

# The range of an option by its name, wherever it appears (scorers, loaders, models, LiSSA), as pydantic Field bounds.
RANGES: dict[str, dict[str, float]] = {
    "damping": {"ge": 0},  # 0: the weight decay alone regularises (LiSSA declares its own > 0)
    "scale": {"gt": 0},
    "width_scale": {"gt": 0},
    "weight_decay": {"ge": 0},
    "cg_tol": {"gt": 0},
    "max_elements": {"gt": 0},
    "decay": {"gt": 0, "le": 1},
    "train_split": {"gt": 0, "lt": 1},
    "test_fraction": {"gt": 0, "lt": 1},
    "surrogates": {"ge": 0},
    **{name: {"ge": 1} for name in _COUNTS},
}


def option_problems(fn: Callable, options: dict[str, Any], prefix: str = "") -> list[str]:
    """One line per option in ``options`` whose value ``fn``'s annotations or ``RANGES`` refuse (unknown names are
    the caller's to check), e.g. ``damping = -1: input should be greater than 0``."""
    hints = typing.get_type_hints(fn, include_extras=True)

    def field(key: str) -> tuple[Any, Any]:
        hint = hints.get(key, Any)
        own = typing.get_origin(hint) is typing.Annotated  # the signature's own range replaces the name's
        return hint, Field() if own else Field(**RANGES.get(key, {}))

    fields = {key: field(key) for key in options}
    model = create_model(f"{fn.__name__}_options", __config__=ConfigDict(arbitrary_types_allowed=True), **fields)
    try:
        model.model_validate(options)
    except ValidationError as error:
        return [f"{prefix}{'.'.join(map(str, item['loc']))} = {item['input']!r}: {item['msg'][0].lower()}"
                f"{item['msg'][1:]}" for item in error.errors()]
    return []
