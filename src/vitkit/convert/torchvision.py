"""torchvision (`torchvision.models`) state dicts <-> vitkit key layout."""

from __future__ import annotations

from torch import nn

from ..layers import relative_position_index
from . import Pairs, StateDict, pair_rules, register_converter, register_exporter, rename, rename_keys
from .timm import MVIT_ATTN


# --- MViT: torchvision `models/video/mvit.py` (mvit_v1_b, mvit_v2_s) -------------------------------------------------
def _is_torchvision_mvit(sd: StateDict) -> bool:
    return "conv_proj.weight" in sd and "pos_encoding.class_token" in sd


_TV_MVIT_TOKENS = {"pos_encoding.class_token": "cls_token", "pos_encoding.class_pos": "pos_embed_class",
                   "pos_encoding.spatial_pos": "pos_embed_spatial", "pos_encoding.temporal_pos": "pos_embed_temporal"}


def _tv_mvit_pairs(model: nn.Module) -> Pairs:
    """The block's skip projection `project` is vitkit's `shortcut_proj_attn` (v2, proj_after_attn) or
    `shortcut_proj_mlp` (v1)."""
    skip = "shortcut_proj_attn" if model.config.expand_attn else "shortcut_proj_mlp"
    return [
        ("^conv_proj.", "^patch_embed.proj."),
        (".attn.project.0.", ".attn.proj."),
        *[(f".attn.pool_{x}.pool.", f".attn.{x}_reducer.") for x in "qkv"],
        *[(f".attn.pool_{x}.norm_act.0.", f".attn.{x}_norm.") for x in "qkv"],
        *[p for p in MVIT_ATTN if "rel_pos" in p[0]],
        (".mlp.0.", ".mlp.fc1."),
        (".mlp.3.", ".mlp.fc2."),
        ("^head.1.", "^head."),
        ("^blocks.{i}.project.", f"^blocks.{{i}}.{skip}."),
    ]


@register_converter("torchvision", "MViT", _is_torchvision_mvit)
def mvit_from_torchvision(sd: StateDict, model: nn.Module) -> StateDict:
    """torchvision MViT -> vitkit: `conv_proj` -> `patch_embed.proj`, `pos_encoding.{class_token, spatial_pos,
    temporal_pos, class_pos}` -> `cls_token`, `pos_embed_{spatial,temporal,class}` (with the leading batch axes),
    `attn.pool_{q,k,v}.{pool,norm_act.0}` -> `attn.{q,k,v}_{reducer,norm}`, `attn.rel_pos_*` -> `attn.rel_pos.*`,
    `mlp.{0,3}` -> `mlp.fc{1,2}`, `head.1` -> `head`, and the block's `project` -> `shortcut_proj_attn` (v2,
    proj_after_attn) or `shortcut_proj_mlp` (v1)."""
    rules = pair_rules(_tv_mvit_pairs(model))
    out = {}
    for k, v in sd.items():
        if k in _TV_MVIT_TOKENS:
            out[_TV_MVIT_TOKENS[k]] = v.reshape(1, -1, v.shape[-1])  # (N, D) or (D,) -> (1, N, D)
        else:
            out[rename(k, rules)] = v
    return out


@register_exporter("torchvision", "MViT")
def mvit_to_torchvision(model: nn.Module) -> tuple[StateDict, None]:
    """vitkit MViT (video) -> torchvision: the inverse of `mvit_from_torchvision`; the class token and class
    position are (D,) there, the spatial and temporal tables (N, D)."""
    tokens = {v: k for k, v in _TV_MVIT_TOKENS.items()}
    rules = pair_rules(_tv_mvit_pairs(model), to_foreign=True)
    out = {}
    for k, v in model.state_dict().items():
        if k in tokens:
            out[tokens[k]] = v.reshape(-1) if k in ("cls_token", "pos_embed_class") else v.reshape(-1, v.shape[-1])
        else:
            out[rename(k, rules)] = v
    return out, None


