"""The feature pass in channels-last layout against the contiguous one, alternated in one run, on a trained model.

Times `influence.head_inputs` (last-layer influence's pass) and the training trace's clean-view pass
(`TraceRecorder.on_epoch_end` with dynamics) over the training set of the newest `erm_model` / `train_set` versions
under data/ (run `kedro run --env fashion_mnist` first: cnn2d on Fashion-MNIST's 60,000 images), each with the layout
`models.base.feature_batches` uses (channels-last for images) and with the layout forced contiguous (the code before
b0f56c6). Prints seconds per pass, the ratio and the largest difference of the outputs.

    python benchmarks/feature_pass.py [--repeats 2] [--rows 60000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dataset_pruning.scoring.influence import head_inputs  # noqa: E402
from dataset_pruning.scoring.trace import TraceRecorder  # noqa: E402
from dataset_pruning.tensor_files import load_tensors  # noqa: E402
from dataset_pruning.training import TrainingConfig, load_model  # noqa: E402

CHANNELS_LAST = torch.channels_last


def newest(name: str) -> Path:
    folder = ROOT / "data" / ("06_models" if name == "erm_model" else "02_intermediate") / f"{name}.pt"
    versions = sorted(folder.iterdir()) if folder.is_dir() else []
    if not versions:
        raise SystemExit(f"no {folder} versions: run `kedro run --env fashion_mnist` first")
    return versions[-1] / f"{name}.pt"


def timed(layout: str, run) -> tuple[float, torch.Tensor]:
    """``run()`` with ``feature_batches``' image layout set to ``layout`` (it reads ``torch.channels_last``)."""
    torch.channels_last = CHANNELS_LAST if layout == "channels_last" else torch.contiguous_format
    try:
        start = time.perf_counter()
        out = run()
        return time.perf_counter() - start, out
    finally:
        torch.channels_last = CHANNELS_LAST


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rows", type=int, default=60000)
    args = parser.parse_args()
    model = load_model(load_tensors(newest("erm_model")))
    train = load_tensors(newest("train_set"))
    train = train.subset(torch.arange(min(args.rows, len(train))))
    recorder = TraceRecorder(model, train, TrainingConfig(epochs=1, device="cpu"), {}, dynamics=True)

    def clean_view() -> torch.Tensor:
        recorder.on_epoch_end(0, model)
        return recorder.true_probability[0].clone()

    passes = {"head_inputs": lambda: head_inputs(model, train, device="cpu")[0], "clean view": clean_view}
    print(f"{len(train)} samples of {train.name}, torch threads {torch.get_num_threads()}")
    for name, run in passes.items():
        seconds: dict[str, list[float]] = {"channels_last": [], "contiguous": []}
        outputs = {}
        for _ in range(args.repeats):
            for layout in seconds:
                s, outputs[layout] = timed(layout, run)
                seconds[layout].append(s)
        ratio = sum(seconds["contiguous"]) / sum(seconds["channels_last"])
        diff = float((outputs["channels_last"] - outputs["contiguous"]).abs().max())
        print(f"{name}: channels-last {[round(s, 1) for s in seconds['channels_last']]} s, contiguous "
              f"{[round(s, 1) for s in seconds['contiguous']]} s: {ratio:.2f}x; largest difference {diff:.1e}")


if __name__ == "__main__":
    main()
