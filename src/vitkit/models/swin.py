"""Swin Transformer (Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
arXiv 2103.14030): §3.1 architecture (patch partition, stages, patch merging), §3.2 shifted windows (cyclic shift
with the region mask) and relative position bias (Eq. 4), Table 7 / App. A1 configurations.

State-dict keys are timm's (`swin_transformer.py`; patch merging at the *start* of stage i ≥ 1, head at
`head.fc`), so timm weights load unchanged; the official code and torchvision are converted in
`vitkit.convert`. Checked against timm and torchvision `swin_t` by tests/parity/test_swin.py.

Any input whose sides are multiples of the patch size runs: a feature map is padded at the bottom/right to a
multiple of the window *before* the cyclic shift and the mask is built on the padded grid (the Swin detection
code's and torchvision's order; rolling first would wrap padding into real windows), odd sizes are padded at a
merge, and along an axis where the map is no larger than the window, the window shrinks to the map and does not
shift (official rule; stage 4 at 224/M=7 and 384/M=12).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError, InputError
from ..layers import (
    Attention,
    Linear,
    Mlp,
    PatchEmbed,
    drop_path,
    drop_path_rates,
    init_weights,
    relative_position_index,
    resample_grid,
    trunc_normal_,
)
from ..layers.checkpointing import GradCheckpointing
from ..layers.groupings import fold_tokens, shifted_window_mask, unfold_tokens, window_index
from ..layers.pixel_stats import IMAGENET_MEAN, IMAGENET_STD
from ..layers.tokens import AttentionCall, TokenLayout, TokenSpace
from ..registry import build_config, register_model
from .base import (
    HEAD_GROUP,
    PositionTable,
    VitkitModel,
    block_groups,
    check_at_least,
    check_divisible,
    check_patch_multiple,
    check_per_stage,
    data_cfg,
    to_2tuple,
)
from .features import feature_info


@dataclass(frozen=True)
class SwinConfig:
    img_size: int | tuple[int, int] = 224       # H, W the model is built for (other multiples of P also run)
    patch_size: int = 4                         # 4×4 patch partition (§3.1)
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 96                         # C: stage i has 2^i·C channels (Table 7)
    depths: tuple[int, ...] = (2, 2, 6, 2)      # blocks per stage
    num_heads: tuple[int, ...] = (3, 6, 12, 24)  # heads per stage (head dim d = 32 in every released size)
    window_size: int = 7                        # M
    mlp_ratio: float = 4.0                      # α
    qkv_bias: bool = True
    drop_rate: float = 0.0                      # dropout after the patch embedding, attn proj and MLP, and before the head
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.1                 # stochastic depth, linear 0 -> rate over all blocks


def resize_relative_position_table(table: Tensor, M: int) -> Tensor:
    """((2M'-1)², h) bias table of another window size -> ((2M-1)², h), plain bicubic over the (2M-1)×(2M-1) grid
    as the official Swin code resizes it."""
    side = round(table.shape[0] ** 0.5)
    grid = table.reshape(1, side, side, -1)  # ((2M'-1)², h) -> (1, 2M'-1, 2M'-1, h)
    return resample_grid(grid, (2 * M - 1, 2 * M - 1), antialias=False).reshape((2 * M - 1) ** 2, -1)  # -> ((2M-1)², h)


class WindowAttention(Attention):
    """Multi-head self-attention inside windows of at most M×M tokens with a learned relative position bias
    (Eq. 4): (B·nW, N, D) -> (B·nW, N, D). The bias (and the shift mask) reach the shared core as the additive
    `bias` of `Attention.forward`."""

    def __init__(self, dim: int, num_heads: int, window_size: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop)
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        trunc_normal_(self.relative_position_bias_table)
        # Derived from M alone: rebuilt, never loaded (a checkpoint's copy is dropped by adapt_state_dict).
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)

    def position_bias(self, window: tuple[int, int]) -> Tensor:
        """(h, N, N) relative position bias for a window of wh×ww ≤ M×M tokens, N = wh·ww."""
        M, (wh, ww) = self.window_size, window
        index = self.relative_position_index
        if (wh, ww) != (M, M):
            # The offsets inside a smaller window are a subset of the M×M ones: its top-left corner's pairs.
            index = index.view(M, M, M, M)[:wh, :ww, :wh, :ww]  # (M², M²) -> (wh, ww, wh, ww)
        N = wh * ww
        bias = self.relative_position_bias_table[index.reshape(-1)]  # (N·N, h)
        return bias.view(N, N, -1).permute(2, 0, 1).contiguous()  # (N, N, h) -> (h, N, N)


class WindowPlan(NamedTuple):
    """How a block regroups one map size: window and shift used, whether the map is padded, the gather indices of
    `window_index`, and the (nW, 1, N, N) shift mask (None without shift)."""
    window: tuple[int, int]
    shift: tuple[int, int]
    padded: bool
    fold: Tensor
    unfold: Tensor
    mask: Tensor | None


class SwinBlock(GradCheckpointing, nn.Module):
    """Pre-norm block with window attention, regular or shifted by M/2: (B, H, W, D) -> (B, H, W, D)."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shifted: bool, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop: float = 0.0, attn_drop: float = 0.0, drop_path_rate: float = 0.0):
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2 if shifted else 0
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size, qkv_bias, attn_drop, drop)
        self.drop_path1 = drop_path(drop_path_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.drop_path2 = drop_path(drop_path_rate)
        self._plans: dict[tuple, WindowPlan] = {}  # per map size and device: built once, reused every forward

    def window_and_shift(self, H: int, W: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """Window and shift used on an H×W map: along an axis no longer than M, the window is the whole axis and
        nothing shifts."""
        M, s = self.window_size, self.shift_size
        return (min(H, M), min(W, M)), (s if H > M else 0, s if W > M else 0)

    def plan(self, H: int, W: int, device: torch.device) -> WindowPlan:
        """Window, shift, gather indices and shift mask for an H×W map; cached per map size (hence per padded
        grid), so neither the indices nor the mask are rebuilt for a size already seen."""
        H, W = int(H), int(W)  # the ONNX tracer passes sizes as 0-d tensors: plan (and cache) on plain ints
        key = (H, W, device)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= 8:  # many input sizes: keep the cache small
                self._plans.clear()
            window, shift = self.window_and_shift(H, W)
            padded = (-(-H // window[0]) * window[0], -(-W // window[1]) * window[1])
            with torch.inference_mode(False):  # a plan made in inference mode must also serve autograd later
                fold, unfold = window_index((H, W), window, shift, device)
                mask = shifted_window_mask(padded, window, shift, device) if any(shift) else None
            plan = self._plans[key] = WindowPlan(window, shift, padded != (H, W), fold, unfold, mask)
        return plan

    def window_attention(self, x: Tensor) -> Tensor:
        """(Shifted) window attention over the whole map: (B, H, W, D) -> (B, H, W, D). Pad to a multiple of the
        window, roll by -shift, partition, attend with bias + mask, then undo all three: two cached gathers."""
        B, H, W, D = x.shape
        p = self.plan(H, W, x.device)
        x = x.reshape(B, H * W, D)  # (B, H, W, D) -> (B, H·W, D)
        if p.padded:
            x = F.pad(x, (0, 0, 0, 1))  # the one zero token that every padding position reads
        N = p.window[0] * p.window[1]
        x = fold_tokens(x, p.fold, p.unfold, p.padded).view(-1, N, D)  # -> (B, nW·N, D) -> (B·nW, N, D)
        # 4-D (1, h, N, N): SDPA's fused CPU kernel refuses a 3-D mask and falls back to the math path
        bias = self.attn.position_bias(p.window).to(x.dtype).unsqueeze(0)
        if p.mask is not None:
            bias = bias + p.mask.to(x.dtype)  # (1, h, N, N) + (nW, 1, N, N) -> (nW, h, N, N)
            bias = bias.expand(B, *bias.shape).flatten(0, 1)  # (B, nW, h, N, N) -> (B·nW, h, N, N)
        x = self.attn(x, bias)  # (B·nW, N, D)
        x = unfold_tokens(x.view(B, -1, D), p.fold, p.unfold, p.padded)  # (B, nW·N, D) -> (B, H·W, D)
        return x.view(B, H, W, D)

    def attention_layout(self, call: AttentionCall) -> TokenLayout:
        """The windows of `plan` over the (H, W) map; the pairs the shift mask forbids (its -100 logits leave
        ~1e-44 after the softmax) are exactly zero."""
        H, W = call.args[0].shape[1:3]
        plan = self.plan(H, W, call.args[0].device)
        N = plan.window[0] * plan.window[1]
        index = torch.where(plan.fold < H * W, plan.fold, -1).view(-1, N).cpu()  # (nW, N); H·W marks padding
        layout = TokenLayout.groups(index, TokenSpace(0, (H, W)))
        if plan.mask is not None:
            layout.forbidden = (plan.mask != 0).cpu().view(-1, N, N)  # (nW, 1, N, N) -> (nW, N, N)
        return layout

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, H, W, D) -> (B, H, W, D)."""
        x = x + self.drop_path1(self.window_attention(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Concatenate each 2×2 group of tokens -> LN(4C) -> Linear 4C -> 2C without bias:
    (B, H, W, C) -> (B, ⌈H/2⌉, ⌈W/2⌉, 2C); an odd side is zero-padded at the bottom/right."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, H, W, C) -> (B, ⌈H/2⌉, ⌈W/2⌉, 2C)."""
        B, H, W, C = x.shape
        if H % 2 or W % 2:
            x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        H2, W2 = (H + 1) // 2, (W + 1) // 2
        # Channel order [x(0,0), x(1,0), x(0,1), x(1,1)] (row offset fastest), as in the official code.
        x = x.reshape(B, H2, 2, W2, 2, C).permute(0, 1, 3, 4, 2, 5)  # (B, H2, i, W2, j, C) -> (B, H2, W2, j, i, C)
        return self.reduction(self.norm(x.reshape(B, H2, W2, 4 * C)))


class SwinStage(nn.Module):
    """PatchMerging (stages after the first; timm's placement), then blocks alternating regular and shifted
    windows: (B, H, W, C/2 or C) -> (B, H', W', C)."""

    def __init__(self, dim: int, num_heads: int, window_size: int, downsample: bool, mlp_ratio: float,
                 qkv_bias: bool, drop: float, attn_drop: float, drop_path_rates: list[float]):
        super().__init__()
        self.downsample = PatchMerging(dim // 2) if downsample else nn.Identity()
        self.blocks = nn.Sequential(*[
            SwinBlock(dim, num_heads, window_size, i % 2 == 1, mlp_ratio, qkv_bias, drop, attn_drop, dpr)
            for i, dpr in enumerate(drop_path_rates)
        ])

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, H, W, C/2) -> (B, ⌈H/2⌉, ⌈W/2⌉, C) with downsampling, else (B, H, W, C) -> same."""
        return self.blocks(self.downsample(x))


class ClassifierHead(nn.Module):
    """Dropout -> Linear: pooled features (B, D) -> logits (B, num_classes). A module so that keys read
    `head.fc.*` as in timm."""

    def __init__(self, dim: int, num_classes: int, drop: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()
        self.fc = Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.drop(x))


class SwinTransformer(VitkitModel):
    """Swin Transformer: (B, C, H, W) -> logits (B, num_classes). Tokens stay on their (B, H, W, D) grid."""

    hierarchical = True
    weight_layout = "Swin"
    # timm's weights (ImageNet statistics, bicubic, crop 0.9; 1.0 at 384); torchvision's swin_t/s/b resize
    # 232 / 246 / 238 -> crop 224 (their weights' transforms).
    data_configs = (
        ("swin_*_384", {"timm": data_cfg(IMAGENET_MEAN, IMAGENET_STD, "bicubic", 1.0)}),
        *((f"swin_{size}_*", {"timm": data_cfg(IMAGENET_MEAN, IMAGENET_STD, "bicubic", 0.9),
                              "torchvision": data_cfg(IMAGENET_MEAN, IMAGENET_STD, "bicubic", 224 / resize)})
          for size, resize in (("tiny", 232), ("small", 246), ("base", 238))),
        ("swin_*", {"timm": data_cfg(IMAGENET_MEAN, IMAGENET_STD, "bicubic", 0.9)}),
    )

    def __init__(self, cfg: SwinConfig):
        validate_config(cfg)
        S = len(cfg.depths)
        dims = [cfg.embed_dim * 2 ** i for i in range(S)]
        super().__init__(cfg, num_features=dims[-1])
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, cfg.embed_dim, norm_layer=nn.LayerNorm)
        self.pos_drop = nn.Dropout(cfg.drop_rate) if cfg.drop_rate > 0 else nn.Identity()
        dpr = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        starts = [sum(cfg.depths[:i]) for i in range(S)]
        self.layers = nn.Sequential(*[
            SwinStage(dims[i], cfg.num_heads[i], cfg.window_size, i > 0, cfg.mlp_ratio, cfg.qkv_bias, cfg.drop_rate,
                      cfg.attn_drop_rate, dpr[starts[i]:starts[i] + cfg.depths[i]])
            for i in range(S)
        ])
        self.norm = nn.LayerNorm(self.num_features)
        self.head = self.new_head(cfg.num_classes)
        self.feature_info = feature_info("layers", range(S), dims, [cfg.patch_size * 2 ** i for i in range(S)])
        self.apply(init_weights)

    @property
    def min_input_size(self) -> int:
        """Smallest side (pixels) that leaves every stage at least one token made of image: P·2^(S-1)."""
        return self.config.patch_size * 2 ** (len(self.config.depths) - 1)

    def _embed(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> patch tokens on their grid (B, H/P, W/P, D)."""
        x_size, grid = tuple(x.shape[-2:]), self.patch_embed.grid(x)
        x = self.patch_embed(x)  # (B, N, D); checks the batch's shape, channels and patch multiples
        if min(x_size) < self.min_input_size:
            name = self.model_name or type(self).__name__
            raise InputError(f"image size {x_size} is too small for {name}: each side must be at least "
                             f"{self.min_input_size} pixels (patch {self.config.patch_size} × "
                             f"{len(self.config.depths) - 1} patch merges)")
        return self.pos_drop(x.reshape(x.shape[0], *grid, -1))  # (B, N, D) -> (B, H/P, W/P, D)

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> normalised last-stage tokens (B, H/(P·2^(S-1)), W/(P·2^(S-1)), D) (sides rounded up)."""
        return self.norm(self.layers(self._embed(x)))

    def _intermediates(self, x: Tensor) -> Iterator[tuple[Tensor, tuple[int, int]]]:
        """Each stage's map (B, H_i, W_i, D_i)."""
        x = self._embed(x)
        for stage in self.layers:
            x = stage(x)
            yield x, tuple(x.shape[1:3])

    def _split_tokens(self, x: Tensor, grid: tuple[int, int]) -> tuple[None, Tensor]:
        return None, x.flatten(1, 2)  # (B, H, W, D) -> (B, H·W, D)

    def _finish(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """x: (B, H', W', D) -> logits (B, num_classes), or average-pooled features (B, D) with pre_logits."""
        x = x.mean((1, 2))
        return x if pre_logits else self.head(x)

    # --- API ------------------------------------------------------------------------------------------------
    def new_head(self, num_classes: int) -> nn.Module:
        head = ClassifierHead(self.num_features, num_classes, self.config.drop_rate)
        init_weights(head.fc)
        return head

    def no_weight_decay(self) -> set[str]:
        return {n for n, _ in self.named_parameters() if n.endswith("relative_position_bias_table")}

    def layer_groups(self) -> list[str]:
        """The stages' blocks in order; a stage's patch merging joins its first block."""
        return [*(g for s, stage in enumerate(self.layers)
                  for g in block_groups(f"layers.{s}.blocks", len(stage.blocks), (f"layers.{s}.downsample.",))),
                HEAD_GROUP]

    def position_tables(self) -> list[PositionTable]:
        """Each stage's first relative position bias table, per head over the (2M-1)² offsets."""
        out = []
        for i, stage in enumerate(self.layers):
            table = stage.blocks[0].attn.relative_position_bias_table.detach().float()  # ((2M-1)², h)
            side = round(table.shape[0] ** 0.5)
            out.append(PositionTable(f"stage {i + 1} block 0 relative position bias", table.t().reshape(-1, side, side),
                                     (side, side), "bias"))  # -> (h, 2M-1, 2M-1)
        return out

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """A checkpoint of another window size: bias tables resized bicubically over the (2M-1)² grid; index and
        mask buffers (official/torchvision checkpoints store them) dropped, since this model derives its own."""
        own = self.state_dict()
        out = {}
        for k, v in state_dict.items():
            if k.endswith(("relative_position_index", "attn_mask")) and k not in own:
                continue
            if k.endswith("relative_position_bias_table") and k in own and v.shape != own[k].shape:
                v = resize_relative_position_table(v, self.config.window_size)
            out[k] = v
        return out


def validate_config(cfg: SwinConfig) -> None:
    """ConfigError (one sentence) for stage lists, heads, windows or sizes that cannot build a Swin."""
    check_per_stage(cfg, len(cfg.depths), "depths", ("num_heads",))
    check_at_least(cfg, 1, "patch_size", "in_chans", "embed_dim", "num_heads", "window_size")
    check_at_least(cfg, 0, "depths", "num_classes")
    for i, h in enumerate(cfg.num_heads):
        check_divisible(f"stage {i + 1}'s width embed_dim·2^{i} =", cfg.embed_dim * 2 ** i, f"its heads num_heads[{i}] =",
                        h, "choose num_heads dividing each stage's width")
    check_patch_multiple(cfg.img_size, cfg.patch_size)
    grid = tuple(s // cfg.patch_size for s in to_2tuple(cfg.img_size))
    if cfg.window_size > min(grid):
        raise ConfigError(f"window_size {cfg.window_size} cannot fit the {grid[0]}×{grid[1]} token grid of the first "
                          f"stage (img_size {cfg.img_size} / patch_size {cfg.patch_size}); use 1 to {min(grid)}")
    smallest = cfg.patch_size * 2 ** (len(cfg.depths) - 1)
    if min(to_2tuple(cfg.img_size)) < smallest:
        raise ConfigError(f"img_size {cfg.img_size} is too small for {len(cfg.depths)} stages of patch {cfg.patch_size}: "
                          f"each side must be at least {smallest} pixels")


def _swin(overrides: dict, **base) -> SwinTransformer:
    return SwinTransformer(build_config(SwinConfig(**base), overrides))


# Table 7 sizes (C, blocks and heads per stage); drop-path rates are the official configs' ImageNet-1K values
# (T 0.2, S 0.3, B 0.5). Swin-L and the 384 models exist as 22K-pretrained weights fine-tuned with 0.2
# (configs/swin/*22kto1k*.yaml).
_TINY = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
_SMALL = dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24))
_BASE = dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32))
_LARGE = dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48))
_AT_384 = dict(img_size=384, window_size=12, drop_path_rate=0.2)


@register_model
def swin_tiny_patch4_window7_224(**overrides) -> SwinTransformer:
    return _swin(overrides, drop_path_rate=0.2, **_TINY)


@register_model
def swin_small_patch4_window7_224(**overrides) -> SwinTransformer:
    return _swin(overrides, drop_path_rate=0.3, **_SMALL)


@register_model
def swin_base_patch4_window7_224(**overrides) -> SwinTransformer:
    return _swin(overrides, drop_path_rate=0.5, **_BASE)


@register_model
def swin_large_patch4_window7_224(**overrides) -> SwinTransformer:
    return _swin(overrides, drop_path_rate=0.2, **_LARGE)


@register_model
def swin_base_patch4_window12_384(**overrides) -> SwinTransformer:
    return _swin(overrides, **_AT_384, **_BASE)


@register_model
def swin_large_patch4_window12_384(**overrides) -> SwinTransformer:
    return _swin(overrides, **_AT_384, **_LARGE)
