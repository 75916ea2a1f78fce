"""CvT (Wu et al., "CvT: Introducing Convolutions to Vision Transformers", arXiv 2103.15808): §3.1 convolutional
token embedding, §3.2 convolutional projection (depthwise conv + BatchNorm, K/V stride 2, "squeezed"), Table 2
configurations, following the official microsoft/CvT `lib/models/cls_cvt.py` wherever the paper is silent or
differs: QuickGELU, attention scale dim**-0.5, LayerNorm eps 1e-5, the class token in stage 3 only (bypassing
the conv projection), no position embedding, LN(cls) -> Linear head. State-dict keys mirror the official code
(`stages.{i}` for its `stage{i}`, `{q,k,v}_reducer` for its `conv_proj_{q,k,v}`). Checked against HF
transformers `CvtForImageClassification` by tests/parity/test_cvt.py.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial

import torch
from torch import Tensor, nn

from ..layers import (
    Conv2d,
    ConvEmbed,
    Mlp,
    ReducedAttention,
    activation,
    check_input,
    drop_path,
    drop_path_rates,
    init_weights,
    trunc_normal_,
)
from ..layers.checkpointing import GradCheckpointing
from ..layers.pixel_stats import IMAGENET_MEAN, IMAGENET_STD
from ..registry import build_config, register_model
from .base import HEAD_GROUP, VitkitModel, block_groups, check_at_least, check_divisible, check_per_stage, data_cfg
from .features import feature_info


@dataclass(frozen=True)
class CvTConfig:
    img_size: int | tuple[int, int] = 224
    in_chans: int = 3
    num_classes: int = 1000
    embed_dims: tuple[int, ...] = (64, 192, 384)    # C_i per stage (Table 2)
    depths: tuple[int, ...] = (1, 2, 10)            # N_i blocks per stage
    num_heads: tuple[int, ...] = (1, 3, 6)          # H_i
    patch_sizes: tuple[int, ...] = (7, 3, 3)        # s_i, token-embedding conv kernel
    patch_strides: tuple[int, ...] = (4, 2, 2)      # token-embedding conv stride
    patch_paddings: tuple[int, ...] = (2, 1, 1)
    mlp_ratio: float = 4.0                          # R_i
    qkv_bias: bool = True
    kernel_qkv: int = 3                             # s, conv projection kernel (§3.2)
    stride_q: int = 1
    stride_kv: int = 2                              # "squeezed" K/V (§3.2, Table 7)
    padding_qkv: int = 1
    cls_token: bool = True                          # class token in the last stage (False: mean of its tokens)
    act_layer: str = "quick_gelu"                   # official code; "gelu" reproduces HF transformers' port
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: tuple[float, ...] | float = (0.0, 0.0, 0.1)  # per stage, linear within it (DROP_PATH_RATE)


LayerNorm5 = partial(nn.LayerNorm, eps=1e-5)  # official get_cls_model: partial(LayerNorm, eps=1e-5)


def _conv_bn(dim: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    """The `dw_bn` reducer: depthwise Conv2d (no bias) -> BatchNorm2d, (B, C, H, W) -> (B, C, H', W')."""
    return nn.Sequential(OrderedDict(
        conv=Conv2d(dim, dim, kernel, stride, padding, groups=dim, bias=False),
        bn=nn.BatchNorm2d(dim),
    ))


class CvTBlock(GradCheckpointing, nn.Module):
    """Pre-norm block with convolutional-projection attention: (B, P + N, D), grid -> (B, P + N, D)."""

    def __init__(self, dim: int, num_heads: int, *, mlp_ratio: float, qkv_bias: bool, kernel_qkv: int, stride_q: int,
                 stride_kv: int, padding_qkv: int, num_prefix_tokens: int, drop: float, attn_drop: float,
                 drop_path_rate: float, act_layer: type[nn.Module]):
        super().__init__()
        k, p = kernel_qkv, padding_qkv
        self.norm1 = LayerNorm5(dim)
        self.attn = ReducedAttention(
            dim, dim, num_heads, qkv_bias=qkv_bias, reduce_first=True, num_prefix_tokens=num_prefix_tokens,
            q_reducer=_conv_bn(dim, k, stride_q, p), k_reducer=_conv_bn(dim, k, stride_kv, p),
            v_reducer=_conv_bn(dim, k, stride_kv, p),
            # Official code quirk: `self.scale = dim_out ** -0.5`, the full width, not head_dim ** -0.5 (the
            # paper gives no scale); pretrained weights expect it.
            scale=dim ** -0.5, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = drop_path(drop_path_rate)
        self.norm2 = LayerNorm5(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)

    def forward(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        """x: (B, P + N, D) with N = H·W -> (B, P + N, D)."""
        x = x + self.drop_path(self.attn(self.norm1(x), grid)[0])
        return x + self.drop_path(self.mlp(self.norm2(x)))


class CvTStage(nn.Module):
    """Convolutional token embedding, then the class token (last stage only), then blocks:
    map (B, C_in, H, W) -> tokens (B, P + N, D) on the grid (H', W')."""

    def __init__(self, patch_embed: ConvEmbed, blocks: list[CvTBlock], dim: int, with_cls: bool, drop: float):
        super().__init__()
        self.patch_embed = patch_embed
        self.pos_drop = nn.Dropout(drop) if drop > 0 else nn.Identity()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if with_cls else None
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """x: (B, C_in, H, W) -> tokens (B, P + N, D) with P = 1 if this stage has the class token, and (H', W')."""
        x, grid = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # -> (B, 1 + N, D)
        x = self.pos_drop(x)
        for blk in self.blocks:
            x = blk(x, grid)
        return x, grid


class CvT(VitkitModel):
    """CvT: (B, C, H, W) -> logits (B, num_classes). Stages 1–2 hand on a map; stage 3 carries the class token."""

    hierarchical = True
    weight_layout = "CvT"
    # transformers' ConvNextImageProcessor as configured for microsoft/cvt-* (crop_pct 224/256; the 384 models
    # warp to 384×384)
    data_configs = (("cvt_*_384", {"hf": data_cfg(IMAGENET_MEAN, IMAGENET_STD, "bicubic", 1.0, "squash")}),
                    ("cvt_*", {"hf": data_cfg(IMAGENET_MEAN, IMAGENET_STD, "bicubic", 224 / 256)}))

    def __init__(self, cfg: CvTConfig):
        if isinstance(cfg.drop_path_rate, (int, float)):
            cfg = replace(cfg, drop_path_rate=(float(cfg.drop_path_rate),) * len(cfg.depths))
        validate_config(cfg)
        super().__init__(cfg, num_features=cfg.embed_dims[-1])
        act = activation(cfg.act_layer)
        stages, in_chans = [], cfg.in_chans
        for i, D in enumerate(cfg.embed_dims):
            with_cls = cfg.cls_token and i == len(cfg.depths) - 1
            embed = ConvEmbed(in_chans, D, cfg.patch_sizes[i], cfg.patch_strides[i], cfg.patch_paddings[i],
                              norm_layer=LayerNorm5)
            blocks = [CvTBlock(D, cfg.num_heads[i], mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias,
                               kernel_qkv=cfg.kernel_qkv, stride_q=cfg.stride_q, stride_kv=cfg.stride_kv,
                               padding_qkv=cfg.padding_qkv, num_prefix_tokens=int(with_cls), drop=cfg.drop_rate,
                               attn_drop=cfg.attn_drop_rate, drop_path_rate=dpr, act_layer=act)
                      for dpr in drop_path_rates(cfg.drop_path_rate[i], cfg.depths[i])]
            stages.append(CvTStage(embed, blocks, D, with_cls, cfg.drop_rate))
            in_chans = D
        self.stages = nn.ModuleList(stages)
        self.norm = LayerNorm5(self.num_features)
        self.head = self.new_head(cfg.num_classes)
        S = len(cfg.depths)
        self.feature_info = feature_info("stages", range(S), cfg.embed_dims,
                                         [math.prod(cfg.patch_strides[:i + 1]) for i in range(S)])
        self.apply(init_weights)
        if cfg.cls_token:
            trunc_normal_(self.stages[-1].cls_token)

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> normalised last-stage tokens (B, P + N, C_3), class token first when there is one."""
        check_input(x, self.config.in_chans, 4)
        x, grid = self.stages[0](x)
        for stage in self.stages[1:]:  # earlier stages carry no class token: their tokens are the whole map
            x, grid = stage(x.transpose(1, 2).reshape(x.shape[0], -1, *grid))  # (B, N, D) -> (B, D, H, W)
        return self.norm(x)  # token-wise, so norm(x)[:, 0] is the official norm(cls)

    def _intermediates(self, x: Tensor) -> Iterator[tuple[Tensor, tuple[int, int]]]:
        """Each stage's tokens (B, P + N_i, C_i) and grid."""
        check_input(x, self.config.in_chans, 4)
        x, grid = self.stages[0](x)
        yield x, grid
        for stage in self.stages[1:]:
            x, grid = stage(x.transpose(1, 2).reshape(x.shape[0], -1, *grid))  # (B, N, D) -> (B, D, H, W)
            yield x, grid

    def _finish(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """x: (B, P + N, D) -> logits (B, num_classes), or pooled features (B, D) with pre_logits."""
        x = x[:, 0] if self.config.cls_token else x.mean(1)
        return x if pre_logits else self.head(x)

    def no_weight_decay(self) -> set[str]:
        return {f"stages.{len(self.stages) - 1}.cls_token"} if self.config.cls_token else set()

    def layer_groups(self) -> list[str]:
        """The stages' blocks in order; a later stage's convolutional embedding and class token join its first
        block."""
        entry = lambda s: (f"stages.{s}.patch_embed.", f"stages.{s}.cls_token", f"stages.{s}.pos_drop.") if s else ()
        return [*(g for s, stage in enumerate(self.stages)
                  for g in block_groups(f"stages.{s}.blocks", len(stage.blocks), entry(s))), HEAD_GROUP]

    def size_dependence(self) -> dict[str, str]:
        return {"height": "none", "width": "none"}  # position comes from the convolutions


def validate_config(cfg: CvTConfig) -> None:
    """ConfigError (one sentence) for stage lists, heads, kernels or strides that cannot build a CvT."""
    check_per_stage(cfg, len(cfg.depths), "depths", ("embed_dims", "num_heads", "patch_sizes", "patch_strides",
                                                     "patch_paddings", "drop_path_rate"))
    check_at_least(cfg, 1, "in_chans", "embed_dims", "num_heads", "patch_sizes", "patch_strides", "kernel_qkv",
                   "stride_q", "stride_kv")
    check_at_least(cfg, 0, "depths", "patch_paddings", "padding_qkv", "num_classes")
    for i, (d, h) in enumerate(zip(cfg.embed_dims, cfg.num_heads)):
        check_divisible(f"embed_dims[{i}]", d, f"num_heads[{i}]", h, "choose num_heads dividing each stage's embed_dims")
    activation(cfg.act_layer)


def _cvt(overrides: dict, **base) -> CvT:
    return CvT(build_config(CvTConfig(**base), overrides))


_W24 = {"embed_dims": (192, 768, 1024), "num_heads": (3, 12, 16), "depths": (2, 2, 20),
        "drop_path_rate": (0.0, 0.0, 0.3)}


@register_model
def cvt_13_224(**overrides) -> CvT:
    return _cvt(overrides, depths=(1, 2, 10))


@register_model
def cvt_21_224(**overrides) -> CvT:
    return _cvt(overrides, depths=(1, 4, 16))


@register_model
def cvt_13_384(**overrides) -> CvT:
    return _cvt(overrides, img_size=384, depths=(1, 2, 10))


@register_model
def cvt_21_384(**overrides) -> CvT:
    return _cvt(overrides, img_size=384, depths=(1, 4, 16))


@register_model
def cvt_w24_384(**overrides) -> CvT:
    return _cvt(overrides, img_size=384, **_W24)
