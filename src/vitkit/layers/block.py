"""The pre-norm transformer block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x))).

The attention is injected (`attn_layer`, as in timm): any class or factory called as
`attn_layer(dim, num_heads, qkv_bias=..., attn_drop=..., proj_drop=...)`, by default the shared `Attention`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import Tensor, nn

from .attention import Attention
from .checkpointing import GradCheckpointing
from .drop_path import drop_path
from .mlp import Mlp

LayerNorm6 = partial(nn.LayerNorm, eps=1e-6)  # ViT/DeiT/TimeSformer/ViViT/MViT (Flax and timm default)


class Block(GradCheckpointing, nn.Module):
    """Pre-norm transformer block over independent sequences: (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path_rate: float = 0.0, norm_layer: type[nn.Module] = LayerNorm6,
                 act_layer: type[nn.Module] = nn.GELU, attn_layer: Callable[..., nn.Module] = Attention):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = attn_layer(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path1 = drop_path(drop_path_rate)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.drop_path2 = drop_path(drop_path_rate)

    def forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """x: (B, N, D) -> (B, N, D)."""
        x = x + self.drop_path1(self.attn(self.norm1(x), bias))
        return x + self.drop_path2(self.mlp(self.norm2(x)))
