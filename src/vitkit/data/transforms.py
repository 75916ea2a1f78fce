"""Image and video pipelines on torchvision.transforms.v2, plus the few pieces v2 lacks.

The training pipeline is DeiT's / timm's (`timm.data.create_transform(is_training=True)`): RandomResizedCrop
(scale 0.08–1, the model's interpolation), horizontal flip, optional RandAugment with timm's semantics
(`randaugment="rand-m9-mstd0.5-inc1"`, see `randaugment.py`), conversion to float, normalisation, optional
random erasing (`reprob`, per-pixel Gaussian values as timm's "pixel" mode); the video papers' short-side scale
jitter and colours replace the crop / join the float steps when asked (see `video_augment.py`). The
evaluation pipeline is timm's: the shorter side to `size / crop_pct`, centre crop, normalise
(`crop_mode="squash"`: warp to the input size, as transformers does for CvT at 384).

Inputs are PIL images or uint8 tensors (C, H, W); geometry runs on uint8 (or on PIL) and the float conversion
comes last, so a pipeline never resizes a float copy of a full-size image. Videos are (C, T, H, W) uint8 clips:
the frames go through v2 as one batch (T, C, H, W), so every random draw (crop, flip, RandAugment op) is made
once per clip and applied to all of its frames.

Augmentations draw from torch's global generator, which the training loop reseeds at the start of every epoch
(and DataLoader workers seed from the loader's generator), so an epoch's augmentations are the same whether
a run was interrupted and resumed or not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torchvision.transforms import InterpolationMode, v2

from ..errors import ConfigError
from ..layers.pixel_stats import IMAGENET_MEAN, IMAGENET_STD
from .randaugment import RandAugment, RandAugmentSpec, parse_randaugment
from .video_augment import ColourAugment, ShortSideJitter

Transform = Callable[[Tensor], Tensor]

INTERPOLATIONS = {"nearest": InterpolationMode.NEAREST, "bilinear": InterpolationMode.BILINEAR,
                  "bicubic": InterpolationMode.BICUBIC}
CROP_MODES = ("center", "squash")


def imagenet_stats(in_chans: int = 3) -> tuple[list[float], list[float]]:
    """ImageNet mean/std per channel; other channel counts use the mean over RGB for every channel."""
    return channel_stats(IMAGENET_MEAN, IMAGENET_STD, in_chans)


def channel_stats(mean: Sequence[float], std: Sequence[float], in_chans: int) -> tuple[list[float], list[float]]:
    """RGB statistics for `in_chans` channels: as they are for 3, their average repeated otherwise."""
    if in_chans == len(mean):
        return list(mean), list(std)
    return [sum(mean) / len(mean)] * in_chans, [sum(std) / len(std)] * in_chans


def interpolation_mode(name: str) -> InterpolationMode:
    if name not in INTERPOLATIONS:
        raise ConfigError(f"unknown interpolation {name!r}; expected one of {', '.join(INTERPOLATIONS)}")
    return INTERPOLATIONS[name]


class ToChannels(nn.Module):
    """(C, H, W) or (T, C, H, W) with C in {1, 3} -> `in_chans` channels: RGB -> grey by luma for 1 channel,
    the grey level repeated for any other count."""

    def __init__(self, in_chans: int):
        super().__init__()
        self.in_chans = in_chans

    def forward(self, x: Tensor) -> Tensor:
        C = x.shape[-3]
        if self.in_chans == C:
            return x
        if C == 3:
            x = v2.functional.rgb_to_grayscale(x)
        return x.expand(*x.shape[:-3], self.in_chans, *x.shape[-2:])  # (.., 1, H, W) -> (.., C, H, W)


class ClipLayout(nn.Module):
    """Swap the first two dims: (C, T, H, W) <-> (T, C, H, W), so v2 sees a clip's frames as one batch."""

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(0, 1)  # (C, T, H, W) <-> (T, C, H, W)


def eval_resize(size: tuple[int, int], crop_pct: float, interpolation: InterpolationMode,
                crop_mode: str = "center") -> list[nn.Module]:
    """timm's eval geometry: the shorter side to floor(size / crop_pct) then a centre crop of `size`
    ("center"), or a warp straight to `size` ("squash")."""
    if crop_mode not in CROP_MODES:
        raise ConfigError(f"unknown crop_mode {crop_mode!r}; expected one of {', '.join(CROP_MODES)}")
    if not 0 < crop_pct <= 1:
        raise ConfigError(f"crop_pct must be in (0, 1], got {crop_pct}")
    if crop_mode == "squash":
        return [v2.Resize(size, interpolation=interpolation, antialias=True)]
    # 1e-6: crop_pct = 224/232 (torchvision's swin_t) must give 232, not 231.99999.
    scale = [math.floor(s / crop_pct + 1e-6) for s in size]
    resize = scale[0] if scale[0] == scale[1] else _ShorterSideFor(tuple(scale), interpolation)
    if isinstance(resize, int):
        resize = v2.Resize(resize, interpolation=interpolation, antialias=True)
    return [resize, v2.CenterCrop(size)]


