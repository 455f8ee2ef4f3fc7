"""Last-layer influence for heads too large to hold (scoring/large_head.py), on synthetic heads; no network is trained.

    python benchmarks/large_head.py                      # both sections (~1 h on 2 cores)
    python benchmarks/large_head.py --sections small     # where both paths fit: agreement with the exact S
    python benchmarks/large_head.py --sections large     # CIFAR-100's ResNet-18 head: time, memory, selection vs k

A synthetic head: features h = 10 relu(mu_y + z) (mu ~ N(0, 4/a), z ~ N(0, 1/a)), 5 % of the labels redrawn at
random, and a softmax head [W | b] fitted to them by L-BFGS with weight decay 5e-4 (about 95 % training accuracy,
mean top probability 0.94), wrapped as a Classifier with identity features, so both paths are the registered
scorer (last_layer_influence: hessian exact, or a curvature with projection_dim) with its default weight decay
and damping.

``small`` (a = 64, C = 20, d = 1,300, n = 20,000): the exact S (n x d), then for each curvature (exact: the
Cholesky of the formed H, so only the sketch differs; kfac; ekfac; cg once) and sketch (gaussian, kronecker) at
each k: the relative error of the projected S against S P with the same P, and Eq. 4 at ``--ratio`` solved on it
against the solve on S: Jaccard of the removed sets, ||sum of removed S_i|| on S over the exact solve's (the true
objective ratio), and the eps the projection reports over the true one.

``large`` (a = 512, C = 100, d = 51,300, n = 50,000): seconds and peak memory (VmHWM, reset through
/proc/self/clear_refs; also the rise above the resident set before) of each configuration; Eq. 4 solved on each
projection, and the eps of its removal computed without S (``large_head.removal_norms``: one solve against the
removed gradients' sum, a C x (a+1) matrix) under EK-FAC and under the exact H (block CG), against a random
removal's, and that of removing the rows of smallest norm of the projection (the norm ranking alone); one
Hessian-vector pass of a 256-column block (one CG iteration of one block).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from dataset_pruning.data import TensorData
from dataset_pruning.models.base import Classifier
from dataset_pruning.scoring import score_samples
from dataset_pruning.scoring.influence import head_hvp, head_inputs
from dataset_pruning.scoring.large_head import gaussian_rows, kronecker_factors, removal_norms
from dataset_pruning.selection import solve_selection

def synthetic_head(n: int, a: int, c: int, seed: int = 0, iterations: int = 80) -> tuple[Classifier, TensorData]:
    """A Classifier (identity features, the fitted head) and its data: x = h of shape (n, a), y of shape (n,)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    mu = 2 * torch.randn(c, a, generator=g, dtype=torch.float64) / math.sqrt(a)
    h = 10 * torch.relu(mu[y] + torch.randn(n, a, generator=g, dtype=torch.float64) / math.sqrt(a))
    y = torch.where(torch.rand(n, generator=g) < 0.05, torch.randint(0, c, (n,), generator=g), y)
    u = torch.cat([h, torch.ones(n, 1, dtype=torch.float64)], 1)
    theta = torch.zeros(c, a + 1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([theta], max_iter=iterations, line_search_fn="strong_wolfe", history_size=20)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(u @ theta.T, y) + 2.5e-4 * (theta**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    model = Classifier(torch.nn.Identity(), a, c)
    with torch.no_grad():
        model.head.weight.copy_(theta[:, :a])
        model.head.bias.copy_(theta[:, a])
    return model.eval(), TensorData(h.float(), y, c, "synthetic head")


def influence(method: str, model, data, **options):
    """The registered scorer's values (float32 on the CPU) and info."""
    scores = score_samples(method, model, data, device="cpu", progress=False, **options)
    return scores.values, scores.info


def describe(model, data) -> str:
    u, p = head_inputs(model, data, device="cpu")
    return (f"training accuracy {float((p.argmax(1) == data.y).double().mean()):.3f}, mean top probability "
            f"{float(p.max(1).values.mean()):.3f}")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _status_mb(field: str) -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def measured(fn):
    """(result, seconds, peak MB, rise of the peak above the resident set before) of ``fn()``."""
    _reset_peak()
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    return out, seconds, peak, peak - before


def sketch_matrix(sketch: str, d: int, c: int, a1: int, k: int, seed: int) -> torch.Tensor:
    """The P (d, k) that ``projected_influence`` uses for ``sketch``, formed (small heads only)."""
    if sketch == "gaussian":
        return gaussian_rows(d, 0, k, seed).T / math.sqrt(k)
    return torch.kron(*kronecker_factors(k, c, a1, seed))


def removed_by(values, solver: str, ratio: float) -> np.ndarray:
    return solve_selection(np.ascontiguousarray(values, dtype=np.float32), problem="cardinality", solver=solver,
                           ratio=ratio, bound_iterations=0).removed


def removal_eps(values, removed: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(values[removed], dtype=np.float64).sum(0)))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return len(np.intersect1d(a, b)) / len(np.union1d(a, b))


def small(args) -> None:
    n, a, c = args.small
    model, data = synthetic_head(n, a, c)
    d, a1 = c * (a + 1), a + 1
    print(f"\n== small head: a = {a}, C = {c}, d = {d}, n = {n}; {describe(model, data)}")
    (s, _), seconds, peak, rise = measured(lambda: influence("last_layer_influence", model, data))
    print(f"exact S (last_layer_influence, n x d): {seconds:.1f} s, peak {peak:.0f} MB (+{rise:.0f} MB)")
    s_np, s = s.numpy(), s.double()
    start = time.perf_counter()
    reference = removed_by(s_np, args.solver, args.ratio)
    eps = removal_eps(s_np, reference)
    random_eps = removal_eps(s_np, np.random.default_rng(0).choice(n, len(reference), replace=False))
    print(f"Eq. 4 on S ({args.solver}, ratio {args.ratio}): eps {eps:.5f} in {time.perf_counter() - start:.1f} s; "
          f"a random removal: eps {random_eps:.5f}")
    smallest = removal_eps(s_np, np.argsort(np.linalg.norm(s_np, axis=1), kind="stable")[: len(reference)])
    print(f"removing the rows of smallest ||S_i|| (the norm ranking alone): eps {smallest:.5f} "
          f"({smallest / eps:.4f}x the solve on S)")
    energy = torch.linalg.svdvals(s) ** 2
    tail = 1 - energy.cumsum(0) / energy.sum()
    print("share of ||S||_F^2 outside the top k singular directions (what no k-dimensional sketch keeps): "
          + ", ".join(f"k = {k}: {float(tail[k - 1]):.3f}" for k in args.ks if k <= len(tail)))
    print("curvature  sketch     k     rel. error of S P  Jaccard  true eps / exact solve's  reported / true eps  s")
    for k in args.ks:
        for sketch in ("gaussian", "kronecker"):
            target = s @ sketch_matrix(sketch, d, c, a1, k, args.seed)
            for curvature in ("exact", "kfac", "ekfac"):
                (values, _), seconds, _, _ = measured(lambda: influence(
                    "last_layer_influence", model, data, hessian=curvature, projection_dim=k, sketch=sketch,
                    seed=args.seed))
                error = float((values.double() - target).norm() / target.norm())
                removed = removed_by(values.numpy(), args.solver, args.ratio)
                true_eps = removal_eps(s_np, removed)
                print(f"{curvature:<10} {sketch:<10} {k:<5} {error:<18.4g} {jaccard(removed, reference):<8.4f} "
                      f"{true_eps / eps:<25.4f} {removal_eps(values.numpy(), removed) / true_eps:<20.4f} "
                      f"{seconds:.1f}", flush=True)
    k = args.ks[0]
    target = s @ sketch_matrix("gaussian", d, c, a1, k, args.seed)
    for steps in (2, 5, 100):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cut CG warns; its residual is printed
            (values, info), seconds, _, _ = measured(lambda: influence(
                "last_layer_influence", model, data, hessian="cg", projection_dim=k, sketch="gaussian",
                seed=args.seed, cg_steps=steps))
        print(f"cg (EK-FAC-preconditioned block CG, tol 1e-6, at most {steps} steps), k = {k}: rel. error of S P "
              f"{float((values.double() - target).norm() / target.norm()):.2e}, {info['cg_iterations']} iterations, "
              f"residual {info['cg_max_relative_residual']:.1e}, {info['cg_operator_vectors']} Hessian-vector "
              f"products, {seconds:.1f} s", flush=True)


def large(args) -> None:
    n, a, c = args.large
    model, data = synthetic_head(n, a, c, iterations=40)
    d = c * (a + 1)
    print(f"\n== large head: a = {a}, C = {c}, d = {d}, n = {n}; {describe(model, data)}; the exact path would hold "
          f"H (d x d, float64) {d * d * 8 / 2**30:.1f} GiB and S (n x d, float32) {n * d * 4 / 2**30:.1f} GiB")
    u, p = head_inputs(model, data, device="cpu")

    def true_eps(*removals: np.ndarray) -> tuple[list, list]:
        """eps of each removal without S: under EK-FAC, and under the exact H (block CG, tol 1e-6)."""
        return tuple(removal_norms(u, p, data.y, removals, curvature=curvature) for curvature in ("ekfac", "cg"))

    quota = int(round(args.ratio * n))
    ([random_ekfac], [random_exact]), seconds, peak, _ = measured(
        lambda: true_eps(np.random.default_rng(0).choice(n, quota, replace=False)))
    print(f"a random removal of {quota}: eps {random_exact:.5f} (exact H, block CG) and {random_ekfac:.5f} (EK-FAC), "
          f"both in {seconds:.1f} s, peak {peak:.0f} MB")
    print(f"Eq. 4 ({args.solver}, ratio {args.ratio}) solved on each projected S; its removal's eps (exact H) over a "
          "random removal's, and the eps the projection reports over it")
    print("curvature  sketch     k     seconds  peak MB  rise MB  eps exact H  / random  EK-FAC / random  "
          "reported / exact  solve s  smallest ||S_i P|| / random")
    for curvature, sketch, k, steps in args.configs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CG cut at ``steps`` warns
            (values, info), seconds, peak, rise = measured(lambda: influence(
                "last_layer_influence", model, data, hessian=curvature, projection_dim=k, sketch=sketch,
                seed=args.seed, cg_steps=steps))
        if curvature == "cg":
            curvature = f"cg {info['cg_iterations']}"
        start = time.perf_counter()
        removed = removed_by(values.numpy(), args.solver, args.ratio)
        solve = time.perf_counter() - start
        smallest = np.argsort(values.norm(dim=1).numpy(), kind="stable")[:quota]  # the norm ranking alone
        (ekfac, _), (exact, smallest_exact) = true_eps(removed, smallest)
        print(f"{curvature:<10} {sketch:<10} {k:<5} {seconds:<8.1f} {peak:<8.0f} {rise:<8.0f} {exact:<12.5f} "
              f"{exact / random_exact:<9.4f} {ekfac / random_ekfac:<16.4f} "
              f"{removal_eps(values.numpy(), removed) / exact:<17.4f} {solve:<8.1f} "
              f"{smallest_exact / random_exact:.4f}", flush=True)
        del values
    block = gaussian_rows(d, 0, 256, args.seed)

    def hvp_pass():
        for i in range(0, n, 1024):
            head_hvp(block, u[i : i + 1024], p[i : i + 1024])

    _, seconds, peak, rise = measured(hvp_pass)
    print(f"one Hessian-vector pass of 256 columns over the n samples (one CG iteration of one block): {seconds:.1f} s, "
          f"peak {peak:.0f} MB (+{rise:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", choices=("small", "large"), default=["small", "large"])
    parser.add_argument("--small", nargs=3, type=int, default=[20000, 64, 20], metavar=("N", "A", "C"))
    parser.add_argument("--large", nargs=3, type=int, default=[50000, 512, 100], metavar=("N", "A", "C"))
    parser.add_argument("--ks", nargs="+", type=int, default=[64, 256, 1024], help="small-head projection sizes")
    parser.add_argument("--configs", nargs="+", default=["ekfac:kronecker:64", "ekfac:kronecker:256",
                                                         "ekfac:kronecker:1024", "ekfac:kronecker:4096",
                                                         "kfac:kronecker:256", "ekfac:gaussian:1024",
                                                         "cg:kronecker:256:5"],
                        help="large-head curvature:sketch:k[:cg_steps] (cg: at most cg_steps iterations, 100 if left out)")
    parser.add_argument("--solver", default="greedy")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.configs = [(cv, sk, int(k), int(rest[0]) if rest else 100)
                    for cv, sk, k, *rest in (item.split(":") for item in args.configs)]
    torch.set_num_threads(args.threads)
    print(f"benchmarks/large_head.py: solver {args.solver}, ratio {args.ratio}, seed {args.seed}, "
          f"{args.threads} torch threads")
    for section in args.sections:
        {"small": small, "large": large}[section](args)


if __name__ == "__main__":
    main()
