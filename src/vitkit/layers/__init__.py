"""Shared building blocks used by every family."""

from .attention import Attention, attend
from .block import Block, LayerNorm6
from .config import LayerConfig, layer_config, set_layer_config
from .conv import Conv2d, Conv3d
from .drop_path import DropPath, drop_path, drop_path_rates
from .embed import ConvEmbed, PatchEmbed, TubeletEmbed, check_input
from .init import init_weights, trunc_normal_
from .linear import Linear, set_onednn_linear
from .mlp import Mlp, QuickGELU, TanhGELU, activation
from .pos_embed import relative_position_index, resample_abs_pos_embed, resample_grid
from .reduced_attention import ReducedAttention, from_map, to_map

__all__ = [
    "Attention",
    "Block",
    "Conv2d",
    "Conv3d",
    "ConvEmbed",
    "DropPath",
    "LayerConfig",
    "LayerNorm6",
    "Linear",
    "Mlp",
    "PatchEmbed",
    "QuickGELU",
    "ReducedAttention",
    "TanhGELU",
    "TubeletEmbed",
    "activation",
    "attend",
    "check_input",
    "drop_path",
    "drop_path_rates",
    "from_map",
    "init_weights",
    "layer_config",
    "relative_position_index",
    "resample_abs_pos_embed",
    "resample_grid",
    "set_layer_config",
    "set_onednn_linear",
    "to_map",
    "trunc_normal_",
]
