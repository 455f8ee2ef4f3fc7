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
