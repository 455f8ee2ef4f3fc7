"""Each stage's seconds and peak memory as n grows: stratified Fashion-MNIST subsets, the CPU recipe of
conf/fashion_mnist (cnn2d), the pipeline's default scoring (last-layer influence) and Eq. 4 selection.

    python benchmarks/scale.py                               # n = 7,500 / 15,000 / 30,000 / 60,000 (~25 min, 2 cores)
    python benchmarks/scale.py --sizes 2000 4000 --no-retraining   # a quick look
    python benchmarks/scale.py --sizes 60000 --no-retraining --scorers herding   # a scalar scorer against ERM

Per stage: seconds and the process's peak resident memory during it (VmHWM, reset before each stage through
/proc/self/clear_refs). Then the log-log slope of each stage's seconds over n, each stage projected to n = 1.28 M
(ImageNet's size) on one machine and on k Dask workers (shards divide scoring and ERM-free work by k; selection is
one process), and last `pruning overhead at n=<largest>: (scoring + selection) / ERM = R`. Run it alone: other work
on the cores changes the seconds, not the ratios' meaning.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from dataset_pruning.data import load_dataset
from dataset_pruning.scoring import score_samples
from dataset_pruning.selection import select_removed
from dataset_pruning.training import ModelSpec, TrainingConfig, fit, evaluate

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "erm", "scoring", "selection", "retraining")


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)
    except OSError:
        pass


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(stage: str, record: dict, fn):
    _reset_peak()
    start = time.perf_counter()
    out = fn()
    record[stage] = (time.perf_counter() - start, _peak_mb())
    return out


def default_solver() -> str:
    block = yaml.safe_load((ROOT / "conf/base/parameters_optimization_selection.yml").read_text())
    return block["optimization_selection"]["solver"]


def recipe() -> tuple[dict, TrainingConfig]:
    block = yaml.safe_load((ROOT / "conf/fashion_mnist/parameters_erm_training.yml").read_text())["erm_training"]
    return block["model"], TrainingConfig(**block["training"])


def one_size(n: int, seed: int, retraining: bool, ratio: float, scorers: list[str]) -> dict:
    record: dict = {}
    model_block, config = recipe()
    train, test = measure("ingest", record, lambda: load_dataset("fashion_mnist", seed=seed,
                                                                 samples_per_class=n // 10))
    spec = ModelSpec(model_block["name"], train.input_shape, train.num_classes, model_block.get("options") or {})
    model = spec.build(seed=config.seed)
    measure("erm", record, lambda: fit(model, train, config, progress=False))
    S = measure("scoring", record, lambda: score_samples("last_layer_influence", model, train, device="cpu",
                                                         weight_decay=config.weight_decay, progress=False)).values
    removed = measure("selection", record, lambda: select_removed(S.numpy(), problem="cardinality",
                                                                       solver=default_solver(), ratio=ratio))
    record["full_accuracy"] = evaluate(model, test)["accuracy"]
    for name in scorers:  # scalar scorers that read only the trained model
        measure(name, record, lambda: score_samples(name, model, train, device="cpu"))
    if retraining:
        keep = np.setdiff1d(np.arange(len(train)), removed)
        fresh = spec.build(seed=config.seed)
        measure("retraining", record, lambda: fit(fresh, train.subset(torch.as_tensor(keep)), config,
                                                  progress=False))
        record["pruned_accuracy"] = evaluate(fresh, test)["accuracy"]
    return record


def slope(sizes: list[int], seconds: list[float]) -> float:
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[7500, 15000, 30000, 60000])
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-retraining", dest="retraining", action="store_false")
    parser.add_argument("--workers", type=int, default=8, help="k of the Dask projection")
    parser.add_argument("--scorers", nargs="*", default=[], help="scalar scorers timed against ERM, e.g. herding")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    records = {}
    print(f"{'n':>7} | " + " | ".join(f"{s:>17}" for s in STAGES) + " | accuracy full / pruned")
    for n in args.sizes:
        records[n] = r = one_size(n, args.seed, args.retraining, args.ratio, args.scorers)
        cells = [f"{r[s][0]:7.1f} s {r[s][1]:5.0f} MB" if s in r else f"{'-':>17}" for s in STAGES]
        accuracy = f"{r['full_accuracy']:.4f} / {r.get('pruned_accuracy', float('nan')):.4f}"
        print(f"{n:>7} | " + " | ".join(cells) + f" | {accuracy}", flush=True)
    sizes, largest = list(records), max(records)
    target = 1_280_000
    if len(sizes) > 1:  # slopes and projections need two sizes at least
        print(f"\nlog-log slope of seconds over n, and each stage projected to n = {target:,} "
              f"(one machine; {args.workers} Dask workers, shards: ERM and selection stay on one):")
        for stage in STAGES:
            if not all(stage in records[n] for n in sizes):
                continue
            b = slope(sizes, [records[n][stage][0] for n in sizes])
            seconds = records[largest][stage][0] * (target / largest) ** b
            peaks = [records[n][stage][1] for n in sizes]
            per_sample, base = np.polyfit(sizes, peaks, 1)
            # peak memory fitted linear in n (the interpreter and torch are the base)
            memory = base + per_sample * target
            shared = seconds / args.workers if stage == "scoring" else seconds
            print(f"  {stage:>10}: slope {b:5.2f}; at {target:,}: {seconds / 3600:8.2f} h one machine, "
                  f"{shared / 3600:8.2f} h on {args.workers} workers; "
                  f"peak memory ~{memory / 1024:6.1f} GB (linear fit)")
    r = records[largest]
    for name in args.scorers:
        print(f"{name} at n={largest}: {r[name][0]:.1f} s, {r[name][0] / r['erm'][0]:.3f}x ERM ({r['erm'][0]:.1f} s)")
    ratio = (r["scoring"][0] + r["selection"][0]) / r["erm"][0]
    print(f"pruning overhead at n={largest}: (scoring + selection) / ERM = {ratio:.3f}")


if __name__ == "__main__":
    main()
