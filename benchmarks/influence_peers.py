"""Whole-network inverse-Hessian-vector products: ours against pyDVL's CgInfluence (block CG) and dattri's CG,
in the same run, on the same model, samples, damping and tolerance, each checked against a dense float64 solve.

What is computed, by every library: the influence factors F_i = (H + lambda I)^-1 grad l(z_i) for ``--samples``
training samples, H the mean cross-entropy Hessian over ``--hessian-samples`` training samples (the scored ones
among them), all P parameters of the MNIST-1D reference CNN (cnn1d, P = 5,210), trained by the ERM recipe.

- ours: ``whole_network_influence(projection_dim=None, indices=..., weight_decay=0, damping=lambda)`` times n,
  with ``cg_method: block`` (the default) and ``independent`` (one CG per right-hand side, the old path);
- pyDVL 0.10 ``CgInfluence(solve_simultaneously=True)`` (block CG); pyDVL stops at ||r|| <= rtol^2 ||b||
  (squared tolerances), so it gets rtol = sqrt(tol) for the same relative residual;
- dattri 0.3 ``dattri.func.hessian.ihvp_cg``: it runs a fixed ``max_iter`` and ignores its tolerance, so it gets
  the number of iterations our one-CG-per-right-hand-side path needed to reach the tolerance (``--dattri-iters``
  overrides it);
- the loss: the peers differentiate ours (``--peer-loss ours``, the default: ``gradients.cross_entropy``, so that
  all compute the same factors) or ``F.cross_entropy`` (``--peer-loss torch``), whose float32 per-sample gradients
  of well-fit samples lose their precision (the printed 'float32 per-sample gradients' line);
- the dense reference: H formed in float64 (P Hessian-vector products), plus lambda I, Cholesky solve
  (cached under .peers/cache/, keyed by the model, the samples and lambda).

Timed for each: from the trained model and the data to the factors (per-sample gradients included, model and
data loading excluded). pyDVL and dattri each run in a virtual environment that this script creates under
.peers/ (gitignored) and calls by subprocess; installing pyDVL would downgrade numpy in the project's
environment. Each peer environment sees the project environment's torch read-only (a ``site.addsitedir`` line
in a .pth file; nothing is installed into or removed from the project's environment) so that torch is not
downloaded again; ``--peer-torch install`` installs torch==2.14.1 into the peer environments instead.

    python benchmarks/influence_peers.py                       # 200 samples, Hessian on 500, 1 thread, CPU
    python benchmarks/influence_peers.py --peers pydvl --repeats 3   # the fastest of 3 timings each
    python benchmarks/influence_peers.py --device cuda --threads 16
    python benchmarks/influence_peers.py --quick               # a smoke test: tiny CNN, seconds after setup
"""

from __future__ import annotations

import argparse
import hashlib
import json
import site
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / ".peers"
PEER_PACKAGES = {"pydvl": ["pydvl[influence]==0.10.0"], "dattri": ["dattri==0.3.0"]}
PROJECT_TORCH = "torch==2.14.1"


# ----------------------------------------------------------------------------------------------------------------
# peer environments


