"""The convex relaxation (W in [0, 1]^n) of Eq. 3 / Eq. 4: its solution and the bounds it certifies.

Eq. 4 relaxed: min ||S^T W||_2 over P = {W in [0,1]^n, sum_{i in g} W_i = m_g}. For any unit u,
    L(u) = sum_g (sum of the m_g smallest <S_i, u> in group g)  <=  <u, S^T W> <= ||S^T W||   for all W in P,
so max(0, L(u)) is a lower bound on the Eq. 4 optimum (strong duality: the best u gives the relaxed optimum).
When n > d the relaxed optimum is usually 0 (0 lies in the zonotope slice) and the bound is 0: it certifies
nothing, and the report says so. The relaxed W comes from accelerated projected gradient (FISTA) on ||S^T W||^2,
and every iterate's residual direction u = S^T W / ||S^T W|| is tried in L(u).

Eq. 3 relaxed: max sum W s.t. ||S^T W|| <= eps, W in [0,1]^n with at most c_g from group g. Its Lagrange dual
(minimax over ||S^T W|| = max_{|v|<=1} <v, S^T W>) gives for any y in R^d
    U(y) = eps ||y|| + sum_g (sum of the c_g largest positive parts of 1 - <S_i, y> in group g),
an upper bound on the count; y is found by L-BFGS on a smoothed U and the exact U is evaluated.
"""

from __future__ import annotations

import math

import numpy as np

from dataset_pruning.selection.budgets import as_caps, as_quota
from dataset_pruning.selection.products import check_influence, exact_matvec, matvec, rmatvec, row_squares

# Products run in S's dtype. ``relaxation_bound`` iterates on a float64 copy of S while that copy stays within
# ``max_copy_gb`` (more accurate iterates: at ratios 0.7 / 0.9 of the MNIST-1D S, float32 iterates give 0.03-0.06 %
# weaker bounds), on S itself beyond it; either way the bound it reports is evaluated with exact float64 products
# (``exact_matvec``) at the final direction / y. The solvers pass their float32 S to ``relax_cardinality`` for speed
# (a direction or a rounding needs no certificate).


