"""Rules: from one scalar score per sample to the samples kept, under class and group budgets.

A rule is a function registered with ``@rule(name)``:

    fn(scores, count, context, *, option=default, ...) -> positions kept, int64 of shape (count,)

``scores`` : ndarray of shape (n_cell,), float64, the scores of one budget cell (a class, a class x group cell,
or the whole set); ``count`` : how many of them to keep; ``context`` : a ``RuleContext`` (the score's kept and
hard ends, the removal ratio, the seeded generator, the cell's rows of the per-sample columns the rule
``needs``, e.g. ``@rule("beta", needs=("mean_probability",))``, which the scorer gave in ``SampleScores.columns``). The keyword-only arguments are the rule's options
(``rule_options`` in the parameters), validated against this signature. ``select_by_rule`` does the rest once
for every rule: checks, budgets (``budgets.cell_quotas``: class-balanced and per group), one seeded generator
for the whole selection (cells in code order, so a seed gives one answer), and the count check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

import numpy as np

from dataset_pruning.registry import Registry
from dataset_pruning.runtime import numpy_rng
from dataset_pruning.selection.budgets import cell_quotas

End = Literal["highest", "lowest"]


@dataclass(frozen=True)
class RuleContext:
    """What a rule may need besides the scores. ``keep``: the end the scorer keeps; ``hard``: the end that holds
    the hard samples (EL2N, forgetting, influence norm: highest, their kept end; AUM: lowest); ``ratio``: the
    fraction removed overall; ``rng``: the selection's generator (``numpy_rng(seed)``); ``columns``: the cell's rows
    of the per-sample columns the rule needs."""

    keep: End
    hard: End
    ratio: float
    rng: np.random.Generator
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)

    def difficulty(self, scores: np.ndarray) -> np.ndarray:
        """Scores oriented so that higher = harder."""
        return scores if self.hard == "highest" else -scores

    def kept_first(self, scores: np.ndarray) -> np.ndarray:
        """Positions ordered from the kept end (ties by position: stable)."""
        return np.argsort(-scores if self.keep == "highest" else scores, kind="stable")


Rule = Callable[..., np.ndarray]
RULES: Registry[Rule] = Registry("selection rule", runner=dict.fromkeys(("scores", "count", "context")))


def rule(name: str, *, needs: tuple[str, ...] = ()):
    """Register a rule under ``name`` (the module docstring gives its signature); ``needs``: the per-sample columns
    it reads from ``context.columns``."""

    def decorator(fn: Rule) -> Rule:
        return RULES.register(name, needs=tuple(needs))(fn)

    return decorator


def rule_needs(name: str) -> tuple[str, ...]:
    """The per-sample columns rule ``name`` reads (``SampleScores.columns`` of the scorer)."""
    return RULES.meta(name)["needs"]


def rule_options(name: str) -> dict[str, Any]:
    """The options rule ``name`` takes, with their defaults (its keyword arguments)."""
    return RULES.options(name)


def check_rule_options(name: str, options: dict[str, Any] | None) -> None:
    """``RULES.check``, then the rule run on a small synthetic score, so that a value it refuses stops a run at
    parameter validation, before any training."""
    options = RULES.check(name, options)
    columns = {column: np.linspace(0.05, 0.95, 20) for column in rule_needs(name)}
    context = RuleContext("highest", "highest", 0.5, numpy_rng(0), columns)
    RULES.get(name)(np.linspace(0.0, 1.0, 20), 10, context, **options)


def check_end(name: str, end: str | None) -> None:
    if end not in ("highest", "lowest"):
        raise ValueError(f"{name} must be 'highest' or 'lowest', got {end!r}")


def select_by_rule(
    scores: np.ndarray,
    keep: End,
    ratio: float,
    *,
    rule: str = "score",
    labels: np.ndarray | None = None,
    class_balanced: bool = False,
    groups: np.ndarray | None = None,
    group_budget: Literal["proportional", "coverage"] = "proportional",
    hard: End | None = None,
    seed: int = 0,
    options: dict[str, Any] | None = None,
    columns: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Indices to remove, int64 of shape (m,), sorted, m = round(ratio * n): rule ``rule`` keeps n - m samples.

    scores : ndarray of shape (n_samples,); keep : the end the scorer keeps; hard : the end of the hard samples
    (default: ``keep``). labels : ndarray of shape (n_samples,), needed when ``class_balanced`` (each class c
    loses m_c, ``budgets.class_quotas``). groups : int codes of shape (n_samples,): the budget is split over
    them too (within each class), by ``group_budget`` (``budgets.cell_quotas``), and the rule runs per cell.
    columns : named arrays of shape (n_samples,), the scorer's ``SampleScores.columns``; those the rule needs
    are given to it cell by cell.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(
            f"a score rule needs one score per sample, shape (n,), got {scores.shape}; influence vectors (n, d) "
            "go to the Eq. 3 / Eq. 4 solvers instead"
        )
    if not np.isfinite(scores).all():
        raise FloatingPointError("scores contain NaN or infinite values; rescore (check the trained model)")
    check_end("keep", keep)
    hard = keep if hard is None else hard
    check_end("hard", hard)
    fn = RULES.get(rule)
    options = RULES.check(rule, options)
    n = len(scores)
    columns = columns or {}
    missing = [name for name in rule_needs(rule) if name not in columns]
    if missing:
        raise ValueError(f"rule {rule!r} reads the per-sample {', '.join(missing)} that this scorer does not give; "
                         f"use it with a scorer that does (rule 'beta': scorer 'dual')")
    needed = {name: np.asarray(columns[name], dtype=np.float64) for name in rule_needs(rule)}
    for name, column in needed.items():
        if column.shape != scores.shape:
            raise ValueError(f"column {name!r} must have shape {scores.shape}, got {column.shape}")
    if class_balanced:
        if labels is None:
            raise ValueError(f"class_balanced selection by rule {rule!r} needs the labels")
        labels = np.asarray(labels)
        if labels.shape != scores.shape:
            raise ValueError(f"labels must have shape {scores.shape}, got {labels.shape}")
    if groups is not None and np.asarray(groups).shape != scores.shape:
        raise ValueError(f"group codes must have shape {scores.shape}, got {np.asarray(groups).shape}")
    codes, quota = cell_quotas(
        n, ratio, labels=labels if class_balanced else None, groups=groups, budget=group_budget
    )  # refuses m = 0 and m = n
    rng = numpy_rng(seed)
    kept = np.zeros(n, dtype=bool)
    for cell, removed in enumerate(quota):
        members = np.flatnonzero(codes == cell)
        count = len(members) - int(removed)
        if count == 0:
            continue
        context = RuleContext(keep, hard, float(ratio), rng, {k: v[members] for k, v in needed.items()})
        positions = np.asarray(fn(scores[members], count, context, **options), dtype=np.int64)
        if positions.shape != (count,) or len(np.unique(positions)) != count or not (
            (positions >= 0) & (positions < len(members))
        ).all():
            raise RuntimeError(f"rule {rule!r} returned {positions.shape} positions, not {count} distinct ones")
        kept[members[positions]] = True
    return np.flatnonzero(~kept).astype(np.int64)


__all__ = ["RULES", "RuleContext", "check_rule_options", "rule", "rule_needs", "rule_options", "select_by_rule"]
