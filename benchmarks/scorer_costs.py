"""Seconds each scorer takes beyond ERM on MNIST-1D's cnn1d (the default recipe, one torch thread), against the
ERM training itself in the same run: what a sweep preset costs per seed. Used to choose docs/experiments.md's
default methods.

    python benchmarks/scorer_costs.py                       # every scorer
    python benchmarks/scorer_costs.py el2n moso             # some
"""

from __future__ import annotations

import argparse
import time

import torch

from dataset_pruning.data import load_dataset
from dataset_pruning.scoring import SCORERS, TraceRecorder, score_samples, scorer_options
from dataset_pruning.training import ModelSpec, TrainingConfig, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scorers", nargs="*", default=[n for n in SCORERS if n != "last_layer_influence"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, _ = load_dataset("mnist1d")
    spec = ModelSpec("cnn1d", train.input_shape, train.num_classes)
    model, recipe = spec.build(seed=0), TrainingConfig()
    recorder = TraceRecorder(model, train, recipe, spec, steps="sgd_influence" in args.scorers, checkpoints=10,
                             dynamics=True)
    start = time.perf_counter()
    fit(model, train, recipe, progress=False, **recorder.callbacks())
    erm = time.perf_counter() - start
    trace = recorder.finish()
    print(f"ERM (60 epochs, with the trace): {erm:.1f} s")
    for name in args.scorers:
        options = {k: v for k, v in {"seed": 0, "progress": False}.items() if k in scorer_options(name)}
        start = time.perf_counter()
        score_samples(name, model, train, trace=trace, **options)
        seconds = time.perf_counter() - start
        print(f"{name:>24}: {seconds:7.1f} s  ({seconds / erm:.2f} x ERM)", flush=True)


if __name__ == "__main__":
    main()
