"""Each stage's seconds and peak memory as n grows: stratified Fashion-MNIST subsets, the CPU recipe of
conf/fashion_mnist (cnn2d), the pipeline's default scoring (last-layer influence) and Eq. 4 selection (what the
selection node runs: the solve and the relaxation bound it reports beside it).

    python benchmarks/scale.py                               # n = 7,500 / 15,000 / 30,000 / 60,000 (~25 min, 2 cores)
    python benchmarks/scale.py --sizes 2000 4000 --no-retraining   # a quick look
    python benchmarks/scale.py --sizes 60000 --no-retraining --scorers herding   # a scalar scorer against ERM
    python benchmarks/scale.py --sizes 60000 --no-retraining --scorers all --previous-scoring

Each size runs in a fresh interpreter, as each `kedro run` does. Per stage: seconds and the process's peak resident
memory during it (VmHWM, reset before each stage through
/proc/self/clear_refs); on stderr as each stage ends, with the process's CPU seconds (on a shared machine the wall
seconds count the waiting too, the CPU seconds the work: the scorers' and R's ratios are printed in both). Then the log-log slope of each stage's seconds over n, each stage projected to n = 1.28 M
(ImageNet's size) on one machine and on k Dask workers (shards divide scoring and ERM-free work by k; selection is
one process), and last `pruning overhead at n=<largest>: (scoring + selection) / ERM = R`. Run it alone: other work
on the cores changes the seconds, not the ratios' meaning.

``--scorers`` (names, or ``all``: every scalar scorer) times each scorer against ERM. ERM then records the parts of
the training trace they read (``dynamics``; ``checkpoints`` for MoSo, one per epoch up to 10), and the time spent in
the recorder's callbacks is printed and taken out of ERM's seconds for every ratio: ERM is the training alone.
``--previous-scoring`` also times last-layer influence by the route before commit 8c86131 (the einsum Hessian, a
Cholesky solve per batch) on the same model, with the current route's parts and the largest difference of S.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import yaml

from dataset_pruning.data import TensorData, load_dataset
from dataset_pruning.scoring import SCORERS, score_samples, scorer_needs, scorer_options, scorer_output
from dataset_pruning.scoring.influence import (BLOCK_BATCHES, damped_inverse, head_gradients, head_hessian,
                                               head_inputs, hessian_factor, influence_rows)
from dataset_pruning.scoring.trace import TraceRecorder
from dataset_pruning.selection.choose import select_for_method
from dataset_pruning.startup import steady_allocator
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
    """Runs ``fn``; record[stage] = (wall seconds, peak MB), record['cpu'][stage] = the process's CPU seconds (all
    threads: on a shared machine they count the work done, the wall seconds also the waiting)."""
    _reset_peak()
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    record[stage] = (time.perf_counter() - start, _peak_mb())
    record.setdefault("cpu", {})[stage] = time.process_time() - cpu
    print(f"  {stage}: {record[stage][0]:.1f} s (CPU {record['cpu'][stage]:.1f} s), peak {record[stage][1]:.0f} MB",
          file=sys.stderr, flush=True)
    return out


def selection_block() -> dict:
    """The pipeline's selection parameters (conf/base): its solver, options and the relaxation bound it reports."""
    return yaml.safe_load((ROOT / "conf/base/parameters_optimization_selection.yml").read_text())["optimization_selection"]


def recipe() -> tuple[dict, TrainingConfig]:
    block = yaml.safe_load((ROOT / "conf/fashion_mnist/parameters_erm_training.yml").read_text())["erm_training"]
    return block["model"], TrainingConfig(**block["training"])


def scalar_scorers(names: list[str]) -> list[str]:
    """``names`` checked against the registry's scalar scorers; ``all`` stands for every one of them."""
    scalar = [name for name in SCORERS if scorer_output(name) == "scalar"]
    chosen = scalar if names == ["all"] else names
    unknown = [name for name in chosen if name not in scalar]
    if unknown:
        raise SystemExit(f"--scorers: {unknown} are not scalar scorers; known: all, {', '.join(scalar)}")
    return chosen


def recorded(scorers: list[str]) -> list[str]:
    """The trace parts ``scorers`` read, which ERM records for them."""
    return sorted({part for name in scorers for part in scorer_needs(name)})


