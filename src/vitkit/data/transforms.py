"""Standard transforms on (C, H, W) float tensors: resize, normalise, and light augmentation.

Augmentations draw from torch's global generator, which the training loop reseeds at the start of every
epoch (and DataLoader workers seed from the loader's generator), so an epoch's augmentations are the same
whether a run was interrupted and resumed or not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Transform = Callable[[Tensor], Tensor]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Compose:
    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, x: Tensor) -> Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


class Resize:
    """(C, H, W) -> (C, h, w), bilinear with antialiasing when shrinking."""

    def __init__(self, size: int | tuple[int, int]):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) == self.size:
            return x
        shrink = x.shape[-2] > self.size[0] or x.shape[-1] > self.size[1]
        y = F.interpolate(x[None], size=self.size, mode="bilinear", align_corners=False, antialias=shrink)
        return y[0]

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class Normalize:
    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def __repr__(self) -> str:
        return f"Normalize({self.mean.flatten().tolist()}, {self.std.flatten().tolist()})"


class RandomAffine:
    """A small random rotation, scale and shift (fraction of the size) with zero fill: (C, H, W) -> same.
    For images where a horizontal flip changes the class (digits), this is the whole augmentation."""

    def __init__(self, degrees: float = 10.0, translate: float = 0.1, scale: tuple[float, float] = (0.9, 1.1),
                 fill: float = 0.0):
        self.degrees, self.translate, self.scale, self.fill = degrees, translate, scale, fill

    def __call__(self, x: Tensor) -> Tensor:
        r = torch.rand(4)
        angle = math.radians((2 * r[0].item() - 1) * self.degrees)
        s = self.scale[0] + (self.scale[1] - self.scale[0]) * r[1].item()
        # affine_grid maps output to input coordinates in [-1, 1]: a shift of t·size is 2t there.
        tx, ty = ((2 * r[2:] - 1) * 2 * self.translate).tolist()
        cos, sin = math.cos(angle) / s, math.sin(angle) / s
        theta = torch.tensor([[cos, -sin, tx], [sin, cos, ty]], dtype=x.dtype)[None]
        grid = F.affine_grid(theta, [1, *x.shape], align_corners=False)
        y = F.grid_sample((x - self.fill)[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return y[0] + self.fill

    def __repr__(self) -> str:
        return f"RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale})"


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, x: Tensor) -> Tensor:
        return x.flip(-1) if torch.rand(()).item() < self.p else x


class RandomResizedCrop:
    """A random crop of area fraction `scale` and aspect ratio `ratio`, resized to `size`."""

    def __init__(self, size: int | tuple[int, int], scale: tuple[float, float] = (0.35, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)):
        self.resize = Resize(size)
        self.scale, self.ratio = scale, ratio

    def __call__(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        for _ in range(10):
            area = H * W * (self.scale[0] + (self.scale[1] - self.scale[0]) * torch.rand(()).item())
            log_r = math.log(self.ratio[0]) + (math.log(self.ratio[1]) - math.log(self.ratio[0])) * torch.rand(()).item()
            w, h = round(math.sqrt(area * math.exp(log_r))), round(math.sqrt(area / math.exp(log_r)))
            if 0 < w <= W and 0 < h <= H:
                i = int(torch.randint(0, H - h + 1, ()).item())
                j = int(torch.randint(0, W - w + 1, ()).item())
                return self.resize(x[..., i:i + h, j:j + w])
        return self.resize(x)


def imagenet_stats(in_chans: int = 3) -> tuple[list[float], list[float]]:
    """ImageNet mean/std per channel; other channel counts use the mean over RGB for every channel."""
    if in_chans == 3:
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    return [sum(IMAGENET_MEAN) / 3] * in_chans, [sum(IMAGENET_STD) / 3] * in_chans


def image_transform(img_size: int | tuple[int, int], train: bool, in_chans: int = 3) -> Compose:
    """The standard pipeline for natural images: random resized crop + flip for training, resize for eval."""
    mean, std = imagenet_stats(in_chans)
    if train:
        return Compose([RandomResizedCrop(img_size), RandomHorizontalFlip(), Normalize(mean, std)])
    return Compose([Resize(img_size), Normalize(mean, std)])
