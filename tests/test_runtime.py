"""runtime.all_finite: the finiteness check of S and scores (scorers, the stored .npy, the solvers), block by block;
runtime.release_pages: a file-mapped array's or tensor's pages leave the resident set, its values stay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_pruning.runtime import all_finite, release_pages
from dataset_pruning.tensor_files import load_tensors, save_tensors


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (517, 3), (999, 36)])
def test_a_single_bad_value_anywhere_is_found(bad, where):
    a = np.random.default_rng(0).standard_normal((1000, 37)).astype(np.float32)
    assert all_finite(a) and all_finite(torch.from_numpy(a)) and all_finite(a, block_elements=37)
    a[where] = bad
    for values in (a, torch.from_numpy(a), a[:, 0].copy()) if where[1] == 0 else (a, torch.from_numpy(a)):
        assert not all_finite(values) and not all_finite(values, block_elements=37)


def test_scalars_and_empty_arrays():
    assert all_finite(np.float64(1.0)) and all_finite(torch.tensor(2.0)) and all_finite(np.zeros((0, 5)))
    assert not all_finite(np.float32("nan")) and not all_finite(torch.tensor(float("inf")))


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset the peak")
def test_no_full_size_temporary():
    """torch.isfinite of S makes ~1.7x S in temporaries (0.5 GB at Fashion-MNIST's S, the run's peak): the block
    check stays under a quarter of S, whatever the process held before."""
    s = torch.randn(20000, 1290)  # 103 MB

    def rise(check) -> float:
        status = lambda key: int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                                      if line.startswith(key)).split()[1]) / 1024
        Path("/proc/self/clear_refs").write_text("5")
        before = status("VmRSS:")
        assert check(s)
        return status("VmHWM:") - before

    assert rise(all_finite) < 0.25 * s.numel() * 4 / 2**20


def _resident_file_kb() -> int:
    return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("RssFile:"))


LINUX = pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc")


@LINUX
def test_a_mapped_tensor_leaves_the_resident_set_and_keeps_its_values(tmp_path):
    x = torch.arange(8 * 2**20, dtype=torch.float32).reshape(-1, 64)  # 32 MiB
    save_tensors({"x": x, "y": torch.arange(5)}, tmp_path / "t.pt")
    loaded = load_tensors(tmp_path / "t.pt")
    total = float(loaded["x"].sum())  # reads every page
    touched = _resident_file_kb()
    assert release_pages(loaded["x"])
    assert touched - _resident_file_kb() > 30 * 1024  # KiB: nearly all of the 32 MiB
    assert float(loaded["x"].sum()) == total and torch.equal(loaded["x"], x) and loaded["y"].tolist() == [0, 1, 2, 3, 4]


@LINUX
def test_a_mapped_arrays_rows_leave_the_resident_set_and_a_check_keeps_none(tmp_path):
    a = np.random.default_rng(0).standard_normal((8000, 1000)).astype(np.float32)  # 32 MB
    np.save(tmp_path / "s.npy", a)
    mapped = np.load(tmp_path / "s.npy", mmap_mode="r")
    before = _resident_file_kb()
    total = float(mapped.sum(dtype=np.float64))
    assert _resident_file_kb() - before > 24 * 1024
    assert release_pages(mapped, 0, 4000)  # the first half's pages
    assert 12 * 1024 < _resident_file_kb() - before < 20 * 1024
    assert release_pages(mapped) and _resident_file_kb() - before < 4 * 1024
    assert float(mapped.sum(dtype=np.float64)) == total and np.array_equal(mapped, a)
    release_pages(mapped)
    assert all_finite(mapped) and _resident_file_kb() - before < 8 * 1024  # read block by block, each released
    assert not release_pages(a) and not release_pages(mapped[10:])  # not mapped; a view of a mapping


def test_tensors_in_memory_or_written_into_keep_their_pages(tmp_path):
    in_memory = torch.ones(2**20)
    assert not release_pages(in_memory) and float(in_memory.sum()) == 2**20
    save_tensors({"x": torch.zeros(2**20)}, tmp_path / "t.pt")
    loaded = load_tensors(tmp_path / "t.pt")
    loaded["x"][5] = 7.0  # a copy-on-write page: releasing it would lose the write
    assert not release_pages(loaded["x"]) and float(loaded["x"][5]) == 7.0