def timed_callbacks(callbacks: dict, spent: dict[str, list[float]]) -> dict:
    """The recorder's callbacks, each adding its [wall, CPU] seconds to ``spent[its name]``."""
    def timed(name, fn):
        def call(*args, **kwargs):
            start, cpu = time.perf_counter(), time.process_time()
            fn(*args, **kwargs)
            total = spent.setdefault(name, [0.0, 0.0])
            total[0] += time.perf_counter() - start
            total[1] += time.process_time() - cpu
        return call
    return {name: timed(name, fn) for name, fn in callbacks.items()}


def previous_influence(model, train: TensorData, weight_decay: float, damping: float = 1e-3,
                       batch_size: int = 1024) -> tuple[torch.Tensor, dict[str, float]]:
    """Last-layer S (n, d) by the route before commit 8c86131: the head Hessian as a (b, C, C) x u x u einsum per
    batch, a Cholesky solve per batch; with the seconds of its parts (the forward pass, the Hessian, the solves)."""
    parts, start = {}, time.perf_counter()
    u, p = head_inputs(model, train, batch_size, "cpu")
    parts["forward"], start = time.perf_counter() - start, time.perf_counter()
    n, a1 = u.shape
    c = p.shape[1]
    hessian = torch.zeros(c * a1, c * a1, dtype=u.dtype)
    for block_start in range(0, n, BLOCK_BATCHES * batch_size):
        block = torch.zeros(c, a1, c, a1, dtype=u.dtype)
        for i in range(block_start, min(block_start + BLOCK_BATCHES * batch_size, n), batch_size):
            pb, ub = p[i : i + batch_size], u[i : i + batch_size]
            block += torch.einsum("ncd,na,nb->cadb", torch.diag_embed(pb) - pb[:, :, None] * pb[:, None, :], ub, ub)
        hessian += block.reshape(c * a1, c * a1)
    factor = hessian_factor(hessian / n, weight_decay + damping)
    parts["hessian"], start = time.perf_counter() - start, time.perf_counter()
    influence = torch.empty(n, c * a1)
    for i in range(0, n, batch_size):
        b = slice(i, i + batch_size)
        influence[b] = (torch.cholesky_solve(head_gradients(u[b], p[b], train.y[b]).T, factor).T / n).float()
    parts["solves"] = time.perf_counter() - start
    return influence, parts


def current_parts(model, train: TensorData, weight_decay: float, damping: float = 1e-3,
                  batch_size: int = 1024) -> dict[str, float]:
    """The seconds of the current route's parts (``last_layer_influence``: forward pass, Hessian and its inverse,
    products), computed the way the scorer composes them."""
    parts, start = {}, time.perf_counter()
    u, p = head_inputs(model, train, batch_size, "cpu")
    parts["forward"], start = time.perf_counter() - start, time.perf_counter()
    inverse = damped_inverse(head_hessian(u, p, batch_size), weight_decay + damping)
    parts["hessian"], start = time.perf_counter() - start, time.perf_counter()
    influence = torch.empty(len(u), inverse.shape[0])
    for i, block in influence_rows(u, p, train.y, inverse, len(u), batch_size):
        influence[i : i + len(block)] = block
    parts["solves"] = time.perf_counter() - start
    return parts


