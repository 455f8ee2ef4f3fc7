"""One entry point from a scoring method's output to the removed indices: what the select node and the sweep call.

- A scalar score (``keep`` set) goes through a rule of ``rules/`` (``rule``, default ``score``: remove the end
  the scorer does not keep; ``ccs``, ``ratio_aware``, ``moderate``: coverage-aware, docs/selection.md).
- Vectors (another method's, or the last-layer S when ``scores`` is None) go through the Eq. 3 / Eq. 4 solver
  with ``rule: score`` (the default), or become one scalar per sample (``vector_score``: ``norm`` = ||S_i||,
  ``direction`` = <S_i, u> along the Eq. 4 relaxation's dual direction u, whose m smallest Eq. 4 removes) that
  any other rule then selects on.
- Budgets: ``class_balanced`` (per class) and ``groups`` (``class`` | ``strata`` | ``clusters``, ``n_groups``
  of them, split by ``group_budget``) hold for the rules and for every solver alike.

Theorem 1's eps is always measured on the last-layer S, so every method is compared on the same axis.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np

from dataset_pruning.selection.groups import make_groups
from dataset_pruning.selection.budgets import cell_quotas
from dataset_pruning.selection.objective import removal_norm, theorem_quantities
from dataset_pruning.selection.products import check_influence
from dataset_pruning.selection.rules import select_by_rule
from dataset_pruning.selection.solve import solve_selection
from dataset_pruning.selection.solvers.bounds import relax_cardinality

VECTOR_SCORES = ("norm", "direction")


def vector_scores(
    vectors: np.ndarray,
    how: str,
    *,
    ratio: float,
    labels: np.ndarray | None = None,
    class_balanced: bool = False,
    iterations: int = 100,
) -> tuple[np.ndarray, bool]:
    """One scalar per influence vector, shape (n,), float64, high = kept (and hard); and whether ``direction``
    fell back to the norm (the relaxation certified no direction: L(u) <= 0 for every u tried).

    ``norm``: ||S_i||_2 (the influence-norm score). ``direction``: <S_i, u>, u the unit dual direction of the
    Eq. 4 relaxation at this ratio (per class when ``class_balanced``): removing the m smallest along u is what
    the lower bound L(u) measures, so the score ranks samples the way Eq. 4 removes them.
    """
    if how not in VECTOR_SCORES:
        raise ValueError(f"vector_score must be one of {', '.join(VECTOR_SCORES)}, got {how!r}")
    vectors = check_influence(vectors)
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
    if how == "norm":
        return norms, False
    codes, quota = cell_quotas(len(vectors), ratio, labels=labels if class_balanced else None)
    _, _, bound, direction = relax_cardinality(vectors.astype(np.float64), codes, quota, iterations, tolerance=0.005)
    if bound <= 0.0 or not np.any(direction):
        return norms, True
    return np.asarray(vectors, dtype=np.float64) @ direction, False


def select_for_method(
    influence: np.ndarray,
    scores: np.ndarray | None = None,
    keep: str | None = None,
    *,
    labels: np.ndarray,
    problem: str = "cardinality",
    solver: str = "hybrid",
    ratio: float | None = None,
    eps: float | None = None,
    seed: int = 0,
    class_balanced: bool = False,
    class_floor: float = 0.0,
    projection_dim: int | None = None,
    bound_iterations: int = 100,
    bound_tolerance: float | None = 0.005,
    options: dict[str, Any] | None = None,
    rule: str = "score",
    rule_options: dict[str, Any] | None = None,
    vector_score: Literal["norm", "direction"] = "norm",
    groups: str | np.ndarray | None = None,
    n_groups: int = 10,
    group_budget: Literal["proportional", "coverage"] = "proportional",
    hard: str | None = None,
    features: np.ndarray | None = None,
    columns: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """(removed indices, int64 (m,) sorted; metrics: eps, eps/n, m/n^2, objective, seconds[, bound]).

    influence : (n, d) last-layer S; scores : (n,) with ``keep`` 'highest'|'lowest', (n, d') vectors, or None (S).
    ``rule`` / ``rule_options``: the rule for scalar scores (and for vectors made scalar by ``vector_score``, when
    the rule is not ``score``). ``hard``: the end of a scalar score that holds the hard samples (default ``keep``;
    AUM's is 'lowest', given in its ``info``). ``features`` : (n, f), what ``groups: clusters`` clusters (default:
    the unit rows of the vectors). ``columns``: the scorer's per-sample columns (``SampleScores.columns``), for
    rules that read them. Defaults are the pipeline's (conf/base/parameters_optimization_selection.yml).
    """
    start = time.perf_counter()
    n = len(influence)
    values = None if scores is None else np.asarray(scores)
    scalar = keep is not None
    if scalar or rule != "score":
        if problem != "cardinality":
            what = "scalar scores are" if scalar else f"rule {rule!r} is"
            raise ValueError(
                f"{what} selected by keeping samples at a ratio: use problem 'cardinality', or rule 'score' with "
                "a vector method for Eq. 3"
            )
        extra: dict[str, float] = {}
        if scalar:
            vectors, end = None, keep
        else:
            vectors = influence if values is None else values
            values, fell_back = vector_scores(
                vectors, vector_score, ratio=ratio, labels=labels, class_balanced=class_balanced,
                iterations=max(bound_iterations, 50),
            )
            end, hard, extra = "highest", "highest", {"vector_score_fallback": float(fell_back)}
        codes = make_groups(
            groups, n_groups, n=n, labels=labels, vectors=influence if vectors is None else vectors,
            scores=values, features=features, seed=seed,
        )
        removed = select_by_rule(
            values, end, ratio, rule=rule, labels=labels, class_balanced=class_balanced, groups=codes,
            group_budget=group_budget, hard=hard, seed=seed, options=rule_options, columns=columns,
        )
        quantities = theorem_quantities(influence, removed)
        objective = quantities["eps"] if vectors is None else removal_norm(vectors, removed)
        return removed, {**quantities, "objective": objective, **extra, "seconds": time.perf_counter() - start}
    if rule_options:
        raise ValueError("rule 'score' on influence vectors runs the solver, which takes no rule_options")
    vectors = influence if values is None else values
    result = solve_selection(
        vectors, problem=problem, solver=solver, ratio=ratio, eps=eps, labels=labels, class_balanced=class_balanced,
        class_floor=class_floor, groups=groups, n_groups=n_groups, group_budget=group_budget,
        group_features=features, projection_dim=projection_dim, bound_iterations=bound_iterations,
        bound_tolerance=bound_tolerance, options={"seed": seed, **(options or {})},
    )
    metrics = {key: float(value) for key, value in result.metrics().items()}
    if vectors is not influence:  # Theorem 1's eps stays the last-layer one
        metrics.update(theorem_quantities(influence, result.removed))
    return result.removed, metrics


__all__ = ["VECTOR_SCORES", "select_for_method", "vector_scores"]
