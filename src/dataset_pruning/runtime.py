"""Device choice, seeded generators, the finiteness check and releasing a mapped file's pages: the same code on
CUDA and CPU."""

from __future__ import annotations

import contextlib
import ctypes
import math
import mmap
import re
import threading
from typing import Iterator

import numpy as np
import torch

from dataset_pruning.startup import libc_function


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
    them at once, the run's peak; a memory-mapped S is read block by block, each block's pages released after it."""
    isfinite = torch.isfinite if isinstance(values, torch.Tensor) else np.isfinite
    if values.ndim == 0:
        return bool(isfinite(values))
    return all(bool(isfinite(block).all()) for block in row_blocks(values, block_elements))


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


def release_pages(values: np.ndarray | torch.Tensor, start: int = 0, stop: int | None = None) -> bool:
    """Drop rows [start, stop) of a file-mapped array from this process's resident set (whole pages inside those
    rows); they stay in the page cache and are read back if touched again. File-mapped: an array of
    ``np.load(mmap_mode="r")`` (read-only), or a CPU tensor of ``tensor_files.load_tensors`` (a private,
    copy-on-write mapping: released only where this process wrote none of its pages, which would be lost). Anything
    else, a view of such an array, or off Linux: nothing. Returns whether anything was released.

    A pass over a mapped S (0.31 GB at Fashion-MNIST's n = 60,000) or the mapped images (0.19 GB) otherwise keeps
    all of it resident: scoring's feature pass read the images once, and they stayed through its Hessian and
    solves, the default run's peak (docs/scale.md, "Memory")."""
    stop = len(values) if stop is None else min(int(stop), len(values))
    if values.ndim == 0 or stop <= start:
        return False
    if isinstance(values, np.memmap):
        mapping = npy_mapping(values)
        if mapping is None or values.mode != "r" or not values.flags.c_contiguous:
            return False
        origin = values.offset % mmap.ALLOCATIONGRANULARITY  # where row 0 lies in the mapping (np.memmap's rule)
        row_bytes = values.strides[0]

        def advise(low: int, length: int) -> None:
            mapping.madvise(mmap.MADV_DONTNEED, low, length)
    elif isinstance(values, torch.Tensor) and values.device.type == "cpu" and values.is_contiguous():
        origin, row_bytes = values.data_ptr(), values.stride(0) * values.element_size()
        storage = values.untyped_storage()
        if not _unwritten_file_mapping(storage.data_ptr(), storage.data_ptr() + storage.nbytes()):
            return False

        madvise = libc_function("madvise")
        if madvise is None:
            return False

        def advise(low: int, length: int) -> None:
            if madvise(ctypes.c_void_p(low), ctypes.c_size_t(length), mmap.MADV_DONTNEED):
                raise OSError("madvise failed")
    else:
        return False
    page = mmap.PAGESIZE
    low = -(-(origin + start * row_bytes) // page) * page
    high = (origin + stop * row_bytes) // page * page
    if high <= low:
        return False
    try:
        advise(low, high - low)
    except (OSError, ValueError, AttributeError):
        return False
    return True


def npy_mapping(array: np.ndarray) -> mmap.mmap | None:
    """The mapping of an array ``np.load(mmap_mode=...)`` returned (not of a view of it), else None."""
    return array.base if isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) else None


def _unwritten_file_mapping(start: int, end: int) -> bool:
    """Whether bytes [start, end) of this process lie in one private file mapping none of whose pages this process
    wrote (its smaps entry counts no anonymous pages)."""
    try:
        with open("/proc/self/smaps") as smaps:
            found = False
            for line in smaps:
                head = line.split()
                if not head[0].endswith(":"):  # a mapping's first line: range, perms, offset, device, inode, path
                    if found:
                        return True
                    low, high = (int(h, 16) for h in head[0].split("-"))
                    if low <= start < high:
                        if len(head) < 6 or head[4] == "0" or not head[1].endswith("p") or end > high:
                            return False
                        found = True
                elif found and head[0] == "Anonymous:" and int(head[1]) != 0:
                    return False
            return found
    except (OSError, ValueError):
        return False


def row_blocks(values: np.ndarray | torch.Tensor, block_elements: int = 2**20) -> Iterator[np.ndarray | torch.Tensor]:
    """The rows of ``values`` in blocks of about ``block_elements`` elements; the block of an array
    ``np.load(mmap_mode="r")`` mapped leaves the resident set when the next is asked for (``release_pages``), so a
    pass over a mapped S holds one block. (Tensors are left as they are: telling a file-mapped one from another
    reads /proc/self/smaps, too slow per block.)"""
    rows = max(1, block_elements // max(1, math.prod(values.shape[1:])))
    mapped = isinstance(values, np.memmap)
    for i in range(0, len(values), rows):
        yield values[i : i + rows]
        if mapped:
            release_pages(values, i, i + rows)
