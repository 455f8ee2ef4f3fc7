"""Shared pieces of the image data sets: decoding files, per-channel normalisation, per-class limits."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from dataset_pruning.runtime import numpy_rng

# (path, class index) pairs, as torchvision's ImageFolder lists them.
Samples = list[tuple[Path, int]]


def normalize_channels(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 pixels of shape (n, C, H, W) -> float32 (pixels / 255 - mean) / std, per channel."""
    x = torch.from_numpy(np.ascontiguousarray(pixels)).to(torch.float32).div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(mean_t).div_(std_t)


def to_unit_range(pixels: np.ndarray) -> torch.Tensor:
    """uint8 pixels of shape (n, C, H, W) -> float32 in [0, 1] (``normalize: false``)."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).to(torch.float32).div_(255.0)


def channel_stats(pixels: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units of uint8 pixels (n, C, H, W), accumulated in float64 by chunks."""
    total = np.zeros(pixels.shape[1])
    squares = np.zeros(pixels.shape[1])
    for start in range(0, len(pixels), chunk):
        block = pixels[start : start + chunk].astype(np.float64) / 255.0
        total += block.sum(axis=(0, 2, 3))
        squares += (block**2).sum(axis=(0, 2, 3))
    count = pixels.shape[0] * pixels.shape[2] * pixels.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    if np.any(std == 0):
        raise ValueError(
            f"a colour channel is constant over the whole training split (std {std.tolist()}); it cannot be "
            f"normalised: check the images, or set options.normalize: false"
        )
    return mean.tolist(), std.tolist()


def _decode(path: Path, image_size: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")  # TinyImageNet has grayscale JPEGs among the colour ones
            if image_size is not None and rgb.size != (image_size, image_size):
                rgb = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read image {path}: {error}; replace or delete the file") from error


def read_images(paths: Sequence[Path], image_size: int | None, workers: int | None = None) -> np.ndarray:
    """Decode image files to uint8 pixels of shape (n, 3, H, W), RGB.

    ``image_size`` resizes every image to a square (bilinear); ``None`` keeps the files' size, which must then
    be the same for all.
    """
    if image_size is not None and image_size < 1:
        raise ValueError(f"image_size must be a positive integer or null (keep the files' size), got {image_size}")
    if not paths:
        return np.zeros((0, 3, image_size or 1, image_size or 1), dtype=np.uint8)
    first = _decode(paths[0], image_size)
    out = np.empty((len(paths), *first.shape), dtype=np.uint8)
    out[0] = first

    def fill(index: int) -> None:
        pixels = _decode(paths[index], image_size)
        if pixels.shape != first.shape:
            raise ValueError(
                f"image {paths[index]} has size {pixels.shape[2]}x{pixels.shape[1]} but {paths[0]} has "
                f"{first.shape[2]}x{first.shape[1]}; set options.image_size to resize all images to one size"
            )
        out[index] = pixels

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL releases the GIL while decoding
        list(pool.map(fill, range(1, len(paths))))
    return out


def limit_per_class(
    samples: Samples, max_classes: int | None, samples_per_class: int | None, seed: int, split: str
) -> Samples:
    """Keep classes 0..max_classes-1 and, if asked, a seeded random choice of ``samples_per_class`` of each
    (in their original order): CPU-sized subsets of a large image data set."""
    if max_classes is not None:
        if max_classes < 1:
            raise ValueError(f"max_classes must be >= 1 or null (all classes), got {max_classes}")
        samples = [(path, label) for path, label in samples if label < max_classes]
    if samples_per_class is None:
        return samples
    keep = stratified_indices(np.array([label for _, label in samples]), samples_per_class, seed, split)
    return [samples[i] for i in keep]


def stratified_indices(labels: np.ndarray, samples_per_class: int, seed: int, split: str = "train") -> np.ndarray:
    """A seeded choice of ``samples_per_class`` indices of each class of ``labels`` (n,), sorted, int64 of shape
    (classes * samples_per_class,): the per-class limit of the image loaders (ImageFolder, IDX)."""
    if samples_per_class < 1:
        raise ValueError(f"samples_per_class must be >= 1 or null (all samples), got {samples_per_class}")
    rng = numpy_rng(seed)
    keep = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < samples_per_class:
            raise ValueError(
                f"samples_per_class is {samples_per_class} but class {label} of the {split} split has only "
                f"{len(members)} images; lower samples_per_class"
            )
        keep.append(members[rng.choice(len(members), samples_per_class, replace=False)])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)
