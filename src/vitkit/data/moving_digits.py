"""moving-digits: a generated, seeded video set whose label only motion can tell.

Each clip shows one bundled handwritten digit (scikit-learn's 8×8 digits, upsampled to half the canvas side)
translating on a dark `img_size` canvas for `num_frames` frames, with wrap-around at the borders. The label is
the motion direction among 8 (right, down-right, down, …, up-right; image y points down); the speed is 1 to
max(1, img_size // 16) pixels per frame. The start position is uniform over the canvas, so every single frame —
even knowing its time index — has the same distribution for all 8 labels, and opposite directions give the same
unordered set of frames: a model must compare frames in order to tell the label (chance is 1/8).

`label="motion"` asks for a task in which order decides part of the classes only. Its 8 motions are right, left,
down, up (two pairs, each the time reversal of the other), down-right and down-left (diagonals whose reversals
are not in the task), still and jumping (a new uniform position every frame; both are their own reversal). A
clip reversed in time is a clip of the reversed motion with the same probability, so a model that sees the
frames as an unordered set (an order-blind oracle) confuses each class with its reversal partner only:
`order_blind_ceiling` computes its best top-1 from the motion table, 6/8 = 75 % here (and 50 % for
"direction", 100 % for "digit"). A single frame still tells nothing (chance 12.5 %).

Options that keep the task from saturating, all reversal-symmetric so the ceiling above still holds:
`distractors` dimmer digits (half intensity) that move in one of the 8 compass directions at random; Gaussian
pixel `noise`; and `label_noise`, the fraction of clips whose label is redrawn uniformly (the best possible top-1
is then (1 − p) + p / K, `order_aware_ceiling`). All default to off, which draws exactly the clips it always did.

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

LABELS = ("direction", "digit", "motion")
DIRECTIONS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")
_STEPS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))  # (dy, dx) of each direction
MOTIONS = ("right", "left", "down", "up", "down-right", "down-left", "still", "jumping")
JUMP = None  # the step of "jumping": a new uniform position every frame
_MOTION_STEPS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (0, 0), JUMP)
DEFAULT_SIZES = {"train": 2048, "val": 256, "test": 512}
DISTRACTOR_LEVEL = 0.5  # a distractor's brightness relative to the labelled digit
# Per-pixel statistics of the clips (a quarter-canvas digit on black), rounded and fixed so they never drift.
MOVING_DIGITS_MEAN, MOVING_DIGITS_STD = 0.08, 0.22


def _reversed(step):
    return step if step is JUMP else (-step[0], -step[1])


def _twins(label: str) -> list[int]:
    """Per class: how many classes share its motion up to time reversal (itself included)."""
    if label == "digit":
        return [1] * 10  # what moves is in every frame
    steps = _MOTION_STEPS if label == "motion" else _STEPS
    return [sum(t in (s, _reversed(s)) for t in steps) for s in steps]


def order_decided(label: str = "motion") -> tuple[int, ...]:
    """The classes that only the order of frames tells from another class (their reversal is in the task)."""
    return tuple(c for c, n in enumerate(_twins(label)) if n > 1)


def order_blind_ceiling(label: str = "motion", label_noise: float = 0.0) -> float:
    """Best top-1 (a fraction) of a model that sees each clip's frames as an unordered set, computed from the
    label's motion table: a clip reversed in time is, with the same probability, a clip of the class whose motion
    is its reversal, so such a model can at best pick one of the classes sharing a motion up to reversal (with
    balanced classes and otherwise perfect vision). Redrawn labels (`label_noise`) score 1/K."""
    twins = _twins(label)
    blind = sum(1 / n for n in twins) / len(twins)
    return (1 - label_noise) * blind + label_noise / len(twins)


def order_aware_ceiling(label: str = "motion", label_noise: float = 0.0) -> float:
    """Best top-1 (a fraction) of any model: the clean clips all, the redrawn labels 1/K."""
    return 1 - label_noise + label_noise / len(_twins(label))


class MovingDigits(LabelledDataset):
    """(clip (in_chans, num_frames, img_size, img_size), label) pairs of one split.

    Args:
        split: "train", "val" or "test".
        num_frames: T, frames per clip (at least 2: one frame cannot show a direction).
        img_size: canvas side in pixels (at least 16); the digit is img_size // 2 pixels.
        in_chans: the grey level is replicated over this many channels (3 for ImageNet-style models).
        seed: changes every clip (digit, start, speed) but not the split of the digits.
        size: number of clips; default 2048 / 256 / 512 for train / val / test.
        transform: applied to the (C, T, H, W) clip in [0, 1]; default: normalisation with fixed statistics.
        label: "direction" (the motion, 8 classes: no single frame tells it), "digit" (what moves, 10 classes:
            any single frame tells it) or "motion" (8 motions, order needed for 4 of them; module docstring).
        distractors: extra digits at half brightness, each moving in a random compass direction.
        noise: standard deviation of Gaussian pixel noise added to every frame (before the transform).
        label_noise: fraction of clips whose label is redrawn uniformly over the classes.
    """

    classes: ClassVar[list[str]] = list(DIRECTIONS)

    def __init__(self, split: str = "train", num_frames: int = 8, img_size: int = 32, in_chans: int = 3,
                 seed: int = 0, size: int | None = None, transform: Transform | None = None,
                 label: str = "direction", distractors: int = 0, noise: float = 0.0, label_noise: float = 0.0):
        check_split("moving-digits", split, SPLITS)
        check_at_least("moving-digits", "num_frames", num_frames, 2, "one frame cannot show a motion")
        check_at_least("moving-digits", "img_size", img_size, 16)
        check_at_least("moving-digits", "in_chans", in_chans, 1)
        check_at_least("moving-digits", "size", size, 1)
        check_at_least("moving-digits", "distractors", distractors, 0)
        if label not in LABELS:
            raise DataError(f"unknown moving-digits label {label!r}; expected one of {', '.join(LABELS)}")
        if not (noise >= 0 and 0 <= label_noise <= 1):
            raise DataError(f"moving-digits noise must be at least 0 and label_noise within 0..1, got {noise} and "
                            f"{label_noise}")
        self.split, self.num_frames, self.img_size, self.label = split, num_frames, img_size, label
        self.classes = {"direction": list(DIRECTIONS), "motion": list(MOTIONS)}.get(label, [str(d) for d in range(10)])
        self.in_chans, self.seed = in_chans, seed
        self.distractors, self.noise, self.label_noise = distractors, noise, label_noise
        self.size = DEFAULT_SIZES[split] if size is None else size
        digits, digit_labels = _images(img_size // 2, "bicubic")  # (N, 1, h, h) in [0, 1], (N,)
        idx = torch.from_numpy(_split_indices()[split])
        self.digits, self.digit_labels = digits[idx][:, 0], digit_labels[idx]  # (n, h, h), (n,)
        self.max_speed = max(1, img_size // 16)
        self.transform = transform if transform is not None else VideoNormalize([MOVING_DIGITS_MEAN] * in_chans,
                                                                                [MOVING_DIGITS_STD] * in_chans)

    def __len__(self) -> int:
        return self.size

    def _sprite(self, j: int) -> Tensor:
        """Digit j drawn in the top-left corner of an empty canvas: (H, W)."""
        canvas = torch.zeros(self.img_size, self.img_size)
        h = self.digits.shape[1]
        canvas[:h, :h] = self.digits[j]
        return canvas

    def _path(self, rng: np.random.Generator, start, speed: int, step) -> list[tuple[int, int]]:
        """Per-frame (y, x) offsets of a digit that starts at `start` and moves by `step` × `speed` (wrapping
        around the canvas); `JUMP`: uniform new positions, drawn from `rng`."""
        H, T = self.img_size, self.num_frames
        if step is JUMP:
            return [start] + [tuple(int(v) for v in rng.integers(H, size=2)) for _ in range(T - 1)]
        return [((start[0] + t * step[0] * speed) % H, (start[1] + t * step[1] * speed) % H) for t in range(T)]

    def clip(self, i: int) -> tuple[Tensor, int]:
        """Item i before channel replication and transform: ((T, H, W) in [0, 1] without noise, label)."""
        if not 0 <= i < self.size:
            raise IndexError(f"moving-digits index {i} out of range for {self.size} clips")
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), i])
        direction = i % len(DIRECTIONS)  # balanced classes; loaders shuffle
        j = int(rng.integers(len(self.digits)))
        start = tuple(int(v) for v in rng.integers(self.img_size, size=2))
        speed = int(rng.integers(1, self.max_speed + 1))
        step = _MOTION_STEPS[direction] if self.label == "motion" else _STEPS[direction]
        sprite = self._sprite(j)
        frames = torch.stack([sprite.roll(s, dims=(0, 1)) for s in self._path(rng, start, speed, step)])  # (T, H, W)
        for _ in range(self.distractors):  # drawn after the labelled digit: the default clips are unchanged
            k, d = int(rng.integers(len(self.digits))), int(rng.integers(len(_STEPS)))
            d_start = tuple(int(v) for v in rng.integers(self.img_size, size=2))
            d_speed = int(rng.integers(1, self.max_speed + 1))
            other = DISTRACTOR_LEVEL * self._sprite(k)
            frames = torch.maximum(frames, torch.stack([other.roll(s, dims=(0, 1))
                                                        for s in self._path(rng, d_start, d_speed, _STEPS[d])]))
        label = int(self.digit_labels[j]) if self.label == "digit" else direction
        if self.label_noise > 0 and rng.random() < self.label_noise:
            label = int(rng.integers(len(self.classes)))
        return frames, label

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x, label = self.clip(i)
        if self.noise > 0:  # its own stream, so the clean clip and label do not depend on the noise level
            g = np.random.default_rng([self.seed, SPLITS.index(self.split), i, 1])
            x = x + torch.from_numpy(g.normal(0.0, self.noise, x.shape)).float()
        x = x.unsqueeze(0).expand(self.in_chans, -1, -1, -1)  # grey replicated: (T, H, W) -> (C, T, H, W)
        return self.transform(x), label
