"""Score extrapolation on MNIST-1D: how close extrapolated scores come to fully computed ones, what pruning with
them costs in test accuracy, and how much scoring time they save; writes a markdown table.

For each scorer and each subset fraction (default 5%, 10%, 20%), with kNN and GNN extrapolation on each of the
``--embeddings`` (the ERM model's features, its logits, the input; ``auto``, the default: all three as candidates,
with ``--k`` and ``--by-class`` candidates, chosen per run by leave-one-out kNN on the scored subset, as the
library does by default):

- Spearman of the extrapolated vs the fully computed scores on the extrapolated samples (vectors: of the norms);
- test accuracy after removing 30 / 50 / 70% of the training set by the score rule (``remove_by_score``: the
  scorer's kept end is kept) with the full scores, the extrapolated scores, and at random, each retrained from the
  same initialisation with the ERM recipe (``fit``) and evaluated on the test set;
- the time ratio full scoring / extrapolated scoring (subset scoring + embedding + regression);
- once per scorer, the Spearman of its full scores with the ERM model's per-sample training loss (a free score).

How each scorer is scored on a subset (scoring/extrapolation/__init__.py says why):
- ``el2n`` (and ``grand``): through ``extrapolate_scores``, its short training runs on the subset only; embeddings
  from the ERM model;
- ``whole_network_influence`` (and ``sgd_influence``): ``extrapolate_scores`` through the ``indices`` option (the
  Hessian stays the full data's; the CG solve is shared, so little is saved); vectors extrapolated as vectors,
  compared and pruned by their norms (keep highest, as influence_norm);
- ``dynamic_uncertainty``, ``forgetting`` (trace-based, their cost is a training run that records the dynamics):
  with ``--trace-setting paper`` (the default, the score extrapolation paper's setting) a model is trained on the
  subset only, recording its dynamics, the subset is scored from that trace and every sample embedded by that
  subset model; the full scores come from the ERM run recording the dynamics on all samples; the times compared
  are those two training runs (plus embedding and regression). ``--trace-setting pipeline`` instead restricts
  the full ERM trace to the subset (what the pipeline does; no time is saved then).

    python benchmarks/extrapolation.py                 # the table of docs/extrapolation.md (tens of minutes)
    python benchmarks/extrapolation.py --device cuda   # the same on a GPU
    python benchmarks/extrapolation.py --methods knn --embeddings features logits   # both embeddings side by side
    python benchmarks/extrapolation.py --k 20 --by-class true --embeddings features # the settings before selection
    python benchmarks/extrapolation.py --scorers whole_network_influence --projection-dim 0   # exact vectors
    python benchmarks/extrapolation.py --quick         # a smoke test on 800 samples (a minute or two)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from dataset_pruning.data import load_dataset
from dataset_pruning.scoring import TraceRecorder, score_samples
from dataset_pruning.scoring.extrapolation import (
    EMBEDDINGS,
    ExtrapolationConfig,
    check_extrapolation,
    choose_subset,
    embed,
    extrapolate,
    extrapolate_scores,
)
from dataset_pruning.selection import remove_by_score
from dataset_pruning.training import ModelSpec, TrainingConfig, evaluate, fit, predict_logits

TRACE_SCORERS = {"dynamic_uncertainty", "forgetting", "tdds", "aum"}


def scalar(values: torch.Tensor) -> np.ndarray:
    """The score the rule ranks: the scalar itself, the norm of an influence vector."""
    values = values.double()
    return (values.norm(dim=1) if values.ndim == 2 else values).numpy()


def _sync(device: str) -> None:
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        torch.cuda.synchronize()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        options = {"num_samples": args.num_samples} if args.num_samples else {}
        self.train, self.test = load_dataset("mnist1d", **options)
        self.spec = ModelSpec("cnn1d", self.train.input_shape, self.train.num_classes)
        self.recipe = TrainingConfig(epochs=args.epochs, device=args.device)
        self.model, self.trace, self.erm_seconds = self.train_with_trace(self.train)
        self.full_accuracy = evaluate(self.model, self.test, device=args.device)["accuracy"]
        logits = predict_logits(self.model, self.train.x, 1024, args.device).double().cpu()  # the free score:
        self.training_loss = torch.nn.functional.cross_entropy(logits, self.train.y, reduction="none").numpy()
        print(f"ERM: n = {len(self.train)}, {args.epochs} epochs, {self.erm_seconds:.1f} s (dynamics recorded), "
              f"test accuracy {self.full_accuracy:.4f}", flush=True)
        self.accuracy_cache: dict[bytes, float] = {}

    def train_with_trace(self, data):
        model = self.spec.build(seed=0)
        recorder = TraceRecorder(model, data, self.recipe, self.spec, dynamics=True)
        _sync(self.args.device)
        start = time.perf_counter()
        fit(model, data, self.recipe, progress=False, **recorder.callbacks())
        _sync(self.args.device)
        return model.eval(), recorder.finish(), time.perf_counter() - start

    def options(self, method: str) -> dict:
        a = self.args
        common = {"device": a.device, "progress": False, "seed": 0}
        extra = {
            "el2n": {"runs": a.el2n_runs, "epochs": a.el2n_epochs},
            "grand": {"runs": a.el2n_runs, "epochs": a.el2n_epochs},
            "whole_network_influence": {"projection_dim": a.projection_dim, "curvature": "gauss_newton",
                                        "damping": 0.01, "cg_steps": a.cg_steps},
            "sgd_influence": {"projection_dim": a.projection_dim},
        }.get(method, {})
        from dataset_pruning.scoring import scorer_options

        return {**{k: v for k, v in common.items() if k in scorer_options(method)}, **extra}

    def full(self, method: str):
        """Fully computed scores and their time (for trace scorers: the recording ERM run + scoring)."""
        _sync(self.args.device)
        start = time.perf_counter()
        scores = score_samples(method, self.model, self.train, trace=self.trace, **self.options(method))
        _sync(self.args.device)
        seconds = time.perf_counter() - start
        if method in TRACE_SCORERS and self.args.trace_setting == "paper":
            seconds += self.erm_seconds
        return scores, seconds

    def extrapolated(self, method: str, fraction: float, config: dict):
        """((extrapolated scores for all samples, info), seconds)."""
        config = check_extrapolation({"fraction": fraction, **config})
        if method in TRACE_SCORERS and self.args.trace_setting == "paper":
            start = time.perf_counter()
            index = choose_subset(self.train.y, fraction, stratified=config.stratified, seed=0)
            part = self.train.subset(index)
            model, trace, _ = self.train_with_trace(part)
            subset = score_samples(method, model, part, trace=trace, **self.options(method))
            embeddings = embed(model, self.train, embedding=list(config.embedding), device=self.args.device)
            values, info = extrapolate(embeddings, self.train.y, self.train.num_classes, index, subset.values,
                                       config, seed=0, device=self.args.device)
            _sync(self.args.device)
            return (values, info), time.perf_counter() - start
        _sync(self.args.device)
        start = time.perf_counter()
        scores = extrapolate_scores(method, self.model, self.train, trace=self.trace, config=config,
                                    options=self.options(method), seed=0, device=self.args.device)
        _sync(self.args.device)
        return (scores.values, scores.info["extrapolation"]), time.perf_counter() - start

    def accuracy_after_removing(self, removed: np.ndarray) -> float:
        key = np.sort(removed).tobytes()
        if key not in self.accuracy_cache:
            keep = np.setdiff1d(np.arange(len(self.train)), removed)
            model = self.spec.build(seed=0)
            fit(model, self.train.subset(torch.as_tensor(keep)), self.recipe, progress=False)
            self.accuracy_cache[key] = evaluate(model, self.test, device=self.args.device)["accuracy"]
        return self.accuracy_cache[key]


def timed(repeats: int, run, *args):
    """``run(*args)`` -> (result, seconds), called ``repeats`` times: (the last result, the median seconds)."""
    results = [run(*args) for _ in range(repeats)]
    return results[-1][0], float(np.median([seconds for _, seconds in results]))


def warm_up(methods: list[str]) -> None:
    """One tiny untimed extrapolation per method: the first call imports scikit-learn / torch-geometric (about half
    a second), which would otherwise be charged to whichever row comes first."""
    g = torch.Generator().manual_seed(0)
    for method in methods:
        extrapolate(torch.randn(20, 4, generator=g), torch.zeros(20, dtype=torch.long), 1, torch.arange(10),
                    torch.rand(10, generator=g), {"fraction": 0.5, "method": method, "k": 3,
                                                   "gnn": {"epochs": 1, "hidden": [4]}}, device="cpu")


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    warm_up(args.methods)
    bench = Bench(args)
    methods = {
        "knn": {"method": "knn", "k": args.k, "by_class": [b == "true" for b in args.by_class]},
        "gnn": {"method": "gnn", "gnn": {"epochs": args.gnn_epochs, "hidden": args.gnn_hidden}},
    }
    candidates = {"auto": list(EMBEDDINGS)}
    methods = {(name, embedding): {**methods[name], "embedding": candidates.get(embedding, embedding)}
               for name in args.methods for embedding in args.embeddings}
    rng = np.random.default_rng(0)
    n = len(bench.train)
    random_accuracy = {r: bench.accuracy_after_removing(np.sort(rng.choice(n, round(r * n), replace=False)))
                       for r in args.ratios}
    rows, loss_rhos = [], {}
    for method in args.scorers:
        full, full_seconds = timed(args.repeats, bench.full, method)
        keep = full.keep or "highest"
        full_scalar = scalar(full.values)
        full_accuracy = {r: bench.accuracy_after_removing(remove_by_score(full_scalar, keep, r)) for r in args.ratios}
        loss_rho = spearmanr(full_scalar, bench.training_loss).statistic
        loss_rhos[method] = loss_rho
        print(f"{method}: full scoring {full_seconds:.1f} s (Spearman with the ERM model's training loss "
              f"{loss_rho:+.3f}); accuracy after removing "
              + ", ".join(f"{r:.0%}: {a:.4f}" for r, a in full_accuracy.items()), flush=True)
        for fraction in args.fractions:
            for (name, embedding), config in methods.items():
                (values, info), seconds = timed(args.repeats, bench.extrapolated, method, fraction, config)
                extrapolated = scalar(values)
                index = choose_subset(bench.train.y, fraction, seed=0).numpy()
                others = np.setdiff1d(np.arange(n), index)
                rho = spearmanr(extrapolated[others], full_scalar[others]).statistic
                rho_all = spearmanr(extrapolated, full_scalar).statistic
                accuracy = {r: bench.accuracy_after_removing(remove_by_score(extrapolated, keep, r))
                            for r in args.ratios}
                row = {
                    "scorer": method, "fraction": fraction, "method": name, "embedding": chosen(embedding, info),
                    "spearman": rho, "spearman_all": rho_all,
                    "holdout_spearman": info.get("holdout_spearman"), "full_seconds": full_seconds,
                    "seconds": seconds, "accuracy": accuracy, "full_accuracy": full_accuracy,
                }
                rows.append(row)
                print(f"  {fraction * 100:g}% {name} on {chosen(embedding, info)}: Spearman {rho:+.3f} "
                      f"(all samples {rho_all:+.3f}, "
                      f"held-out estimate {_fmt(info.get('holdout_spearman'))}), {seconds:.1f} s = "
                      f"{full_seconds / seconds:.1f}x faster; "
                      + ", ".join(f"{r:.0%}: {a:.4f}" for r, a in accuracy.items()), flush=True)
    table = markdown(rows, random_accuracy, loss_rhos, bench, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print("\n" + table)
    print(f"written to {out}")


def chosen(embedding: str, info: dict) -> str:
    """The row's embedding; with candidates, the one leave-one-out chose (and its k and neighbourhood)."""
    if "selection" not in info:
        return embedding
    knn = f", k {info['k']}, {'same class' if info['by_class'] else 'all classes'}" if "k" in info else ""
    return f"{embedding}: {info['embedding']}{knn}"