def smallest_sum(values: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> float:
    """sum over groups g of the counts[g] smallest values in group g."""
    total = 0.0
    for g, k in enumerate(counts):
        if k <= 0:
            continue
        member = values[codes == g] if len(counts) > 1 else values
        total += float(np.partition(member, k - 1)[:k].sum()) if k < member.size else float(member.sum())
    return total


def project_capped_simplex(v: np.ndarray, codes: np.ndarray, quota: np.ndarray, shift=None):
    """Euclidean projection onto {W in [0,1]^n : sum_{i in g} W_i = quota[g]}: W = clip(v - tau_g, 0, 1) with
    tau_g found by safeguarded Newton steps on the piecewise-linear sum. Returns (W, tau of shape (G,))."""
    groups = len(quota)
    lo = np.full(groups, np.inf)
    hi = np.full(groups, -np.inf)
    np.minimum.at(lo, codes, v)
    np.maximum.at(hi, codes, v)
    lo, hi = lo - 1.0, hi + 1.0  # sum at lo = group size >= quota, at hi = 0 <= quota
    tau = np.clip(shift, lo, hi) if shift is not None else (lo + hi) / 2
    for _ in range(100):
        w = np.clip(v - tau[codes], 0.0, 1.0)
        excess = np.bincount(codes, w, minlength=groups) - quota
        if np.all(np.abs(excess) <= 1e-10 * (1.0 + quota)):
            break
        lo = np.where(excess > 0, tau, lo)
        hi = np.where(excess < 0, tau, hi)
        slope = np.bincount(codes, (w > 0.0) & (w < 1.0), minlength=groups)
        newton = tau + excess / np.maximum(slope, 1)
        tau = np.where((newton > lo) & (newton < hi) & (slope > 0), newton, (lo + hi) / 2)
    return np.clip(v - tau[codes], 0.0, 1.0), tau


def whitening(influence: np.ndarray, relative: float = 1e-4, chunk_rows: int = 8192) -> np.ndarray:
    """Lower Cholesky factor L (d, d) of S^T S / n + lam I, lam = ``relative`` x its mean diagonal: with it the
    relaxation measures residuals as ||L^-1 S^T W||, in which every direction of S weighs alike. The zero-residual
    W are the same, but FISTA reaches them far sooner (the real Fashion-MNIST S spans singular values 0.05 to
    1e-4: 100 whitened iterations end at 0.0084, 300 plain ones at 0.0099). S^T S is summed by row blocks in S's
    dtype into a float64 total (a preconditioner needs no more), so a memory-mapped S is never copied whole."""
    n, d = influence.shape
    gram = np.zeros((d, d))
    for i in range(0, n, chunk_rows):
        block = np.asarray(influence[i : i + chunk_rows])
        gram += block.T @ block
    gram /= max(n, 1)
    scale = float(np.trace(gram)) / max(d, 1)
    gram[np.diag_indices(d)] += relative * (scale if scale > 0 else 1.0)  # S = 0: any metric will do
    return np.linalg.cholesky(gram)


def relax_cardinality(
    influence: np.ndarray, codes: np.ndarray, quota: np.ndarray, iterations: int = 200,
    deadline: float | None = None, tolerance: float | None = None, metric: np.ndarray | None = None,
):
    """FISTA on ||S^T W||^2 over P. Returns (W of shape (n,), relaxed objective, lower bound on the Eq. 4 optimum,
    unit direction u of shape (d,) that gave the bound; zeros when no direction gave a positive L(u)).

    The step comes from backtracking (Beck & Teboulle 2009): it starts at the Rayleigh quotient of the first
    residual and doubles while the sufficient-decrease test fails (up to 2 ||S||_F^2, which is always enough: beyond
    it a failed test is rounding, float32 S at tiny steps), so no power iteration on S^T S is needed and the
    steps follow the local curvature, which is below the global one (measured at n = 50,000, d = 512: the constant
    settles at 0.78x the power-iteration estimate; the core route's direction takes 31 passes over S instead of 46
    at ratio 0.5, 47 instead of 62 at 0.3, and 300 iterations end with a tighter bound on the real S and there).
    Each iteration costs two passes over S: S (S^T y) for the gradient and S^T W for the new point; S^T y of the
    extrapolated y is a combination of the last two. The lower bound is the best L(u) over the residual
    directions of the iterates (valid whatever the convergence). With ``tolerance``, FISTA stops once five
    iterations raised that bound by less than this fraction (from the tenth on): for callers that need the
    direction, which settles long before W does. With ``metric`` L (``whitening``) it minimises ||L^-1 S^T W||
    instead, for a W to round, not a certificate: the bound and direction come back as 0 and zeros."""
    import time

    from scipy.linalg import solve_triangular

    if metric is None:
        residual, project = (lambda weights: rmatvec(influence, weights)), (lambda y: matvec(influence, y))
    else:  # S L^-T in place of S, never formed: S^T W -> L^-1 S^T W, S y -> S L^-T y
        residual = lambda weights: solve_triangular(metric, rmatvec(influence, weights), lower=True)  # noqa: E731
        project = lambda y: matvec(influence, solve_triangular(metric, y, lower=True, trans="T"))  # noqa: E731
    sizes = np.bincount(codes, minlength=len(quota))
    w = np.where(sizes[codes] > 0, quota[codes] / np.maximum(sizes[codes], 1), 0.0)
    x_w = residual(w)  # S^T W
    best_w, best_value = w, float(np.linalg.norm(x_w))
    bound, direction = 0.0, np.zeros(influence.shape[1])
    y, x_y, t, tau, history, lipschitz, ceiling = w, x_w, 1.0, None, [], 0.0, 0.0
    for _ in range(iterations):
        norm = float(np.linalg.norm(x_y))
        if norm == 0.0 or best_value == 0.0:
            break
        projections = project(x_y)  # S S^T y: half the gradient
        value = smallest_sum(projections / norm, codes, quota) if metric is None else 0.0
        if value > bound:
            bound, direction = value, x_y / norm
        history.append(bound)
        if tolerance is not None and len(history) > 10 and bound <= history[-6] * (1 + tolerance):
            break
        if best_value <= bound * (1 + 1e-6):
            break
        squared = norm * norm
        lipschitz = lipschitz or 2.0 * float(projections @ projections) / squared  # <= 2 ||S||^2
        while True:
            w_next, tau = project_capped_simplex(y - 2.0 * projections / lipschitz, codes, quota, tau)
            x_next = residual(w_next)
            step = w_next - y
            model = squared + 2.0 * float(projections @ step) + 0.5 * lipschitz * float(step @ step)
            if float(x_next @ x_next) <= model + 1e-12 * squared:
                break
            ceiling = ceiling or 2.0 * float(row_squares(influence).sum()) * (
                1.0 if metric is None else float(np.min(np.diag(metric))) ** -2  # ||L^-1||^2 <= max 1/L_ii^2
            )
            if lipschitz >= ceiling:  # 2 ||S||_F^2 >= the true constant: the test fails by rounding alone
                break
            lipschitz = min(2.0 * lipschitz, ceiling)
        value_next = float(np.linalg.norm(x_next))
        if value_next < best_value:
            best_w, best_value = w_next, value_next
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        beta = (t - 1) / t_next
        y, x_y = w_next + beta * (w_next - w), x_next + beta * (x_next - x_w)
        w, x_w, t = w_next, x_next, t_next
        if deadline is not None and time.perf_counter() > deadline:
            break
    return best_w, best_value, max(bound, 0.0), direction


def count_upper_bound(influence: np.ndarray, eps: float, codes: np.ndarray, caps: np.ndarray, iterations: int = 100):
    """An upper bound on Eq. 3's count: floor(min_y U(y)) with U of the module docstring, y from L-BFGS."""
    from scipy.optimize import minimize

    scale = float(np.sqrt(np.mean(row_squares(influence)))) or 1.0
    total = float(caps.sum())

    def exact(y):
        slack = np.maximum(1.0 - exact_matvec(influence, y), 0.0)
        return eps * float(np.linalg.norm(y)) - smallest_sum(-slack, codes, caps)

    def smooth(z, temperature=0.05):
        y = z / scale
        margin = (1.0 - matvec(influence, y)) / temperature
        value = eps * math.sqrt(float(y @ y) + 1e-30) + temperature * float(np.logaddexp(0.0, margin).sum())
        weights = 1.0 / (1.0 + np.exp(-np.clip(margin, -700, 700)))  # d softplus / d margin
        grad_y = eps * y / math.sqrt(float(y @ y) + 1e-30) - rmatvec(influence, weights)
        return value, grad_y / scale

    best = total
    if iterations > 0 and eps >= 0:
        start = -rmatvec(influence, np.ones(len(influence)))
        start = start / (np.linalg.norm(start) or 1.0)
        for z0 in (np.zeros(influence.shape[1]), start):
            result = minimize(smooth, z0, jac=True, method="L-BFGS-B", options={"maxiter": iterations})
            best = min(best, exact(result.x / scale))
    return float(min(math.floor(best + 1e-9), total))


def relaxation_bound(
    influence: np.ndarray,
    problem: str,
    *,
    groups: np.ndarray | None = None,
    m=None,
    eps: float | None = None,
    caps=None,
    iterations: int = 100,
    tolerance: float | None = None,
    max_copy_gb: float = 0.25,
) -> tuple[float, str]:
    """(bound, note). Eq. 4: a lower bound on min ||W^T S||; Eq. 3: an upper bound on the removable count.
    The note is 'informative', or says why the bound certifies nothing; iterations 0 skips it (nan). Eq. 4 stops
    early with ``tolerance`` (``relax_cardinality``): once five iterations raised the bound by less than this
    fraction. On the real Fashion-MNIST S at 50 % the bound stays 0 for all 100 iterations (the relaxation is
    still above the solvers' objective, 0.0229 against 0.0212): 3.7 s beside a solve of 1.3 s; with 0.005 it stops
    at the eleventh (0.6 s); at 90 % it ends 1.7 % lower (0.1799 against 0.1830) in 1.4 s instead of 3.8 s. The
    iterations run on a float64 copy of S when it takes at most ``max_copy_gb`` (0.25 GB: MNIST-1D's S is 0.04 GB,
    Fashion-MNIST's 0.62 GB, which would be the selection stage's largest allocation), on S itself otherwise; the
    bound is certified with exact float64 products either way."""
    if iterations <= 0:
        return math.nan, "not computed"
    influence = check_influence(influence)
    work = influence.astype(np.float64, copy=False) if influence.size * 8 <= max_copy_gb * 2**30 else influence
    n = len(influence)
    if problem == "cardinality":
        codes, quota = as_quota(n, m, groups)
        _, relaxed, _, direction = relax_cardinality(work, codes, quota, iterations, tolerance=tolerance)
        bound = max(smallest_sum(exact_matvec(influence, direction), codes, quota), 0.0)
        if bound <= 0.0:
            return 0.0, (
                f"trivial: the relaxation reaches ~{relaxed:.3g} (n = {n} vs d = {influence.shape[1]}), "
                "so it cannot certify a positive objective"
            )
        return bound, "informative"
    codes, caps = as_caps(n, groups, caps)
    bound = count_upper_bound(work, float(eps), codes, caps, iterations)
    if bound >= caps.sum():
        return bound, "trivial: the relaxation allows removing every removable sample"
    return bound, "informative"
