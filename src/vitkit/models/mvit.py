"""Multiscale Vision Transformers, v1 (Fan et al., arXiv 2104.11227) and v2 (Li et al., arXiv 2112.01526).

v1: §3.1 multi-head pooling attention (MHPA), §3.2 scale stages, Table 2/3 MViT-B, Table 13 stage split
[1, 2, 11, 2], Table 11 separate space/time position embeddings, App. A.1 normalised projection skip.
v2: §4.1 decomposed relative positions (h, w and t) added to the attention logits, §4.2 residual pooling
connection, channel expansion inside attention, Q pooling in every block; image models without class
token and a mean-pool head. Configurations are the official SlowFast / facebookresearch-mvit YAMLs
(SPEC.md §7), and the per-block schedule is derived from them exactly as their builders do.

Pooling attention is the shared `ReducedAttention` (reduce_first=False) with pooling reducers run per head
and LayerNorm after pooling (class token included, as in every reference). Checked against torchvision
`mvit_v1_b` / `mvit_v2_s` and timm `mvitv2_*` by tests/parity/test_mvit.py.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import (
    Conv2d,
    Conv3d,
    ConvEmbed,
    LayerNorm6,
    Linear,
    Mlp,
    ReducedAttention,
    drop_path,
    drop_path_rates,
    from_map,
    init_weights,
    to_map,
    trunc_normal_,
)
from ..layers.checkpointing import GradCheckpointing
from ..layers.pixel_stats import IMAGENET_MEAN, IMAGENET_STD, SLOWFAST_MEAN, SLOWFAST_STD
from ..layers.pos_embed import resample_grid
from ..registry import build_config, register_model
from .base import PositionTable, VitkitModel, check_at_least, check_choice, check_divisible, data_cfg, to_2tuple
from .features import feature_info


@dataclass(frozen=True)
class MViTConfig:
    img_size: int | tuple[int, int] = 224         # H = W of the input
    num_frames: int = 16                           # T input frames (video models; 1 for image models)
    in_chans: int = 3                              # C
    num_classes: int = 400
    patch_kernel: tuple[int, ...] = (3, 7, 7)      # cube₁ kernel (t, h, w); two entries make an image model
    patch_stride: tuple[int, ...] = (2, 4, 4)      # cube₁ stride
    patch_padding: tuple[int, ...] = (1, 3, 3)
    embed_dim: int = 96                            # D of scale₂ (doubles at every later stage)
    num_heads: int = 1                             # heads of scale₂ (double with D)
    depths: tuple[int, ...] = (1, 2, 11, 2)        # blocks per stage (Table 13: [1, 2, 11, 2])
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    pool_mode: str = "conv"                        # pooling function 𝒫 (Table 15): "conv", "avg" or "max"
    pool_kernel: tuple[int, ...] = (3, 3, 3)       # k of 𝒫 for Q and K/V (POOL_KVQ_KERNEL)
    pool_stride_q: tuple[int, ...] = (1, 2, 2)     # s^Q at the first block of every stage but the first
    pool_stride_kv: tuple[int, ...] = (1, 8, 8)    # s^K = s^V in stage 1, divided by s^Q at each stage (adaptive)
    pool_q_every_block: bool = False               # v2: Q pooled (stride 1) in every block, not only at transitions
    expand_attn: bool = False                      # v2: channels expand in the attention (DIM_MUL_IN_ATT), v1: MLP
    residual_pooling: bool = False                 # v2 §4.2: Z = Attn(Q, K, V) + Q
    pos_embed: str = "separate"                    # "separate" (v1 space + time + cls), "relative" (v2), "none"
    class_token: bool = True                       # video models; v2 image models mean-pool instead
    global_pool: str = "token"                     # "token" (class token) or "avg" (mean of all tokens)
    drop_rate: float = 0.0                         # dropout after the position embedding, attention and MLP
    head_drop_rate: float = 0.5                    # dropout before the classifier (MODEL.DROPOUT_RATE)
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.2                    # stochastic depth, linear over blocks


@dataclass(frozen=True)
class BlockSetting:
    """One row of the per-block table (SPEC.md §7.1): widths, heads and pooling of a MultiScaleBlock."""
    dim_in: int
    dim_out: int
    num_heads: int
    kernel_q: tuple[int, ...]
    stride_q: tuple[int, ...]
    kernel_kv: tuple[int, ...]
    stride_kv: tuple[int, ...]


def block_settings(cfg: MViTConfig) -> list[BlockSetting]:
    """The per-block schedule built from the stage split as SlowFast's MViT builder does: at the first block of
    stage s > 1, Q is strided by s^Q, heads double, and the K/V stride is divided by s^Q (adaptive); widths
    double in that block's attention (v2) or in the MLP of the block before it (v1)."""
    depth = sum(cfg.depths)
    stage = [s for s, d in enumerate(cfg.depths) for _ in range(d)]
    starts = {sum(cfg.depths[:s]) for s in range(1, len(cfg.depths))}
    ones = (1,) * len(cfg.patch_kernel)
    width = lambda s: cfg.embed_dim * 2 ** s
    stride_kv, dim_in, rows = tuple(cfg.pool_stride_kv), cfg.embed_dim, []
    for i in range(depth):
        start = i in starts
        stride_q = tuple(cfg.pool_stride_q) if start else ones
        if start:
            stride_kv = tuple(max(k // q, 1) for k, q in zip(stride_kv, cfg.pool_stride_q))
        kernel_q = tuple(cfg.pool_kernel) if start or cfg.pool_q_every_block else ones
        dim_out = width(stage[i]) if cfg.expand_attn else width(stage[min(i + 1, depth - 1)])
        rows.append(BlockSetting(dim_in, dim_out, cfg.num_heads * 2 ** stage[i], kernel_q, stride_q,
                                 tuple(cfg.pool_kernel), stride_kv))
        dim_in = dim_out
    return rows


_CONV = {2: Conv2d, 3: Conv3d}
_POOL = {"max": {2: nn.MaxPool2d, 3: nn.MaxPool3d}, "avg": {2: nn.AvgPool2d, 3: nn.AvgPool3d}}


def _pooling(mode: str, channels: int, kernel: tuple[int, ...], stride: tuple[int, ...]) -> nn.Module | None:
    """The pooling reducer 𝒫(·; k, s) on a channels-first map, padding k // 2; None when k = s = 1."""
    if math.prod(kernel) == 1 and math.prod(stride) == 1:
        return None
    nd, padding = len(kernel), tuple(k // 2 for k in kernel)
    if mode == "conv":  # depthwise over the head dim, weights shared by the heads (folded into the batch)
        return _CONV[nd](channels, channels, kernel, stride, padding, groups=channels, bias=False)
    return _POOL[mode][nd](kernel, stride, padding)


class DecomposedRelPos(nn.Module):
    """MViT v2 decomposed relative positions (§4.1): the logit of query i and key j gets
    q_i · (R_h[h(i) − h(j)] + R_w[w(i) − w(j)] (+ R_t[t(i) − t(j)])), with tables per axis.

    A stride between the query and key grids scales the coordinates of the coarser one (so positions are
    compared in the finer grid's units); a table whose length does not fit the current grids is resampled
    linearly, so any input size runs. Table lengths follow the official code: 2·max(n // s^Q, n // s^K) − 1
    for the spatial axes of an input grid n, 2·T − 1 for time.
    """

    def __init__(self, head_dim: int, grid: tuple[int, ...], stride_q: tuple[int, ...], stride_kv: tuple[int, ...]):
        super().__init__()
        lengths = [2 * max(n // sq, n // skv) - 1 for n, sq, skv in zip(grid, stride_q, stride_kv)]
        if len(grid) == 3:
            lengths[0] = 2 * grid[0] - 1
        tables = [trunc_normal_(nn.Parameter(torch.zeros(n, head_dim))) for n in lengths]
        self.rel_pos_t = tables[0] if len(grid) == 3 else None  # video models only; made first, as before
        self.rel_pos_h, self.rel_pos_w = tables[-2:]

    def tables(self) -> list[Tensor]:
        """The per-axis tables in grid order: [R_t,] R_h, R_w."""
        return [t for t in (self.rel_pos_t, self.rel_pos_h, self.rel_pos_w) if t is not None]

    @staticmethod
    def _table(table: Tensor, n_q: int, n_k: int) -> Tensor:
        """(L, d) -> R (n_q, n_k, d): the embedding of every (query, key) offset along one axis."""
        length = 2 * max(n_q, n_k) - 1
        if table.shape[0] != length:
            table = resample_grid(table[None], (length,))[0]  # linear, as the references: (L, d) -> (L', d)
        q_ratio, k_ratio = max(n_k / n_q, 1.0), max(n_q / n_k, 1.0)
        arange = lambda n: torch.arange(n, device=table.device)
        dist = arange(n_q)[:, None] * q_ratio - arange(n_k)[None, :] * k_ratio + (n_k - 1) * k_ratio
        return table[dist.long()]

    def forward(self, q: Tensor, q_grid: tuple[int, ...], k_grid: tuple[int, ...],
                scale: float = 1.0) -> tuple[Tensor, Tensor]:
        """q: (B, h, P + Nq, d), unscaled, the P prefix tokens first -> features to append to q and to k,
        q_rel (B, h, P + Nq, E) and k_rel (P + Nk, E), E = sum(k_grid), with scale · q_rel · k_relᵀ = the bias
        (B, h, P + Nq, P + Nk), zero on prefix rows and columns.

        k_rel is each key's one-hot coordinate along every axis and q_rel holds q_i · R_a[a(i) − k] / scale for
        every key coordinate k of axis a: appended, the bias rides in the attention's own q·kᵀ product (E more
        channels, 36 for MViTv2-S's 8×14×14 grid), so no (Nq, Nk) bias is built, added or reduced in backward
        (MViTv2-S 16×224 training step on AVX2: 0.93× torchvision with the bias, 1.0× with the features)."""
        B, h, n, d = q.shape
        P = n - math.prod(q_grid)
        r_q = q[:, :, P:].reshape(B, h, *q_grid, d)  # (B, h, Nq, d) -> (B, h, *q_grid, d)
        letters = "xyz"[:len(q_grid)]
        rels = []
        for i, (table, n_q, n_k) in enumerate(zip(self.tables(), q_grid, k_grid)):
            R = self._table(table, n_q, n_k) / scale  # (n_q, n_k, d); 1/scale folded in before any rounding
            # contract d, keeping the query's grid and this axis' key coordinate: (B, h, *q_grid, n_k)
            rel = torch.einsum(f"bn{letters}c,{letters[i]}kc->bn{letters}k", r_q, R)
            rels.append(rel.reshape(B, h, -1, n_k))  # (B, h, Nq, n_k)
        q_rel = F.pad(torch.cat(rels, -1), (0, 0, P, 0))  # (B, h, Nq, E) -> (B, h, P + Nq, E), prefix rows 0
        axes = torch.meshgrid(*(torch.arange(n, device=q.device) for n in k_grid), indexing="ij")
        starts = itertools.accumulate((0, *k_grid[:-1]))
        columns = torch.stack([a.reshape(-1) + s for a, s in zip(axes, starts)], -1)  # (Nk, axes): into E
        k_rel = F.one_hot(columns, sum(k_grid)).sum(1).to(q_rel.dtype)  # (Nk, E), one 1 per axis
        return q_rel, F.pad(k_rel, (0, 0, P, 0))  # prefix keys: zero features

    def bias(self, q: Tensor, q_grid: tuple[int, ...], k_grid: tuple[int, ...]) -> Tensor:
        """The bias itself, (B, h, P + Nq, P + Nk), built by broadcasting the per-axis terms: what SDPA's fused
        kernel takes as a mask when no gradient is needed (there it is cheaper than E extra channels)."""
        q_rel, _ = self(q, q_grid, k_grid)
        B, h, n, _ = q.shape
        P = n - math.prod(q_grid)
        rels, start = [], 0
        for i, n_k in enumerate(k_grid):  # (B, h, Nq, n_k) -> broadcastable to (B, h, *q_grid, *k_grid)
            shape = [1] * len(k_grid)
            shape[i] = n_k
            rels.append(q_rel[:, :, P:, start:start + n_k].reshape(B, h, *q_grid, *shape))
            start += n_k
        Nq, Nk = math.prod(q_grid), math.prod(k_grid)
        partial = rels[0] if len(rels) == 2 else rels[0] + rels[1]  # (.., k_t, k_h, 1): small for video
        if not P:
            return (partial + rels[-1]).reshape(B, h, Nq, Nk)  # (B, h, *q_grid, *k_grid) -> (B, h, Nq, Nk)
        if torch.jit.is_tracing():  # ONNX export: the tracer mis-records the in-place writes below
            return F.pad((partial + rels[-1]).reshape(B, h, Nq, Nk), (P, 0, P, 0))  # -> (B, h, P + Nq, P + Nk)
        # written straight into the patch block of the (B, h, P + Nq, P + Nk) bias: no padding copy
        bias = q.new_empty(B, h, P + Nq, P + Nk)
        bias[:, :, :P].zero_()
        bias[:, :, P:, :P].zero_()
        grid_view = bias[:, :, P:, P:].view(B, h, *q_grid, *k_grid)  # (B, h, Nq, Nk) -> (B, h, *q_grid, *k_grid)
        grid_view.copy_(partial)
        grid_view.add_(rels[-1])
        return bias


def _pool_tokens(x: Tensor, grid: tuple[int, ...], pool: nn.Module, num_prefix_tokens: int) -> Tensor:
    """Pool the patch tokens of (B, P + N, C) on their grid; the P prefix tokens pass through."""
    P = num_prefix_tokens
    y, _ = from_map(pool(to_map(x[:, P:], grid)))
    return torch.cat([x[:, :P], y], dim=1) if P else y


class MultiScaleBlock(GradCheckpointing, nn.Module):
    """Pre-norm block with pooling attention: (B, P + N, dim_in) on `grid` -> (B, P + N', dim_out) on the Q grid.

    When Q is strided, the skip is max-pooled with kernel s + 1 (§3.1, "residual pooling" of v1); when the
    width changes, the skip becomes a Linear of the normalised signal (App. A.1), taken from norm1 when the
    attention expands the channels (v2) or from norm2 when the MLP does (v1).
    """

    def __init__(self, s: BlockSetting, grid: tuple[int, ...], *, mlp_ratio: float, qkv_bias: bool, pool_mode: str,
                 expand_attn: bool, residual_pooling: bool, rel_pos: bool, num_prefix_tokens: int, drop: float,
                 attn_drop: float, drop_path_rate: float):
        super().__init__()
        att_dim = s.dim_out if expand_attn else s.dim_in
        head_dim = att_dim // s.num_heads
        self.num_prefix_tokens = num_prefix_tokens
        self.norm1 = LayerNorm6(s.dim_in)
        reducer = lambda k, st: _pooling(pool_mode, head_dim, k, st)
        q_red = reducer(s.kernel_q, s.stride_q)
        k_red, v_red = reducer(s.kernel_kv, s.stride_kv), reducer(s.kernel_kv, s.stride_kv)
        # LayerNorm after conv pooling only (SlowFast/timm: none after max/avg pooling)
        norm = lambda red: LayerNorm6(head_dim) if red is not None and pool_mode == "conv" else None
        self.attn = ReducedAttention(
            s.dim_in, att_dim, s.num_heads, qkv_bias=qkv_bias, q_reducer=q_red, k_reducer=k_red, v_reducer=v_red,
            reduce_first=False, num_prefix_tokens=num_prefix_tokens, attn_drop=attn_drop, proj_drop=drop,
            rel_pos=DecomposedRelPos(head_dim, grid, s.stride_q, s.stride_kv) if rel_pos else None,
            residual_pooling=residual_pooling, residual_with_prefix=False,  # SlowFast/torchvision: cls not added
            q_norm=norm(q_red), k_norm=norm(k_red), v_norm=norm(v_red))
        self.drop_path1 = drop_path(drop_path_rate)
        needs_proj = s.dim_in != s.dim_out
        self.shortcut_proj_attn = Linear(s.dim_in, s.dim_out) if needs_proj and expand_attn else None
        self.shortcut_pool = None
        if math.prod(s.stride_q) > 1:
            kernel = tuple(st + 1 if st > 1 else st for st in s.stride_q)
            self.shortcut_pool = _POOL["max"][len(kernel)](kernel, s.stride_q, tuple(k // 2 for k in kernel))
        self.norm2 = LayerNorm6(att_dim)
        self.mlp = Mlp(att_dim, int(att_dim * mlp_ratio), s.dim_out, drop=drop)
        self.shortcut_proj_mlp = Linear(s.dim_in, s.dim_out) if needs_proj and not expand_attn else None
        self.drop_path2 = drop_path(drop_path_rate)

    def forward(self, x: Tensor, grid: tuple[int, ...]) -> tuple[Tensor, tuple[int, ...]]:
        """x: (B, P + N, dim_in), N = prod(grid) -> (B, P + N', dim_out) and the new grid."""
        x_norm = self.norm1(x)
        shortcut = x if self.shortcut_proj_attn is None else self.shortcut_proj_attn(x_norm)
        if self.shortcut_pool is not None:
            shortcut = _pool_tokens(shortcut, grid, self.shortcut_pool, self.num_prefix_tokens)
        y, new_grid = self.attn(x_norm, grid)
        x = shortcut + self.drop_path1(y)
        x_norm = self.norm2(x)
        shortcut = x if self.shortcut_proj_mlp is None else self.shortcut_proj_mlp(x_norm)
        return shortcut + self.drop_path2(self.mlp(x_norm)), new_grid


class MViT(VitkitModel):
    """MViT v1/v2: videos (B, C, T, H, W) or images (B, C, H, W) -> logits (B, num_classes).
    Token order is [cls?, patches in (t, h, w) row-major order]."""

    hierarchical = True
    weight_layout = "MViT"  # v1 and v2, images and videos
    # images: timm's MViTv2 weights; videos: torchvision's mvit_v1_b / mvit_v2_s (SlowFast's statistics, as the
    # official SlowFast test)
    data_configs = (*((name, {"timm": data_cfg(IMAGENET_MEAN, IMAGENET_STD, "bicubic", 0.9)})
                      for name in ("mvitv2_tiny", "mvitv2_small", "mvitv2_base")),
                    ("mvit*", {"torchvision": data_cfg(SLOWFAST_MEAN, SLOWFAST_STD, "bilinear", 224 / 256)}))

    def __init__(self, cfg: MViTConfig):
        validate_config(cfg)
        settings = block_settings(cfg)
        super().__init__(cfg, num_features=settings[-1].dim_out)
        nd = len(cfg.patch_kernel)
        self.is_video = nd == 3
        D = cfg.embed_dim
        self.num_prefix_tokens = int(cfg.class_token)
        self.avg_pool = cfg.global_pool == "avg"  # else the class token
        self.patch_embed = ConvEmbed(cfg.in_chans, D, cfg.patch_kernel, cfg.patch_stride, cfg.patch_padding)
        size = ((cfg.num_frames,) if self.is_video else ()) + to_2tuple(cfg.img_size)
        self.grid_size = tuple(n // s for n, s in zip(size, cfg.patch_stride))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D)) if cfg.class_token else None
        self.pos_embed_spatial = self.pos_embed_temporal = self.pos_embed_class = None
        if cfg.pos_embed == "separate":  # Table 11: separate space and time embeddings (and one for cls)
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, math.prod(self.grid_size[-2:]), D))
            if self.is_video:
                self.pos_embed_temporal = nn.Parameter(torch.zeros(1, self.grid_size[0], D))
            if cfg.class_token:
                self.pos_embed_class = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_drop = nn.Dropout(cfg.drop_rate) if cfg.drop_rate > 0 else nn.Identity()
        grid, blocks = self.grid_size, []
        for s, dpr in zip(settings, drop_path_rates(cfg.drop_path_rate, len(settings))):
            blocks.append(MultiScaleBlock(
                s, grid, mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias, pool_mode=cfg.pool_mode,
                expand_attn=cfg.expand_attn, residual_pooling=cfg.residual_pooling,
                rel_pos=cfg.pos_embed == "relative", num_prefix_tokens=self.num_prefix_tokens, drop=cfg.drop_rate,
                attn_drop=cfg.attn_drop_rate, drop_path_rate=dpr))
            grid = tuple(n // st for n, st in zip(grid, s.stride_q))  # the references size tables this way
        self.blocks = nn.ModuleList(blocks)
        self.norm = LayerNorm6(self.num_features)
        self.head_drop = nn.Dropout(cfg.head_drop_rate) if cfg.head_drop_rate > 0 else nn.Identity()
        self.head = self.new_head(cfg.num_classes)
        ends = [e - 1 for e in itertools.accumulate(cfg.depths)]
        strides = list(itertools.accumulate((s.stride_q[-1] for s in settings), operator.mul))
        self.feature_info = feature_info("blocks", ends, [settings[e].dim_out for e in ends],
                                         [cfg.patch_stride[-1] * strides[e] for e in ends])
        # timm/torchvision init (zero biases); SlowFast sets Linear and LayerNorm biases to 0.02 instead.
        self.apply(init_weights)
        for t in (self.cls_token, self.pos_embed_spatial, self.pos_embed_temporal, self.pos_embed_class):
            if t is not None:
                trunc_normal_(t)

    # --- tokens ---------------------------------------------------------------------------------------------
    def _abs_pos_embed(self, grid: tuple[int, ...]) -> Tensor:
        """(1, P + N, D): spatial table tiled over time plus temporal table repeated over space (v1), the spatial
        part resampled bicubically and the temporal part linearly when the grid is not the config's."""
        D = self.config.embed_dim
        spatial = self.pos_embed_spatial.reshape(1, *self.grid_size[-2:], D)  # (1, HW, D) -> (1, H, W, D)
        pos = resample_grid(spatial, grid[-2:]).unsqueeze(1)  # -> (1, 1, H', W', D)
        if self.pos_embed_temporal is not None:
            temporal = resample_grid(self.pos_embed_temporal, grid[:1])  # (1, T, D) -> (1, T', D)
            pos = pos + temporal[:, :, None, None]  # -> (1, T', H', W', D)
        pos = pos.reshape(1, -1, D)  # -> (1, N, D)
        return torch.cat([self.pos_embed_class, pos], dim=1) if self.pos_embed_class is not None else pos

    def _embed(self, x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        """x: (B, C, T, H, W) or (B, C, H, W) -> tokens (B, P + N, D) with position embedding, and their grid."""
        x, grid = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # -> (B, 1 + N, D)
        if self.pos_embed_spatial is not None:
            x = x + self._abs_pos_embed(grid)
        return self.pos_drop(x), grid

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (B, C, T, H, W) or (B, C, H, W) -> normalised tokens (B, P + N_last, D_last)."""
        x, grid = self._embed(x)
        for blk in self.blocks:
            x, grid = blk(x, grid)
        return self.norm(x)

    def _intermediates(self, x: Tensor) -> Iterator[tuple[Tensor, tuple[int, ...]]]:
        """Tokens (B, P + N_i, D_i) and grid at the end of each stage."""
        x, grid = self._embed(x)
        ends = set(itertools.accumulate(self.config.depths))
        for i, blk in enumerate(self.blocks, 1):
            x, grid = blk(x, grid)
            if i in ends:
                yield x, grid

    def _finish(self, x: Tensor, grid: tuple[int, ...]) -> Tensor:
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """x: (B, P + N, D) -> logits (B, num_classes), or pooled features (B, D) with pre_logits."""
        x = x[:, self.num_prefix_tokens:].mean(1) if self.avg_pool else x[:, 0]
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    # --- API ------------------------------------------------------------------------------------------------
    def no_weight_decay(self) -> set[str]:
        return {n for n, _ in self.named_parameters() if "pos_embed" in n or "rel_pos" in n or n == "cls_token"}

    def size_dependence(self) -> dict[str, str]:
        return dict.fromkeys(("frames", "height", "width")[-len(self.grid_size):], "positions")

    def input_steps(self) -> dict[str, int]:
        t, h, w = (1, *self.config.patch_stride)[-3:]  # one stride of the patch embedding
        return {"batch": 1, "frames": t, "height": h, "width": w}

    def position_tables(self) -> list[PositionTable]:
        """v1: the separate spatial and temporal tables; v2: block 0's decomposed relative tables."""
        if self.pos_embed_spatial is not None:
            out = [PositionTable("spatial position embedding", self.pos_embed_spatial[0], self.grid_size[-2:])]
            if self.pos_embed_temporal is not None:
                out.append(PositionTable("temporal position embedding", self.pos_embed_temporal[0], self.grid_size[:1]))
            return out
        rel = self.blocks[0].attn.rel_pos
        tables = rel.tables() if rel is not None else []
        return [PositionTable(f"block 0 relative table along {a}, over offsets", t, t.shape[:1])
                for a, t in zip("thw"[-len(tables):], tables)]

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Resample position tables of a checkpoint saved at another clip/image size: v1 absolute tables
        (bicubic in space, linear in time), v2 relative tables (linear, as timm's checkpoint filter)."""
        own, out = self.state_dict(), dict(state_dict)
        for k, v in state_dict.items():
            if k not in own or own[k].shape == v.shape:
                continue
            if "rel_pos_" in k:  # (L, d) -> (L', d)
                out[k] = resample_grid(v[None], own[k].shape[:1])[0]
            elif k == "pos_embed_temporal":  # (1, T, D) -> (1, T', D)
                out[k] = resample_grid(v, own[k].shape[1:2])
            elif k == "pos_embed_spatial":  # (1, H·W, D) -> (1, H'·W', D); square grids only
                side = round(v.shape[1] ** 0.5)
                if side * side == v.shape[1]:
                    grid = resample_grid(v.reshape(1, side, side, -1), self.grid_size[-2:])
                    out[k] = grid.reshape(1, -1, v.shape[-1])
        return out


def validate_config(cfg: MViTConfig) -> None:
    """ConfigError (one sentence) for kernels, strides, heads, choices or sizes that cannot build an MViT."""
    nd = len(cfg.patch_kernel)
    if nd not in (2, 3):
        raise ConfigError(f"patch_kernel must have 2 (image) or 3 (video) entries, got {cfg.patch_kernel}")
    for name in ("patch_stride", "patch_padding", "pool_kernel", "pool_stride_q", "pool_stride_kv"):
        if len(getattr(cfg, name)) != nd:
            raise ConfigError(f"{name} must have {nd} entries like patch_kernel, got {getattr(cfg, name)}")
    if nd == 2 and cfg.num_frames != 1:
        raise ConfigError(f"num_frames={cfg.num_frames} was given to an image model (2-D patch_kernel); it takes 1")
    check_choice("pool_mode", cfg.pool_mode, ("conv", "avg", "max"))
    check_choice("pos_embed", cfg.pos_embed, ("separate", "relative", "none"))
    check_choice("global_pool", cfg.global_pool, ("token", "avg"))
    if cfg.global_pool == "token" and not cfg.class_token:
        raise ConfigError("global_pool='token' needs class_token=True; use global_pool='avg' without a class token")
    if not cfg.depths or min(cfg.depths) < 1:
        raise ConfigError(f"depths must list at least one block per stage, got {cfg.depths}")
    check_at_least(cfg, 1, "img_size", "num_frames", "in_chans", "embed_dim", "num_heads", "patch_kernel",
                   "patch_stride", "pool_kernel", "pool_stride_q", "pool_stride_kv")
    check_at_least(cfg, 0, "patch_padding", "num_classes")
    check_divisible("embed_dim", cfg.embed_dim, "num_heads", cfg.num_heads)
    size = ((cfg.num_frames,) if nd == 3 else ()) + to_2tuple(cfg.img_size)
    grid = tuple(n // s for n, s in zip(size, cfg.patch_stride))
    for s in block_settings(cfg):  # heads double with the widths, so embed_dim % num_heads covers every block
        grid = tuple(n // st for n, st in zip(grid, s.stride_q))
    if min(grid) < 1:
        raise ConfigError(f"the input {size} is too small for the strides of {len(cfg.depths)} stages (the token grid "
                          f"shrinks to {grid}); use a larger img_size/num_frames or fewer stages")


# --- registered builders ------------------------------------------------------------------------------------
# v1 (SlowFast MVIT_B_*_CONV.yaml): conv pooling 3³ on Q at transitions and on K/V everywhere, separate
# absolute position embeddings, channel expansion in the MLP. v2 (MVITv2_*.yaml, mvit repo): relative
# positions, residual pooling, expansion in attention, Q pooled in every block.
_V2 = {"pos_embed": "relative", "residual_pooling": True, "expand_attn": True, "pool_q_every_block": True}
_IMAGE = dict(num_frames=1, num_classes=1000, patch_kernel=(7, 7), patch_stride=(4, 4), patch_padding=(3, 3),
              pool_kernel=(3, 3), pool_stride_q=(2, 2), pool_stride_kv=(4, 4), class_token=False, global_pool="avg",
              head_drop_rate=0.0, **_V2)


def _mvit(overrides: dict, **base) -> MViT:
    return MViT(build_config(MViTConfig(**base), overrides))


@register_model
def mvit_base_16x4(**overrides) -> MViT:
    return _mvit(overrides)


@register_model
def mvit_base_32x3(**overrides) -> MViT:
    # The paper's 16-layer MViT-B at 32 frames (Table 4, 36.6M). SlowFast's MVIT_B_32x3_CONV.yaml sets DEPTH twice
    # and builds a 24-layer model with s+1 kernels instead (SPEC.md §7.1 caveat); drop-path 0.3 is from that file.
    return _mvit(overrides, num_frames=32, drop_path_rate=0.3)


@register_model
def mvitv2_small_16x4(**overrides) -> MViT:
    return _mvit(overrides, **_V2)


@register_model
def mvitv2_base_32x3(**overrides) -> MViT:
    return _mvit(overrides, num_frames=32, depths=(2, 3, 16, 3), drop_path_rate=0.3, **_V2)


@register_model
def mvitv2_tiny(**overrides) -> MViT:
    return _mvit(overrides, depths=(1, 2, 5, 2), drop_path_rate=0.1, **_IMAGE)


@register_model
def mvitv2_small(**overrides) -> MViT:
    return _mvit(overrides, depths=(1, 2, 11, 2), drop_path_rate=0.1, **_IMAGE)


@register_model
def mvitv2_base(**overrides) -> MViT:
    return _mvit(overrides, depths=(2, 3, 16, 3), drop_path_rate=0.3, **_IMAGE)
