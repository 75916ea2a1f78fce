"""Learned absolute position embeddings and their resampling to a new token grid, and the index of a window's
relative positions into a relative bias table (Swin's; the weight converters store it where a library does).

Prefix tokens (class, distillation) keep their embeddings; the grid part is interpolated as an image
(bicubic in 2-D with PIL's antialiased kernel as timm, linear in 1-D, trilinear in 3-D). This is the one
resize used for ViT/DeiT (2-D), TimeSformer/ViViT time embeddings (1-D), 3-D grids and ViViT's tube tables
(2-D per frame, then 1-D over time).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_MODES = {1: "linear", 2: "bicubic", 3: "trilinear"}


def resample_grid(grid: Tensor, new_size: tuple[int, ...], antialias: bool = True) -> Tensor:
    """grid: (B, *old_size, D) -> (B, *new_size, D). `antialias=False` gives plain bicubic (a = -0.75), the
    kernel of the official Swin code's bias-table resize."""
    old_size = tuple(grid.shape[1:-1])
    if old_size == tuple(new_size):
        return grid
    dtype = grid.dtype
    x = grid.permute(0, grid.ndim - 1, *range(1, grid.ndim - 1)).float()  # (B, *old, D) -> (B, D, *old)
    mode = _MODES[len(new_size)]
    # The antialiased bicubic kernel is PIL's (a = -0.5) at any scale; timm resamples checkpoints with it.
    antialias = antialias and mode == "bicubic"
    x = F.interpolate(x, size=tuple(new_size), mode=mode, align_corners=False, antialias=antialias)
    return x.permute(0, *range(2, x.ndim), 1).to(dtype)  # (B, D, *new) -> (B, *new, D)


def resample_abs_pos_embed(pos: Tensor, new_size: tuple[int, ...], old_size: tuple[int, ...],
                           num_prefix_tokens: int = 1) -> Tensor:
    """pos: (1, P + prod(old_size), D) -> (1, P + prod(new_size), D); the P prefix rows are kept."""
    if tuple(new_size) == tuple(old_size):
        return pos
    prefix, grid = pos[:, :num_prefix_tokens], pos[:, num_prefix_tokens:]
    grid = grid.reshape(grid.shape[0], *old_size, grid.shape[-1])  # (1, N, D) -> (1, *old, D)
    grid = resample_grid(grid, new_size).flatten(1, -2)  # -> (1, N', D)
    return torch.cat((prefix, grid), dim=1)


def resample_square_pos_embed(pos: Tensor, new_size: tuple[int, int], num_prefix_tokens: int = 1) -> Tensor:
    """pos: (1, P + n·n, D) saved for a square n×n grid (n read from its length) -> (1, P + prod(new_size), D).
    A table whose grid part is not a square is returned unchanged: the strict load then reports the mismatch."""
    n = pos.shape[1] - num_prefix_tokens
    side = math.isqrt(n)
    if side * side != n:
        return pos
    return resample_abs_pos_embed(pos, new_size, (side, side), num_prefix_tokens)


def resample_tube_pos_embed(pos: Tensor, new_grid: tuple[int, int, int], old_grid: tuple[int, int, int],
                            num_prefix_tokens: int) -> Tensor:
    """pos: (1, P + T·H·W, D) -> (1, P + T'·H'·W', D): bicubic over (H, W) per frame (as for the image ViT),
    then linear over T per position; the P prefix rows are kept."""
    if tuple(new_grid) == tuple(old_grid):
        return pos
    (T, H, W), (T2, H2, W2) = old_grid, new_grid
    prefix, grid = pos[:, :num_prefix_tokens], pos[0, num_prefix_tokens:]
    grid = resample_grid(grid.reshape(T, H, W, -1), (H2, W2))  # (T·H·W, D) -> (T, H', W', D)
    grid = resample_grid(grid.reshape(T, H2 * W2, -1).transpose(0, 1), (T2,))  # -> (H'·W', T', D)
    grid = grid.transpose(0, 1).reshape(1, T2 * H2 * W2, -1)  # (H'·W', T', D) -> (1, T'·H'·W', D)
    return torch.cat((prefix, grid), dim=1)


def relative_position_index(M: int) -> Tensor:
    """(M², M²) index into the ((2M-1)², h) bias table for every (query, key) pair of an M×M window:
    (Δy + M - 1)·(2M - 1) + (Δx + M - 1), Δ = query coordinate - key coordinate."""
    coords = torch.stack(torch.meshgrid(torch.arange(M), torch.arange(M), indexing="ij")).flatten(1)  # (2, M²)
    delta = coords[:, :, None] - coords[:, None, :] + (M - 1)  # (2, M², M²), each in [0, 2M-2]
    return delta[0] * (2 * M - 1) + delta[1]
