"""``influence_scoring.extrapolation``: the options, as pydantic models (``check_extrapolation`` validates them).

A bad value is one short ``ValueError`` per option (its name, what it must be, what it got); an unknown key names
the valid ones (and the closest one: "did you mean").
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

Method = Literal["knn", "gnn"]
Embedding = Literal["features", "logits", "input"]  # model.features(x) | model(x) | x
Weights = Literal["distance", "uniform"]
Target = Literal["rank", "value"]
METHODS, EMBEDDINGS, WEIGHTS, TARGETS = (get_args(t) for t in (Method, Embedding, Weights, Target))


class _Options(BaseModel):
    """Strict (no "0.5" for a number, no 1 for true), frozen, no unknown keys (a "did you mean" message). Validate
    through ``check_extrapolation``: it turns pydantic's errors into short messages (``explain``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, options: Any) -> Any:
        unknown = sorted(set(options) - set(cls.model_fields), key=str) if isinstance(options, dict) else []
        if unknown:
            valid = list(cls.model_fields)
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(str(key), valid, n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ValueError(f"unknown option(s) {', '.join(hints)}; valid: {', '.join(valid)}")
        return options


class GnnOptions(_Options):
    """The GNN of ``method: gnn`` (defaults: the reference's 3-layer GCN 512-256-out, k = 10, 35 epochs)."""

    # hidden GCN widths; the output layer is added (1 or d outputs)
    hidden: tuple[Annotated[int, Field(ge=1)], ...] = Field((512, 256), min_length=1)
    epochs: int = Field(35, ge=1)  # passes over the scored (training) nodes
    holdout: float = Field(0.1, gt=0, lt=1)  # share of the fitted nodes held out to pick the best epoch
    lr: float = Field(0.01, gt=0)  # Adam
    weight_decay: float = Field(5e-4, ge=0)  # Adam's L2
    dropout: float = Field(0.5, ge=0, lt=1)
    graph_k: int = Field(10, ge=1)  # neighbours per node in the kNN graph (made undirected)
    # scored nodes per step (full-graph forward each step)
    batch_size: int | None = Field(128, ge=1, description="null: all scored nodes per step")

    _hidden = field_validator("hidden", mode="before")(classmethod(lambda cls, v: _one_or_list(v)))


class ExtrapolationConfig(_Options):
    """``influence_scoring.extrapolation``; ``fraction: None`` (the default) is off."""

    fraction: float | None = Field(None, gt=0, lt=1, description="the share of samples scored; null: off")
    method: Method = "knn"
    stratified: bool = True  # the same fraction of every class (at least one sample each)
    # k, by_class, embedding: one value, or a list of candidates chosen by leave-one-out kNN on the scored subset
    k: tuple[Annotated[int, Field(ge=1)], ...] = Field((5, 10, 20, 50, 100), min_length=1)  # kNN neighbours
    weights: Weights = "distance"  # kNN weights: distance (1/d; a duplicate of a scored point gets its score)
    by_class: tuple[bool, ...] = Field((True, False), min_length=1)  # kNN among the scored samples of its class
    embedding: tuple[Embedding, ...] = Field(EMBEDDINGS, min_length=1)
    target: Target = "rank"  # scalar scores: regress their ranks (rank) or the values themselves (value)
    # at most this many fitted samples predicted to choose among the candidates
    selection_samples: int | None = Field(1000, ge=3, description="null: all fitted samples")
    holdout: float = Field(0.2, ge=0, lt=1)  # share of the scored subset left out of the fit to measure Spearman
    seed: int | None = Field(None, description="null: the scorer's seed")
    batch_size: int = Field(1024, ge=1)  # embedding batch
    gnn: GnnOptions = Field(default_factory=GnnOptions)

    _candidates = field_validator("k", "by_class", "embedding", mode="before")(
        classmethod(lambda cls, v: _one_or_list(v))
    )

    @field_validator("k", "by_class", "embedding")
    @classmethod
    def _no_repeats(cls, value: tuple) -> tuple:
        return tuple(dict.fromkeys(value))  # order kept

    @property
    def enabled(self) -> bool:
        return self.fraction is not None

    def as_dict(self) -> dict[str, Any]:
        """The options as the parameters file writes them (lists, not tuples)."""
        return self.model_dump(mode="json")


def check_extrapolation(options: ExtrapolationConfig | dict | None = None) -> ExtrapolationConfig:
    """The validated ``influence_scoring.extrapolation`` (also ``config.ScoringParams``'s check): a ``ValueError``
    per ``explain`` for an unknown key or a bad value."""
    try:
        return ExtrapolationConfig.model_validate({} if options is None else options)
    except ValidationError as error:
        raise ValueError(explain(error)) from None




def _one_or_list(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def explain(error: ValidationError) -> str:
    """The problems of an ``ExtrapolationConfig`` validation, one per option, joined by "; ":
    ``extrapolation.<name> must be <rule>; got <value>``, the rule read off the option's type and Field bounds, or
    the validator's own message (unknown keys)."""
    problems: dict[str, str] = {}
    for item in error.errors():
        owner, names, field = ExtrapolationConfig, [], None
        for part in item["loc"]:
            if owner is not None and part in owner.model_fields:
                field = owner.model_fields[part]
                names.append(part)
                owner = field.annotation if _is_options(field.annotation) else None
        where = ".".join(["extrapolation", *names])
        if where in problems:
            continue  # one message per option
        if item["type"] == "value_error":
            problems[where] = f"{where}: {item['msg'].removeprefix('Value error, ')}"
            continue
        rule = _rule(field.annotation, field.metadata) if field is not None else "a mapping of options"
        value = list(item["input"]) if isinstance(item["input"], tuple) else item["input"]
        hint = f" ({field.description})" if field is not None and field.description else ""
        problems[where] = f"{where} must be {rule}; got {value!r}{hint}"
    return "; ".join(problems.values())


def _is_options(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, _Options)


def _rule(annotation: Any, metadata: list) -> str:
    """What a value of this type with these bounds must be, in words."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _rule(args[0], [*metadata, *args[1:]])
    if origin in (Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return _rule(inner[0] if len(inner) == 1 else Union[tuple(inner)], metadata) + ", or null"
    if origin is tuple:
        return _rule(args[0], []) + ", or a non-empty list of them"
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if annotation is bool:
        return "true or false"
    if _is_options(annotation):
        return "a mapping of options"
    bounds = {}
    for item in metadata:
        for bound in item.metadata if isinstance(item, FieldInfo) else [item]:
            bounds.update({name: getattr(bound, name) for name in ("gt", "ge", "lt", "le") if hasattr(bound, name)})
    kind = "an integer" if annotation is int else "a number"
    low = next(((("(" if name == "gt" else "["), bounds[name]) for name in ("gt", "ge") if name in bounds), None)
    high = next((((")" if name == "lt" else "]"), bounds[name]) for name in ("lt", "le") if name in bounds), None)
    if low and high:
        return f"{kind} in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{kind} {'>' if low[0] == '(' else '>='} {low[1]}"
    if high:
        return f"{kind} {'<' if high[0] == ')' else '<='} {high[1]}"
    return kind


__all__ = ["EMBEDDINGS", "METHODS", "TARGETS", "WEIGHTS", "ExtrapolationConfig", "GnnOptions", "check_extrapolation"]
