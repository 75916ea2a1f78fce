"""Attention over a reduced token map: CvT's convolutional projection and MViT's pooling attention in one layer.

Queries, keys and values are computed from the token map, each optionally *reduced* by a pluggable module
(a depthwise strided conv + BatchNorm for CvT, arXiv 2103.15808 §3.2; a strided pooling for MViT,
arXiv 2104.11227 §3.1) before the shared attention core `attend` runs. The query grid after its reducer is
the output grid, so a stride on Q downsamples the sequence (MViT) and a stride on K/V only makes attention
cheaper (CvT). Prefix (class) tokens never go through a reducer: they are split off before it and
concatenated back in front after it, as in the official CvT, MViT, timm and torchvision code.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .attention import attend, from_heads, qkv_to_heads, to_heads
from .linear import Linear


def to_map(x: Tensor, grid: tuple[int, ...]) -> Tensor:
    """Tokens (B', N, C) in row-major grid order -> channels-first map (B', C, *grid).

    A view in channels-last memory order when x is contiguous in its last two dims (no copy): the CPU
    (oneDNN) depthwise conv and pooling run ~3x faster on it than on a transposed copy, and their
    channels-last output flattens back to contiguous tokens in `from_map`."""
    m = x.reshape(x.shape[0], *grid, x.shape[2])  # (B', N, C) -> (B', *grid, C)
    # explicit non-negative permutation: the ONNX exporter writes movedim(-1, 1) as an invalid Transpose
    return m.permute(0, m.ndim - 1, *range(1, m.ndim - 1))  # -> (B', C, *grid)


def from_map(x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
    """Channels-first map (B', C, *grid) -> tokens (B', N, C) and the grid."""
    return x.flatten(2).transpose(1, 2), tuple(x.shape[2:])  # (B', C, *grid) -> (B', N, C)


class ReducedAttention(nn.Module):
    """Multi-head attention whose Q, K, V come from a reduced token map: (B, P + N, dim) -> (B, P + N', dim_out).

    P = `num_prefix_tokens` class tokens come first, then N = prod(grid) patch tokens in row-major grid order.
    A *reducer* is any module mapping a channels-first map (B', C, *grid) -> (B', C, *grid'); None is identity.
    The output has the query's grid: N' = prod(q_grid), returned with the tokens.

    Two orders, chosen by `reduce_first`:

    - ``reduce_first=True`` (CvT): the dim-wide map (B, dim, *grid) goes through each of `q/k/v_reducer`,
      prefix tokens are concatenated back, then separate linears `proj_q/proj_k/proj_v` (dim -> dim_out, bias
      `qkv_bias`) and the split into h heads of d = dim_out / h.
    - ``reduce_first=False`` (MViT): one fused linear `qkv` (dim -> 3·dim_out) and the split into heads first;
      the reducers then run per head on (B·h, d, *grid) maps.

    After reduction and prefix concatenation, optional token-wise `q_norm/k_norm/v_norm` act on the head dim d
    of (B, h, P + N', d), in both orders, prefix tokens included: MViT's LayerNorm after pooling normalises the class
    token too (timm `mvitv2.py`, torchvision `Pool`), so it cannot live inside the reducer. CvT's BatchNorm does
    belong in its reducer, because there the class token bypasses it.

    `rel_pos` adds a bias to the logits computed from the unscaled q (B, h, P + Nq, d) (MViT v2's decomposed
    relative positions): while training, `rel_pos(q, q_grid, k_grid, scale)` gives features (B, h, P + Nq, E) and
    (P + Nk, E) appended to q and k, so the bias rides in q·kᵀ; without gradients `rel_pos.bias(q, q_grid, k_grid)`
    gives it as a (B, h, P + Nq, P + Nk) mask for SDPA.
    `residual_pooling` adds the pooled q to the attention output before the projection (MViT v2);
    `residual_with_prefix=False` leaves the prefix tokens out of that sum (torchvision/SlowFast video MViT v2),
    True includes them (timm, facebookresearch/mvit).
    `scale` None is d**-0.5 (CvT passes dim_out**-0.5, its official code's choice); attention dropout `attn_drop`
    is applied only while training, `proj_drop` after the output projection `proj` (dim_out -> dim_out).
    """

    def __init__(self, dim: int, dim_out: int, num_heads: int, *, qkv_bias: bool = True,
                 q_reducer: nn.Module | None = None, k_reducer: nn.Module | None = None,
                 v_reducer: nn.Module | None = None, reduce_first: bool = False, num_prefix_tokens: int = 0,
                 scale: float | None = None, attn_drop: float = 0.0, proj_drop: float = 0.0,
                 rel_pos: nn.Module | None = None, residual_pooling: bool = False, residual_with_prefix: bool = True,
                 q_norm: nn.Module | None = None, k_norm: nn.Module | None = None, v_norm: nn.Module | None = None):
        super().__init__()
        if dim_out % num_heads:
            raise ValueError(f"output dim {dim_out} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.dim_out = dim_out
        self.num_prefix_tokens = num_prefix_tokens
        self.reduce_first = reduce_first
        self.scale = scale  # None: head_dim ** -0.5 inside SDPA
        self.attn_drop = attn_drop
        self.q_reducer, self.k_reducer, self.v_reducer = q_reducer, k_reducer, v_reducer
        if reduce_first:
            self.proj_q = Linear(dim, dim_out, bias=qkv_bias)
            self.proj_k = Linear(dim, dim_out, bias=qkv_bias)
            self.proj_v = Linear(dim, dim_out, bias=qkv_bias)
        else:
            self.qkv = Linear(dim, dim_out * 3, bias=qkv_bias)
        self.q_norm, self.k_norm, self.v_norm = q_norm, k_norm, v_norm
        self.rel_pos = rel_pos
        self.residual_pooling = residual_pooling
        self.residual_with_prefix = residual_with_prefix
        self.proj = Linear(dim_out, dim_out)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()

    @property
    def dropout_p(self) -> float:
        return self.attn_drop if self.training else 0.0

    def _reduce(self, x: Tensor, grid: tuple[int, ...], reducer: nn.Module | None) -> tuple[Tensor, tuple[int, ...]]:
        """Tokens (B', P + N, C) -> (B', P + N', C) with the patch tokens reduced; prefix tokens pass through."""
        if reducer is None:
            return x, grid
        P = self.num_prefix_tokens
        return self._reduce_map(x[:, :P], to_map(x[:, P:], grid), grid, reducer)

    def _reduce_map(self, prefix: Tensor, m: Tensor, grid: tuple[int, ...],
                    reducer: nn.Module | None) -> tuple[Tensor, tuple[int, ...]]:
        """prefix (B', P, C) and map (B', C, *grid) -> tokens (B', P + N', C) of the reduced map, and grid'."""
        y, grid = from_map(reducer(m) if reducer is not None else m)
        return (torch.cat([prefix, y], dim=1) if prefix.shape[1] else y), grid

    def _reduce_heads(self, x: Tensor, grid: tuple[int, ...],
                      reducer: nn.Module | None) -> tuple[Tensor, tuple[int, ...]]:
        """Per-head reduction: (B, h, P + N, d) -> (B, h, P + N', d), heads folded into the batch."""
        if reducer is None:
            return x, grid
        B, h, N, d = x.shape
        y, grid = self._reduce(x.reshape(B * h, N, d), grid, reducer)  # (B, h, N, d) -> (B·h, N, d)
        return y.reshape(B, h, -1, d), grid  # (B·h, N', d) -> (B, h, N', d)

    def forward(self, x: Tensor, grid: tuple[int, ...]) -> tuple[Tensor, tuple[int, ...]]:
        """x: (B, P + N, dim) with N = prod(grid), grid (H, W) or (T, H, W)
        -> (B, P + N', dim_out) with N' = prod(q_grid), and q_grid."""
        assert self.num_prefix_tokens + math.prod(grid) == x.shape[1], (x.shape, grid, self.num_prefix_tokens)
        if self.reduce_first:
            P = self.num_prefix_tokens
            prefix, m = x[:, :P], to_map(x[:, P:], grid)  # one channels-first map shared by the three reducers
            q, q_grid = self._reduce_map(prefix, m, grid, self.q_reducer)
            k, k_grid = self._reduce_map(prefix, m, grid, self.k_reducer)
            v, _ = self._reduce_map(prefix, m, grid, self.v_reducer)
            h = self.num_heads
            q, k, v = to_heads(self.proj_q(q), h), to_heads(self.proj_k(k), h), to_heads(self.proj_v(v), h)
        else:
            q, k, v = qkv_to_heads(self.qkv(x), self.num_heads)  # each (B, h, N, d)
            q, q_grid = self._reduce_heads(q, grid, self.q_reducer)
            k, k_grid = self._reduce_heads(k, grid, self.k_reducer)
            v, _ = self._reduce_heads(v, grid, self.v_reducer)
        if self.q_norm is not None:
            q = self.q_norm(q)
        if self.k_norm is not None:
            k = self.k_norm(k)
        if self.v_norm is not None:
            v = self.v_norm(v)
        scale = q.shape[-1] ** -0.5 if self.scale is None else self.scale
        q_att, k_att, bias = q, k, None
        if self.rel_pos is not None and torch.is_grad_enabled():
            # training: the bias as E extra channels of q and k, (B, h, N, d) -> (B, h, N, d + E)
            q_rel, k_rel = self.rel_pos(q, q_grid, k_grid, scale)
            q_att = torch.cat([q, q_rel.to(q.dtype)], -1)
            k_att = torch.cat([k, k_rel.to(k.dtype).expand(*k.shape[:2], -1, -1)], -1)
        elif self.rel_pos is not None:  # inference: a broadcast-built bias, SDPA's mask
            bias = self.rel_pos.bias(q, q_grid, k_grid)
        o = attend(q_att, k_att, v, bias, self.dropout_p, scale)  # (B, h, P + Nq, d)
        if self.residual_pooling:
            if self.residual_with_prefix or not self.num_prefix_tokens:
                o = o + q
            else:
                P = self.num_prefix_tokens
                o = torch.cat([o[:, :, :P], o[:, :, P:] + q[:, :, P:]], dim=2)
        return self.proj_drop(self.proj(from_heads(o))), q_grid  # (B, h, Nq, d) -> (B, Nq, dim_out)
