"""The bucketed solver on a real Dask LocalCluster (2 workers) agrees with its serial path for a fixed seed."""

from __future__ import annotations

import numpy as np
import pytest

from dataset_pruning.selection import SOLVERS, removal_norm


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as c:
        yield c


def test_dask_path_equals_serial_path(cluster):
    rng = np.random.default_rng(0)
    S = rng.normal(size=(600, 8)) + 0.2
    labels = rng.integers(0, 3, 600)
    quota = np.array([50, 60, 70])
    options = {"seed": 5, "buckets": 4, "refine_s": 60.0}
    dask = SOLVERS.get("bucketed")(scheduler_address=cluster.scheduler_address, **options)
    serial = SOLVERS.get("bucketed")(use_dask=False, **options)
    on_dask = dask.cardinality(S, quota, labels)
    assert np.array_equal(on_dask, serial.cardinality(S, quota, labels))
    assert np.bincount(labels[on_dask], minlength=3).tolist() == quota.tolist()
    # the global refinement never makes the merged bucket solutions worse
    assert removal_norm(S, on_dask) <= dask.merged_objective + 1e-12


def test_local_cluster_started_by_the_solver():
    rng = np.random.default_rng(1)
    S = rng.normal(size=(200, 6))
    solver = SOLVERS.get("bucketed")(buckets=2, n_workers=2, refine_s=30.0)
    removed = solver.cardinality(S, 80)
    assert len(removed) == 80
    assert np.array_equal(removed, SOLVERS.get("bucketed")(buckets=2, use_dask=False, refine_s=30.0).cardinality(S, 80))
