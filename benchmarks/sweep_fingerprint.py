"""What a sweep preset computes, as a JSON file to compare before and after a refactor.

Runs `kedro run --pipeline=sweep` on a preset in a fresh folder (nothing cached) and writes, per cell (its name and
cache key), the sha256 of its sorted removed indices and its figures (accuracies, losses, eps, counts, the
accuracy curve's epochs and accuracies; seconds left out). ``--source`` runs another checkout's code (e.g. a git
worktree of an older commit) with this virtualenv: its ``src`` goes first on PYTHONPATH, and the script says which
package ran.

    python benchmarks/sweep_fingerprint.py --preset quick --out before.json --source /tmp/before
    python benchmarks/sweep_fingerprint.py --preset quick --out after.json
    python benchmarks/sweep_fingerprint.py --compare before.json after.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT = ("computed", "cell_key", "cell", "preset")


def removed_hash(path: Path) -> tuple[str, int]:
    removed = np.sort(np.load(path, allow_pickle=False).astype(np.int64))
    return hashlib.sha256(removed.tobytes()).hexdigest(), len(removed)


def figures(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        if key in LEFT_OUT or "seconds" in key:
            continue
        if key in ("accuracy_curve", "full_accuracy_curve"):  # [epoch, seconds, accuracy]: seconds left out
            value = [[point[0], point[2]] for point in json.loads(value)] if isinstance(value, str) else value
        elif isinstance(value, float) and np.isnan(value):
            value = None
        out[key] = value
    return out


def fingerprint(preset: str, source: Path, workers: int, params: str, folder: Path | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source / "src")}
    package = subprocess.run([sys.executable, "-c", "import dataset_pruning; print(dataset_pruning.__file__)"],
                             env=env, cwd=source, capture_output=True, text=True, check=True).stdout.strip()
    print(f"code: {package}", file=sys.stderr)
    if not Path(package).resolve().is_relative_to((source / "src").resolve()):
        sys.exit(f"{package} is not under {source / 'src'}")
    with (contextlib.nullcontext(str(folder)) if folder else tempfile.TemporaryDirectory()) as tmp:
        extra = (f"data_root={tmp}/data,mlflow_db={tmp}/mlflow.db,sweep.preset={preset},"
                 f"sweep.dask.n_workers={workers}" + (f",{params}" if params else ""))
        start = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).parent / "kedro"), "run", "--pipeline=sweep", "--params",
                               extra], cwd=source, env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(done.stderr[-3000:])
        print(f"preset {preset}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
        [table] = list((Path(tmp) / "data/08_reporting/sweep_results.csv").glob("*/sweep_results.csv"))
        cells = {}
        for row in pd.read_csv(table).to_dict("records"):
            digest, count = removed_hash(Path(tmp) / "data/09_sweep/cells" / row["cell_key"] / "removed.npy")
            cells[row["cell"]] = {"cell_key": row["cell_key"], "removed_sha256": digest, "removed_count": count,
                                  "figures": figures(row)}
    return {"preset": preset, "package": package, "cells": cells}


def compare(before: dict, after: dict) -> int:
    """Print every difference; the number of cells that differ."""
    differ = 0
    for name in sorted(set(before["cells"]) | set(after["cells"])):
        old, new = before["cells"].get(name), after["cells"].get(name)
        if old is None or new is None:
            print(f"{name}: only {'after' if old is None else 'before'}")
            differ += 1
            continue
        lines = [f"  {key}: {old.get(key)!r} -> {new.get(key)!r}" for key in ("cell_key", "removed_sha256")
                 if old.get(key) != new.get(key)]
        lines += [f"  {key}: {old['figures'].get(key)!r} -> {new['figures'].get(key)!r}"
                  for key in sorted(set(old["figures"]) | set(new["figures"]))
                  if old["figures"].get(key) != new["figures"].get(key)]
        if lines:
            differ += 1
            print(f"{name}:\n" + "\n".join(lines))
    print(f"{len(before['cells'])} cells before, {len(after['cells'])} after: {differ} differ")
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--source", type=Path, default=ROOT, help="the checkout whose code runs (default: this one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--params", default="", help="more --params for the run")
    parser.add_argument("--folder", type=Path, help="run in this folder and keep it (a rerun resumes from its cache); "
                        "default: a fresh temporary one")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        sys.exit(1 if compare(*(json.loads(path.read_text()) for path in args.compare)) else 0)
    if args.folder:
        args.folder.mkdir(parents=True, exist_ok=True)
    result = fingerprint(args.preset, args.source.resolve(), args.workers, args.params,
                         args.folder.resolve() if args.folder else None)
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