def peer_python(name: str, torch_mode: str = "reuse") -> Path:
    """The interpreter of .peers/<name>-venv, created and filled on first use (a marker file records what)."""
    venv = PEERS / f"{name}-venv"
    python = venv / "bin" / "python"
    wanted = json.dumps({"packages": PEER_PACKAGES[name], "torch": torch_mode})
    marker = venv / "installed.json"
    if marker.exists() and marker.read_text() == wanted and python.exists():
        return python
    print(f"setting up {venv} ({', '.join(PEER_PACKAGES[name])}; torch: {torch_mode}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    if torch_mode == "reuse":
        # the project's site-packages, read-only, after the peer's own: the peer's numpy (e.g. pyDVL's 1.26)
        # shadows the project's, and pip never uninstalls what lies outside its own environment
        project_site = [p for p in site.getsitepackages() if p.endswith("site-packages")][0]
        peer_site = next((venv / "lib").glob("python*/site-packages"))
        (peer_site / "zz_project_packages.pth").write_text(f"import site; site.addsitedir({project_site!r})\n")
        packages = PEER_PACKAGES[name]
    else:
        packages = [PROJECT_TORCH, *PEER_PACKAGES[name]]
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    marker.write_text(wanted)
    return python


# ----------------------------------------------------------------------------------------------------------------
# the workers (run inside the peer environments: ``python influence_peers.py --worker NAME payload out``)


def _load_payload(path: str):
    payload = torch.load(path, weights_only=True)
    torch.set_num_threads(int(payload["threads"]))
    sys.path.insert(0, str(ROOT / "src"))
    from dataset_pruning.models import build_model

    spec = payload["spec"]
    with torch.random.fork_rng(devices=[]):
        model = build_model(spec["name"], tuple(spec["input_shape"]), spec["num_classes"], **spec["options"])
    model.load_state_dict(payload["state_dict"])
    device = torch.device(payload["device"])
    model = model.to(device).eval()
    tensors = {k: payload[k].to(device) for k in ("hessian_x", "hessian_y", "x", "y")}
    return payload, model, tensors, device


def _peer_loss(payload):
    """The loss the peers differentiate: ours (``gradients.cross_entropy``, the same function ours uses, so that all
    compute the same factors) or torch's ``F.cross_entropy`` (their usual one, float32-limited on well-fit samples)."""
    if payload["peer_loss"] == "torch":
        return torch.nn.functional.cross_entropy
    from dataset_pruning.scoring.gradients import cross_entropy

    return cross_entropy


def _timed(solve, repeats: int, device: torch.device):
    """(result, seconds): the fastest of ``repeats`` runs (the machine's speed drifts between runs)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        result = solve()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return result, best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def worker_pydvl(payload_path: str, out_path: str) -> None:
    payload, model, t, device = _load_payload(payload_path)
    import pydvl
    from pydvl.influence.torch import CgInfluence
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(t["hessian_x"], t["hessian_y"]), batch_size=len(t["hessian_y"]))

    loss = _peer_loss(payload)

    def solve(x, y, maxiter):
        return CgInfluence(
            model, loss, regularization=payload["damping"],
            rtol=payload["tol"] ** 0.5, atol=1e-30, maxiter=maxiter, solve_simultaneously=True,
            warn_on_max_iteration=False,
        ).fit(loader).influence_factors(x, y)

    solve(t["x"][:2], t["y"][:2], 2)  # warm-up, as for ours
    factors, seconds = _timed(lambda: solve(t["x"], t["y"], payload["maxiter"]), payload["repeats"], device)
    torch.save({"factors": factors.detach().float().cpu(), "seconds": seconds, "version": pydvl.__version__}, out_path)


def worker_dattri(payload_path: str, out_path: str) -> None:
    payload, model, t, device = _load_payload(payload_path)
    import importlib.metadata

    from dattri.func.hessian import ihvp_cg
    from torch.func import functional_call, grad, vmap

    names = [n for n, p in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])

    def unflat(vector):
        return {n: c.view(s) for n, c, s in zip(names, torch.split(vector, sizes), shapes)}

    loss = _peer_loss(payload)

    def mean_loss(vector):
        return loss(functional_call(model, unflat(vector), (t["hessian_x"],)), t["hessian_y"])

    def sample_loss(vector, x, y):
        return loss(functional_call(model, unflat(vector), (x[None],)), y[None])

    def solve(x, y, iterations):
        gradients = vmap(grad(sample_loss), in_dims=(None, 0, 0))(theta, x, y)
        ihvp = ihvp_cg(mean_loss, argnums=0, max_iter=int(iterations), regularization=payload["damping"])
        return ihvp((theta,), gradients)

    solve(t["x"][:2], t["y"][:2], 2)  # warm-up, as for ours
    factors, seconds = _timed(lambda: solve(t["x"], t["y"], payload["dattri_iters"]), payload["repeats"], device)
    torch.save(
        {"factors": factors.detach().float().cpu(), "seconds": seconds, "version": importlib.metadata.version("dattri")},
        out_path,
    )


# ----------------------------------------------------------------------------------------------------------------
# the benchmark (project environment)


def _relative_errors(factors: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    diff = (factors.double() - reference).norm(dim=1) / reference.norm(dim=1)
    return {"max": float(diff.max()), "mean": float(diff.mean())}


def _gradient_precision(model, scored, device: str) -> str:
    """How far float32 per-sample gradients (the right-hand sides) are from float64 ones, through
    ``F.cross_entropy`` (the peers' usual loss, ``--peer-loss torch``) and through ours (``gradients.cross_entropy``):
    on a well-fit sample 1 - p_y is below float32's resolution and F.cross_entropy's gradient entry p_y - 1 cancels."""
    from torch.func import grad, vmap

    from dataset_pruning.scoring.gradients import FunctionalModel, per_sample_gradients

    fm32, fm64 = FunctionalModel(model, device=device), FunctionalModel(model, device=device, dtype="float64")
    exact = per_sample_gradients(fm64, scored)

    def torch_loss(theta, x, y):
        return torch.nn.functional.cross_entropy(fm32.logits(theta, x[None]), y[None])

    x, y = fm32.to_device(scored, slice(None))
    variants = {"F.cross_entropy": vmap(grad(torch_loss), in_dims=(None, 0, 0))(fm32.theta, x, y),
                "ours": per_sample_gradients(fm32, scored)}
    parts = []
    for name, gradients in variants.items():
        error = (gradients.double() - exact).norm(dim=1) / exact.norm(dim=1)
        parts.append(f"{name} max {float(error.max()):.1e} mean {float(error.mean()):.1e}")
    return "float32 per-sample gradients vs float64 (relative, per sample): " + "; ".join(parts)


def main(args: argparse.Namespace) -> None:
    from dataset_pruning.data import load_dataset
    from dataset_pruning.runtime import resolve_device
    from dataset_pruning.scoring import score_samples
    from dataset_pruning.scoring.gradients import FunctionalModel, mean_hvp, per_sample_gradients
    from dataset_pruning.training import ModelSpec, TrainingConfig, fit

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    train, _ = load_dataset("mnist1d")
    spec = ModelSpec("cnn1d", train.input_shape, train.num_classes, {"channels": args.channels})
    model = spec.build(seed=0)
    started = time.perf_counter()
    fit(model, train, TrainingConfig(epochs=args.epochs, device=args.device), progress=False)
    model = model.cpu().eval()
    print(f"trained cnn1d (channels {args.channels}, {args.epochs} epochs) in {time.perf_counter() - started:.1f} s")
    generator = torch.Generator().manual_seed(args.seed)
    hessian_index = torch.randperm(len(train), generator=generator)[: args.hessian_samples].sort().values
    data = train.subset(hessian_index)  # the Hessian's samples; the scored ones are the first --samples of them
    scored = torch.arange(args.samples)
    fm = FunctionalModel(model, device=args.device)
    p = fm.num_parameters
    print(f"device {device}, torch threads {args.threads}, P = {p}, Hessian samples {len(data)}, scored samples "
          f"{len(scored)}, damping {args.damping}, tolerance ||r|| <= {args.tol:g} ||b||")

    # dense float64 reference (cached)
    key = hashlib.sha256()
    for tensor in model.state_dict().values():
        key.update(tensor.detach().cpu().numpy().tobytes())
    key.update(hessian_index.numpy().tobytes())
    key.update(f"{args.samples} {args.damping}".encode())
    cache = PEERS / "cache" / f"dense_{key.hexdigest()[:16]}.pt"
    if cache.exists():
        reference = torch.load(cache, weights_only=True)
        print(f"dense float64 reference: read {cache.relative_to(ROOT)}")
    else:
        started = time.perf_counter()
        fm64 = FunctionalModel(model, device=args.device, dtype="float64")
        eye = torch.eye(p, dtype=torch.float64, device=fm64.device)
        dense = torch.cat([mean_hvp(fm64, data, eye[i : i + 256], vector_chunk=256) for i in range(0, p, 256)])
        dense = 0.5 * (dense + dense.T) + args.damping * eye
        gradients = per_sample_gradients(fm64, data.subset(scored))
        smallest = float(torch.linalg.eigvalsh(dense).min())
        reference = {"factors": torch.linalg.solve(dense, gradients.T).T.cpu(), "smallest_eigenvalue": smallest}
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(reference, cache)
        print(f"dense float64 reference: {time.perf_counter() - started:.1f} s (cached in {cache.relative_to(ROOT)})")
    print(f"smallest eigenvalue of H + damping I: {reference['smallest_eigenvalue']:.3g}")
    if reference["smallest_eigenvalue"] <= 0:
        sys.exit("the damped Hessian is indefinite here: CG cannot solve it; raise --damping (or train longer)")
    reference = reference["factors"]
    print(_gradient_precision(model, data.subset(scored), args.device))

    results: dict[str, dict] = {}
    common = dict(projection_dim=None, indices=scored, weight_decay=0.0, damping=args.damping, cg_tol=args.tol,
                  cg_steps=args.maxiter, device=args.device, progress=False)
    with warnings.catch_warnings():  # warm-up (2 steps: it warns that it did not converge)
        warnings.simplefilter("ignore")
        score_samples("whole_network_influence", model, data.subset(torch.arange(8)),
                      **{**common, "indices": None, "cg_steps": 2})
    for method in ("block", "independent"):
        if method == "independent" and args.skip_independent:
            continue
        scores, seconds = _timed(lambda: score_samples("whole_network_influence", model, data, cg_method=method,
                                                        **common), args.repeats, device)
        results[f"ours ({method} CG)"] = {
            "seconds": seconds, "factors": scores.values * len(data),
            "note": f"{scores.info['cg_iterations']} iterations, {scores.info['cg_operator_vectors']} HVPs, "
                    f"residual {scores.info['cg_max_relative_residual']:.1e}",
        }
        if method == "independent":
            args.dattri_iters = args.dattri_iters or scores.info["cg_iterations"]
    args.dattri_iters = args.dattri_iters or 35

    payload_path = PEERS / "work" / "payload.pt"
    payload_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "spec": {"name": spec.name, "input_shape": list(spec.input_shape), "num_classes": spec.num_classes,
                     "options": spec.options},
            "state_dict": model.state_dict(), "hessian_x": data.x, "hessian_y": data.y,
            "x": data.x[scored], "y": data.y[scored], "damping": args.damping, "tol": args.tol,
            "maxiter": args.maxiter, "dattri_iters": args.dattri_iters, "threads": args.threads,
            "device": str(device), "peer_loss": args.peer_loss, "repeats": args.repeats,
        },
        payload_path,
    )
    for name in args.peers:
        python = peer_python(name, args.peer_torch)
        out = PEERS / "work" / f"{name}.pt"
        out.unlink(missing_ok=True)
        run = subprocess.run([str(python), __file__, "--worker", name, str(payload_path), str(out)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(f"{name} failed:\n{run.stderr[-4000:]}")
            continue
        answer = torch.load(out, weights_only=True)
        note = {"pydvl": f"CgInfluence, block CG, rtol {args.tol ** 0.5:.2g} (squared: {args.tol:g})",
                "dattri": f"ihvp_cg, {args.dattri_iters} fixed iterations (no tolerance)"}[name]
        note += f"; loss: {'ours' if args.peer_loss == 'ours' else 'F.cross_entropy'}"
        results[f"{name} {answer['version']}"] = {"seconds": answer["seconds"], "factors": answer["factors"],
                                                  "note": note}

    ours = results["ours (block CG)"]["seconds"]
    print(f"\n{'':26s} {'seconds':>9s} {'vs ours':>8s} {'max rel. err':>13s} {'mean rel. err':>14s}  notes")
    for name, r in results.items():
        errors = _relative_errors(r["factors"], reference)
        print(f"{name:26s} {r['seconds']:9.2f} {r['seconds'] / ours:7.2f}x {errors['max']:13.1e} "
              f"{errors['mean']:14.1e}  {r['note']}")
    print("('vs ours' = seconds / seconds of ours with block CG: > 1 means ours is faster; errors are "
          "||F - F_dense|| / ||F_dense|| per sample against the dense float64 solve)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        {"pydvl": worker_pydvl, "dattri": worker_dattri}[sys.argv[2]](sys.argv[3], sys.argv[4])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200, help="scored samples (right-hand sides)")
    parser.add_argument("--hessian-samples", type=int, default=500, help="samples the Hessian averages over")
    parser.add_argument("--damping", type=float, default=0.1)
    parser.add_argument("--tol", type=float, default=1e-5, help="relative residual ||r|| <= tol ||b||")
    parser.add_argument("--maxiter", type=int, default=200)
    parser.add_argument("--dattri-iters", type=int, default=None, help="default: our independent CG's iterations")
    parser.add_argument("--epochs", type=int, default=60, help="ERM epochs of the scored model")
    parser.add_argument("--channels", type=int, default=25, help="cnn1d width (25: the reference CNN)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peers", nargs="*", default=["pydvl", "dattri"], choices=["pydvl", "dattri"])
    parser.add_argument("--peer-torch", choices=["reuse", "install"], default="reuse")
    parser.add_argument("--skip-independent", action="store_true", help="do not time our one-CG-per-rhs path")
    parser.add_argument("--repeats", type=int, default=1, help="time each solver this many times, keep the fastest")
    parser.add_argument("--peer-loss", choices=["ours", "torch"], default="ours",
                        help="the loss the peers differentiate: ours (the same factors as ours) or F.cross_entropy")
    parser.add_argument("--quick", action="store_true", help="smoke test: 8 samples, Hessian on 64, tiny CNN")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.samples, arguments.hessian_samples, arguments.epochs, arguments.channels = 8, 64, 3, 4
        arguments.damping = 1.0  # a 3-epoch model's Hessian is far from positive definite
    main(arguments)