# --- Swin: torchvision `models/swin_transformer.py` (swin_t, swin_s, swin_b) ----------------------------------------
_TV_SWIN: Pairs = [  # stage i's blocks are features.{2i+1}; the PatchMerging after it, features.{2i+2}
    ("^features.0.0.", "^patch_embed.proj."),
    ("^features.0.2.", "^patch_embed.norm."),
    ("^features.{2*i+1}.{j}.", "^layers.{i}.blocks.{j}."),
    ("^features.{2*i}.", "^layers.{i}.downsample."),
    (".mlp.0.", ".mlp.fc1."),
    (".mlp.3.", ".mlp.fc2."),
    ("^head.", "^head.fc."),
]


def _is_torchvision_swin(sd: StateDict) -> bool:
    return "features.0.0.weight" in sd and "features.1.0.attn.relative_position_bias_table" in sd


@register_converter("torchvision", "Swin", _is_torchvision_swin)
def swin_from_torchvision(sd: StateDict, model: nn.Module) -> StateDict:
    """torchvision SwinTransformer -> vitkit (timm's layout): `features.0.{0,2}` -> `patch_embed.{proj,norm}`,
    stage i's blocks `features.{2i+1}.{j}` -> `layers.{i}.blocks.{j}`, the PatchMerging after it `features.{2i+2}`
    -> `layers.{i+1}.downsample`, `mlp.{0,3}` -> `mlp.fc{1,2}`, `head` -> `head.fc`; the stored
    `relative_position_index` buffers are dropped (vitkit derives them)."""
    return rename_keys({k: v for k, v in sd.items() if not k.endswith("relative_position_index")}, pair_rules(_TV_SWIN))


@register_exporter("torchvision", "Swin")
def swin_to_torchvision(model: nn.Module) -> tuple[StateDict, None]:
    """vitkit Swin -> torchvision, with the `relative_position_index` buffers torchvision stores."""
    out = rename_keys(dict(model.state_dict()), pair_rules(_TV_SWIN, to_foreign=True))
    for k in [k for k in out if k.endswith("attn.relative_position_bias_table")]:
        out[k.replace("bias_table", "index")] = relative_position_index(model.config.window_size).flatten()
    return out, None


# --- ViT: torchvision `vision_transformer.py` (vit_b_16, vit_l_16, ...) -------------------------------------------
_TV_VIT: Pairs = [  # the block prefix first, then names inside a block
    ("^class_token$", "^cls_token$"),
    ("^conv_proj.", "^patch_embed.proj."),
    ("^encoder.pos_embedding$", "^pos_embed$"),
    ("^encoder.layers.encoder_layer_{i}.", "^blocks.{i}."),
    (".ln_1.", ".norm1."),
    (".ln_2.", ".norm2."),
    (".self_attention.in_proj_weight$", ".attn.qkv.weight$"),
    (".self_attention.in_proj_bias$", ".attn.qkv.bias$"),
    (".self_attention.out_proj.", ".attn.proj."),
    (".mlp.0.", ".mlp.fc1."),
    (".mlp.3.", ".mlp.fc2."),
    ("^encoder.ln.", "^norm."),
    ("^heads.head.", "^head."),
]
_TV_VIT_OLD = [(r"\.mlp\.linear_([12])\.", lambda m: f".mlp.{3 * int(m[1]) - 3}.")]  # torchvision < 0.13's MLP names


def _is_torchvision_vit(sd: StateDict) -> bool:
    return "class_token" in sd and "encoder.pos_embedding" in sd


@register_converter("torchvision", "ViT", _is_torchvision_vit)
def vit_from_torchvision(sd: StateDict, model: nn.Module) -> StateDict:
    """torchvision ViT -> vitkit: renames only (its in_proj is already the fused q, k, v rows)."""
    return rename_keys(rename_keys(sd, _TV_VIT_OLD), pair_rules(_TV_VIT))


@register_exporter("torchvision", "ViT")
def vit_to_torchvision(model: nn.Module) -> tuple[StateDict, None]:
    """vitkit ViT -> torchvision's VisionTransformer (class token, no distillation head)."""
    from ..errors import ConfigError

    if model.config.distilled or model.config.global_pool != "token":
        raise ConfigError("torchvision's ViT has one class-token head; this model is distilled or average-pooled")
    return rename_keys(dict(model.state_dict()), pair_rules(_TV_VIT, to_foreign=True)), None
