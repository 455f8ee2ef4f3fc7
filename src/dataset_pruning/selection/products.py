"""Products with the influence matrix S (n, d) that the solvers and bounds share: S is checked once
(``check_influence``: float32 stays float32, NaN refused), products run in S's dtype and come back in float64, and
``exact_matvec`` gives float64 products block by block for certificates."""

from __future__ import annotations

import numpy as np

from dataset_pruning.runtime import all_finite


def check_influence(influence: np.ndarray) -> np.ndarray:
    """float32 stays float32 (half the memory traffic), anything else becomes float64; NaN is refused."""
    influence = np.asarray(influence)
    if influence.dtype != np.float32:
        influence = influence.astype(np.float64)
    if influence.ndim != 2:
        raise ValueError(f"influence must have shape (n_samples, d), got {influence.shape}")
    if not all_finite(influence):
        raise FloatingPointError("influence contains NaN or infinite values; rescore with a larger damping")
    return influence


def row_squares(influence: np.ndarray) -> np.ndarray:
    """||S_i||^2 of shape (n,), float64."""
    return np.einsum("ij,ij->i", influence, influence, dtype=np.float64)


def exact_matvec(influence: np.ndarray, vector: np.ndarray, chunk_rows: int = 2048) -> np.ndarray:
    """S @ v in float64, block of rows by block, of shape (n,): exact products for a certificate without a float64
    copy of a float32 S (a block of 2,048 rows is 21 MB at d = 1,290; 8,192 rows, 85 MB, were the selection
    stage's peak in the default Fashion-MNIST run)."""
    vector = np.asarray(vector, dtype=np.float64)
    blocks = [np.asarray(influence[i : i + chunk_rows], dtype=np.float64) @ vector
              for i in range(0, len(influence), chunk_rows)]
    return np.concatenate(blocks) if blocks else np.zeros(0)


def matvec(influence: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """S @ v in S's dtype, returned as float64 of shape (n,)."""
    return (influence @ vector.astype(influence.dtype, copy=False)).astype(np.float64, copy=False)


def rmatvec(influence: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """S^T w in S's dtype, returned as float64 of shape (d,)."""
    return (np.asarray(weights).astype(influence.dtype, copy=False) @ influence).astype(np.float64, copy=False)
