"""Fashion-MNIST, MNIST and KMNIST from the four IDX files they all ship (LeCun's format, gzip or plain).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one big-endian int32
per dimension, then the values in row-major order. Images are ``idx3-ubyte`` (n, 28, 28), labels ``idx1-ubyte`` (n,).
Nothing is downloaded: Fashion-MNIST comes from Debian's package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``); MNIST and KMNIST are placed by the user under ``ingest.root``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from dataset_pruning.data.base import DATASETS, TensorData
from dataset_pruning.data.images import channel_stats, normalize_channels, stratified_indices, to_unit_range

# type code of the magic number -> big-endian numpy dtype
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# folder under ingest.root, and a system folder looked in after it
SOURCES = {
    "fashion_mnist": ("fashion-mnist", Path("/usr/share/datasets/fashion-mnist")),
    "mnist": ("mnist", None),
    "kmnist": ("kmnist", None),
}
INSTALL = {
    "fashion_mnist": "apt-get update && apt-get install -y dataset-fashion-mnist  (Debian; puts them in "
    "/usr/share/datasets/fashion-mnist)",
    "mnist": "copy the four files of http://yann.lecun.com/exdb/mnist/ there",
    "kmnist": "copy the four files of KMNIST's MNIST-format release (github.com/rois-codh/kmnist) there",
}


def read_idx(path: Path) -> np.ndarray:
    """The array stored in IDX file ``path`` (``.gz`` is decompressed), in its stored shape and native byte order.

    A wrong magic number, a header that does not fit or a payload shorter or longer than the header says is a
    ``ValueError`` naming the file.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError; a cut-off stream an EOFError
        raise ValueError(f"{path} is not a readable gzip file ({error}); copy or install it again") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise ValueError(
            f"{path} is not an IDX file: its magic number is {raw[:4].hex() or 'missing'} (expected 0000 then a type "
            "code 08-0e and the number of dimensions, e.g. 00000803 for images); copy or install it again"
        )
    ndim, dtype = raw[3], np.dtype(IDX_TYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: its header needs {header} bytes, the file has {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path} is truncated or damaged: its header gives shape {shape} ({expected} bytes of data), the file "
            f"holds {len(raw) - header}; copy or install it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(name: str, root: Path) -> dict[str, Path]:
    """The four files of data set ``name``: under ``root/<folder>``, else ``root``, else the system folder."""
    folder, system = SOURCES[name]
    places = [Path(root) / folder, Path(root)] + ([system] if system is not None else [])
    for place in places:
        found = {}
        for key, stem in FILES.items():
            for candidate in (place / f"{stem}.gz", place / stem):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == len(FILES):
            return found
    listing = "\n".join(f"    {stem}.gz" for stem in FILES.values())
    raise FileNotFoundError(
        f"data set {name!r}: the four IDX files were not found in {', '.join(str(p) for p in places)}. Nothing is "
        f"downloaded at run time: {INSTALL[name]}, or put them in {places[0]}:\n{listing}\n(plain, un-gzipped files "
        f"work too), or choose a built-in data set (ingest.dataset: mnist1d or digits)."
    )


def _split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 pixels (n, 1, H, W) and int64 labels (n,) of one split, checked against each other."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path} must hold uint8 images of shape (n, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path} must hold labels of shape (n,), got shape {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(
            f"{labels_path} has {len(labels)} labels but {images_path} has {len(images)} images; they must match "
            "(are both files of the same split and data set?)"
        )
    return images[:, None], labels.astype(np.int64)


def _load_idx(
    name: str, root: Path, seed: int, samples_per_class: int | None, normalize: bool
) -> tuple[TensorData, TensorData]:
    files = _find(name, root)
    train_pixels, train_labels = _split(files["train_images"], files["train_labels"])
    test_pixels, test_labels = _split(files["test_images"], files["test_labels"])
    if test_pixels.shape[1:] != train_pixels.shape[1:]:
        raise ValueError(f"{files['test_images']} images are {test_pixels.shape[2:]}, the training images "
                         f"{train_pixels.shape[2:]}; both splits must be of one data set")
    if samples_per_class is not None:
        keep = stratified_indices(train_labels, samples_per_class, seed)
        train_pixels, train_labels = train_pixels[keep], train_labels[keep]
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    if normalize:
        mean, std = channel_stats(train_pixels)
        x_train, x_test = normalize_channels(train_pixels, mean, std), normalize_channels(test_pixels, mean, std)
    else:
        x_train, x_test = to_unit_range(train_pixels), to_unit_range(test_pixels)
    return (
        TensorData(x_train, torch.from_numpy(train_labels), num_classes, f"{name}-train"),
        TensorData(x_test, torch.from_numpy(test_labels), num_classes, f"{name}-test"),
    )


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(
    root: Path, seed: int = 0, samples_per_class: int | None = None, normalize: bool = True
) -> tuple[TensorData, TensorData]:
    """Zalando's Fashion-MNIST: 60,000 train / 10,000 test, x of shape (n, 1, 28, 28), 10 classes.

    Read from ``root/fashion-mnist/``, ``root``, or Debian's ``/usr/share/datasets/fashion-mnist`` (first found).
    Normalised by the training split's mean and std (``normalize: false``: pixels in [0, 1]).
    ``samples_per_class`` keeps a seeded, stratified choice of training images (the test split stays whole).
    """
    return _load_idx("fashion_mnist", root, seed, samples_per_class, normalize)


@DATASETS.register("mnist")
def load_mnist(
    root: Path, seed: int = 0, samples_per_class: int | None = None, normalize: bool = True
) -> tuple[TensorData, TensorData]:
    """LeCun's MNIST from ``root/mnist/`` or ``root``: as ``fashion_mnist``."""
    return _load_idx("mnist", root, seed, samples_per_class, normalize)


@DATASETS.register("kmnist")
def load_kmnist(
    root: Path, seed: int = 0, samples_per_class: int | None = None, normalize: bool = True
) -> tuple[TensorData, TensorData]:
    """Kuzushiji-MNIST (the MNIST-format release) from ``root/kmnist/`` or ``root``: as ``fashion_mnist``."""
    return _load_idx("kmnist", root, seed, samples_per_class, normalize)
