"""Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words", arXiv 2010.11929): §3.1 Eq. 1–4,
Table 1 sizes (Ti/S from the official vit_jax configs). Learned 1-D position embedding with a class token,
pre-norm encoder, final LayerNorm, linear head (the fine-tuning head; the pre-training tanh layer is not used
by any released checkpoint of these names). GELU is exact, LayerNorm eps 1e-6, as in timm, whose state-dict
keys these are. Checked against timm `vision_transformer.py` by tests/parity/test_vit_deit.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..layers import Block, LayerNorm6, PatchEmbed, drop_path_rates, init_weights, resample_abs_pos_embed, trunc_normal_
from ..layers.pixel_stats import IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD
from ..layers.tokens import AttentionCall, TokenLayout, TokenSpace
from ..registry import build_config, register_model
from .base import (
    PositionTable,
    VitkitModel,
    check_at_least,
    check_choice,
    check_divisible,
    check_patch_multiple,
    data_cfg,
    to_2tuple,
)
from .features import feature_info


@dataclass(frozen=True)
class ViTConfig:
    img_size: int | tuple[int, int] = 224  # H = W
    patch_size: int = 16                   # P
    in_chans: int = 3                      # C
    num_classes: int = 1000
    embed_dim: int = 768                   # D
    depth: int = 12                        # L
    num_heads: int = 12                    # k heads in MSA (Table 1)
    mlp_ratio: float = 4.0                 # MLP size / D
    qkv_bias: bool = True
    global_pool: str = "token"             # "token": y = LN(z_L^0) (Eq. 4); "avg": mean of patch tokens
    distilled: bool = False                # DeiT: a distillation token after the class token, and a second head
    drop_rate: float = 0.0                 # dropout after the position embedding and every dense layer but qkv
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0            # stochastic depth, linear over blocks


_TIMM_IN1K = data_cfg(IMAGENET_MEAN, IMAGENET_STD, "bicubic", 0.9)  # timm's DeiT weights; 1.0 at 384


class VisionTransformer(VitkitModel):
    """ViT / DeiT: (B, C, H, W) -> logits (B, num_classes). Token order is [cls, (dist), patches]."""

    weight_layout = "ViT"  # DeiT's keys are ViT's (timm's), with the distillation token and head when distilled
    # ViT: timm's default (augreg) weights, Inception statistics, crop 0.9 (1.0 at 384); torchvision's vit_b_16
    # (ImageNet statistics, bilinear, 224/256). DeiT (deit.py builds this class): timm's weights.
    data_configs = (
        ("vit_*_384", {"timm": data_cfg(INCEPTION_MEAN, INCEPTION_STD, "bicubic", 1.0)}),
        ("vit_*", {"timm": data_cfg(INCEPTION_MEAN, INCEPTION_STD, "bicubic", 0.9),
                   "torchvision": data_cfg(IMAGENET_MEAN, IMAGENET_STD, "bilinear", 224 / 256)}),
        ("deit_*_384", {"timm": {**_TIMM_IN1K, "crop_pct": 1.0}}),
        ("deit_*", {"timm": _TIMM_IN1K}),
    )

    def __init__(self, cfg: ViTConfig):
        validate_config(cfg)
        super().__init__(cfg, num_features=cfg.embed_dim)
        D = cfg.embed_dim
        self.num_prefix_tokens = 2 if cfg.distilled else 1
        self.avg_pool = cfg.global_pool == "avg"  # mean of the patch tokens, normalised after pooling (timm's fc_norm)
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, D)
        self.grid_size = tuple(s // cfg.patch_size for s in to_2tuple(cfg.img_size))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, D)) if cfg.distilled else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1], D))
        self.pos_drop = nn.Dropout(cfg.drop_rate) if cfg.drop_rate > 0 else nn.Identity()
        self.blocks = nn.Sequential(*[
            Block(D, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.drop_rate, cfg.attn_drop_rate, dpr)
            for dpr in drop_path_rates(cfg.drop_path_rate, cfg.depth)
        ])
        self.norm = LayerNorm6(D)
        self.head = self.new_head(cfg.num_classes)
        self.head_dist = self.new_head(cfg.num_classes) if cfg.distilled else None
        self.feature_info = feature_info("blocks", range(cfg.depth), [D] * cfg.depth, [cfg.patch_size] * cfg.depth)
        self.apply(init_weights)
        for t in (self.pos_embed, self.cls_token, self.dist_token):
            if t is not None:
                trunc_normal_(t)

    # --- tokens ---------------------------------------------------------------------------------------------
    def _prefix_tokens(self, B: int) -> list[Tensor]:
        tokens = [self.cls_token] + ([self.dist_token] if self.dist_token is not None else [])
        return [t.expand(B, -1, -1) for t in tokens]

    def _pos_embed(self, grid: tuple[int, int]) -> Tensor:
        """(1, P + N, D) for a patch grid; resampled when the input size differs from the config's."""
        if grid == self.grid_size:
            return self.pos_embed
        return resample_abs_pos_embed(self.pos_embed, grid, self.grid_size, self.num_prefix_tokens)

    def _embed(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """x: (B, C, H, W) -> tokens (B, P + N, D) with position embedding, and the patch grid (H/P, W/P)."""
        grid = self.patch_embed.grid(x)
        x = self.patch_embed(x)  # (B, N, D)
        x = torch.cat([*self._prefix_tokens(x.shape[0]), x], dim=1) + self._pos_embed(grid)  # -> (B, P + N, D)
        return self.pos_drop(x), grid

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> tokens (B, P + N, D), layer-normalised unless global_pool is "avg"."""
        x, grid = self._embed(x)
        return self._finish(self.blocks(x), grid)

    def _finish(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        # avg pooling normalises after pooling (timm's fc_norm), token pooling the whole sequence (Eq. 4)
        return x if self.avg_pool else self.norm(x)

    def _intermediates(self, x: Tensor) -> Iterator[tuple[Tensor, tuple[int, int]]]:
        """Tokens (B, P + N, D) after each block."""
        x, grid = self._embed(x)
        for blk in self.blocks:
            x = blk(x)
            yield x, grid

    def _pool(self, x: Tensor) -> Tensor:
        """(B, P + N, D) -> (B, D)."""
        return self.norm(x[:, self.num_prefix_tokens:].mean(1)) if self.avg_pool else x[:, 0]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """x: (B, P + N, D) -> logits (B, num_classes), or pooled features (B, D) with pre_logits. Distilled models
        average the two heads' logits in every mode (the official DeiT code's late fusion; the paper sums
        softmaxes)."""
        if self.head_dist is not None:
            cls_logits, dist_logits = self.forward_heads(x, pre_logits)
            return (cls_logits + dist_logits) / 2
        x = self._pool(x)
        return x if pre_logits else self.head(x)

    def forward_heads(self, x: Tensor, pre_logits: bool = False) -> tuple[Tensor, Tensor]:
        """Distilled models: tokens (B, P + N, D) -> (class-head logits, distillation-head logits)."""
        if self.head_dist is None:
            raise TypeError(f"{type(self).__name__} without distillation token has one head")
        cls, dist = x[:, 0], x[:, 1]
        return (cls, dist) if pre_logits else (self.head(cls), self.head_dist(dist))

    def forward_distill(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images (B, C, H, W) -> the two heads' logits, each (B, num_classes); used by DistillationLoss."""
        return self.forward_heads(self.forward_features(x))

    @classmethod
    def sized_like(cls, cfg) -> VisionTransformer:
        """The image ViT with the sizes of another family's config (shared field names): what a video model
        whose paper starts from an image ViT is initialised from (`VitkitModel.image_model`)."""
        sizes = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio", "qkv_bias")
        return cls(ViTConfig(**{name: getattr(cfg, name) for name in sizes}))

    # --- API ------------------------------------------------------------------------------------------------
    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        if self.head_dist is not None:
            self.head_dist = self.new_head(num_classes)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"} | ({"dist_token"} if self.dist_token is not None else set())

    def size_dependence(self) -> dict[str, str]:
        return {"height": "positions", "width": "positions"}

    def position_tables(self) -> list[PositionTable]:
        return [PositionTable("position embedding", self.pos_embed[0, self.num_prefix_tokens:], self.grid_size)]

    def attention_layout(self, call: AttentionCall) -> TokenLayout:
        """Every block is one sequence over [cls, (dist), patches]."""
        return TokenLayout.joint(TokenSpace(self.num_prefix_tokens, self.patch_embed.grid(call.input)))

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Resample a checkpoint's position embedding to this model's grid (bicubic, prefix tokens kept)."""
        pos = state_dict.get("pos_embed")
        if pos is not None and pos.shape != self.pos_embed.shape:
            n = pos.shape[1] - self.num_prefix_tokens
            side = round(n ** 0.5)
            if side * side != n:
                return state_dict  # not a square grid: let the strict load report the mismatch
            state_dict = dict(state_dict, pos_embed=resample_abs_pos_embed(pos, self.grid_size, (side, side),
                                                                            self.num_prefix_tokens))
        return state_dict


def validate_config(cfg: ViTConfig) -> None:
    """ConfigError (one sentence) for sizes, heads or choices that cannot build a ViT."""
    check_at_least(cfg, 1, "patch_size", "in_chans", "embed_dim", "num_heads")
    check_at_least(cfg, 0, "depth", "num_classes")
    check_choice("global_pool", cfg.global_pool, ("token", "avg"))
    check_divisible("embed_dim", cfg.embed_dim, "num_heads", cfg.num_heads)
    check_patch_multiple(cfg.img_size, cfg.patch_size)


def _vit(overrides: dict, **base) -> VisionTransformer:
    return VisionTransformer(build_config(ViTConfig(**base), overrides))


# Table 1 sizes (Ti and S from the official vit_jax configs); DeiT's models use the same ones.
_TINY = dict(embed_dim=192, depth=12, num_heads=3)
_SMALL = dict(embed_dim=384, depth=12, num_heads=6)
_BASE = dict(embed_dim=768, depth=12, num_heads=12)
_LARGE = dict(embed_dim=1024, depth=24, num_heads=16)
_HUGE = dict(embed_dim=1280, depth=32, num_heads=16)


@register_model
def vit_tiny_patch16_224(**overrides) -> VisionTransformer:
    return _vit(overrides, **_TINY)


@register_model
def vit_small_patch16_224(**overrides) -> VisionTransformer:
    return _vit(overrides, **_SMALL)


@register_model
def vit_base_patch16_224(**overrides) -> VisionTransformer:
    return _vit(overrides, **_BASE)


@register_model
def vit_base_patch32_224(**overrides) -> VisionTransformer:
    return _vit(overrides, patch_size=32, **_BASE)


@register_model
def vit_base_patch16_384(**overrides) -> VisionTransformer:
    return _vit(overrides, img_size=384, **_BASE)


@register_model
def vit_large_patch16_224(**overrides) -> VisionTransformer:
    return _vit(overrides, **_LARGE)


@register_model
def vit_large_patch32_224(**overrides) -> VisionTransformer:
    return _vit(overrides, patch_size=32, **_LARGE)


@register_model
def vit_huge_patch14_224(**overrides) -> VisionTransformer:
    return _vit(overrides, patch_size=14, **_HUGE)
