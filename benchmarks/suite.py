"""The test suite's wall time against another commit's, measured alternately in the same invocation.

    python benchmarks/suite.py                   # against 7295c27 (the code when issue 25 was filed), 2 rounds
    python benchmarks/suite.py --base REV --rounds 3

The older commit runs from a git worktree with this virtualenv (its ``src`` first on PYTHONPATH) and its own
pytest settings; rounds alternate base and this checkout so that a slower stretch of the machine falls on both.
Prints each run's seconds and test count, then the ratio of the means (this / base). Nothing else should run
meanwhile: the suite uses every core.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_suite(checkout: Path, src_first: bool) -> tuple[float, str]:
    env = {**os.environ, **({"PYTHONPATH": str(checkout / "src")} if src_first else {})}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=checkout, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    if done.returncode:
        sys.exit(f"{checkout}: the suite failed: {summary}")
    return seconds, re.sub(r"=+", "", summary).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="7295c27", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True)
        try:
            times = {"base": [], "this": []}
            for round_ in range(1, args.rounds + 1):
                for name, checkout in (("base", base), ("this", ROOT)):
                    seconds, summary = run_suite(checkout, src_first=name == "base")
                    times[name].append(seconds)
                    print(f"round {round_} {name}: {seconds:.1f} s ({summary})", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    base_mean, this_mean = statistics.mean(times["base"]), statistics.mean(times["this"])
    print(f"mean: base {args.base} {base_mean:.1f} s, this checkout {this_mean:.1f} s; "
          f"ratio this / base = {this_mean / base_mean:.3f}")


if __name__ == "__main__":
    main()
