"""Peak memory of a whole `kedro run` against the floor every run pays, both measured in the same invocation.

    python benchmarks/memory.py                          # kedro run --env fashion_mnist (~8 min on 2 cores)
    python benchmarks/memory.py --pipeline=prune         # other arguments go to `kedro run` unchanged

The run and the floor are child processes; each one's maximum resident set comes from ``os.wait4`` (what
`/usr/bin/time -v` prints as "Maximum resident set size"). The floor is a process that imports what `kedro run`
imports (torch, Kedro with the project bootstrapped, MLflow and kedro-mlflow, the pipelines) and nothing more: the
run's peak over it is the memory the stages add. Issue 29's goal, 1.5 GB for the default Fashion-MNIST run, is
printed in both readings of "GB" (2^30 and 10^9 bytes). The run writes its outputs and MLflow run as any run does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = (
    "from dataset_pruning.startup import start; start(); "
    "from kedro.framework.startup import bootstrap_project; bootstrap_project('.'); "
    "import torch, mlflow, kedro_mlflow; "
    "from dataset_pruning.pipeline_registry import register_pipelines; register_pipelines()"
)
GOAL = 1.5


def peak(command: list[str]) -> tuple[int, float]:
    """(maximum resident set in bytes, wall seconds) of ``command`` run to its end from the project root."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: Popen must not wait again
    if child.returncode != 0:
        sys.exit(f"{' '.join(command)} ended with status {child.returncode}: nothing measured")
    return usage.ru_maxrss * 1024, time.perf_counter() - start  # ru_maxrss is in KiB on Linux


def main() -> None:
    arguments = sys.argv[1:] or ["--env", "fashion_mnist"]
    kedro = str(Path(sys.executable).with_name("kedro"))
    floor, _ = peak([sys.executable, "-c", FLOOR])
    run, seconds = peak([kedro, "run", *arguments])
    print(f"floor (the imports of a run, no data): {floor / 2**20:,.0f} MiB")
    print(f"kedro run {' '.join(arguments)}: {run / 2**20:,.0f} MiB max RSS = {run / 2**30:.3f} GiB = "
          f"{run / 1e9:.3f} x 10^9 bytes in {seconds:.0f} s; {run / floor:.2f}x the floor, "
          f"{(run - floor) / 2**20:,.0f} MiB over it")
    print(f"goal {GOAL} GB: {'met' if run <= GOAL * 2**30 else 'missed'} as GiB (2^30 bytes), "
          f"{'met' if run <= GOAL * 1e9 else 'missed'} as 10^9 bytes")


if __name__ == "__main__":
    main()
