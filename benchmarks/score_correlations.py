"""Spearman rank correlations between every scoring method's per-sample scores on MNIST-1D.

One ERM run of the default recipe (conf/base/parameters_erm_training.yml: the 1-D CNN, 60 epochs, SGD momentum 0.9,
weight decay 5e-4, cosine lr 0.1, batch 128) records the full training trace (every step, 10 checkpoints, the
dynamics); then every method in SCORERS scores the 4,000 training samples. Vector methods enter the table as the
norm of their per-sample vector ||S_i|| (for last_layer_influence that is influence_norm). Prints the markdown
table recorded in docs/scoring.md, with each method's kept end and time.

    python benchmarks/score_correlations.py                 # CPU: tens of minutes on 2 cores
    python benchmarks/score_correlations.py --device cuda   # minutes on one GPU
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import spearmanr

from dataset_pruning.data import load_dataset
from dataset_pruning.scoring import SCORERS, TraceRecorder, score_samples, scorer_options, scorer_output
from dataset_pruning.training import ModelSpec, TrainingConfig, evaluate, fit

# Per-method settings: the defaults of parameters_influence_scoring.yml's documentation, sized for MNIST-1D.
OPTIONS = {
    "el2n": {"runs": 10, "epochs": 6},
    "grand": {"runs": 10, "epochs": 6},
    "whole_network_influence": {"projection_dim": 64, "damping": 0.01, "curvature": "gauss_newton", "cg_steps": 100},
    "sgd_influence": {"projection_dim": 16},
    "dynamic_uncertainty": {"window": 10},
    "tdds": {"window": 10, "epochs": 30},
}
SHORT = {
    "last_layer_influence": "LL-inf",
    "whole_network_influence": "WN-inf",
    "sgd_influence": "SGD-inf",
    "influence_norm": "inf-norm",
    "dynamic_uncertainty": "dyn-unc",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train, test = load_dataset("mnist1d", root="data/01_raw", seed=42)
    spec = ModelSpec("cnn1d", train.input_shape, train.num_classes)
    recipe = TrainingConfig(
        epochs=args.epochs, lr=0.1, momentum=0.9, weight_decay=5e-4, seed=args.seed, device=args.device, amp=False
    )  # amp off: SGD-Influence replays the steps in float32
    model = spec.build(seed=args.seed)
    recorder = TraceRecorder(model, train, recipe, spec, steps=True, checkpoints=10, dynamics=True)
    start = time.perf_counter()
    fit(model, train, recipe, desc="ERM (traced)", **recorder.callbacks())
    trace = recorder.finish()
    accuracy = evaluate(model, test, device=args.device)["accuracy"]
    print(f"ERM: {args.epochs} epochs in {time.perf_counter() - start:.1f} s, test accuracy {accuracy:.3f}, "
          f"device {next(model.parameters()).device}, n = {len(train)}")

    columns, rows = {}, []
    for method in SCORERS.names():
        common = {"device": args.device, "seed": args.seed, "progress": False, "weight_decay": recipe.weight_decay}
        options = {**{k: v for k, v in common.items() if k in scorer_options(method)}, **OPTIONS.get(method, {})}
        start = time.perf_counter()
        scores = score_samples(method, model, train, trace=trace, **options)
        seconds = time.perf_counter() - start
        values = scores.values.double()
        if scorer_output(method) == "vector":
            values, keep = values.norm(dim=1), "(vectors: ||S_i||)"
        else:
            keep = scores.keep
        columns[SHORT.get(method, method)] = values.numpy()
        rows.append((method, keep, seconds))

    print("\n| method | kept end | time (s) |\n| --- | --- | ---: |")
    for method, keep, seconds in rows:
        print(f"| {method} | {keep} | {seconds:.1f} |")
    names = list(columns)
    rho = spearmanr(np.column_stack([columns[n] for n in names])).statistic
    print("\nSpearman rank correlation between methods' per-sample scores (MNIST-1D train, n = 4000)\n")
    print("| | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for i, name in enumerate(names):
        print(f"| {name} | " + " | ".join(f"{rho[i, j]:+.2f}" for j in range(len(names))) + " |")


if __name__ == "__main__":
    main()