def one_size(n: int, seed: int, retraining: bool, ratio: float, scorers: list[str], previous: bool) -> dict:
    record: dict = {}
    model_block, config = recipe()
    train, test = measure("ingest", record, lambda: load_dataset("fashion_mnist", seed=seed,
                                                                 samples_per_class=n // 10))
    spec = ModelSpec(model_block["name"], train.input_shape, train.num_classes, model_block.get("options") or {})
    model = spec.build(seed=config.seed)
    needs = recorded(scorers)
    recorder = TraceRecorder(model, train, config, spec, dynamics="dynamics" in needs,
                             checkpoints=min(10, config.epochs) if "checkpoints" in needs else 0)
    spent: dict[str, list[float]] = {}
    callbacks = timed_callbacks(recorder.callbacks(), spent) if needs else {}
    measure("erm", record, lambda: fit(model, train, config, progress=False, **callbacks))
    record["recording"] = spent
    trace = recorder.finish()
    S = measure("scoring", record, lambda: score_samples("last_layer_influence", model, train, device="cpu",
                                                         weight_decay=config.weight_decay, progress=False)).values
    if previous:
        record["current_parts"] = current_parts(model, train, config.weight_decay)
        before, record["previous_parts"] = previous_influence(model, train, config.weight_decay)
        record["previous_difference"] = float((before - S).abs().max() / S.abs().max())
        del before
    removed = measure("selection", record, lambda: select_for_method(  # what the selection node runs
        S.numpy(), labels=train.y.numpy(), **{**selection_block(), "ratio": ratio})[0])
    S = None  # not held through retraining
    record["full_accuracy"] = evaluate(model, test)["accuracy"]
    for name in scorers:
        options = {"device": "cpu", "progress": False, "weight_decay": config.weight_decay, "seed": seed}
        options = {key: value for key, value in options.items() if key in scorer_options(name)}
        measure(name, record, lambda: score_samples(name, model, train, trace=trace, **options))
    if retraining:
        keep = np.setdiff1d(np.arange(len(train)), removed)
        fresh = spec.build(seed=config.seed)
        measure("retraining", record, lambda: fit(fresh, train.subset(torch.as_tensor(keep)), config,
                                                  progress=False))
        record["pruned_accuracy"] = evaluate(fresh, test)["accuracy"]
    return record


def fresh_size(n: int, seed: int, *args) -> dict:
    """``one_size`` in the interpreter it runs in, set up as `kedro run` sets up its own (one malloc arena)."""
    steady_allocator()
    torch.manual_seed(seed)
    return one_size(n, seed, *args)


def in_fresh_process(n: int, seed: int, *args) -> dict:
    """One size in a new interpreter, as each `kedro run` is: no heap, caches or threads left by the sizes before
    (in one process the fourth size's scoring took 13.4 s where a fresh process took 11.4 s, and the peaks counted
    the memory the earlier sizes left)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fresh_size, n, seed, *args).result()


def slope(sizes: list[int], seconds: list[float]) -> float:
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[7500, 15000, 30000, 60000])
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-retraining", dest="retraining", action="store_false")
    parser.add_argument("--workers", type=int, default=8, help="k of the Dask projection")
    parser.add_argument("--scorers", nargs="*", default=[],
                        help="scalar scorers timed against ERM, e.g. herding; all: every scalar scorer")
    parser.add_argument("--previous-scoring", action="store_true",
                        help="also time last-layer influence by the route before commit 8c86131")
    args = parser.parse_args()
    scorers = scalar_scorers(args.scorers)
    records = {}
    print(f"{'n':>7} | " + " | ".join(f"{s:>17}" for s in STAGES) + " | accuracy full / pruned")
    for n in args.sizes:
        records[n] = r = in_fresh_process(n, args.seed, args.retraining, args.ratio, scorers, args.previous_scoring)
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
    erm = r["erm"][0] - sum(wall for wall, _ in r["recording"].values())  # the training alone
    erm_cpu = r["cpu"]["erm"] - sum(cpu for _, cpu in r["recording"].values())
    if r["recording"]:
        print(f"trace recording at n={largest} ({', '.join(recorded(scorers))}): "
              + ", ".join(f"{name} {wall:.1f} s (CPU {cpu:.1f} s)" for name, (wall, cpu) in r["recording"].items())
              + f" of ERM's {r['erm'][0]:.1f} s (CPU {r['cpu']['erm']:.1f} s); ERM without it: {erm:.1f} s "
              f"(CPU {erm_cpu:.1f} s), the ERM of the ratios below")
    if "previous_parts" in r:
        now, before = r["current_parts"], r["previous_parts"]
        print(f"last-layer influence at n={largest}, parts (s)  " + "  ".join(f"{k}: {now[k]:.1f} / {before[k]:.1f}"
                                                                          for k in now)
              + f"  total: {sum(now.values()):.1f} / {sum(before.values()):.1f}  (current / before 8c86131); "
              f"S max |diff| / max |S| = {r['previous_difference']:.1e}")
    for name in scorers:
        print(f"{name} at n={largest}: {r[name][0]:.1f} s, {r[name][0] / erm:.3f}x ERM ({erm:.1f} s); "
              f"CPU {r['cpu'][name]:.1f} s, {r['cpu'][name] / erm_cpu:.3f}x ERM's ({erm_cpu:.1f} s); "
              f"peak {r[name][1]:.0f} MB")
    ratio = (r["scoring"][0] + r["selection"][0]) / erm
    print(f"in CPU seconds at n={largest}: scoring {r['cpu']['scoring']:.1f}, selection {r['cpu']['selection']:.1f}, "
          f"ERM {erm_cpu:.1f}: (scoring + selection) / ERM = "
          f"{(r['cpu']['scoring'] + r['cpu']['selection']) / erm_cpu:.3f}")
    print(f"pruning overhead at n={largest}: (scoring + selection) / ERM = {ratio:.3f}")


if __name__ == "__main__":
    main()
