"""Mixup (Zhang et al., arXiv 1710.09412) and CutMix (Yun et al., arXiv 1905.04899) on batches, as DeiT trains
(timm's `Mixup` semantics: `--mixup 0.8 --cutmix 1.0 --mix-prob 1.0 --switch-prob 0.5`), through
torchvision v2's MixUp and CutMix.

Per batch: with probability `mix_prob` the batch is mixed; when both alphas are positive, CutMix is chosen with
probability `switch_prob`, else Mixup. Targets become soft (B, K) rows summing to 1. Label smoothing composes
afterwards: `nn.CrossEntropyLoss(label_smoothing=ε)` on soft targets uses (1 - ε)·p + ε/K, which equals mixing
the smoothed one-hot targets as timm does (smoothing is linear). Videos (B, C, T, H, W) are mixed as v2 videos:
one Mixup weight or one CutMix box per clip, the same on every frame. Distillation keeps working: the teacher
is given the mixed inputs, as in DeiT.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import default_collate
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..errors import ConfigError


class BatchMix:
    """(inputs (B, C, H, W) or (B, C, T, H, W), labels (B,)) -> (mixed inputs, soft targets (B, K))."""

    def __init__(self, num_classes: int, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, mix_prob: float = 1.0,
                 switch_prob: float = 0.5):
        for flag, p in (("--mix-prob", mix_prob), ("--switch-prob", switch_prob)):
            if not 0 <= p <= 1:
                raise ConfigError(f"{flag} must be a probability in [0, 1], got {p}")
        for flag, a in (("--mixup", mixup_alpha), ("--cutmix", cutmix_alpha)):
            if a < 0:
                raise ConfigError(f"{flag} alpha must be non-negative (0 turns it off), got {a}")
        if mixup_alpha == 0 and cutmix_alpha == 0:
            raise ConfigError("batch mixing needs --mixup or --cutmix alpha above 0")
        self.num_classes, self.mix_prob, self.switch_prob = num_classes, mix_prob, switch_prob
        self.mixup = v2.MixUp(alpha=mixup_alpha, num_classes=num_classes) if mixup_alpha > 0 else None
        self.cutmix = v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes) if cutmix_alpha > 0 else None

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if self.mix_prob < 1 and torch.rand(()).item() >= self.mix_prob:
            return x, F.one_hot(y, self.num_classes).float()
        if self.mixup is not None and self.cutmix is not None:
            mix = self.cutmix if torch.rand(()).item() < self.switch_prob else self.mixup
        else:
            mix = self.mixup or self.cutmix
        if x.dim() == 5:  # v2 mixes videos as (B, T, C, H, W)
            mixed, target = mix(tv_tensors.Video(x.transpose(1, 2)), y)
            return mixed.as_subclass(Tensor).transpose(1, 2), target  # (B, T, C, H, W) -> (B, C, T, H, W)
        mixed, target = mix(x, y)
        return mixed, target

    def __repr__(self) -> str:
        return f"BatchMix(mixup={self.mixup}, cutmix={self.cutmix}, mix_prob={self.mix_prob}, " \
               f"switch_prob={self.switch_prob})"


class MixCollate:
    """A DataLoader collate_fn: the default collation, then `BatchMix` (v2's recommended place for it)."""

    def __init__(self, mix: BatchMix):
        self.mix = mix

    def __call__(self, batch: list) -> tuple[Tensor, Tensor]:
        return self.mix(*default_collate(batch))