class _ShorterSideFor(nn.Module):
    """Resize keeping the aspect ratio so that the image covers a non-square `size` (timm's ResizeKeepRatio
    without its random jitter): the scale is the larger of the two per-side ratios."""

    def __init__(self, size: tuple[int, int], interpolation: InterpolationMode):
        super().__init__()
        self.size, self.interpolation = size, interpolation

    def forward(self, x):
        H, W = v2.functional.get_size(x)
        r = max(self.size[0] / H, self.size[1] / W)
        return v2.functional.resize(x, [round(H * r), round(W * r)], interpolation=self.interpolation, antialias=True)


def float_steps(mean: Sequence[float], std: Sequence[float], colour: Sequence[nn.Module] = ()) -> list[nn.Module]:
    """uint8 image -> normalised float tensor with len(mean) channels (the last step of every pipeline);
    `colour` steps run on the [0, 1] floats before the normalisation."""
    return [ToChannels(len(mean)), v2.ToDtype(torch.float32, scale=True), *colour, v2.Normalize(mean, std),
            v2.ToPureTensor()]


def image_pipeline(size: tuple[int, int], mean: Sequence[float], std: Sequence[float], train: bool,
                   interpolation: str = "bicubic", crop_pct: float = 0.875, crop_mode: str = "center",
                   randaugment: RandAugmentSpec | str | None = None, reprob: float = 0.0, hflip: float = 0.5,
                   scale: tuple[float, float] = (0.08, 1.0), video: bool = False,
                   scale_jitter: Sequence[float] | None = None, aspect_jitter: Sequence[float] | None = None,
                   color_augment: Sequence[float] | None = None) -> v2.Compose:
    """The train (DeiT/timm) or eval (timm) pipeline for PIL images / uint8 (C, H, W) tensors -> float (C, H, W),
    or with `video=True` for uint8 clips (C, T, H, W) -> float (C, T, H, W), one draw per clip. The video
    papers' training crop replaces RandomResizedCrop when `scale_jitter` ([min, max] shorter side) is given,
    and `color_augment` ([p, p_drop]) adds DMVR's colours (see `video_augment`)."""
    if not 0 <= reprob <= 1:
        raise ConfigError(f"--reprob must be a probability in [0, 1], got {reprob}")
    mode = interpolation_mode(interpolation)
    size = (size, size) if isinstance(size, int) else tuple(size)
    if train and scale_jitter is not None:
        geometry = [ShortSideJitter(scale_jitter, aspect_jitter, mode), v2.RandomCrop(size, pad_if_needed=True)]
    elif train:
        geometry = [v2.RandomResizedCrop(size, scale=scale, interpolation=mode, antialias=True)]
        if hflip > 0:
            geometry.append(v2.RandomHorizontalFlip(hflip))
        if parse_randaugment(randaugment) is not None:  # timm fills with the mean, resamples as the crop does
            geometry.append(RandAugment(randaugment, interpolation=mode, mean=mean))
    else:
        geometry = eval_resize(size, crop_pct, mode, crop_mode)
    tail = [v2.RandomErasing(p=reprob, value="random")] if train and reprob > 0 else []
    colour = [ColourAugment(*color_augment)] if train and color_augment is not None else []
    steps = [*geometry, v2.ToImage(), *float_steps(mean, std, colour), *tail]  # PIL geometry stays PIL (as timm)
    if video:  # (C, T, H, W) clip <-> (T, C, H, W) frames batch
        steps = [ClipLayout(), *steps, ClipLayout()]
    return v2.Compose(steps)


def affine_pipeline(mean: Sequence[float], std: Sequence[float], train: bool,
                    randaugment: RandAugmentSpec | str | None = None, reprob: float = 0.0) -> v2.Compose:
    """For images where a flip or a crop changes the class (digits): a small random rotation, scale and shift
    (and optional RandAugment / random erasing) on float (C, H, W) images in [0, 1], then normalisation."""
    if not 0 <= reprob <= 1:
        raise ConfigError(f"--reprob must be a probability in [0, 1], got {reprob}")
    steps: list[nn.Module] = []
    if train:
        steps.append(v2.RandomAffine(degrees=12, translate=(0.1, 0.1), scale=(0.9, 1.1),
                                     interpolation=InterpolationMode.BILINEAR))
        if parse_randaugment(randaugment) is not None:  # on uint8, as the operations are Pillow's
            steps += [v2.ToDtype(torch.uint8, scale=True), RandAugment(randaugment, "bilinear", mean),
                      v2.ToDtype(torch.float32, scale=True)]
    steps.append(v2.Normalize(mean, std))
    if train and reprob > 0:
        steps.append(v2.RandomErasing(p=reprob, value="random"))
    return v2.Compose(steps)
