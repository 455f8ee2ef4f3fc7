"""runtime.all_finite: the finiteness check of S and scores (scorers, the stored .npy, the solvers), block by block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_pruning.runtime import all_finite


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
