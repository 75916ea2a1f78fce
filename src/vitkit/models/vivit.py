"""ViViT (Arnab et al., "ViViT: A Video Vision Transformer", arXiv 2103.15691): tubelet embedding (§3.2), the four
models of §3.3 (Table 2), Model 3's temporal attention zero-initialised (§3.4; initialising from an image ViT's
weights is `vitkit.init_video_from_image`, in convert/video_init.py). Configurations follow google-research
scenic `projects/vivit` (pre-LN, eps 1e-6, qkv bias, and Flax's default GELU, the tanh approximation, as HF's
gelu_fast). Model 1 is checked against HF transformers `VivitForVideoClassification` (the only PyTorch ViViT) by
tests/parity/test_vivit.py; Models 2–4 exist only in scenic (JAX), so tests/test_vivit.py pins them by their
parameter counts (SPEC §9) and token dependencies.

Videos are (B, C, T, H, W); patch tokens are kept flat in (t, h, w) order, (B, T·S, D) with S = H·W tokens
per frame, and every factorisation is a regrouping from `layers.groupings` around the shared attention core.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import (
    Attention,
    Block,
    LayerNorm6,
    TubeletEmbed,
    activation,
    attend,
    drop_path,
    drop_path_rates,
    init_weights,
    resample_abs_pos_embed,
    trunc_normal_,
)
from ..layers.groupings import frames, tubes, unframes, untubes
from ..layers.pixel_stats import INCEPTION_MEAN, INCEPTION_STD
from ..layers.pos_embed import resample_square_pos_embed, resample_tube_pos_embed
from ..layers.tokens import AttentionCall, TokenLayout, TokenSpace, per_frame_index, trace
from ..registry import build_config, register_model
from .base import (
    HEAD_GROUP,
    PositionTable,
    VitkitModel,
    block_groups,
    check_choice,
    check_divisible,
    check_patch_multiple,
    data_cfg,
    to_2tuple,
)
from .features import feature_info, split_frame_prefix
from .vit import VisionTransformer


@dataclass(frozen=True)
class ViViTConfig:
    img_size: int | tuple[int, int] = 224  # H = W
    num_frames: int = 32                   # T, input frames (sampled at stride 2 from the video, §4.1)
    patch_size: int = 16                   # h = w of a tubelet
    tubelet_size: int = 2                  # t; 1 is uniform frame sampling (§3.2)
    in_chans: int = 3                      # C
    num_classes: int = 400                 # Kinetics-400
    embed_dim: int = 768                   # d
    depth: int = 12                        # L (Model 2: L_s, the spatial encoder)
    temporal_depth: int = 4                # L_t, Model 2's temporal encoder (paper: 4 "for all experiments")
    num_heads: int = 12                    # h (Model 4: half over space, half over time)
    mlp_ratio: float = 4.0                 # MLP size / d
    qkv_bias: bool = True
    variant: str = "spatiotemporal"        # §3.3: spatiotemporal (1), factorised_encoder (2),
    #                                        factorised_self_attention (3), factorised_dot_product (4)
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0            # stochastic depth, linear over blocks (EK 0.2, SSv2 0.3)
    act_layer: str = "gelu_tanh"           # scenic's MlpBlock uses Flax nn.gelu (approximate=True), as HF (gelu_fast)


# --- blocks: every one maps patch tokens (B, [1 +] T·S, D) -> same, given the frame count T ------------------
class SpatioTemporalBlock(Block):
    """Model 1: the image block over all tokens jointly (the cls token included)."""

    def forward(self, x: Tensor, T: int) -> Tensor:
        """x: (B, N, D) -> (B, N, D)."""
        return super().forward(x)

    def attention_layout(self, call: AttentionCall) -> TokenLayout:
        return TokenLayout.joint(TokenSpace(call.model.num_prefix_tokens, tuple(call.model.patch_embed.grid(call.input))))


class FactorisedSelfAttentionBlock(Block):
    """Model 3 (Eq. 4–6): y_s = MSA_s(LN(z)) + z per frame, y_t = MSA_t(LN(y_s)) + y_s per spatial position,
    then the MLP. `attn`/`norm1` are the spatial (image ViT) ones; the temporal output projection starts at zero
    so the block starts as the image block (§3.4) — only the projection, since a zero qkv would also zero its
    own gradient."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop: float, attn_drop: float,
                 drop_path_rate: float, act_layer: type[nn.Module] = nn.GELU):
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, drop_path_rate, act_layer=act_layer)
        self.temporal_norm = LayerNorm6(dim)
        self.temporal_attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path_t = drop_path(drop_path_rate)

    def zero_init_temporal(self) -> None:
        nn.init.zeros_(self.temporal_attn.proj.weight)
        nn.init.zeros_(self.temporal_attn.proj.bias)

    def attention_layout(self, call: AttentionCall) -> TokenLayout:
        """The spatial step's sequences are frames, the temporal step's tubes (one per spatial position)."""
        grid = tuple(call.model.patch_embed.grid(call.input))
        fold = (lambda t: tubes(t, grid[0])) if call.attn is self.temporal_attn else (lambda t: frames(t, grid[0]))
        return TokenLayout.groups(trace(fold, math.prod(grid)), TokenSpace(0, grid))

    def forward(self, x: Tensor, T: int) -> Tensor:
        """x: (B, T·S, D) -> (B, T·S, D)."""
        B = x.shape[0]
        x = x + self.drop_path1(unframes(self.attn(frames(self.norm1(x), T)), T))  # over (B·T, S, D)
        x = x + self.drop_path_t(untubes(self.temporal_attn(tubes(self.temporal_norm(x), T)), B))  # (B·S, T, D)
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class FactorisedDotProductAttention(Attention):
    """Model 4 (§3.3): one qkv and one output projection; heads [0, h/2) attend over time (K_t, V_t ∈ R^{n_t×d}),
    heads [h/2, h) over space (K_s, V_s ∈ R^{n_h·n_w×d}) — scenic's group order; outputs are concatenated
    and projected by W_O."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        assert num_heads % 2 == 0, "validate_config: num_heads must be even for two halves"
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop)

    def forward(self, x: Tensor, T: int) -> Tensor:
        """x: (B, T·S, D) -> (B, T·S, D)."""
        B, g = x.shape[0], self.num_heads // 2
        q, k, v = self.split_heads(x)  # each (B, h, T·S, d)
        p, s = self.dropout_p, self.scale
        time = attend(*(tubes(t[:, :g], T) for t in (q, k, v)), None, p, s)     # (B·S, h/2, T, d)
        space = attend(*(frames(t[:, g:], T) for t in (q, k, v)), None, p, s)   # (B·T, h/2, S, d)
        return self.merge_heads(torch.cat((untubes(time, B), unframes(space, T)), dim=1))  # (B, h, N, d)

    def attention_layout(self, call: AttentionCall) -> TokenLayout:
        """Two calls of the core in one layer: the time heads over tubes, the space heads over frames."""
        grid, h = tuple(call.model.patch_embed.grid(call.input)), self.num_heads
        n, T = math.prod(grid), grid[0]
        time, space = trace(lambda t: tubes(t, T), n), trace(lambda t: frames(t, T), n)
        q = TokenSpace(0, grid)
        return TokenLayout(q, q, [(time, time, slice(0, h // 2)), (space, space, slice(h // 2, h))])


class FactorisedDotProductBlock(Block):
    """Model 4: the image block with factorised dot-product attention as its `attn_layer`."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop: float, attn_drop: float,
                 drop_path_rate: float, act_layer: type[nn.Module] = nn.GELU):
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, drop_path_rate, act_layer=act_layer,
                         attn_layer=FactorisedDotProductAttention)

    def forward(self, x: Tensor, T: int) -> Tensor:
        """x: (B, T·S, D) -> (B, T·S, D)."""
        x = x + self.drop_path1(self.attn(self.norm1(x), T))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


