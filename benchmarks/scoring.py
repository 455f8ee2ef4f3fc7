"""Per-sample gradients: our batched torch.func path against a naive per-sample autograd loop, same run.

Both compute grad l(z_i; theta) over all parameters of the MNIST-1D reference CNN (5,210 parameters) for the same
n samples of MNIST-1D (regenerated offline); the script checks that they agree, prints both times and their ratio,
then the peak extra memory of the batched path against the batch size and n (each measured in a fresh
subprocess; output kept to one norm per sample so that only the working memory is measured).

    python benchmarks/scoring.py                 # n = 10,000 on CPU (the numbers in docs/scoring.md)
    python benchmarks/scoring.py --device cuda   # the same on a GPU
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from dataset_pruning.data import load_dataset
from dataset_pruning.runtime import resolve_device
from dataset_pruning.scoring.gradients import FunctionalModel, per_sample_gradients
from dataset_pruning.training import ModelSpec


def _setup(n: int, device: str):
    train, _ = load_dataset("mnist1d", root="data/01_raw", seed=42, num_samples=int(n / 0.8) + 200)
    train = train.subset(torch.arange(n))
    model = ModelSpec("cnn1d", train.input_shape, train.num_classes).build(seed=0).to(resolve_device(device)).eval()
    return train, model


def naive_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The baseline: one forward and one autograd.grad per sample, flattened into a preallocated (n, P)."""
    params = [p for p in model.parameters() if p.requires_grad]
    out = torch.empty(len(x), sum(p.numel() for p in params), device=x.device)
    for i in range(len(x)):
        loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        out[i] = torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def compare(n: int, batch_size: int, device: str) -> None:
    train, model = _setup(n, device)
    dev = resolve_device(device)
    fm = FunctionalModel(model, device=device)
    x, y = train.x.to(dev), train.y.to(dev)
    per_sample_gradients(fm, train.subset(torch.arange(256)), batch_size=batch_size)  # warm-up, both paths
    naive_loop(model, x[:32], y[:32])
    _sync(dev)
    start = time.perf_counter()
    ours = per_sample_gradients(fm, train, batch_size=batch_size)
    _sync(dev)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    reference = naive_loop(model, x, y)
    _sync(dev)
    t_naive = time.perf_counter() - start
    error = float((ours - reference).abs().max() / reference.abs().max())
    print(f"device {dev}, torch threads {torch.get_num_threads()}, n = {n}, P = {fm.num_parameters}")
    print(f"  batched torch.func (vmap, batch {batch_size}): {t_ours:8.2f} s  ({1e6 * t_ours / n:7.1f} us/sample)")
    print(f"  naive per-sample autograd loop:      {t_naive:8.2f} s  ({1e6 * t_naive / n:7.1f} us/sample)")
    print(f"  speed-up: {t_naive / t_ours:.1f}x   (max relative difference of the gradients: {error:.1e})")


def _peak_rss_bytes() -> int:
    """This process's peak resident memory. /proc's VmHWM where there is one: ru_maxrss survives exec on Linux, so a
    child started by a large parent would report the parent's peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _memory_child(n: int, batch_size: int, device: str) -> None:
    """Run in a subprocess: peak extra memory of one batched pass that keeps only per-sample norms."""
    train, model = _setup(n, device)
    dev = resolve_device(device)
    fm = FunctionalModel(model, device=device)
    fm.per_sample_gradients(fm.theta, *fm.to_device(train, slice(0, 2)))  # libraries' one-off set-up, not counted
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _peak_rss_bytes()
    norms = torch.cat(
        [
            fm.per_sample_gradients(fm.theta, *fm.to_device(train, slice(i, i + batch_size))).norm(dim=1)
            for i in range(0, n, batch_size)
        ]
    )
    assert len(norms) == n
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _peak_rss_bytes() - base
    print(json.dumps({"peak_extra_mb": peak / 2**20}))


def memory_table(device: str) -> None:
    print("peak extra memory of the batched path (MB), fresh process each; rows: batch size, columns: n")
    sizes = (2500, 10000)
    print("  batch   " + "".join(f"{f'n={n}':>12}" for n in sizes))
    for batch_size in (64, 256, 1024, 4096):
        row = []
        for n in sizes:
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(n), str(batch_size), "--device", device],
                capture_output=True, text=True, check=True,
            )
            row.append(json.loads(result.stdout.strip().splitlines()[-1])["peak_extra_mb"])
        print(f"  {batch_size:5d}   " + "".join(f"{v:12.1f}" for v in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=2, type=int, metavar=("N", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _memory_child(args.child[0], args.child[1], args.device)
        return
    compare(args.n, args.batch_size, args.device)
    memory_table(args.device)


if __name__ == "__main__":
    main()
