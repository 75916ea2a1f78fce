"""The bundled digits set: scikit-learn's 1,797 real handwritten digits (8×8, 16 grey levels, UCI
"Optical Recognition of Handwritten Digits"), upsampled to `img_size` (bicubic by default) and split
train/val/test 70/10/20, stratified by class with a fixed seed, so every run sees the same split.
No download: the data ship with scikit-learn."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .base import LabelledDataset, check_at_least, check_split
from .transforms import Transform, affine_pipeline

SPLITS = ("train", "val", "test")
SPLIT_SEED = 0
# Per-pixel statistics of the training split after scaling to [0, 1] (rounded; fixed so they never drift).
DIGITS_MEAN, DIGITS_STD = 0.31, 0.36


@lru_cache(maxsize=1)
def _split_indices() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    y = load_digits().target
    idx = np.arange(len(y))
    train, rest = train_test_split(idx, test_size=0.3, stratify=y, random_state=SPLIT_SEED)
    val, test = train_test_split(rest, test_size=2 / 3, stratify=y[rest], random_state=SPLIT_SEED)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


@lru_cache(maxsize=4)
def _images(img_size: int, mode: str) -> tuple[Tensor, Tensor]:
    """All 1,797 digits as (N, 1, img_size, img_size) floats in [0, 1] and their labels (N,)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float().div_(16.0)[:, None]  # (N, 8, 8) -> (N, 1, 8, 8)
    if img_size != 8:
        x = F.interpolate(x, size=(img_size, img_size), mode=mode, align_corners=False).clamp_(0, 1)
    return x, torch.from_numpy(d.target).long()


def digits_transform(train: bool, in_chans: int = 3, randaugment: str | None = None,
                     reprob: float = 0.0) -> Transform:
    """Light augmentation for digits (no flips or crops: they change the class): small rotation, scale and
    shift, optionally RandAugment and random erasing; then the digits' fixed statistics."""
    return affine_pipeline([DIGITS_MEAN] * in_chans, [DIGITS_STD] * in_chans, train, randaugment, reprob)


class Digits(LabelledDataset):
    """(image (in_chans, img_size, img_size), label) pairs of one split; 10 classes."""

    classes: tuple[str, ...] = tuple(str(i) for i in range(10))

    def __init__(self, split: str = "train", img_size: int = 32, in_chans: int = 3,
                 transform: Transform | None = None, mode: str = "bicubic"):
        check_split("digits", split, SPLITS)
        check_at_least("digits", "img_size", img_size, 8, "the native size")
        check_at_least("digits", "in_chans", in_chans, 1)
        x, y = _images(img_size, mode)
        idx = torch.from_numpy(_split_indices()[split])
        self.split, self.in_chans = split, in_chans
        self.images, self.targets = x[idx], y[idx]
        self.transform = transform if transform is not None else digits_transform(split == "train", in_chans)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x = self.images[i].expand(self.in_chans, -1, -1)  # grey level replicated: (1, H, W) -> (C, H, W)
        return self.transform(x), int(self.targets[i])
