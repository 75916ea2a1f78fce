"""Intermediate features in timm's convention, written once for every family (issue 14).

A model's *levels* are its blocks (isotropic models: ViT, DeiT, ViViT, TimeSformer) or its stages (hierarchical
models: Swin, CvT, MViT, the small ResNet); `feature_info` has one entry per level (timm's keys: `num_chs`,
`reduction` = input side / map side, `module` = the last module of the level). A family provides three hooks
and `VitkitModel` (models/base.py) does the rest:

- `_intermediates(x)`: a generator yielding, after each level, its running tensor and the token grid
  ((H, W) for images, (T, H, W) for videos);
- `_split_tokens(x, grid)`: that tensor -> (prefix tokens (B, P, C) or None, patch tokens (B, N, C));
- `_finish(x, grid)`: the tail of `forward_features` after the last level (its final norm, pooling over frames).

This module holds the pieces they share: index selection (timm's `feature_take_indices`), the NLC / NCHW
(NCTHW for videos) formats, the per-frame class-token split, `FeatureInfo` and the `features_only` wrapper.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import to_map

OUTPUT_FORMATS = ("NCHW", "NCTHW", "NLC")  # NCHW and NCTHW both mean a channels-first map of the token grid


class FeatureInfo(list):
    """One dict per level, {"num_chs", "reduction", "module"}, with timm's accessors."""

    def channels(self) -> list[int]:
        return [f["num_chs"] for f in self]

    def reduction(self) -> list[int]:
        return [f["reduction"] for f in self]

    def module_name(self) -> list[str]:
        return [f["module"] for f in self]


def feature_info(container: str, ends: Iterable[int], channels: Iterable[int],
                 reductions: Iterable[int]) -> FeatureInfo:
    """Levels ending at modules `{container}.{end}` with the given widths and strides."""
    return FeatureInfo(dict(num_chs=int(c), reduction=int(r), module=f"{container}.{e}")
                       for e, c, r in zip(ends, channels, reductions))


def feature_take_indices(num_levels: int, indices: int | Sequence[int] | None) -> tuple[list[int], int]:
    """timm's rule: None takes every level, an int n the last n, a sequence those levels (negative from the end).
    Returns the absolute indices and the largest; ConfigError for an index out of range."""
    if indices is None:
        indices = num_levels
    if isinstance(indices, int):
        if not 0 < indices <= num_levels:
            raise ConfigError(f"cannot take the last {indices} of {num_levels} feature levels; use 1 to {num_levels}")
        take = list(range(num_levels - indices, num_levels))
    else:
        take = [i + num_levels if i < 0 else i for i in indices]
        bad = [i for i, t in zip(indices, take) if not 0 <= t < num_levels]
        if bad or not take:
            raise ConfigError(f"feature indices {list(indices)} must be non-empty and each within "
                              f"{-num_levels} to {num_levels - 1} (the model has {num_levels} levels)")
    return take, max(take)


def check_output_fmt(output_fmt: str) -> None:
    if output_fmt not in OUTPUT_FORMATS:
        raise ConfigError(f"output_fmt must be one of {', '.join(OUTPUT_FORMATS)}, got {output_fmt!r}")


def format_tokens(patches: Tensor, grid: tuple[int, ...], output_fmt: str) -> Tensor:
    """Patch tokens (B, N, C) in row-major grid order -> (B, N, C) for NLC, else the map (B, C, *grid)."""
    return patches if output_fmt == "NLC" else to_map(patches, grid).contiguous()  # -> (B, C, [T,] H, W)


def split_prefix(x: Tensor, grid: tuple[int, ...]) -> tuple[Tensor | None, Tensor]:
    """(B, P + N, C) with N = prod(grid) -> prefix (B, P, C) (None when P = 0) and patches (B, N, C)."""
    P = x.shape[1] - math.prod(grid)
    return (x[:, :P] if P else None), x[:, P:]


def split_frame_prefix(x: Tensor, grid: tuple[int, int, int]) -> tuple[Tensor, Tensor]:
    """Per-frame sequences (B·T, 1 + H·W, C), class token first -> the T class tokens (B, T, C) and the patches
    (B, T·H·W, C) in (t, h, w) order."""
    T = grid[0]
    x = x.reshape(-1, T, *x.shape[1:])  # (B·T, 1 + S, C) -> (B, T, 1 + S, C)
    return x[:, :, 0], x[:, :, 1:].flatten(1, 2)  # -> (B, T, C), (B, T·S, C)


def default_out_indices(model: nn.Module) -> int:
    """timm's features_only defaults: every stage of a hierarchical model, the last 3 blocks of an isotropic one."""
    n = len(model.feature_info)
    return n if model.hierarchical else min(3, n)


class FeatureBackbone(nn.Module):
    """`create_model(name, features_only=True, out_indices=...)`: forward gives the list of maps at `out_indices`
    (timm's FeatureGetterNet). Levels past the last index and the head are pruned away; `feature_info` describes
    the outputs. Images (B, C, H, W) -> [(B, C_i, H / r_i, W / r_i)]; videos give (B, C_i, T_i, H / r_i, W / r_i)."""

    def __init__(self, model: nn.Module, out_indices: int | Sequence[int] | None = None, norm: bool = False,
                 output_fmt: str = "NCHW", prune: bool = True):
        super().__init__()
        check_output_fmt(output_fmt)
        if out_indices is None:
            out_indices = default_out_indices(model)
        if prune:
            out_indices = model.prune_intermediate_layers(out_indices, prune_norm=not norm)
        else:
            out_indices = feature_take_indices(len(model.feature_info), out_indices)[0]
        self.model = model
        self.out_indices = out_indices
        self.norm = norm
        self.output_fmt = output_fmt
        self.feature_info = FeatureInfo(model.feature_info[i] for i in out_indices)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: (B, C, H, W) or (B, C, T, H, W) -> one map per out index."""
        return self.model.forward_intermediates(x, indices=self.out_indices, norm=self.norm,
                                                output_fmt=self.output_fmt, intermediates_only=True)
