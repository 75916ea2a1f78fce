"""moving-digits: a generated, seeded video set whose label only motion can tell.

Each clip shows one bundled handwritten digit (scikit-learn's 8×8 digits, upsampled to half the canvas side)
translating on a dark `img_size` canvas for `num_frames` frames, with wrap-around at the borders. The label is
the motion direction among 8 (right, down-right, down, …, up-right; image y points down); the speed is 1 to
max(1, img_size // 16) pixels per frame. The start position is uniform over the canvas, so every single frame —
even knowing its time index — has the same distribution for all 8 labels, and opposite directions give the same
unordered set of frames: a model must compare frames in order to tell the label (chance is 1/8).

Digits come from the matching split of `vitkit.data.digits` (train clips only show training digits), and item i
of a split is generated from the seed (seed, split, i) alone, so any subset or order of items is reproducible.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .base import LabelledDataset, check_at_least, check_split
from .digits import SPLITS, _images, _split_indices
from .transforms import Transform
from .video_folder import VideoNormalize

LABELS = ("direction", "digit")
DIRECTIONS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")
_STEPS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))  # (dy, dx) of each direction
DEFAULT_SIZES = {"train": 2048, "val": 256, "test": 512}
# Per-pixel statistics of the clips (a quarter-canvas digit on black), rounded and fixed so they never drift.
MOVING_DIGITS_MEAN, MOVING_DIGITS_STD = 0.08, 0.22


class MovingDigits(LabelledDataset):
    """(clip (in_chans, num_frames, img_size, img_size), direction label in 0..7) pairs of one split.

    Args:
        split: "train", "val" or "test".
        num_frames: T, frames per clip (at least 2: one frame cannot show a direction).
        img_size: canvas side in pixels (at least 16); the digit is img_size // 2 pixels.
        in_chans: the grey level is replicated over this many channels (3 for ImageNet-style models).
        seed: changes every clip (digit, start, speed) but not the split of the digits.
        size: number of clips; default 2048 / 256 / 512 for train / val / test.
        transform: applied to the (C, T, H, W) clip in [0, 1]; default: normalisation with fixed statistics.
        label: "direction" (the motion, 8 classes: no single frame tells it) or "digit" (what moves, 10 classes:
            any single frame tells it). The clips are the same for both.
    """

    classes: ClassVar[list[str]] = list(DIRECTIONS)

    def __init__(self, split: str = "train", num_frames: int = 8, img_size: int = 32, in_chans: int = 3,
                 seed: int = 0, size: int | None = None, transform: Transform | None = None,
                 label: str = "direction"):
        check_split("moving-digits", split, SPLITS)
        check_at_least("moving-digits", "num_frames", num_frames, 2, "one frame cannot show a motion")
        check_at_least("moving-digits", "img_size", img_size, 16)
        check_at_least("moving-digits", "in_chans", in_chans, 1)
        check_at_least("moving-digits", "size", size, 1)
        if label not in LABELS:
            raise DataError(f"unknown moving-digits label {label!r}; expected one of {', '.join(LABELS)}")
        self.split, self.num_frames, self.img_size, self.label = split, num_frames, img_size, label
        self.classes = list(DIRECTIONS) if label == "direction" else [str(d) for d in range(10)]
        self.in_chans, self.seed = in_chans, seed
        self.size = DEFAULT_SIZES[split] if size is None else size
        digits, digit_labels = _images(img_size // 2, "bicubic")  # (N, 1, h, h) in [0, 1], (N,)
        idx = torch.from_numpy(_split_indices()[split])
        self.digits, self.digit_labels = digits[idx][:, 0], digit_labels[idx]  # (n, h, h), (n,)
        self.max_speed = max(1, img_size // 16)
        self.transform = transform if transform is not None else VideoNormalize([MOVING_DIGITS_MEAN] * in_chans,
                                                                                [MOVING_DIGITS_STD] * in_chans)

    def __len__(self) -> int:
        return self.size

    def clip(self, i: int) -> tuple[Tensor, int]:
        """Item i before channel replication and transform: ((T, H, W) in [0, 1], label)."""
        if not 0 <= i < self.size:
            raise IndexError(f"moving-digits index {i} out of range for {self.size} clips")
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), i])
        direction = i % len(DIRECTIONS)  # balanced classes; loaders shuffle
        j = int(rng.integers(len(self.digits)))
        digit = self.digits[j]
        H = self.img_size
        canvas = torch.zeros(H, H)
        h = digit.shape[0]
        canvas[:h, :h] = digit
        y0, x0 = (int(v) for v in rng.integers(H, size=2))
        speed = int(rng.integers(1, self.max_speed + 1))
        dy, dx = _STEPS[direction]
        shifts = [((y0 + t * dy * speed) % H, (x0 + t * dx * speed) % H) for t in range(self.num_frames)]
        label = direction if self.label == "direction" else int(self.digit_labels[j])
        return torch.stack([canvas.roll(s, dims=(0, 1)) for s in shifts]), label  # (T, H, W)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x, label = self.clip(i)
        x = x.unsqueeze(0).expand(self.in_chans, -1, -1, -1)  # grey replicated: (T, H, W) -> (C, T, H, W)
        return self.transform(x), label
