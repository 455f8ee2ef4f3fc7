"""TinyImageNet-200 read from a fixture in the official zip's layout (wnids.txt, train/<wnid>/images, val/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dataset_pruning.data import load_dataset
from dataset_pruning.data.tinyimagenet import TINYIMAGENET_MEAN, TINYIMAGENET_STD

WNIDS = ["n01629819", "n01443537", "n01641577"]  # wnids.txt is not sorted; labels follow the sorted ids
LABEL = {wnid: label for label, wnid in enumerate(sorted(WNIDS))}
VAL = [("val_0.JPEG", "n01641577"), ("val_1.JPEG", "n01443537"), ("val_2.JPEG", "n01629819"),
       ("val_3.JPEG", "n01443537"), ("val_4.JPEG", "n01641577"), ("val_5.JPEG", "n01629819")]  # fmt: skip


def write_tinyimagenet(root: Path, per_class: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    base = root / "tiny-imagenet-200"
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (base / "words.txt").write_text("".join(f"{w}\tsomething\n" for w in WNIDS))
    for wnid in WNIDS:
        images = base / "train" / wnid / "images"
        images.mkdir(parents=True)
        boxes = []
        for k in range(per_class):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(images / f"{wnid}_{k}.JPEG")
            boxes.append(f"{wnid}_{k}.JPEG\t0\t0\t63\t63")
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("\n".join(boxes) + "\n")
    # the real set has grayscale JPEGs among the colour ones
    gray = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(gray).save(base / "train" / "n01443537" / "images" / "n01443537_0.JPEG")
    (base / "val" / "images").mkdir(parents=True)
    for filename, _ in VAL:
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(base / "val" / "images" / filename)
    (base / "val" / "val_annotations.txt").write_text(
        "".join(f"{filename}\t{wnid}\t0\t32\t44\t62\n" for filename, wnid in VAL)
    )
    return base


def test_shapes_labels_and_grayscale(tmp_path):
    write_tinyimagenet(tmp_path)
    train, test = load_dataset("tinyimagenet", root=tmp_path)
    assert train.x.shape == (12, 3, 64, 64) and test.x.shape == (6, 3, 64, 64)
    assert train.num_classes == test.num_classes == 3
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert train.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert test.y.tolist() == [LABEL[wnid] for _, wnid in VAL]
    raw, _ = load_dataset("tinyimagenet", root=tmp_path, normalize=False)
    gray = raw.x[0]  # n01443537_0.JPEG, class 0, sorted first
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert not torch.equal(raw.x[1][0], raw.x[1][1])
    mean = torch.tensor(TINYIMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(TINYIMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(train.x, (raw.x - mean) / std, atol=1e-5)


def test_cpu_sized_subset(tmp_path):
    write_tinyimagenet(tmp_path)
    train, test = load_dataset(
        "tinyimagenet", root=tmp_path, seed=1, image_size=32, max_classes=2, samples_per_class=3
    )
    assert train.x.shape == (6, 3, 32, 32) and test.x.shape == (4, 3, 32, 32)
    assert train.num_classes == test.num_classes == 2
    assert train.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert sorted(test.y.tolist()) == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="samples_per_class"):
        load_dataset("tinyimagenet", root=tmp_path, samples_per_class=5)
    with pytest.raises(ValueError, match="max_classes"):
        load_dataset("tinyimagenet", root=tmp_path, max_classes=0)


def test_missing_pieces_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="tiny-imagenet-200") as info:
        load_dataset("tinyimagenet", root=tmp_path)
    assert "val_annotations.txt" in str(info.value) and "wnids.txt" in str(info.value)
    base = write_tinyimagenet(tmp_path)
    (base / "val" / "val_annotations.txt").unlink()
    with pytest.raises(FileNotFoundError, match="val_annotations.txt"):
        load_dataset("tinyimagenet", root=tmp_path)
    (base / "wnids.txt").unlink()
    with pytest.raises(FileNotFoundError, match="wnids.txt"):
        load_dataset("tinyimagenet", root=tmp_path)


def test_missing_val_image_and_unknown_class(tmp_path):
    base = write_tinyimagenet(tmp_path)
    (base / "val" / "images" / "val_3.JPEG").unlink()
    with pytest.raises(FileNotFoundError, match="val_3.JPEG"):
        load_dataset("tinyimagenet", root=tmp_path)
    (base / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn09999999\t0\t0\t1\t1\n")
    with pytest.raises(ValueError, match="n09999999"):
        load_dataset("tinyimagenet", root=tmp_path)
    (base / "val" / "val_annotations.txt").write_text("val_0.JPEG n01443537 0 0 1 1\n")  # spaces, not tabs
    with pytest.raises(ValueError, match="tab separated"):
        load_dataset("tinyimagenet", root=tmp_path)
