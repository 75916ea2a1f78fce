"""TimeSformer (Bertasius et al., "Is Space-Time Attention All You Need for Video Understanding?", arXiv
2102.05095): §3 and Fig. 1–2, the five attention schemes of Table 1, ViT-B/16 backbone, 8×224 / HR 16×448 /
L 96×224 inputs. Follows the official code (`timesformer/models/vit.py`, whose state-dict keys, less the
`model.` prefix, are ours): per-frame patch embedding, a spatial position embedding (N+1) added per frame, a
separate time embedding (T) on patch tokens (none for space-only), LayerNorm on cls then a Linear head (the
paper says an MLP head; the released code and weights use a Linear). Divided blocks follow `Block.forward`
step by step, including the zero-initialised `temporal_fc` after temporal attention and DropPath applied to the
grouped sequences. Space-only keeps one cls copy per frame and averages the tokens over frames before the
final norm (official; HF returns B·T rows instead).

Sparse local-global (L+G) and axial (T+W+H) were never released; vitkit's definition (SPEC.md §6.1) builds them
like the divided block: each extra step has its own LayerNorm, qkv/proj and zero-initialised `*_fc`, keeps cls
out and adds a residual; the last step (global, resp. height) holds the image ViT's attention and repeats cls
into every group, averaging its outputs. L+G pads odd sizes for its regroupings with a key mask.

Patch tokens are kept in (t, h, w) order (vitkit's video layout); the official code uses (h, w, t), which only
matters for token-level outputs. Position and time embeddings are resampled (bicubic / linear) for any frame
count and resolution; the official code uses nearest. Initialising from an image ViT's weights (App. A) is
`vitkit.init_video_from_image` (convert/video_init.py). Checked against HF `TimesformerForVideoClassification`
(space-only, joint, divided) by tests/parity/test_timesformer.py; the schemes' token dependencies are pinned by
tests/test_timesformer.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import (
    Attention,
    Block,
    LayerNorm6,
    Linear,
    Mlp,
    PatchEmbed,
    check_input,
    drop_path,
    drop_path_rates,
    init_weights,
    resample_abs_pos_embed,
    resample_grid,
    trunc_normal_,
)
from ..layers import groupings as G
from ..layers.checkpointing import GradCheckpointing
from ..layers.pixel_stats import SLOWFAST_MEAN, SLOWFAST_STD
from ..layers.pos_embed import resample_square_pos_embed
from ..layers.tokens import AttentionCall, TokenLayout, TokenSpace, per_frame_index, trace
from ..registry import build_config, register_model
from .base import PositionTable, VitkitModel, check_choice, check_divisible, check_patch_multiple, data_cfg, to_2tuple
from .features import feature_info, split_frame_prefix
from .vit import VisionTransformer

Grid = tuple[int, int, int]  # (T, H, W) of patch tokens


@dataclass(frozen=True)
class TimeSformerConfig:
    img_size: int | tuple[int, int] = 224            # H = W of each frame
    patch_size: int = 16                             # P
    in_chans: int = 3                                # C
    num_frames: int = 8                              # F (T) frames the time embedding is sized for
    num_classes: int = 400                           # Kinetics-400
    embed_dim: int = 768                             # D
    depth: int = 12                                  # L
    num_heads: int = 12                              # A heads
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    attention_type: str = "divided_space_time"       # Table 1: space_only | joint_space_time | divided_space_time |
                                                     # local_global | axial
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.1                      # stochastic depth, linear over blocks


# --- blocks: forward(x (B, 1 + T·H·W, D) or, space-only, (B·T, 1 + H·W, D), grid) -> same shape -----------------
class SpaceOnlyBlock(Block):
    """Space (S): each frame is its own sequence with its own cls copy: (B·T, 1 + H·W, D) -> same."""

    per_frame_cls: ClassVar[bool] = True

    def forward(self, x: Tensor, grid: Grid) -> Tensor:
        return super().forward(x)

    def attention_layout(self, call: AttentionCall) -> TokenLayout:
        """One sequence per frame [cls_t, patches of frame t]; the T class tokens come first."""
        grid = tuple(call.args[1])
        return TokenLayout.groups(per_frame_index(grid[0], math.prod(grid[1:])), TokenSpace(grid[0], grid))


class JointSpaceTimeBlock(Block):
    """Joint space-time (ST): one sequence over cls and all T·H·W patches: (B, 1 + T·H·W, D) -> same."""

    per_frame_cls: ClassVar[bool] = False

    def forward(self, x: Tensor, grid: Grid) -> Tensor:
        return super().forward(x)

    def attention_layout(self, call: AttentionCall) -> TokenLayout:
        return TokenLayout.joint(TokenSpace(1, tuple(call.args[1])))


def attention_step(dim: int, num_heads: int, qkv_bias: bool, attn_drop: float,
                   drop: float) -> tuple[nn.LayerNorm, Attention, Linear]:
    """The (norm1, attn, fc) of one extra attention step; `FactorisedBlock.zero_init_steps` zeroes the fc."""
    return LayerNorm6(dim), Attention(dim, num_heads, qkv_bias, attn_drop, drop), Linear(dim, dim)


class FactorisedBlock(GradCheckpointing, nn.Module):
    """Attention factorised into steps over regroupings of the (T, H, W) patch grid, then the MLP.

    Each extra step `s` (created by the subclass's `add_steps` as `s_norm1`, `s_attn`, `s_fc`, the official
    checkpoint names) works on patch tokens only:  x = x + s_fc(ungroup(DropPath(s_attn(group(s_norm1(x)))))) —
    the official code applies DropPath to the grouped sequences, then ungroups, then the fc.
    The last step uses `norm1` / `attn` (the weights an image ViT provides) through `cls_step`: cls is repeated
    into each of its groups and the cls outputs are averaged. Subclasses write their steps out in `forward`.
    """

    per_frame_cls: ClassVar[bool] = False

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path_rate: float = 0.0):
        super().__init__()
        self.norm1 = LayerNorm6(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.add_steps(dim, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = drop_path(drop_path_rate)
        self.norm2 = LayerNorm6(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def add_steps(self, dim: int, num_heads: int, qkv_bias: bool, attn_drop: float, drop: float) -> None:
        """Create the extra steps' modules (`attention_step`) under their checkpoint names."""
        raise NotImplementedError

    def step_fcs(self) -> dict[str, Linear]:
        """The extra steps' output layers by step name, e.g. {"temporal": temporal_fc}."""
        return {name.removesuffix("_fc"): m for name, m in self.named_children() if name.endswith("_fc")}

    def zero_init_steps(self) -> None:
        """Zero every extra step's fc (weight and bias), so the block starts as the image block (official init)."""
        for fc in self.step_fcs().values():
            nn.init.zeros_(fc.weight)
            nn.init.zeros_(fc.bias)

    def step_groupings(self, grid: Grid) -> dict[nn.Module, Callable[[Tensor], Tensor]]:
        """Each step's attention module and the regrouping (B, T·H·W, D) -> (B·G, L, D) its sequences come from, as
        `forward` writes them out (`attn` is the last step, the one cls joins)."""
        raise NotImplementedError

    def attention_layout(self, call: AttentionCall) -> TokenLayout:
        """The step's groups of patch tokens (the class token is index 0); in the last step cls is repeated into
        every group, and its row is the mean over the groups, as the block averages its outputs."""
        grid = tuple(call.args[1])
        index = trace(self.step_groupings(grid)[call.attn], math.prod(grid), offset=1)  # (G, L)
        if call.attn is self.attn:
            index = torch.cat((torch.zeros(index.shape[0], 1, dtype=torch.long), index), dim=1)  # -> (G, 1 + L)
        return TokenLayout.groups(index, TokenSpace(1, grid))

    def cls_step(self, cls: Tensor, seq: Tensor, bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The last step. cls: (B, 1, D) un-normalised, seq: normalised patch sequences (B·G, L, D) in (b g) order,
        bias: key mask (B·G, 1, 1, L) or None -> (cls residual (B, 1, D) averaged over the G groups, patch
        residuals (B·G, L, D))."""
        B = cls.shape[0]
        n_groups = seq.shape[0] // B
        cls_seq = self.norm1(cls).repeat_interleave(n_groups, dim=0)  # (B, 1, D) -> (B·G, 1, D), order (b g)
        if bias is not None:
            bias = F.pad(bias, (1, 0))  # the cls key is never masked
        res = self.drop_path(self.attn(torch.cat((cls_seq, seq), dim=1), bias))  # (B·G, 1 + L, D)
        cls_res = res[:, :1].reshape(B, n_groups, -1).mean(1, keepdim=True)  # (B·G, 1, D) -> (B, 1, D)
        return cls_res, res[:, 1:]

    def mlp_step(self, cls: Tensor, patches: Tensor, cls_res: Tensor, patches_res: Tensor) -> Tensor:
        """Residual of the last step, then the MLP: (B, 1, D), (B, T·H·W, D) and their residuals -> (B, 1 + T·H·W, D)."""
        x = torch.cat((cls + cls_res, patches + patches_res), dim=1)  # one copy of the (B, 1 + T·H·W, D) stream
        return x + self.drop_path(self.mlp(self.norm2(x)))


def split_cls(x: Tensor) -> tuple[Tensor, Tensor]:
    """(B, 1 + N, D) -> cls (B, 1, D), patches (B, N, D)."""
    return x[:, :1], x[:, 1:]


class DividedSpaceTimeBlock(FactorisedBlock):
    """Divided space-time (T+S): temporal attention over each spatial position, then spatial attention within
    each frame (cls repeated per frame, averaged), then MLP."""

    def add_steps(self, dim: int, num_heads: int, qkv_bias: bool, attn_drop: float, drop: float) -> None:
        self.temporal_norm1, self.temporal_attn, self.temporal_fc = attention_step(dim, num_heads, qkv_bias,
                                                                                   attn_drop, drop)

    def step_groupings(self, grid: Grid) -> dict[nn.Module, Callable[[Tensor], Tensor]]:
        return {self.temporal_attn: lambda t: G.tubes(t, grid[0]), self.attn: lambda t: G.frames(t, grid[0])}

    def forward(self, x: Tensor, grid: Grid) -> Tensor:
        """x: (B, 1 + T·H·W, D), cls first, patches in (t, h, w) order -> same shape."""
        T, B = grid[0], x.shape[0]
        cls, xp = split_cls(x)
        res = self.drop_path(self.temporal_attn(G.tubes(self.temporal_norm1(xp), T)))  # over (B·H·W, T, D)
        xp = xp + self.temporal_fc(G.untubes(res, B))
        cls_res, res = self.cls_step(cls, G.frames(self.norm1(xp), T))  # over (B·T, 1 + H·W, D)
        return self.mlp_step(cls, xp, cls_res, G.unframes(res, T))


class AxialBlock(FactorisedBlock):
    """Axial (T+W+H): attention along time, then along width, then along height (cls joins the height step,
    repeated per column and averaged), then MLP."""

    def add_steps(self, dim: int, num_heads: int, qkv_bias: bool, attn_drop: float, drop: float) -> None:
        self.temporal_norm1, self.temporal_attn, self.temporal_fc = attention_step(dim, num_heads, qkv_bias,
                                                                                   attn_drop, drop)
        self.width_norm1, self.width_attn, self.width_fc = attention_step(dim, num_heads, qkv_bias, attn_drop, drop)

    def step_groupings(self, grid: Grid) -> dict[nn.Module, Callable[[Tensor], Tensor]]:
        time, height, width = 0, 1, 2
        return {self.temporal_attn: lambda t: G.lines(t, grid, time), self.width_attn: lambda t: G.lines(t, grid, width),
                self.attn: lambda t: G.lines(t, grid, height)}

    def forward(self, x: Tensor, grid: Grid) -> Tensor:
        """x: (B, 1 + T·H·W, D), cls first, patches in (t, h, w) order -> same shape."""
        time, height, width = 0, 1, 2  # the grid axis each step's sequences run along
        cls, xp = split_cls(x)
        res = self.drop_path(self.temporal_attn(G.lines(self.temporal_norm1(xp), grid, time)))  # (B·H·W, T, D)
        xp = xp + self.temporal_fc(G.unlines(res, grid, time))
        res = self.drop_path(self.width_attn(G.lines(self.width_norm1(xp), grid, width)))  # (B·T·H, W, D)
        xp = xp + self.width_fc(G.unlines(res, grid, width))
        cls_res, res = self.cls_step(cls, G.lines(self.norm1(xp), grid, height))  # over (B·T·W, 1 + H, D)
        return self.mlp_step(cls, xp, cls_res, G.unlines(res, grid, height))


class LocalGlobalBlock(FactorisedBlock):
    """Sparse local-global (L+G): attention within T×⌈H/2⌉×⌈W/2⌉ neighbourhoods, then global attention within
    each of the 8 stride-2 groups (t, h, w mod 2; cls repeated per group and averaged), then MLP. Odd sizes are
    zero-padded for the regroupings; padding is masked as keys and dropped on the way back."""

    def add_steps(self, dim: int, num_heads: int, qkv_bias: bool, attn_drop: float, drop: float) -> None:
        self.local_norm1, self.local_attn, self.local_fc = attention_step(dim, num_heads, qkv_bias, attn_drop, drop)

    def step_groupings(self, grid: Grid) -> dict[nn.Module, Callable[[Tensor], Tensor]]:
        glob = G.halves(grid)
        loc = (1, glob[1], glob[2])
        return {self.local_attn: lambda t: G.neighbourhoods(G.pad_grid(t, grid, loc)[0], loc),
                self.attn: lambda t: G.strided(G.pad_grid(t, grid, glob)[0], glob)}

    def forward(self, x: Tensor, grid: Grid) -> Tensor:
        """x: (B, 1 + T·H·W, D), cls first, patches in (t, h, w) order -> same shape."""
        glob = G.halves(grid)  # (2, 2, 2) unless an axis has one position
        loc = (1, glob[1], glob[2])  # neighbourhoods span all frames
        cls, xp = split_cls(x)
        seq, padded = G.pad_grid(self.local_norm1(xp), grid, loc)  # (B, T', H', W', D)
        mask = _padding_mask(x, grid, padded, partial(G.neighbourhoods, parts=loc))
        res = self.drop_path(self.local_attn(G.neighbourhoods(seq, loc), mask))  # over (B·G, T·H'/2·W'/2, D)
        xp = xp + self.local_fc(G.unpad_grid(G.unneighbourhoods(res, padded, loc), grid))
        seq, padded = G.pad_grid(self.norm1(xp), grid, glob)
        mask = _padding_mask(x, grid, padded, partial(G.strided, parts=glob))
        cls_res, res = self.cls_step(cls, G.strided(seq, glob), mask)  # over (B·8, 1 + T'·H'·W'/8, D)
        return self.mlp_step(cls, xp, cls_res, G.unpad_grid(G.unstrided(res, padded, glob), grid))


def _padding_mask(x: Tensor, grid: Grid, padded: Grid, group: Callable[[Tensor], Tensor]) -> Tensor | None:
    """Key mask (B·G, 1, 1, L) for the sequences `group` makes of the padded grid (batch order (b g)), or None
    when nothing is padded."""
    bias = G.padding_bias(grid, padded, group, x.dtype, x.device)  # (G, 1, 1, L)
    return None if bias is None else bias.repeat(x.shape[0], 1, 1, 1)  # -> (B·G, 1, 1, L)


# --- model ---------------------------------------------------------------------------------------------------
SCHEMES: dict[str, type[nn.Module]] = {
    "space_only": SpaceOnlyBlock,
    "joint_space_time": JointSpaceTimeBlock,
    "divided_space_time": DividedSpaceTimeBlock,
    "local_global": LocalGlobalBlock,
    "axial": AxialBlock,
}


class TimeSformer(VitkitModel):
    """TimeSformer: videos (B, C, T, H, W) -> logits (B, num_classes)."""

    is_video = True
    weight_layout = "TimeSformer"
    image_init = True
    # App. A: every extra attention step (temporal_, local_, width_) starts as its block's spatial one, its output
    # layer `*_fc` at zero; the time embedding at zero
    image_init_rules = ((r"^time_embed$", None), (r"^(blocks\.\d+)\.[a-z]+_fc\.", None),
                        (r"^(blocks\.\d+)\.[a-z]+_(norm1|attn)\.", r"\1.\2."))
    # the official (PySlowFast-based) test: SlowFast's statistics, shorter side to the crop size
    data_configs = (("timesformer_*", {"official": data_cfg(SLOWFAST_MEAN, SLOWFAST_STD, "bilinear", 1.0)}),)

    def __init__(self, cfg: TimeSformerConfig):
        validate_config(cfg)
        super().__init__(cfg, num_features=cfg.embed_dim)
        D = cfg.embed_dim
        block_cls = SCHEMES[cfg.attention_type]
        self.per_frame_cls = block_cls.per_frame_cls
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, D)
        self.grid_size = tuple(s // cfg.patch_size for s in to_2tuple(cfg.img_size))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid_size[0] * self.grid_size[1], D))
        self.time_embed = None if self.per_frame_cls else nn.Parameter(torch.zeros(1, cfg.num_frames, D))
        self.pos_drop = nn.Dropout(cfg.drop_rate) if cfg.drop_rate > 0 else nn.Identity()
        self.blocks = nn.ModuleList([
            block_cls(D, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.drop_rate, cfg.attn_drop_rate, dpr)
            for dpr in drop_path_rates(cfg.drop_path_rate, cfg.depth)
        ])
        self.norm = LayerNorm6(D)
        self.head = self.new_head(cfg.num_classes)
        self.feature_info = feature_info("blocks", range(cfg.depth), [D] * cfg.depth, [cfg.patch_size] * cfg.depth)
        self.apply(init_weights)
        trunc_normal_(self.pos_embed)
        trunc_normal_(self.cls_token)
        for blk in self.blocks:
            if isinstance(blk, FactorisedBlock):
                blk.zero_init_steps()  # the official init zeroes all blocks' temporal_fc

    # --- tokens ---------------------------------------------------------------------------------------------
    def _pos_embed(self, grid: tuple[int, int]) -> Tensor:
        """(1, 1 + H·W, D), resampled (bicubic) when the frame size differs from the config's."""
        return resample_abs_pos_embed(self.pos_embed, grid, self.grid_size, 1)

    def _time_embed(self, T: int) -> Tensor:
        """(1, T, D), resampled (linear) when the clip length differs from the config's."""
        return resample_grid(self.time_embed, (T,))

    def _embed(self, x: Tensor) -> tuple[Tensor, Grid]:
        """x: (B, C, T, H, W) -> tokens with position (and time) embeddings, (B, 1 + T·H'·W', D) (space-only:
        per-frame sequences (B·T, 1 + H'·W', D)), and the grid (T, H', W')."""
        P = self.patch_embed.patch_size
        check_input(x, self.config.in_chans, 5, (P, P))
        B, _, T, H, W = x.shape
        grid = (T, H // P, W // P)
        x = self.patch_embed(x.transpose(1, 2).flatten(0, 1))  # (B, C, T, H, W) -> (B·T, C, H, W) -> (B·T, S, D)
        pos = self._pos_embed(grid[1:])  # (1, 1 + S, D)
        if self.per_frame_cls:  # each frame is its own sequence with its own cls
            x = self.pos_drop(torch.cat((self.cls_token.expand(B * T, -1, -1), x), dim=1) + pos)  # (B·T, 1 + S, D)
        else:  # one cls for the clip; the time embedding goes on patch tokens only (as in the official code)
            cls = self.pos_drop((self.cls_token + pos[:, :1]).expand(B, -1, -1))  # (B, 1, D)
            x = self.pos_drop(x + pos[:, 1:]).reshape(B, T, -1, x.shape[-1])  # (B·T, S, D) -> (B, T, S, D)
            x = self.pos_drop((x + self._time_embed(T)[:, :, None]).flatten(1, 2))  # -> (B, T·S, D)
            x = torch.cat((cls, x), dim=1)  # -> (B, 1 + T·S, D)
        return x, grid

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (B, C, T, H, W) -> normalised tokens (B, 1 + T·H'·W', D) (space-only: (B, 1 + H'·W', D), averaged
        over frames), H' = H/P, W' = W/P, patches in (t, h, w) order."""
        x, grid = self._embed(x)
        for blk in self.blocks:
            x = blk(x, grid)
        return self._finish(x, grid)

    def _finish(self, x: Tensor, grid: Grid) -> Tensor:
        if self.per_frame_cls:
            x = x.reshape(-1, grid[0], *x.shape[1:]).mean(1)  # (B·T, 1 + S, D) -> (B, 1 + S, D)
        return self.norm(x)

    def _intermediates(self, x: Tensor) -> Iterator[tuple[Tensor, Grid]]:
        """Tokens after each block, (B, 1 + T·H'·W', D) (space-only: (B·T, 1 + H'·W', D))."""
        x, grid = self._embed(x)
        for blk in self.blocks:
            x = blk(x, grid)
            yield x, grid

    def _split_tokens(self, x: Tensor, grid: Grid) -> tuple[Tensor, Tensor]:
        # space-only: the T per-frame class tokens are the prefix (B, T, D)
        return split_frame_prefix(x, grid) if self.per_frame_cls else super()._split_tokens(x, grid)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """x: (B, 1 + N, D) -> logits (B, num_classes), or the cls features (B, D) with pre_logits."""
        x = x[:, 0]
        return x if pre_logits else self.head(x)

    # --- API ------------------------------------------------------------------------------------------------
    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"} | ({"time_embed"} if self.time_embed is not None else set())

    def image_model(self) -> VisionTransformer:
        return VisionTransformer.sized_like(self.config)

    def size_dependence(self) -> dict[str, str]:
        """Local-global pads and masks its groups for one grid; the others only resample their tables (space-only
        has no time embedding: frames are folded into the batch)."""
        if self.config.attention_type == "local_global":
            return super().size_dependence()
        return {"frames": "none" if self.time_embed is None else "positions", "height": "positions",
                "width": "positions"}

    def position_tables(self) -> list[PositionTable]:
        out = [PositionTable("spatial position embedding", self.pos_embed[0, 1:], self.grid_size)]
        if self.time_embed is not None:
            out.append(PositionTable("time embedding", self.time_embed[0], (self.config.num_frames,)))
        return out

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Resample a checkpoint's position embedding (square grid, bicubic) and time embedding (linear) to this
        model's frame size and frame count."""
        sd = dict(state_dict)
        pos = sd.get("pos_embed")
        if pos is not None and pos.shape != self.pos_embed.shape:
            sd["pos_embed"] = resample_square_pos_embed(pos, self.grid_size)
        te = sd.get("time_embed")
        if te is not None and self.time_embed is not None and te.shape != self.time_embed.shape:
            sd["time_embed"] = resample_grid(te, (self.config.num_frames,))
        return sd


def validate_config(cfg: TimeSformerConfig) -> None:
    """Raise ConfigError, one sentence, for a configuration TimeSformer cannot be built with."""
    check_choice("attention_type", cfg.attention_type, SCHEMES)
    check_divisible("embed_dim", cfg.embed_dim, "num_heads", cfg.num_heads)
    check_patch_multiple(cfg.img_size, cfg.patch_size)


def _timesformer(overrides: dict, **base) -> TimeSformer:
    return TimeSformer(build_config(TimeSformerConfig(**base), overrides))


@register_model
def timesformer_base_8x224_space_only(**overrides) -> TimeSformer:
    return _timesformer(overrides, attention_type="space_only")


@register_model
def timesformer_base_8x224_joint_space_time(**overrides) -> TimeSformer:
    return _timesformer(overrides, attention_type="joint_space_time")


@register_model
def timesformer_base_8x224_divided_space_time(**overrides) -> TimeSformer:
    return _timesformer(overrides, attention_type="divided_space_time")


@register_model
def timesformer_base_8x224_local_global(**overrides) -> TimeSformer:
    return _timesformer(overrides, attention_type="local_global")


@register_model
def timesformer_base_8x224_axial(**overrides) -> TimeSformer:
    return _timesformer(overrides, attention_type="axial")


@register_model
def timesformer_hr_16x448_divided_space_time(**overrides) -> TimeSformer:
    return _timesformer(overrides, img_size=448, num_frames=16)


@register_model
def timesformer_large_96x224_divided_space_time(**overrides) -> TimeSformer:
    return _timesformer(overrides, num_frames=96)
