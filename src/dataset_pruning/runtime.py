"""Device choice and seeded generators: the same code on CUDA and CPU."""

from __future__ import annotations

import numpy as np
import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available; use 'auto' or 'cpu'")
    return resolved


def torch_generator(seed: int) -> torch.Generator:
    """A CPU generator: randomness comes in as an argument, never from global seeding."""
    return torch.Generator().manual_seed(int(seed))


def numpy_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(int(seed))
