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
count and resolution; the official code uses nearest. Checked against HF `TimesformerForVideoClassification`
(space-only, joint, divided) by tests/parity/test_timesformer.py; the schemes' token dependencies are pinned by
tests/test_timesformer.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint import load_state_dict
from ..errors import CheckpointError, ConfigError
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
from ..registry import build_config, register_model
from .base import VitkitModel, to_2tuple

Grid = tuple[int, int, int]  # (T, H, W) of patch tokens
Fold = Callable[[Tensor], Tensor]


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
    extra_steps: ClassVar[tuple[str, ...]] = ()

    def forward(self, x: Tensor, grid: Grid) -> Tensor:
        return super().forward(x)


class JointSpaceTimeBlock(Block):
    """Joint space-time (ST): one sequence over cls and all T·H·W patches: (B, 1 + T·H·W, D) -> same."""

    per_frame_cls: ClassVar[bool] = False
    extra_steps: ClassVar[tuple[str, ...]] = ()

    def forward(self, x: Tensor, grid: Grid) -> Tensor:
        return super().forward(x)


class FactorisedBlock(GradCheckpointing, nn.Module):
    """Attention factorised into steps over regroupings of the (T, H, W) patch grid, then the MLP.

    Each extra step `s` (subclass's `extra_steps`) works on patch tokens only, with its own `s_norm1`,
    `s_attn` and zero-initialised `s_fc`:  x = x + s_fc(DropPath(s_attn(s_norm1(group(x))))).
    The last step uses `norm1` / `attn` (the weights an image ViT provides); cls is repeated into each of its
    groups and the cls outputs are averaged:  x = [cls, x] + [mean_g cls_res_g, res].
    Subclasses say how each step groups tokens (`folds`).
    """

    per_frame_cls: ClassVar[bool] = False
    extra_steps: ClassVar[tuple[str, ...]]

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path_rate: float = 0.0):
        super().__init__()
        self.norm1 = LayerNorm6(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        for s in self.extra_steps:
            self.add_module(f"{s}_norm1", LayerNorm6(dim))
            self.add_module(f"{s}_attn", Attention(dim, num_heads, qkv_bias, attn_drop, drop))
            self.add_module(f"{s}_fc", Linear(dim, dim))
        self.drop_path = drop_path(drop_path_rate)
        self.norm2 = LayerNorm6(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def folds(self, x: Tensor, grid: Grid) -> list[tuple[Fold, Fold, Tensor | None]]:
        """(group, ungroup, key bias or None) per step, extra steps first; group: (B, T·H·W, D) -> (B·G, L, D)."""
        raise NotImplementedError

    def forward(self, x: Tensor, grid: Grid) -> Tensor:
        """x: (B, 1 + T·H·W, D), cls first, patches in (t, h, w) order -> same shape."""
        B = x.shape[0]
        cls, xp = x[:, :1], x[:, 1:]
        *extra, (group, ungroup, bias) = self.folds(x, grid)
        for s, (g, ug, b) in zip(self.extra_steps, extra):
            norm, attn, fc = (getattr(self, f"{s}_{m}") for m in ("norm1", "attn", "fc"))
            # The official code applies DropPath to the grouped sequences, then ungroups, then the fc.
            xp = xp + fc(ug(self.drop_path(attn(g(norm(xp)), b))))
        seq = group(self.norm1(xp))  # (B, T·H·W, D) -> (B·G, L, D)
        n_groups = seq.shape[0] // B
        cls_seq = self.norm1(cls).repeat_interleave(n_groups, dim=0)  # (B, 1, D) -> (B·G, 1, D), order (b g)
        if bias is not None:
            bias = F.pad(bias, (1, 0))  # the cls key is never masked
        res = self.drop_path(self.attn(torch.cat((cls_seq, seq), dim=1), bias))  # (B·G, 1 + L, D)
        cls_res = res[:, :1].reshape(B, n_groups, -1).mean(1, keepdim=True)  # (B·G, 1, D) -> (B, 1, D)
        x = torch.cat((cls, xp), dim=1) + torch.cat((cls_res, ungroup(res[:, 1:])), dim=1)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class DividedSpaceTimeBlock(FactorisedBlock):
    """Divided space-time (T+S): temporal attention over each spatial position, then spatial attention within
    each frame (cls repeated per frame, averaged), then MLP."""

    extra_steps = ("temporal",)

    def folds(self, x: Tensor, grid: Grid) -> list[tuple[Fold, Fold, Tensor | None]]:
        T, B = grid[0], x.shape[0]
        return [(lambda t: G.tubes(t, T), lambda t: G.untubes(t, B), None),
                (lambda t: G.frames(t, T), lambda t: G.unframes(t, T), None)]


class AxialBlock(FactorisedBlock):
    """Axial (T+W+H): attention along time, then along width, then along height (cls joins the height step,
    repeated per column and averaged), then MLP."""

    extra_steps = ("temporal", "width")

    def folds(self, x: Tensor, grid: Grid) -> list[tuple[Fold, Fold, Tensor | None]]:
        return [(lambda t, a=a: G.lines(t, grid, a), lambda t, a=a: G.unlines(t, grid, a), None) for a in (0, 2, 1)]


class LocalGlobalBlock(FactorisedBlock):
    """Sparse local-global (L+G): attention within T×⌈H/2⌉×⌈W/2⌉ neighbourhoods, then global attention within
    each of the 8 stride-2 groups (t, h, w mod 2; cls repeated per group and averaged), then MLP."""

    extra_steps = ("local",)

    def folds(self, x: Tensor, grid: Grid) -> list[tuple[Fold, Fold, Tensor | None]]:
        glob = G.halves(grid)  # (2, 2, 2) unless an axis has one position
        loc = (1, glob[1], glob[2])  # neighbourhoods span all frames
        return [_padded_fold(x, grid, loc, G.neighbourhoods, G.unneighbourhoods),
                _padded_fold(x, grid, glob, G.strided, G.unstrided)]


def _padded_fold(x: Tensor, grid: Grid, parts: Grid, fold, unfold) -> tuple[Fold, Fold, Tensor | None]:
    """(group, ungroup, key bias) for a fold of the grid zero-padded to multiples of `parts`; padding is masked
    as keys and dropped on the way back."""
    padded = tuple(-(-n // k) * k for n, k in zip(grid, parts))
    bias = G.padding_bias(grid, padded, lambda m: fold(m, parts), x.dtype, x.device)
    if bias is not None:
        bias = bias.repeat(x.shape[0], 1, 1, 1)  # (G, 1, 1, L) -> (B·G, 1, 1, L), batch order (b g)
    return (lambda t: fold(G.pad_grid(t, grid, parts)[0], parts),
            lambda t: G.unpad_grid(unfold(t, padded, parts), grid), bias)


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

    def __init__(self, cfg: TimeSformerConfig):
        super().__init__()
        if cfg.attention_type not in SCHEMES:
            raise ConfigError(f"unknown attention_type {cfg.attention_type!r}; expected one of {', '.join(SCHEMES)}")
        self.config = cfg
        D = cfg.embed_dim
        self.num_classes, self.num_features = cfg.num_classes, D
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
        self.head = Linear(D, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.apply(init_weights)
        trunc_normal_(self.pos_embed)
        trunc_normal_(self.cls_token)
        self.zero_extra_fc()

    def zero_extra_fc(self) -> None:
        """Zero every extra step's `*_fc` (weight and bias), so the model starts as a frame-wise ViT; the official
        init zeroes all blocks' temporal_fc."""
        for blk in self.blocks:
            for s in blk.extra_steps:
                fc = getattr(blk, f"{s}_fc")
                nn.init.zeros_(fc.weight)
                nn.init.zeros_(fc.bias)

    # --- tokens ---------------------------------------------------------------------------------------------
    def _pos_embed(self, grid: tuple[int, int]) -> Tensor:
        """(1, 1 + H·W, D), resampled (bicubic) when the frame size differs from the config's."""
        return resample_abs_pos_embed(self.pos_embed, grid, self.grid_size, 1)

    def _time_embed(self, T: int) -> Tensor:
        """(1, T, D), resampled (linear) when the clip length differs from the config's."""
        return resample_grid(self.time_embed, (T,))

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (B, C, T, H, W) -> normalised tokens (B, 1 + T·H'·W', D) (space-only: (B, 1 + H'·W', D), averaged
        over frames), H' = H/P, W' = W/P, patches in (t, h, w) order."""
        P = self.patch_embed.patch_size
        check_input(x, self.config.in_chans, 5, (P, P))
        B, _, T, H, W = x.shape
        grid = (T, H // P, W // P)
        x = self.patch_embed(x.transpose(1, 2).flatten(0, 1))  # (B, C, T, H, W) -> (B·T, C, H, W) -> (B·T, S, D)
        x = torch.cat((self.cls_token.expand(B * T, -1, -1), x), dim=1) + self._pos_embed(grid[1:])  # (B·T, 1+S, D)
        x = self.pos_drop(x)
        if self.time_embed is not None:
            cls = x[:B, :1]  # every frame's cls is the same token: keep one
            x = x[:, 1:].reshape(B, T, -1, x.shape[-1]) + self._time_embed(T)[:, :, None]  # -> (B, T, S, D)
            x = torch.cat((cls, self.pos_drop(x.flatten(1, 2))), dim=1)  # -> (B, 1 + T·S, D)
        for blk in self.blocks:
            x = blk(x, grid)
        if self.per_frame_cls:
            x = x.reshape(B, T, *x.shape[1:]).mean(1)  # (B·T, 1 + S, D) -> (B, 1 + S, D)
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """x: (B, 1 + N, D) -> logits (B, num_classes), or the cls features (B, D) with pre_logits."""
        x = x[:, 0]
        return x if pre_logits else self.head(x)

    # --- API ------------------------------------------------------------------------------------------------
    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"} | ({"time_embed"} if self.time_embed is not None else set())

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Resample a checkpoint's position embedding (square grid, bicubic) and time embedding (linear) to this
        model's frame size and frame count."""
        sd = dict(state_dict)
        pos = sd.get("pos_embed")
        if pos is not None and pos.shape != self.pos_embed.shape:
            side = round((pos.shape[1] - 1) ** 0.5)
            if side * side == pos.shape[1] - 1:
                sd["pos_embed"] = resample_abs_pos_embed(pos, self.grid_size, (side, side), 1)
        te = sd.get("time_embed")
        if te is not None and self.time_embed is not None and te.shape != self.time_embed.shape:
            sd["time_embed"] = resample_grid(te, (self.config.num_frames,))
        return sd

    def init_from_image_vit(self, vit: nn.Module | dict[str, Tensor]) -> None:
        """Initialise from an image ViT (a vitkit ViT, or its / timm's state dict) as the paper does (App. A):
        patch embedding, cls, position embedding (resampled), blocks and final norm copied; every extra
        attention step (temporal, local, width) starts as a copy of the block's spatial attention and norm1,
        with its `*_fc` zeroed; time embedding zero; the head keeps its fresh init (new classes)."""
        sd = vit.state_dict() if isinstance(vit, nn.Module) else dict(vit)
        own = self.state_dict()
        new = {}
        for k, v in own.items():
            if k.startswith("head.") or k == "time_embed":
                new[k] = torch.zeros_like(v) if k == "time_embed" else v
                continue
            src = k
            if k.startswith("blocks."):
                i, rest = k.split(".", 2)[1:]
                step = rest.split("_", 1)[0]
                if step in self.blocks[int(i)].extra_steps:
                    rest = rest[len(step) + 1:]
                    if rest.startswith("fc."):
                        new[k] = torch.zeros_like(v)
                        continue
                src = f"blocks.{i}.{rest}"
            if src not in sd:
                raise CheckpointError(f"the image ViT state dict has no {src!r} needed for TimeSformer key {k!r}")
            new[k] = sd[src]
        load_state_dict(self, new, "image ViT state dict")  # resamples pos_embed through adapt_state_dict


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
