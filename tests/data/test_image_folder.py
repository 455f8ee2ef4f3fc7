"""ImageFolder trees of real PNG/JPEG files read back through ``load_dataset('imagefolder', ...)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dataset_pruning.data import load_dataset
from dataset_pruning.data.base import check_prunable

CLASSES = ("dog", "cat", "emu")  # written unsorted: labels follow the sorted names cat=0, dog=1, emu=2


def write_tree(
    base: Path, split: str, per_class: int, size=(40, 36), ext: str = "png", seed: int = 0, classes=CLASSES
) -> dict[str, np.ndarray]:
    """Random RGB images, ``size`` = (width, height); returns HWC pixels by file name."""
    rng = np.random.default_rng(seed)
    written = {}
    for name in classes:
        folder = base / split / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}_{k}.{ext}")
            written[f"{name}/{name}_{k}.{ext}"] = pixels
    return written


def test_default_resizes_to_32_and_labels_by_sorted_class(tmp_path):
    base = tmp_path / "animals"
    write_tree(base, "train", 3)
    write_tree(base, "val", 2, ext="jpg", seed=1)
    train, test = load_dataset("imagefolder", root=tmp_path, folder="animals")
    assert train.x.shape == (9, 3, 32, 32) and test.x.shape == (6, 3, 32, 32)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert train.num_classes == test.num_classes == 3
    assert train.y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # cat, dog, emu
    assert test.y.tolist() == [0, 0, 1, 1, 2, 2]
    assert train.name == "animals-train" and test.name == "animals-val"


def test_normalised_by_training_channel_statistics(tmp_path):
    base = tmp_path / "animals"
    write_tree(base, "train", 3)
    write_tree(base, "val", 1, seed=1)
    train, test = load_dataset("imagefolder", root=tmp_path, folder="animals")
    assert torch.allclose(train.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(train.x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    raw_train, raw_test = load_dataset("imagefolder", root=tmp_path, folder="animals", normalize=False)
    mean = raw_train.x.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
    std = raw_train.x.std(dim=(0, 2, 3), unbiased=False).view(1, 3, 1, 1)
    assert torch.allclose(test.x, (raw_test.x - mean) / std, atol=1e-4)  # test split uses the train statistics


def test_keep_size_gives_exact_pixels_in_channel_first_order(tmp_path):
    base = tmp_path / "animals"
    written = write_tree(base, "train", 2, size=(8, 6))
    write_tree(base, "test", 1, size=(8, 6), seed=1)
    train, test = load_dataset("imagefolder", root=tmp_path, folder="animals", image_size=None, normalize=False)
    assert train.x.shape == (6, 3, 6, 8)
    assert test.name == "animals-test"  # no val/: the test/ folder is used
    first = torch.from_numpy(written["cat/cat_0.png"]).permute(2, 0, 1).float() / 255.0
    assert torch.allclose(train.x[0], first)


def test_keep_size_with_mixed_sizes_asks_for_image_size(tmp_path):
    base = tmp_path / "animals"
    write_tree(base, "train", 1, size=(8, 8))
    write_tree(base, "train", 1, size=(9, 8), classes=("zebra",))
    write_tree(base, "val", 1, size=(8, 8))
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("imagefolder", root=tmp_path, folder="animals", image_size=None)


def test_max_classes_and_seeded_samples_per_class(tmp_path):
    base = tmp_path / "animals"
    write_tree(base, "train", 6, size=(8, 8))
    write_tree(base, "val", 2, size=(8, 8), seed=1)
    options = dict(folder="animals", image_size=8, max_classes=2, samples_per_class=2, normalize=False)
    train, test = load_dataset("imagefolder", root=tmp_path, seed=5, **options)
    again, _ = load_dataset("imagefolder", root=tmp_path, seed=5, **options)
    other, _ = load_dataset("imagefolder", root=tmp_path, seed=6, **options)
    assert train.num_classes == test.num_classes == 2
    assert train.y.tolist() == [0, 0, 1, 1] and test.y.tolist() == [0, 0, 1, 1]
    assert torch.equal(train.x, again.x)
    assert not torch.equal(train.x, other.x)
    with pytest.raises(ValueError, match="has only 6 images"):
        load_dataset("imagefolder", root=tmp_path, folder="animals", samples_per_class=7)


def test_val_class_unknown_to_train_is_an_error(tmp_path):
    base = tmp_path / "animals"
    write_tree(base, "train", 1, size=(8, 8))
    write_tree(base, "val", 1, size=(8, 8), classes=("cat", "yak"))
    with pytest.raises(ValueError, match="yak"):
        load_dataset("imagefolder", root=tmp_path, folder="animals")


def test_missing_folder_option_and_missing_splits(tmp_path):
    with pytest.raises(ValueError, match="ingest.options.folder"):
        load_dataset("imagefolder", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"animals[/\\]train") as info:
        load_dataset("imagefolder", root=tmp_path, folder="animals")
    assert "<class_a>" in str(info.value)
    write_tree(tmp_path / "animals", "train", 1, size=(8, 8))
    with pytest.raises(FileNotFoundError, match=r"animals[/\\]val"):
        load_dataset("imagefolder", root=tmp_path, folder="animals")


def test_corrupt_image_is_named(tmp_path):
    base = tmp_path / "animals"
    write_tree(base, "train", 1, size=(8, 8))
    write_tree(base, "val", 1, size=(8, 8))
    (base / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(ValueError, match="broken.png"):
        load_dataset("imagefolder", root=tmp_path, folder="animals")


def test_one_class_folder_cannot_be_pruned(tmp_path):
    base = tmp_path / "animals"
    write_tree(base, "train", 2, size=(8, 8), classes=("cat",))
    write_tree(base, "val", 1, size=(8, 8), classes=("cat",))
    with pytest.raises(ValueError, match=r"animals-train has 1 class\(es\) with training samples"):
        check_prunable(*load_dataset("imagefolder", root=tmp_path, folder="animals"))


def test_an_empty_class_folder_is_named(tmp_path):
    base = tmp_path / "animals"
    write_tree(base, "train", 1, size=(8, 8))
    write_tree(base, "val", 1, size=(8, 8))
    for image in (base / "train" / "emu").iterdir():
        image.unlink()
    with pytest.raises(ValueError, match=r"class folder\(s\) .*animals[/\\]train[/\\]emu hold no image file"):
        load_dataset("imagefolder", root=tmp_path, folder="animals")
