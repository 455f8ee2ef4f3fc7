"""Device choice, seeded generators and the finiteness check: the same code on CUDA and CPU."""

from __future__ import annotations

import contextlib
import math
import re
import threading
from typing import Iterator

import numpy as np
import torch


DEVICE_FORMS = "auto, cpu, cuda or cuda:<index>"


def check_device(device: str) -> str:
    """``device`` if it is one of ``DEVICE_FORMS`` and present on this machine, else a ``ValueError`` saying
    what to write instead (parameter validation calls it, so a bad device stops a run before training)."""
    match = re.fullmatch(r"cuda(?::(\d+))?", str(device))
    if device in ("auto", "cpu"):
        return device
    if match is None:
        raise ValueError(f"device {device!r} is not one of {DEVICE_FORMS}")
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available on this machine; use auto or cpu")
    count = torch.cuda.device_count()
    if match.group(1) is not None and int(match.group(1)) >= count:
        raise ValueError(f"device {device!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return device


def all_finite(values: np.ndarray | torch.Tensor, block_elements: int = 2**20) -> bool:
    """Whether an ndarray or tensor (on any device) holds no NaN or infinity, checked in blocks of rows so that no
    full-size temporary exists: ``torch.isfinite`` of Fashion-MNIST's S (60,000 x 1,290) made about 0.5 GB of
    them at once, the run's peak; a memory-mapped S is read block by block."""
    isfinite = torch.isfinite if isinstance(values, torch.Tensor) else np.isfinite
    if values.ndim == 0:
        return bool(isfinite(values))
    rows = max(1, block_elements // max(1, math.prod(values.shape[1:])))
    return all(bool(isfinite(values[i : i + rows]).all()) for i in range(0, len(values), rows))


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cpu``, ``cuda`` and ``cuda:<k>`` as checked by
    ``check_device``."""
    if check_device(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


_GLOBAL_SEED_LOCK = threading.RLock()


@contextlib.contextmanager
def seeded_global_rng(seed: int, devices: list | None = None) -> Iterator[None]:
    """torch's global generator seeded with ``seed`` inside the block and restored after it, one thread at a time:
    layer initialisers draw from the global generator, and two threads (Dask thread workers) seeding it at once
    would interleave their draws."""
    with _GLOBAL_SEED_LOCK, torch.random.fork_rng(devices=devices or []):
        torch.manual_seed(int(seed))
        yield


def torch_generator(seed: int) -> torch.Generator:
    """A CPU generator: randomness comes in as an argument, never from global seeding."""
    return torch.Generator().manual_seed(int(seed))


def numpy_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(int(seed))


@contextlib.contextmanager
def limit_threads(threads: int) -> Iterator[None]:
    """Run the block on ``threads`` torch intra-op threads and as many BLAS threads (numpy's OpenBLAS / MKL, via
    threadpoolctl): 1 per Dask worker, so serial and Dask give the same numbers (a 2-thread BLAS sums products in
    another order, and the Eq. 4 solvers can then take another swap)."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with threadpool_limits(limits=int(threads), user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def dask_client(address: str | None, n_workers: int):
    """A ``dask.distributed`` client: of the scheduler at ``address``, or of a ``LocalCluster`` of ``n_workers``
    single-threaded worker processes started here and closed on exit."""
    from dask.distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if address:
            yield stack.enter_context(Client(address))
            return
        if n_workers < 1:
            raise ValueError(f"dask.n_workers must be >= 1, got {n_workers}")
        cluster = stack.enter_context(
            LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0")
        )
        yield stack.enter_context(Client(cluster))
