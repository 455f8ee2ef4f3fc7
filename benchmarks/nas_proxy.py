"""NAS on a pruned proxy vs a random proxy vs full data, on MNIST-1D (the paper's Table 1, Sec. 6.5, scaled down).

Computes removed_indices in-process as the prune pipeline does (cnn1d ERM, lr 0.1, 60 epochs; last-layer
influence; Eq. 4 by the greedy solver, over all samples or per class) for each of --proxies, then
searches the same architecture sample on the full training set once and on the pruned and random proxies of
each, and prints the table and the ratios full / proxy measured in this run (record it in docs/nas.md).

    python benchmarks/nas_proxy.py --sample 24 --proxies 0.98:plain 0.98:balanced 0.9:balanced --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import numpy as np
import pandas as pd
import torch

from dataset_pruning.data import load_dataset
from dataset_pruning.nas import sample_architectures
from dataset_pruning.nas.proxy import run_search, summarise
from dataset_pruning.scoring import score_samples
from dataset_pruning.selection import select_removed
from dataset_pruning.training import ModelSpec, TrainingConfig, fit


def influence_vectors(train, seed: int = 0):
    """S (n, d) of the default prune pipeline: cnn1d ERM (lr 0.1, 60 epochs), last-layer influence."""
    spec = ModelSpec("cnn1d", train.input_shape, train.num_classes)
    model = spec.build(seed=seed)
    fit(model, train, TrainingConfig(epochs=60, lr=0.1, seed=seed, device="cpu"), progress=False)
    scores = score_samples("last_layer_influence", model, train, weight_decay=5e-4, device="cpu", progress=False)
    return scores.values.numpy()


def prune(influence, train, ratio: float, balanced: bool):
    """removed_indices: Eq. 4 by the greedy solver at ``ratio`` removed (per class with ``balanced``)."""
    return select_removed(influence, problem="cardinality", solver="greedy", ratio=ratio,
                          labels=train.y.numpy(), class_balanced=balanced)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=24, help="architectures drawn from the 720 (0: all)")
    parser.add_argument("--proxies", nargs="+", default=["0.98:plain", "0.98:balanced", "0.9:balanced"],
                        help="RATIO:VARIANT, the fraction removed and greedy Eq. 4 over all samples (plain) or per "
                             "class (balanced); each gets a random proxy of the same size")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="Dask LocalCluster workers (0: serial)")
    parser.add_argument("--width-scale", type=float, default=1.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--table", default=None, help="write the per-architecture table (CSV) here")
    parser.add_argument("--shard", default=None, help="K/N: only every N-th architecture from the K-th (0-based), "
                                                      "to split a search over processes; merge with --merge")
    parser.add_argument("--merge", nargs="+", default=None, help="summarise these --table CSVs (shards) instead")
    args = parser.parse_args()
    torch.set_num_threads(1)

    train, test = load_dataset("mnist1d")
    if args.merge:
        merged = pd.concat([pd.read_csv(path) for path in args.merge])
        tables = {key: table.drop(columns=["ratio", "selection"]).sort_values("index").reset_index(drop=True)
                  for key, table in merged.groupby(["ratio", "selection"], sort=False)}
        summaries = {key: summarise(table, top_k=args.top_k) for key, table in tables.items()}
        print(f"merged {len(args.merge)} tables: {len(next(iter(tables.values())))} architectures")
        report(args, train, summaries, tables, float("nan"))
        return
    architectures = sample_architectures(args.sample or None, seed=args.seed)
    if args.shard:
        k, n = map(int, args.shard.split("/"))
        architectures = architectures[k::n]
    recipe = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            device=args.device)
    search = {"seed": args.seed, "width_scale": args.width_scale, "executor": "dask" if args.workers else "serial"}
    print(f"{len(architectures)} architectures, recipe {recipe}, {search['executor']} with {args.workers} workers")

    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.workers:  # one cluster for all searches, reached by its address like an existing scheduler
            from dask.distributed import LocalCluster

            cluster = stack.enter_context(
                LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0")
            )
            search["dask_address"] = cluster.scheduler_address
        summaries, tables = searches(args, train, test, architectures, recipe, search)
    total = time.perf_counter() - started
    report(args, train, summaries, tables, total)


def searches(args, train, test, architectures, recipe, search):
    t0 = time.perf_counter()
    influence = influence_vectors(train, args.seed)
    print(f"ERM + influence: {time.perf_counter() - t0:.1f} s")
    removed = {}
    for proxy in args.proxies:
        ratio, variant = float(proxy.split(":")[0]), proxy.split(":")[1]
        if variant not in ("plain", "balanced"):
            raise ValueError(f"--proxies {proxy}: the variant must be plain or balanced")
        t0 = time.perf_counter()
        removed[ratio, variant] = prune(influence, train, ratio, variant == "balanced")
        kept = np.setdiff1d(np.arange(len(train)), removed[ratio, variant])
        print(f"greedy at ratio {ratio} ({variant}): {len(kept)} kept, per class "
              f"{np.bincount(train.y.numpy()[kept], minlength=train.num_classes).tolist()}, "
              f"{time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    full = run_search(architectures, train, test, [], recipe, proxies=("full",), **search)
    print(f"full-data search: {time.perf_counter() - t0:.1f} s wall")
    tables, summaries = {}, {}
    for key, indices in removed.items():
        t0 = time.perf_counter()
        proxies = run_search(architectures, train, test, indices, recipe, proxies=("pruned", "random"), **search)
        print(f"proxy searches at ratio {key[0]} ({key[1]}): {time.perf_counter() - t0:.1f} s wall")
        tables[key] = full.merge(proxies, on=[c for c in full.columns if not c.startswith("full_")])
        summaries[key] = summarise(tables[key], top_k=args.top_k)
    return summaries, tables


def report(args, train, summaries, tables, total):
    if total == total:  # not NaN (--merge has no wall time)
        print(f"\ntotal wall time {total:.1f} s")
    print()
    k = args.top_k
    print(f"| training set | selection | best arch's full acc. | Spearman (all) | Spearman (top {k}) "
          f"| search time (s) | full / proxy time | peak memory (MiB) |")
    print("|" + "---|" * 8)
    first = next(iter(summaries.values()))
    print(f"| full data ({len(train)}) | - | {first['full.best_full_accuracy']:.3f} | 1.000 | 1.000 "
          f"| {first['full.search_time_s']:.0f} | 1.0x | {first['full.peak_memory_mb']:.0f} |")
    for (ratio, variant), s in summaries.items():
        for proxy in ("pruned", "random"):
            selection = f"greedy Eq. 4, {variant}" if proxy == "pruned" else "uniform random"
            print(f"| {proxy} {s[f'{proxy}.train_samples']:.0f} ({1 - ratio:.0%}) | {selection} "
                  f"| {s[f'{proxy}.best_full_accuracy']:.3f} | {s[f'{proxy}.spearman']:.3f} "
                  f"| {s[f'{proxy}.spearman_top{k}']:.3f} | {s[f'{proxy}.search_time_s']:.1f} "
                  f"| {s[f'{proxy}.time_ratio']:.1f}x | {s[f'{proxy}.peak_memory_mb']:.0f} |")
    print()
    for (ratio, variant), s in summaries.items():
        print(f"summary at ratio {ratio} ({variant}): {json.dumps({key: round(v, 4) for key, v in s.items()})}")
    if args.table:
        merged = [t.assign(ratio=r, selection=v) for (r, v), t in tables.items()]
        pd.concat(merged).to_csv(args.table, index=False)
        print(f"table written to {args.table}")


if __name__ == "__main__":
    main()
