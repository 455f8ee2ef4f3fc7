"""Any image classification set stored as an ImageFolder tree: one sub-folder per class, for train and val/test."""

from __future__ import annotations

from pathlib import Path

import torch

from dataset_pruning.data.base import DATASETS, TensorData, missing_data_error
from dataset_pruning.data.images import (
    Samples,
    channel_stats,
    limit_per_class,
    normalize_channels,
    read_images,
    to_unit_range,
)

IMAGE_FOLDER_LAYOUT = """\
{root}/
  {folder}/
    train/
      <class_a>/  img001.png  img002.jpg  ...
      <class_b>/  ...
    val/          (or test/)
      <class_a>/  ...
      <class_b>/  ...
(class folders are sorted by name to give the labels 0, 1, ...; set ingest.options.folder to the folder's name)"""


def _list_split(directory: Path, class_to_idx: dict[str, int]) -> Samples:
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    found = make_dataset(str(directory), class_to_idx, IMG_EXTENSIONS, allow_empty=True)
    return [(Path(path), label) for path, label in found]


@DATASETS.register("imagefolder")
def load_image_folder(
    root: Path,
    seed: int = 0,
    folder: str | None = None,
    image_size: int | None = 32,
    test_split: str | None = None,
    max_classes: int | None = None,
    samples_per_class: int | None = None,
    normalize: bool = True,
    workers: int | None = None,
) -> tuple[TensorData, TensorData]:
    """Images from ``<root>/<folder>/train/<class>/*`` and ``<root>/<folder>/<test_split>/<class>/*``.

    x : Tensor of shape (n, 3, image_size, image_size), RGB, normalised by the per-channel mean and std of the
    (selected) training images, or in [0, 1] with ``normalize: false``. ``image_size: null`` keeps the files'
    size (all must then match). ``test_split`` defaults to ``val`` if present, else ``test``. ``max_classes`` keeps
    the first classes by sorted name; ``samples_per_class`` a seeded random choice of training images per class.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes

    if not folder:
        raise ValueError(
            "imagefolder needs the data set's folder name under ingest.root: set ingest.options.folder, e.g. "
            "{folder: my_images}; expected layout:\n" + IMAGE_FOLDER_LAYOUT.format(root=Path(root), folder="<folder>")
        )
    base = Path(root) / folder
    layout = IMAGE_FOLDER_LAYOUT.format(root=Path(root), folder=folder)
    train_dir = base / "train"
    if not train_dir.is_dir():
        raise missing_data_error("imagefolder", train_dir, layout)
    explicit = test_split is not None
    if test_split is None:
        test_split = "val" if (base / "val").is_dir() else "test"
    test_dir = base / test_split
    if not test_dir.is_dir():
        raise missing_data_error("imagefolder", test_dir if explicit else base / "val", layout)
    try:
        classes, class_to_idx = find_classes(str(train_dir))
    except FileNotFoundError:
        raise missing_data_error("imagefolder", train_dir / "<class>", layout) from None
    test_classes = sorted(entry.name for entry in test_dir.iterdir() if entry.is_dir())
    unknown = sorted(set(test_classes) - set(classes))
    if unknown:
        raise ValueError(
            f"{test_dir} has class folders that {train_dir} lacks: {unknown}; the two splits must share the "
            f"class folders (train's: {classes})"
        )
    train = _list_split(train_dir, class_to_idx)
    present = {label for _, label in train}
    empty = [train_dir / name for name in classes[:max_classes] if class_to_idx[name] not in present]
    if empty:
        raise ValueError(
            f"class folder(s) {', '.join(map(str, empty[:5]))} hold no image file (the extensions read: "
            f"{' '.join(IMG_EXTENSIONS)}); put images there or remove the folder(s)"
        )
    test = _list_split(test_dir, class_to_idx)
    if not test:
        raise missing_data_error("imagefolder", test_dir / "<class>", layout)
    train = limit_per_class(train, max_classes, samples_per_class, seed, "train")
    test = limit_per_class(test, max_classes, None, seed, test_split)
    num_classes = len(classes) if max_classes is None else min(max_classes, len(classes))
    train_pixels = read_images([p for p, _ in train], image_size, workers)
    test_pixels = read_images([p for p, _ in test], image_size, workers)
    if test_pixels.shape[1:] != train_pixels.shape[1:]:
        raise ValueError(
            f"{test_dir} images have size {test_pixels.shape[1:]} but {train_dir} images {train_pixels.shape[1:]}; "
            f"set options.image_size to resize both"
        )
    if normalize:
        mean, std = channel_stats(train_pixels)
        x_train, x_test = normalize_channels(train_pixels, mean, std), normalize_channels(test_pixels, mean, std)
    else:
        x_train, x_test = to_unit_range(train_pixels), to_unit_range(test_pixels)
    y_train = torch.tensor([label for _, label in train], dtype=torch.long)
    y_test = torch.tensor([label for _, label in test], dtype=torch.long)
    return (
        TensorData(x_train, y_train, num_classes, f"{folder}-train"),
        TensorData(x_test, y_test, num_classes, f"{folder}-{test_split}"),
    )