# --- models --------------------------------------------------------------------------------------------------
class _ViViTBase(VitkitModel):
    """What the four models share: the tubelet embedding, the linear head and the model API."""

    is_video = True
    image_init = True
    image_init_rules = ((r"\.temporal_attn\.proj\.", None),)  # Model 3's temporal attention adds nothing at first (§3.4)
    # Scenic's Kinetics preprocessing: pixels in [-1, 1], shorter side 256, centre crop 224, bilinear
    data_configs = (("vivit_*", {"official": data_cfg(INCEPTION_MEAN, INCEPTION_STD, "bilinear", 224 / 256)}),)

    def __init__(self, cfg: ViViTConfig):
        validate_config(cfg)
        super().__init__(cfg, num_features=cfg.embed_dim)
        self.feature_info = feature_info("blocks", range(cfg.depth), [cfg.embed_dim] * cfg.depth,
                                         [cfg.patch_size] * cfg.depth)
        self.patch_embed = TubeletEmbed(cfg.tubelet_size, cfg.patch_size, cfg.in_chans, cfg.embed_dim)
        H, W = to_2tuple(cfg.img_size)
        self.grid_size = (cfg.num_frames // cfg.tubelet_size, H // cfg.patch_size, W // cfg.patch_size)  # n_t, n_h, n_w
        self.pos_drop = nn.Dropout(cfg.drop_rate) if cfg.drop_rate > 0 else nn.Identity()

    def _init(self) -> None:
        self.apply(init_weights)
        for name, p in self.named_parameters():
            if "pos_embed" in name or "cls_token" in name:
                trunc_normal_(p)

    def no_weight_decay(self) -> set[str]:
        return {n for n, _ in self.named_parameters() if "pos_embed" in n or "cls_token" in n}

    def size_dependence(self) -> dict[str, str]:
        return dict.fromkeys(("frames", "height", "width"), "positions")

    def image_model(self) -> VisionTransformer:
        return VisionTransformer.sized_like(self.config)


class ViViT(_ViViTBase):
    """Models 1, 3 and 4: one encoder over the (n_t, n_h, n_w) tube grid. Model 1 prepends a cls token and
    classifies it; Models 3 and 4 have none ("to avoid ambiguities when reshaping") and average the tokens."""

    weight_layout = "ViViT"
    BLOCKS: ClassVar[dict[str, type[Block]]] = {
        "spatiotemporal": SpatioTemporalBlock,
        "factorised_self_attention": FactorisedSelfAttentionBlock,
        "factorised_dot_product": FactorisedDotProductBlock,
    }

    def __init__(self, cfg: ViViTConfig):
        super().__init__(cfg)
        block = self.BLOCKS[cfg.variant]
        D, act = cfg.embed_dim, activation(cfg.act_layer)
        self.num_prefix_tokens = 1 if block is SpatioTemporalBlock else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D)) if self.num_prefix_tokens else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_prefix_tokens + math.prod(self.grid_size), D))
        self.blocks = nn.ModuleList([
            block(D, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.drop_rate, cfg.attn_drop_rate, dpr, act_layer=act)
            for dpr in drop_path_rates(cfg.drop_path_rate, cfg.depth)
        ])
        self.norm = LayerNorm6(D)
        self.head = self.new_head(cfg.num_classes)
        self._init()
        for blk in self.blocks:
            if isinstance(blk, FactorisedSelfAttentionBlock):
                blk.zero_init_temporal()

    def _pos_embed(self, grid: tuple[int, int, int]) -> Tensor:
        return resample_tube_pos_embed(self.pos_embed, grid, self.grid_size, self.num_prefix_tokens)

    def _embed(self, x: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
        """x: (B, C, T, H, W) -> tokens (B, [1 +] N, D) with position embedding, and the grid (n_t, n_h, n_w)."""
        grid = self.patch_embed.grid(x)
        x = self.patch_embed(x)  # (B, N, D)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)  # -> (B, 1 + N, D)
        return self.pos_drop(x + self._pos_embed(grid)), grid

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (B, C, T, H, W) -> normalised tokens (B, [1 +] n_t·n_h·n_w, D)."""
        x, grid = self._embed(x)
        for blk in self.blocks:
            x = blk(x, grid[0])
        return self.norm(x)

    def _intermediates(self, x: Tensor) -> Iterator[tuple[Tensor, tuple[int, int, int]]]:
        """Tokens (B, [1 +] N, D) after each block."""
        x, grid = self._embed(x)
        for blk in self.blocks:
            x = blk(x, grid[0])
            yield x, grid

    def _finish(self, x: Tensor, grid: tuple[int, int, int]) -> Tensor:
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """x: (B, [1 +] N, D) -> logits (B, num_classes), or pooled features (B, D) with pre_logits."""
        x = x[:, 0] if self.cls_token is not None else x.mean(1)
        return x if pre_logits else self.head(x)

    def position_tables(self) -> list[PositionTable]:
        return [PositionTable("position embedding", self.pos_embed[0, self.num_prefix_tokens:], self.grid_size)]

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Resample a checkpoint's position table saved at another frame count or resolution (square frames)."""
        pos = state_dict.get("pos_embed")
        if pos is None or pos.shape == self.pos_embed.shape:
            return state_dict
        n, (T, H, W) = pos.shape[1] - self.num_prefix_tokens, self.grid_size
        if n % (H * W) == 0:
            old = (n // (H * W), H, W)
        elif n % T == 0 and round(math.sqrt(n // T)) ** 2 == n // T:
            old = (T, math.isqrt(n // T), math.isqrt(n // T))
        else:
            return state_dict  # not a grid we can infer: the strict load reports the mismatch
        return dict(state_dict, pos_embed=resample_tube_pos_embed(pos, self.grid_size, old, self.num_prefix_tokens))


class ViViTFactorisedEncoder(_ViViTBase):
    """Model 2: a spatial encoder (the image ViT, shared over time, with its cls token and 1 + n_h·n_w position
    table, ending in LayerNorm) turns each tubelet frame into its cls output h_i; a temporal encoder with its own
    cls token and 1 + n_t position table runs over (h_1 … h_nt) and its cls output is classified (scenic
    `SpaceTimeViViT`). Keys of the spatial encoder equal the image ViT's."""

    weight_layout = "ViViT factorised encoder"
    def __init__(self, cfg: ViViTConfig):
        super().__init__(cfg)
        D, (n_t, n_h, n_w), act = cfg.embed_dim, self.grid_size, activation(cfg.act_layer)
        self.num_prefix_tokens = 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n_h * n_w, D))
        self.blocks = nn.Sequential(*[
            Block(D, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.drop_rate, cfg.attn_drop_rate, dpr, act_layer=act)
            for dpr in drop_path_rates(cfg.drop_path_rate, cfg.depth)
        ])
        self.norm = LayerNorm6(D)
        self.temporal_cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.temporal_pos_embed = nn.Parameter(torch.zeros(1, 1 + n_t, D))
        self.temporal_blocks = nn.Sequential(*[
            Block(D, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.drop_rate, cfg.attn_drop_rate, dpr, act_layer=act)
            for dpr in drop_path_rates(cfg.drop_path_rate, cfg.temporal_depth)
        ])
        self.temporal_norm = LayerNorm6(D)
        self.head = self.new_head(cfg.num_classes)
        self._init()

    def _embed(self, x: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
        """x: (B, C, T, H, W) -> per-frame tokens (B·n_t, 1 + S, D) with position embedding, and (n_t, n_h, n_w)."""
        n_t, n_h, n_w = self.patch_embed.grid(x)
        x = frames(self.patch_embed(x), n_t)  # (B, n_t·S, D) -> (B·n_t, S, D)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)  # -> (B·n_t, 1 + S, D)
        x = x + resample_abs_pos_embed(self.pos_embed, (n_h, n_w), self.grid_size[1:], 1)
        return self.pos_drop(x), (n_t, n_h, n_w)

    def forward_spatial(self, x: Tensor) -> Tensor:
        """x: (B, C, T, H, W) -> frame tokens h_i (B, n_t, D): the spatial encoder's normalised cls outputs."""
        x, grid = self._embed(x)
        return self._frame_tokens(self.norm(self.blocks(x)), grid)

    @staticmethod
    def _frame_tokens(x: Tensor, grid: tuple[int, int, int]) -> Tensor:
        return x[:, 0].reshape(-1, grid[0], x.shape[-1])  # (B·n_t, D) -> (B, n_t, D)

    def _intermediates(self, x: Tensor) -> Iterator[tuple[Tensor, tuple[int, int, int]]]:
        """The spatial encoder's per-frame tokens (B·n_t, 1 + S, D) after each of its blocks (the levels)."""
        x, grid = self._embed(x)
        for blk in self.blocks:
            x = blk(x)
            yield x, grid

    def _split_tokens(self, x: Tensor, grid: tuple[int, int, int]) -> tuple[Tensor, Tensor]:
        return split_frame_prefix(x, grid)  # the per-frame class tokens are the prefix (B, n_t, D)

    def _finish(self, x: Tensor, grid: tuple[int, int, int]) -> Tensor:
        return self.forward_temporal(self._frame_tokens(self.norm(x), grid))

    def forward_temporal(self, x: Tensor) -> Tensor:
        """x: frame tokens (B, n_t, D) -> normalised tokens (B, 1 + n_t, D)."""
        x = torch.cat((self.temporal_cls_token.expand(x.shape[0], -1, -1), x), dim=1)  # -> (B, 1 + n_t, D)
        x = x + resample_abs_pos_embed(self.temporal_pos_embed, (x.shape[1] - 1,), self.grid_size[:1], 1)
        return self.temporal_norm(self.temporal_blocks(self.pos_drop(x)))

    def forward_features(self, x: Tensor) -> Tensor:
        """x: (B, C, T, H, W) -> normalised temporal tokens (B, 1 + n_t, D)."""
        return self.forward_temporal(self.forward_spatial(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """x: (B, 1 + n_t, D) -> logits (B, num_classes), or the temporal cls output (B, D) with pre_logits."""
        return x[:, 0] if pre_logits else self.head(x[:, 0])

    # --- protocol ---------------------------------------------------------------------------------------------
    def layer_groups(self) -> list[str]:
        """The spatial blocks, then the temporal ones; the spatial encoder's norm and the temporal tokens join the
        first temporal block."""
        temporal_entry = ("norm.", "temporal_cls_token", "temporal_pos_embed")
        return [*block_groups("blocks", len(self.blocks)),
                *block_groups("temporal_blocks", len(self.temporal_blocks), temporal_entry), HEAD_GROUP]

    def position_tables(self) -> list[PositionTable]:
        return [PositionTable("spatial position embedding", self.pos_embed[0, 1:], self.grid_size[1:]),
                PositionTable("temporal position embedding", self.temporal_pos_embed[0, 1:], self.grid_size[:1])]

    def attention_layout(self, call: AttentionCall) -> TokenLayout:
        """The spatial encoder: one sequence per frame with its own class token (the T class tokens first); the
        temporal encoder: [cls, frame tokens], frame token i being the spatial class token of frame i."""
        T, H, W = self.patch_embed.grid(call.input)
        if not call.name.startswith("temporal_blocks."):
            return TokenLayout.groups(per_frame_index(T, H * W), TokenSpace(T, (T, H, W)))
        layout = TokenLayout.joint(TokenSpace(1, (T,)))
        layout.enter = torch.zeros(1 + T, T + T * H * W)
        layout.enter[1 + torch.arange(T), torch.arange(T)] = 1.0
        return layout

    def adapt_state_dict(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Resample the spatial (square grid, bicubic) and temporal (linear) tables of a checkpoint."""
        out = dict(state_dict)
        pos, tpos = out.get("pos_embed"), out.get("temporal_pos_embed")
        if pos is not None and pos.shape != self.pos_embed.shape:
            out["pos_embed"] = resample_square_pos_embed(pos, self.grid_size[1:])
        if tpos is not None and tpos.shape != self.temporal_pos_embed.shape:
            out["temporal_pos_embed"] = resample_abs_pos_embed(tpos, self.grid_size[:1], (tpos.shape[1] - 1,), 1)
        return out


def validate_config(cfg: ViViTConfig) -> None:
    """Raise ConfigError, one sentence, for a configuration ViViT cannot be built with."""
    check_choice("variant", cfg.variant, _CLASSES)
    check_divisible("embed_dim", cfg.embed_dim, "num_heads", cfg.num_heads)
    if cfg.variant == "factorised_dot_product" and cfg.num_heads % 2:
        raise ConfigError(f"num_heads {cfg.num_heads} is odd, but factorised dot-product attention splits the heads "
                          f"into two halves (space and time); choose an even num_heads")
    check_divisible("num_frames", cfg.num_frames, "tubelet_size", cfg.tubelet_size,
                    "choose num_frames as a multiple of the tubelet depth")
    check_patch_multiple(cfg.img_size, cfg.patch_size)


# --- registered builders -------------------------------------------------------------------------------------
_CLASSES = {"spatiotemporal": ViViT, "factorised_encoder": ViViTFactorisedEncoder,
            "factorised_self_attention": ViViT, "factorised_dot_product": ViViT}


def _vivit(overrides: dict, **base) -> _ViViTBase:
    cfg = build_config(ViViTConfig(**base), overrides)
    validate_config(cfg)  # before the variant picks the class
    return _CLASSES[cfg.variant](cfg)


@register_model
def vivit_base_16x2_spatiotemporal(**overrides) -> ViViT:
    return _vivit(overrides, variant="spatiotemporal")


@register_model
def vivit_large_16x2_spatiotemporal(**overrides) -> ViViT:
    return _vivit(overrides, variant="spatiotemporal", embed_dim=1024, depth=24, num_heads=16)


@register_model
def vivit_base_16x2_factorised_encoder(**overrides) -> ViViTFactorisedEncoder:
    return _vivit(overrides, variant="factorised_encoder")


@register_model
def vivit_large_16x2_factorised_encoder(**overrides) -> ViViTFactorisedEncoder:
    # L_t = 4 as the paper says for all experiments; scenic's ViViT-L/16x2 FE config uses 24 temporal layers
    # (pass temporal_depth=24 to match those checkpoints).
    return _vivit(overrides, variant="factorised_encoder", embed_dim=1024, depth=24, num_heads=16)


@register_model
def vivit_base_16x2_factorised_self_attention(**overrides) -> ViViT:
    return _vivit(overrides, variant="factorised_self_attention")


@register_model
def vivit_base_16x2_factorised_dot_product(**overrides) -> ViViT:
    return _vivit(overrides, variant="factorised_dot_product")
