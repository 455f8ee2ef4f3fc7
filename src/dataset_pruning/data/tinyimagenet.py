"""TinyImageNet-200 (Le & Yang, 2015) in the layout of its official zip: 200 classes of 64x64 JPEGs, 500 train
and 50 val images per class. The labelled val split serves as the test set (the official test split is unlabelled).
"""

from __future__ import annotations

from pathlib import Path

import torch

from dataset_pruning.data.base import DATASETS, TensorData, missing_data_error
from dataset_pruning.data.images import Samples, limit_per_class, normalize_channels, read_images, to_unit_range

# The usual per-channel statistics of the training split, in [0, 1] units.
TINYIMAGENET_MEAN, TINYIMAGENET_STD = (0.4802, 0.4481, 0.3975), (0.2302, 0.2265, 0.2262)
TINYIMAGENET_DIR = "tiny-imagenet-200"
TINYIMAGENET_LAYOUT = """\
{root}/
  tiny-imagenet-200/
    wnids.txt                  one WordNet id per line (n01443537 ...)
    train/
      n01443537/
        images/  n01443537_0.JPEG  n01443537_1.JPEG  ...
      ...
    val/
      val_annotations.txt      tab separated: val_0.JPEG <tab> n03444034 <tab> x0 y0 x1 y1 (bounding box)
      images/  val_0.JPEG  val_1.JPEG  ...
(unzip tiny-imagenet-200.zip from http://cs231n.stanford.edu/tiny-imagenet-200.zip into {root})"""
_EXTENSIONS = {".jpeg", ".jpg", ".png"}


def _wnids(path: Path, layout: str) -> list[str]:
    if not path.is_file():
        raise missing_data_error("tinyimagenet", path, layout)
    wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not wnids:
        raise ValueError(f"{path} lists no class ids; it should hold one WordNet id (e.g. n01443537) per line")
    if len(set(wnids)) != len(wnids):
        raise ValueError(f"{path} lists a class id twice; each WordNet id must appear once")
    return sorted(wnids)


def _train_samples(train_dir: Path, wnids: list[str], layout: str) -> Samples:
    samples: Samples = []
    for label, wnid in enumerate(wnids):
        images = train_dir / wnid / "images"
        if not images.is_dir():
            raise missing_data_error("tinyimagenet", images, layout)
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in _EXTENSIONS)
        if not files:
            raise missing_data_error("tinyimagenet", images / f"{wnid}_0.JPEG", layout)
        samples += [(path, label) for path in files]
    return samples


def _val_samples(val_dir: Path, wnids: list[str], keep: int, layout: str) -> Samples:
    """(path, label) of the val images whose label is below ``keep``; every line is checked against ``wnids``."""
    annotations = val_dir / "val_annotations.txt"
    if not annotations.is_file():
        raise missing_data_error("tinyimagenet", annotations, layout)
    label_of = {wnid: label for label, wnid in enumerate(wnids)}
    samples: Samples = []
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(
                f"{annotations} line {number} is {line!r}; expected tab separated fields: file name, WordNet id, "
                f"then the bounding box"
            )
        filename, wnid = fields[0].strip(), fields[1].strip()
        if wnid not in label_of:
            raise ValueError(f"{annotations} line {number} names class {wnid!r}, which wnids.txt does not list")
        if label_of[wnid] >= keep:
            continue
        path = val_dir / "images" / filename
        if not path.is_file():
            raise missing_data_error("tinyimagenet", path, layout)
        samples.append((path, label_of[wnid]))
    if not samples:
        raise ValueError(
            f"{annotations} lists no images of the selected classes; it should have one line per file of "
            f"{val_dir / 'images'}"
        )
    return samples


@DATASETS.register("tinyimagenet")
def load_tinyimagenet(
    root: Path,
    seed: int = 0,
    image_size: int | None = None,
    max_classes: int | None = None,
    samples_per_class: int | None = None,
    normalize: bool = True,
    workers: int | None = None,
) -> tuple[TensorData, TensorData]:
    """100,000 train / 10,000 test (val) images, x of shape (n, 3, 64, 64) normalised per channel, 200 classes.

    Labels index the sorted WordNet ids of ``wnids.txt``. For CPU-sized runs: ``max_classes`` keeps the first
    classes in that order (the test split too), ``samples_per_class`` a seeded random choice of training images
    per class, ``image_size`` resizes (e.g. 32). The full set as float32 takes about 5 GB of memory.
    """
    base = Path(root) / TINYIMAGENET_DIR
    layout = TINYIMAGENET_LAYOUT.format(root=Path(root))
    if not base.is_dir():
        raise missing_data_error("tinyimagenet", base, layout)
    if max_classes is not None and max_classes < 1:
        raise ValueError(f"max_classes must be >= 1 or null (all 200 classes), got {max_classes}")
    all_wnids = _wnids(base / "wnids.txt", layout)
    wnids = all_wnids[:max_classes]
    train = limit_per_class(_train_samples(base / "train", wnids, layout), None, samples_per_class, seed, "train")
    test = _val_samples(base / "val", all_wnids, len(wnids), layout)
    x_train = read_images([p for p, _ in train], image_size, workers)
    x_test = read_images([p for p, _ in test], image_size, workers)
    if x_test.shape[1:] != x_train.shape[1:]:
        raise ValueError(
            f"val images have size {x_test.shape[1:]} but train images {x_train.shape[1:]}; set options.image_size"
        )
    if normalize:
        x_train = normalize_channels(x_train, TINYIMAGENET_MEAN, TINYIMAGENET_STD)
        x_test = normalize_channels(x_test, TINYIMAGENET_MEAN, TINYIMAGENET_STD)
    else:
        x_train, x_test = to_unit_range(x_train), to_unit_range(x_test)
    y_train = torch.tensor([label for _, label in train], dtype=torch.long)
    y_test = torch.tensor([label for _, label in test], dtype=torch.long)
    return (
        TensorData(x_train, y_train, len(wnids), "tinyimagenet-train"),
        TensorData(x_test, y_test, len(wnids), "tinyimagenet-test"),
    )
