"""What runs as ``kedro`` starts (startup.py): the kedro.init entry point, and the allocator it steadies."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from dataset_pruning import startup


def test_kedro_runs_start_on_start():
    (entry,) = [e for e in entry_points(group="kedro.init") if e.value.startswith("dataset_pruning")]
    assert entry.load() is startup.start


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_steady_allocator_is_taken_by_glibc():
    """mallopt accepts the setting in a fresh process (it answers 0 to a parameter it refuses). Its effect on
    memory depends on the machine: on the development machine a list-keeping feature pass over 20,000 images rose by
    262 MB with it against 495-544 MB without, and a fresh clone's suite saw 222 MB both ways (docs/scale.md)."""
    out = subprocess.run([sys.executable, "-c", "from dataset_pruning.startup import steady_allocator as s; print(s())"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "True"


FREED_HEAP = """
import numpy as np
from dataset_pruning.startup import return_free_memory
def anonymous_kb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon:"))
blocks = [np.ones(12_000) for _ in range(2_000)]  # 96 KB each: from the heap, 190 MB
kept = blocks[::50]  # a few live blocks pin the heap's top
del blocks
before = anonymous_kb()
print(return_free_memory(), before - anonymous_kb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_free_heap_memory_goes_back_to_the_system():
    """Freed blocks below a live one stay resident until ``return_free_memory`` (run before every node)."""
    out = subprocess.run([sys.executable, "-c", FREED_HEAP], capture_output=True, text=True, check=True).stdout.split()
    assert out[-2] == "True" and int(out[-1]) > 100_000  # KB handed back
