"""The sweep's wall time against its retraining floor, measured in the same run.

Runs `kedro run --pipeline=sweep` in a fresh folder (nothing cached), times the whole command (Kedro and MLflow
start-up, data loading, ERM, scoring, selection, MLflow logging all included), and divides by the floor: the sum of
the cells' retraining seconds (from the sweep's own table) over the Dask workers. Goal: <= 1.15.

    python benchmarks/sweep.py                         # the quick preset (about five minutes on 2 cores)
    python benchmarks/sweep.py --preset default        # the default preset (docs/results.md's cells)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--params", default="", help="more --params for the run, e.g. ingest.options.num_samples=600")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        params = (f"data_root={tmp}/data,mlflow_db={tmp}/mlflow.db,sweep.preset={args.preset},"
                  f"sweep.dask.n_workers={args.workers}" + (f",{args.params}" if args.params else ""))
        kedro = str(Path(sys.executable).parent / "kedro")
        start = time.perf_counter()
        done = subprocess.run([kedro, "run", "--pipeline=sweep", "--params", params], cwd=ROOT, capture_output=True,
                              text=True)
        wall = time.perf_counter() - start
        if done.returncode:
            sys.exit(done.stderr[-3000:])
        [table] = list((Path(tmp) / "data/08_reporting/sweep_results.csv").glob("*/sweep_results.csv"))
        cells = pd.read_csv(table)
    computed = cells[cells["computed"]]
    floor = computed["retrain_seconds"].sum() / args.workers
    print(f"preset {args.preset}: {len(cells)} cells ({len(computed)} computed), {args.workers} workers")
    print(f"  wall time of `kedro run --pipeline=sweep`: {wall:.1f} s")
    print(f"  retraining floor (sum of retraining seconds / workers): {floor:.1f} s")
    erm = cells.drop_duplicates(["dataset", "model", "seed"])["erm_seconds"].sum()
    scoring = cells.drop_duplicates(["dataset", "model", "seed", "scorer"])["score_seconds"].sum()
    selection = cells.drop_duplicates(["dataset", "model", "seed", "method", "ratio", "eps_budget"])[
        "selection_seconds"].sum()
    work = computed["retrain_seconds"].sum()
    print(f"  overheads (summed over workers): ERM {erm:.1f} s, scoring {scoring:.1f} s, selection {selection:.1f} s "
          f"= {(erm + scoring + selection) / work:.1%} of the retraining seconds ({work:.1f} s)")
    if "task_seconds" in computed:  # whole tasks: what the workers were busy with, the rest is start-up and idle
        tasks = computed["task_seconds"].sum()
        for kind, keys in (("erm", ["dataset", "model", "seed"]), ("score", ["dataset", "model", "seed", "scorer"]),
                           ("selection", ["dataset", "model", "seed", "method", "ratio", "eps_budget"])):
            tasks += cells.drop_duplicates(keys)[f"{kind}_task_seconds"].sum()
        print(f"  cells outside their retraining (loading, evaluation, saving): "
              f"{(computed['task_seconds'] - computed['retrain_seconds']).sum():.1f} s summed over workers")
        print(f"  workers busy {tasks:.1f} s of {wall * args.workers:.1f} s ({tasks / (wall * args.workers):.1%}); "
              f"busy / workers = {tasks / args.workers:.1f} s")
    print(f"  ratio wall / floor: {wall / floor:.3f} (goal <= 1.15)")


if __name__ == "__main__":
    main()
