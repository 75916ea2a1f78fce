"""Shared building blocks used by every family."""

from .attention import Attention, attend
from .block import Block, LayerNorm6
from .drop_path import DropPath, drop_path, drop_path_rates
from .embed import PatchEmbed, TubeletEmbed, check_input
from .init import init_weights, trunc_normal_
from .mlp import Mlp, QuickGELU
from .pos_embed import resample_abs_pos_embed, resample_grid
from .reduced_attention import ReducedAttention

__all__ = [
    "Attention",
    "Block",
    "DropPath",
    "LayerNorm6",
    "Mlp",
    "PatchEmbed",
    "QuickGELU",
    "ReducedAttention",
    "TubeletEmbed",
    "attend",
    "check_input",
    "drop_path",
    "drop_path_rates",
    "init_weights",
    "resample_abs_pos_embed",
    "resample_grid",
    "trunc_normal_",
]