def _fmt(value, spec: str = "+.3f") -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, spec)


def markdown(rows, random_accuracy, loss_rhos, bench, args) -> str:
    ratios = args.ratios
    projection = f"projected to {args.projection_dim}" if args.projection_dim else "unprojected"
    head = ["scorer", "fraction", "extrapolation", "embedding", "Spearman (extrapolated samples)", "Spearman (all)",
            "held-out estimate", "time full / extrapolated"]
    head += [f"acc. -{r:.0%} extrap. (full)" for r in ratios]
    lines = [
        f"MNIST-1D, n = {len(bench.train)}, cnn1d, {args.epochs} epochs; ERM test accuracy {bench.full_accuracy:.4f}; "
        f"random removal: " + ", ".join(f"-{r:.0%}: {a:.4f}" for r, a in random_accuracy.items())
        + f"; trace scorers in the '{args.trace_setting}' setting"
        + (f"; kNN k in {args.k}, same class in {args.by_class}" if "knn" in args.methods else "")
        + (f"; whole-network influence {projection}" if "whole_network_influence" in args.scorers else "") + ".",
        "Spearman of the fully computed scores with the ERM model's training loss: "
        + ", ".join(f"{m} {_fmt(r)}" for m, r in loss_rhos.items()) + ".",
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join(["---"] * 4 + ["---:"] * (len(head) - 4)) + " |",
    ]
    for row in rows:
        cells = [row["scorer"], f"{row['fraction'] * 100:g}%", row["method"], row["embedding"], _fmt(row["spearman"]),
                 _fmt(row["spearman_all"]), _fmt(row["holdout_spearman"]),
                 f"{row['full_seconds'] / row['seconds']:.1f}x ({row['full_seconds']:.1f} s / {row['seconds']:.1f} s)"]
        cells += [f"{row['accuracy'][r]:.4f} ({row['full_accuracy'][r]:.4f})" for r in ratios]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scorers", nargs="+",
                        default=["el2n", "dynamic_uncertainty", "forgetting", "whole_network_influence"])
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.05, 0.1, 0.2])
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.3, 0.5, 0.7])
    parser.add_argument("--methods", nargs="+", default=["knn", "gnn"], choices=["knn", "gnn"])
    parser.add_argument("--trace-setting", choices=["paper", "pipeline"], default="paper")
    parser.add_argument("--epochs", type=int, default=60, help="ERM (and retraining) epochs")
    parser.add_argument("--num-samples", type=int, default=None, help="MNIST-1D size (default: the loader's 5,000)")
    parser.add_argument("--el2n-runs", type=int, default=10)
    parser.add_argument("--el2n-epochs", type=int, default=6)
    parser.add_argument("--projection-dim", type=int, default=64,
                        help="whole-network / SGD influence projection; 0: none (exact vectors, one solve per sample)")
    parser.add_argument("--cg-steps", type=int, default=100)
    defaults = ExtrapolationConfig()
    parser.add_argument("--k", nargs="+", type=int, default=list(defaults.k),
                        help="extrapolation.k: one value, or candidates chosen by leave-one-out (the library's)")
    parser.add_argument("--by-class", nargs="+", choices=["true", "false"],
                        default=[str(b).lower() for b in defaults.by_class], help="extrapolation.by_class candidates")
    parser.add_argument("--embeddings", nargs="+", choices=[*EMBEDDINGS, "auto"], default=["auto"],
                        help="extrapolation.embedding, each its own rows; auto: all of them as candidates, "
                             "leave-one-out on the scored subset picks one per run (the library's default)")
    parser.add_argument("--gnn-epochs", type=int, default=35)
    parser.add_argument("--gnn-hidden", nargs="+", type=int, default=[512, 256])
    parser.add_argument("--repeats", type=int, default=1,
                        help="time each full and each extrapolated scoring this many times; the median is reported")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="data/08_reporting/extrapolation_benchmark.md")
    parser.add_argument("--quick", action="store_true", help="smoke test: 800 samples, 4 epochs, one fraction")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.num_samples, arguments.epochs, arguments.fractions, arguments.ratios = 800, 4, [0.2], [0.5]
        arguments.el2n_runs, arguments.el2n_epochs, arguments.projection_dim, arguments.cg_steps = 2, 1, 8, 30
        arguments.gnn_epochs, arguments.gnn_hidden = 5, [32]
        arguments.out = "data/08_reporting/extrapolation_benchmark_quick.md"
    arguments.projection_dim = arguments.projection_dim or None
    main(arguments)
