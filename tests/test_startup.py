"""What runs as ``kedro`` starts (startup.py): the kedro.init entry point, and the allocator it steadies."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from dataset_pruning import startup

# A process frees a 20 MB tensor (glibc then raises its mmap threshold to 20 MB), then holds and frees 300 MB of
# 5 MB tensors, each followed by a small one that stays: it prints how many MB stay resident.
FRAGMENTING = """
import sys
from pathlib import Path
import torch
from dataset_pruning.startup import steady_allocator
if sys.argv[1] == "steady":
    assert steady_allocator()
def rss():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS"))
    return int(line.split()[1]) / 1024
big = torch.ones(5 * 2**20); del big
base = rss()
pinned, blocks = [], []
for _ in range(60):
    blocks.append(torch.ones(5 * 2**20 // 4)); pinned.append(torch.ones(1000))
del blocks
print(round(rss() - base))
"""


def test_kedro_runs_start_on_start():
    (entry,) = [e for e in entry_points(group="kedro.init") if e.value.startswith("dataset_pruning")]
    assert entry.load() is startup.start


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, /proc")
def test_steady_allocator_returns_freed_tensors():
    resident = {mode: int(subprocess.run([sys.executable, "-c", FRAGMENTING, mode], capture_output=True, text=True,
                                         check=True).stdout.split()[-1])
                for mode in ("default", "steady")}
    assert resident["default"] > 200  # glibc's adjusting threshold keeps the freed blocks (the case it fixes)
    assert resident["steady"] < 50
