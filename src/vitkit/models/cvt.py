"""CvT (Wu et al., "CvT: Introducing Convolutions to Vision Transformers", arXiv 2103.15808): §3.1 convolutional
token embedding, §3.2 convolutional projection (depthwise conv + BatchNorm, K/V stride 2, "squeezed"), Table 2
configurations, following the official microsoft/CvT `lib/models/cls_cvt.py` wherever the paper is silent or
differs: QuickGELU, attention scale dim**-0.5, LayerNorm eps 1e-5, the class token in stage 3 only (bypassing
the conv projection), no position embedding, LN(cls) -> Linear head. State-dict keys mirror the official code
(`stages.{i}` for its `stage{i}`, `{q,k,v}_reducer` for its `conv_proj_{q,k,v}`). Checked against HF
transformers `CvtForImageClassification` by tests/parity/test_cvt.py.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import partial

import torch
from torch import Tensor, nn

from ..errors import ConfigError, InputError
from ..layers import (
    Linear,
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
from ..registry import build_config, register_model
from .base import VitkitModel

LayerNorm5 = partial(nn.LayerNorm, eps=1e-5)  # official get_cls_model: partial(LayerNorm, eps=1e-5)
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


def _conv_bn(dim: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    """The `dw_bn` reducer: depthwise Conv2d (no bias) -> BatchNorm2d, (B, C, H, W) -> (B, C, H', W')."""
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(dim, dim, kernel, stride, padding, groups=dim, bias=False),
        bn=nn.BatchNorm2d(dim),
    ))


class ConvEmbed(nn.Module):
    """Convolutional token embedding (§3.1): overlapping strided conv -> LayerNorm, (B, C, H, W) -> (B, N, D)."""

    def __init__(self, in_chans: int, embed_dim: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.kernel, self.padding = kernel, padding
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel, stride, padding)
        self.norm = LayerNorm5(embed_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """x: (B, C, H, W) -> tokens (B, H'·W', D) and the grid (H', W')."""
        if min(x.shape[-2:]) + 2 * self.padding < self.kernel:
            raise InputError(f"feature map {tuple(x.shape[-2:])} is too small for the {self.kernel}×{self.kernel} "
                             f"token-embedding conv; use a larger image")
        x = self.proj(x)
        grid = tuple(x.shape[-2:])
        return self.norm(x.flatten(2).transpose(1, 2)), grid  # (B, D, H', W') -> (B, N, D)


class CvTBlock(GradCheckpointing, nn.Module):
    """Pre-norm block with convolutional-projection attention: (B, P + N, D), grid -> (B, P + N, D)."""

    def __init__(self, dim: int, num_heads: int, cfg: CvTConfig, num_prefix_tokens: int, drop_path_rate: float,
                 act_layer: type[nn.Module]):
        super().__init__()
        k, p = cfg.kernel_qkv, cfg.padding_qkv
        self.norm1 = LayerNorm5(dim)
        self.attn = ReducedAttention(
            dim, dim, num_heads, qkv_bias=cfg.qkv_bias, reduce_first=True, num_prefix_tokens=num_prefix_tokens,
            q_reducer=_conv_bn(dim, k, cfg.stride_q, p), k_reducer=_conv_bn(dim, k, cfg.stride_kv, p),
            v_reducer=_conv_bn(dim, k, cfg.stride_kv, p),
            # Official code quirk: `self.scale = dim_out ** -0.5`, the full width, not head_dim ** -0.5 (the
            # paper gives no scale); pretrained weights expect it.
            scale=dim ** -0.5, attn_drop=cfg.attn_drop_rate, proj_drop=cfg.drop_rate)
        self.drop_path = drop_path(drop_path_rate)
        self.norm2 = LayerNorm5(dim)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio), act_layer=act_layer, drop=cfg.drop_rate)

    def forward(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        """x: (B, P + N, D) with N = H·W -> (B, P + N, D)."""
        x = x + self.drop_path(self.attn(self.norm1(x), grid)[0])
        return x + self.drop_path(self.mlp(self.norm2(x)))


class CvTStage(nn.Module):
    """ConvEmbed then blocks: map (B, C_in, H, W) -> map (B, D, H', W') and the class token (B, 1, D) or None."""

    def __init__(self, in_chans: int, i: int, cfg: CvTConfig, with_cls: bool, act_layer: type[nn.Module]):
        super().__init__()
        D = cfg.embed_dims[i]
        self.patch_embed = ConvEmbed(in_chans, D, cfg.patch_sizes[i], cfg.patch_strides[i], cfg.patch_paddings[i])
        self.pos_drop = nn.Dropout(cfg.drop_rate) if cfg.drop_rate > 0 else nn.Identity()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D)) if with_cls else None
        self.blocks = nn.ModuleList([
            CvTBlock(D, cfg.num_heads[i], cfg, int(with_cls), dpr, act_layer)
            for dpr in drop_path_rates(cfg.drop_path_rate[i], cfg.depths[i])
        ])

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

    def __init__(self, cfg: CvTConfig):
        super().__init__()
        if isinstance(cfg.drop_path_rate, (int, float)):
            cfg = replace(cfg, drop_path_rate=(float(cfg.drop_path_rate),) * len(cfg.depths))
        per_stage = {f: getattr(cfg, f) for f in ("embed_dims", "num_heads", "patch_sizes", "patch_strides",
                                                  "patch_paddings", "drop_path_rate")}
        bad = {f: v for f, v in per_stage.items() if len(v) != len(cfg.depths)}
        if bad:
            raise ConfigError(f"per-stage options must have one value per stage ({len(cfg.depths)} from depths), "
                              f"got {', '.join(f'{f}={v}' for f, v in bad.items())}")
        self.config = cfg
        act = activation(cfg.act_layer)
        last = len(cfg.depths) - 1
        self.num_classes, self.num_features = cfg.num_classes, cfg.embed_dims[-1]
        self.stages = nn.ModuleList([
            CvTStage(cfg.in_chans if i == 0 else cfg.embed_dims[i - 1], i, cfg, cfg.cls_token and i == last, act)
            for i in range(len(cfg.depths))
        ])
        self.norm = LayerNorm5(self.num_features)
        self.head = Linear(self.num_features, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
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

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """x: (B, P + N, D) -> logits (B, num_classes), or pooled features (B, D) with pre_logits."""
        x = x[:, 0] if self.config.cls_token else x.mean(1)
        return x if pre_logits else self.head(x)

    def no_weight_decay(self) -> set[str]:
        return {f"stages.{len(self.stages) - 1}.cls_token"} if self.config.cls_token else set()


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
