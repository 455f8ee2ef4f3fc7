"""Honest tuning of a rule's hyper-parameters (beta, strata, threshold, quantile, which score): chosen on a
validation split carved from the training data, never on the test set.

Protocol (docs/selection.md, "Honest tuning"), for one data set and one removal ratio:

1. ``validation_split``: a stratified, seeded split of the *training* set into a fit part (1 - fraction) and a
   validation part (``fraction`` of every class). The test set is not an argument of anything here.
2. For each candidate (a dict: ``rule``, ``rule_options``, and e.g. ``score``, the scoring method), the caller's
   ``evaluate_fn(candidate, data)`` scores the fit part, selects at the ratio on it, trains on the kept samples
   and returns the validation accuracy (higher is better). ``rule_evaluator`` builds such a function from a
   scoring function and a training function, scoring each method once per split.
3. ``repeats`` splits (seeds seed, seed + 1, ...) average out the split; the candidate with the best mean wins,
   ties going to the earlier candidate. Then the chosen setting is applied to the full training set and
   measured once on the test set.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from dataset_pruning.runtime import numpy_rng


@dataclass(frozen=True)
class ValidationData:
    """One split of the training set: ``fit_indices`` / ``validation_indices`` index the training set;
    x_fit, y_fit, x_val, y_val are its rows (whatever array type was given); ``repeat`` numbers the split."""

    x_fit: Any
    y_fit: np.ndarray
    x_val: Any
    y_val: np.ndarray
    fit_indices: np.ndarray
    validation_indices: np.ndarray
    seed: int
    repeat: int


@dataclass
class TuningResult:
    """``best``: the winning candidate; ``table``: one row per candidate in the given order (candidate, mean,
    std, values per repeat); ``splits``: the (fit, validation) index pairs used."""

    best: dict[str, Any]
    table: list[dict[str, Any]]
    splits: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def validation_split(labels: np.ndarray, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, validation indices), int64, sorted, disjoint, covering range(n): from every class c,
    round(fraction * n_c) samples go to validation (at least 1 when n_c >= 2, never all of it), drawn by
    ``numpy_rng(seed)``. labels : ndarray of shape (n_samples,)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the validation fraction must lie strictly between 0 and 1, got {fraction}")
    labels = np.asarray(labels).reshape(-1)
    rng = numpy_rng(seed)
    validation = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = int(round(fraction * len(members)))
        take = min(max(take, 1 if len(members) >= 2 else 0), len(members) - 1)
        validation.append(rng.permutation(members)[:take])
    validation = np.sort(np.concatenate(validation)).astype(np.int64)
    fit = np.setdiff1d(np.arange(len(labels)), validation).astype(np.int64)
    return fit, validation


def candidate_grid(rule: str, score: str | None = None, **option_values: list[Any]) -> list[dict[str, Any]]:
    """Every combination of the option values, as candidates: ``candidate_grid('ccs', beta=[0, 0.1, 0.3],
    strata=[50])`` -> [{'rule': 'ccs', 'rule_options': {'beta': 0, 'strata': 50}}, ...] (``score`` added when
    given)."""
    names = list(option_values)
    grid = []
    for combination in itertools.product(*(option_values[name] for name in names)):
        candidate: dict[str, Any] = {"rule": rule, "rule_options": dict(zip(names, combination))}
        if score is not None:
            candidate["score"] = score
        grid.append(candidate)
    return grid


def _rows(x: Any, indices: np.ndarray) -> Any:
    """Rows ``indices`` of an ndarray / Tensor, or of a ``TensorData`` (its ``subset``)."""
    if hasattr(x, "subset"):
        import torch

        return x.subset(torch.as_tensor(indices, dtype=torch.int64))
    return x[indices]


def tune_rule(
    train_x: Any,
    train_y: np.ndarray,
    candidates: list[dict[str, Any]],
    evaluate_fn: Callable[[dict[str, Any], ValidationData], float],
    *,
    validation_fraction: float = 0.2,
    seed: int = 0,
    repeats: int = 1,
) -> TuningResult:
    """Choose among ``candidates`` by validation accuracy on splits of the training data (module docstring).

    train_x : ndarray or Tensor of shape (n_samples, ...), or a ``TensorData`` (rows by ``subset``);
    train_y : (n_samples,).
    evaluate_fn(candidate, data) -> float, higher is better; it sees only ``data`` (fit and validation rows).
    """
    if not candidates:
        raise ValueError("tune_rule needs at least one candidate")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    labels = np.asarray(train_y).reshape(-1)
    if len(train_x) != len(labels):
        raise ValueError(f"train_x has {len(train_x)} rows but train_y {len(labels)}")
    splits, values = [], np.zeros((len(candidates), repeats))
    for r in range(repeats):
        fit, validation = validation_split(labels, validation_fraction, seed + r)
        splits.append((fit, validation))
        data = ValidationData(
            _rows(train_x, fit), labels[fit], _rows(train_x, validation), labels[validation], fit, validation,
            seed + r, r,
        )
        for k, candidate in enumerate(candidates):
            value = float(evaluate_fn(candidate, data))
            if not np.isfinite(value):
                raise FloatingPointError(f"evaluate_fn returned {value} for candidate {candidate}")
            values[k, r] = value
    means = values.mean(axis=1)
    table = [
        {"candidate": candidate, "mean": float(means[k]), "std": float(values[k].std()), "values": values[k].tolist()}
        for k, candidate in enumerate(candidates)
    ]
    return TuningResult(best=candidates[int(np.argmax(means))], table=table, splits=splits)


def rule_evaluator(
    score_fn: Callable[[str | None, ValidationData], dict[str, Any]],
    train_fn: Callable[[Any, np.ndarray, ValidationData], float],
    *,
    ratio: float,
    class_balanced: bool = False,
) -> Callable[[dict[str, Any], ValidationData], float]:
    """An ``evaluate_fn`` for ``tune_rule``: score the fit part once per (score, split), select at ``ratio`` with
    the candidate's rule, train on the kept fit rows and return the validation accuracy.

    score_fn(score, data) -> {'values': (n_fit,) or (n_fit, d), 'keep': 'highest'|'lowest'|None, optionally
    'hard' and 'influence' (n_fit, d)}; train_fn(x_kept, y_kept, data) -> validation accuracy.
    """
    from dataset_pruning.selection.choose import select_for_method

    cache: dict[tuple[Any, int], dict[str, Any]] = {}

    def evaluate(candidate: dict[str, Any], data: ValidationData) -> float:
        key = (candidate.get("score"), data.repeat)
        if key not in cache:
            cache[key] = score_fn(candidate.get("score"), data)
        scored = cache[key]
        values = np.asarray(scored["values"])
        influence = scored.get("influence")
        if influence is None:
            influence = values if values.ndim == 2 else np.zeros((len(values), 1))
        removed, _ = select_for_method(
            np.asarray(influence), values, scored.get("keep"), labels=data.y_fit, ratio=ratio, seed=data.seed,
            class_balanced=class_balanced,
            rule=candidate.get("rule", "score"), rule_options=candidate.get("rule_options"),
            vector_score=candidate.get("vector_score", "norm"), hard=scored.get("hard"),
            bound_iterations=0, **candidate.get("select", {}),
        )
        kept = np.setdiff1d(np.arange(len(data.y_fit)), removed)
        return float(train_fn(_rows(data.x_fit, kept), data.y_fit[kept], data))

    return evaluate


__all__ = ["TuningResult", "ValidationData", "candidate_grid", "rule_evaluator", "tune_rule", "validation_split"]
