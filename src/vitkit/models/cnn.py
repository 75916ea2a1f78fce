"""Convolutional teachers and baselines. DeiT (arXiv 2012.12877, §5.2, Table 2) finds a convnet teacher
works better than a transformer one; on small images the default teacher here is a small ResNet
(He et al., arXiv 1512.03385, §4.2's CIFAR layout: 3×3 stem, three stages of basic blocks, strides 1/2/2,
global average pool, linear head). Choosing a teacher (a checkpoint, a registered name, or any torchvision
classifier) is a training concern: `vitkit.train.teacher.build_teacher`. No parity test: the small ResNet has
no reference implementation of this exact shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import Conv2d, check_input, from_map
from ..layers.pixel_stats import IMAGENET_MEAN, IMAGENET_STD
from ..registry import build_config, register_model
from .base import HEAD_GROUP, VitkitModel, block_groups, check_at_least, data_cfg
from .features import feature_info


@dataclass(frozen=True)
class ResNetConfig:
    img_size: int | tuple[int, int] = 32        # H, W (any size works; kept for the input shape)
    in_chans: int = 3                           # C
    num_classes: int = 10
    widths: tuple[int, ...] = (32, 64, 128)     # channels per stage (He et al. use 16/32/64 at n blocks)
    depths: tuple[int, ...] = (1, 1, 1)         # basic blocks per stage (n)
    stem_stride: int = 1                        # 2 halves H and W in the stem (cheap on upsampled small images)
    drop_rate: float = 0.0                      # dropout before the head


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity (or 1×1 projection) shortcut: (B, C, H, W) -> (B, C', H/s, W/s)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.act = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity() if stride == 1 and in_ch == out_ch else nn.Sequential(
            Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(VitkitModel):
    """ResNet for small images: (B, C, H, W) -> logits (B, num_classes)."""

    hierarchical = True
    # vitkit's own small-image teachers: trained here, on ImageNet statistics, no crop
    data_configs = (("resnet*_cifar", {"vitkit": data_cfg(IMAGENET_MEAN, IMAGENET_STD, "bilinear", 1.0)}),)

    def __init__(self, cfg: ResNetConfig):
        validate_config(cfg)
        super().__init__(cfg, num_features=cfg.widths[-1])
        self.stem = nn.Sequential(Conv2d(cfg.in_chans, cfg.widths[0], 3, cfg.stem_stride, 1, bias=False),
                                  nn.BatchNorm2d(cfg.widths[0]), nn.ReLU(inplace=True))
        stages, ch = [], cfg.widths[0]
        for i, (w, d) in enumerate(zip(cfg.widths, cfg.depths)):
            blocks = [BasicBlock(ch if j == 0 else w, w, (1 if i == 0 else 2) if j == 0 else 1) for j in range(d)]
            stages.append(nn.Sequential(*blocks))
            ch = w
        self.stages = nn.Sequential(*stages)
        self.head_drop = nn.Dropout(cfg.drop_rate) if cfg.drop_rate > 0 else nn.Identity()
        self.head = self.new_head(cfg.num_classes)
        S = len(cfg.widths)
        self.feature_info = feature_info("stages", range(S), cfg.widths, [cfg.stem_stride * 2 ** i for i in range(S)])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)  # each residual branch starts as the identity (Goyal et al.)

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> feature map (B, D, H/s, W/s), s = stem_stride · 2^(stages − 1)."""
        check_input(x, self.config.in_chans, 4)
        return self.stages(self.stem(x))

    def layer_groups(self) -> list[str]:
        return [*(g for s, stage in enumerate(self.stages) for g in block_groups(f"stages.{s}", len(stage))), HEAD_GROUP]

    def size_dependence(self) -> dict[str, str]:
        return {"height": "none", "width": "none"}  # convolutions and global pooling only

    def _intermediates(self, x: Tensor) -> Iterator[tuple[Tensor, tuple[int, int]]]:
        """Each stage's map (B, C_i, H_i, W_i)."""
        check_input(x, self.config.in_chans, 4)
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            yield x, tuple(x.shape[2:])

    def _split_tokens(self, x: Tensor, grid: tuple[int, int]) -> tuple[None, Tensor]:
        return None, from_map(x)[0]  # (B, C, H, W) -> (B, H·W, C)

    def _finish(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """x: (B, D, h, w) -> logits (B, num_classes), or pooled features (B, D) with pre_logits."""
        x = self.head_drop(x.mean((2, 3)))
        return x if pre_logits else self.head(x)


def validate_config(cfg: ResNetConfig) -> None:
    """ConfigError (one sentence) for stage lists or sizes that cannot build the small ResNet."""
    if len(cfg.widths) != len(cfg.depths) or not cfg.widths:
        raise ConfigError(f"widths {cfg.widths} and depths {cfg.depths} must be non-empty and of equal length")
    check_at_least(cfg, 1, "img_size", "in_chans", "widths", "depths", "stem_stride")
    check_at_least(cfg, 0, "num_classes")


def _resnet(overrides: dict, **base) -> SmallResNet:
    return SmallResNet(build_config(ResNetConfig(**base), overrides))


@register_model
def resnet_tiny_cifar(**overrides) -> SmallResNet:
    """The default DeiT teacher on small images: 32/64/128 channels, one block per stage, stride-2 stem."""
    return _resnet(overrides, stem_stride=2)


@register_model
def resnet20_cifar(**overrides) -> SmallResNet:
    """He et al. §4.2 ResNet-20: n = 3 blocks per stage at 16/32/64 channels."""
    return _resnet(overrides, widths=(16, 32, 64), depths=(3, 3, 3))
