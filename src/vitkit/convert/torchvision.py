"""torchvision (`torchvision.models`) state dicts -> vitkit key layout."""

from __future__ import annotations

import re

from ..models.mvit import MViT
from ..models.swin import SwinTransformer
from ..models.vit import VisionTransformer
from . import StateDict, register_converter, rename, rename_keys


# --- MViT: torchvision `models/video/mvit.py` (mvit_v1_b, mvit_v2_s) -------------------------------------------------
def _is_torchvision_mvit(sd: StateDict) -> bool:
    return "conv_proj.weight" in sd and "pos_encoding.class_token" in sd


_TV_MVIT = [
    (r"^conv_proj\.", "patch_embed.proj."),
    (r"\.attn\.project\.0\.", ".attn.proj."),
    (r"\.attn\.pool_([qkv])\.pool\.", r".attn.\1_reducer."),
    (r"\.attn\.pool_([qkv])\.norm_act\.0\.", r".attn.\1_norm."),
    (r"\.attn\.rel_pos_([thw])$", r".attn.rel_pos.rel_pos_\1"),
    (r"\.mlp\.0\.", ".mlp.fc1."),
    (r"\.mlp\.3\.", ".mlp.fc2."),
    (r"^head\.1\.", "head."),
]


@register_converter("torchvision", MViT, _is_torchvision_mvit)
def mvit_from_torchvision(sd: StateDict, model: MViT) -> StateDict:
    """torchvision MViT -> vitkit: `conv_proj` -> `patch_embed.proj`, `pos_encoding.{class_token, spatial_pos,
    temporal_pos, class_pos}` -> `cls_token`, `pos_embed_{spatial,temporal,class}` (with the leading batch axes),
    `attn.pool_{q,k,v}.{pool,norm_act.0}` -> `attn.{q,k,v}_{reducer,norm}`, `attn.rel_pos_*` -> `attn.rel_pos.*`,
    `mlp.{0,3}` -> `mlp.fc{1,2}`, `head.1` -> `head`, and the block's `project` -> `shortcut_proj_attn` (v2,
    proj_after_attn) or `shortcut_proj_mlp` (v1)."""
    skip = "shortcut_proj_attn" if model.config.expand_attn else "shortcut_proj_mlp"
    tokens = {"pos_encoding.class_token": "cls_token", "pos_encoding.class_pos": "pos_embed_class",
              "pos_encoding.spatial_pos": "pos_embed_spatial", "pos_encoding.temporal_pos": "pos_embed_temporal"}
    out = {}
    for k, v in sd.items():
        if k in tokens:
            out[tokens[k]] = v.reshape(1, -1, v.shape[-1])  # (N, D) or (D,) -> (1, N, D)
            continue
        k = rename(k, _TV_MVIT)
        out[re.sub(r"^(blocks\.\d+)\.project\.", rf"\1.{skip}.", k)] = v
    return out


# --- Swin: torchvision `models/swin_transformer.py` (swin_t, swin_s, swin_b) ----------------------------------------
def _is_torchvision_swin(sd: StateDict) -> bool:
    return "features.0.0.weight" in sd and "features.1.0.attn.relative_position_bias_table" in sd


@register_converter("torchvision", SwinTransformer, _is_torchvision_swin)
def swin_from_torchvision(sd: StateDict, model: SwinTransformer) -> StateDict:
    """torchvision SwinTransformer -> vitkit (timm's layout): `features.0.{0,2}` -> `patch_embed.{proj,norm}`,
    stage i's blocks `features.{2i+1}.{j}` -> `layers.{i}.blocks.{j}`, the PatchMerging after it `features.{2i+2}`
    -> `layers.{i+1}.downsample`, `mlp.{0,3}` -> `mlp.fc{1,2}`, `head` -> `head.fc`; the stored
    `relative_position_index` buffers are dropped (vitkit derives them)."""
    out = {}
    for k, v in sd.items():
        if k.endswith("relative_position_index"):
            continue
        k = re.sub(r"^features\.0\.0\.", "patch_embed.proj.", k)
        k = re.sub(r"^features\.0\.2\.", "patch_embed.norm.", k)
        k = re.sub(r"^features\.(\d*[13579])\.(\d+)\.", lambda m: f"layers.{int(m[1]) // 2}.blocks.{m[2]}.", k)
        k = re.sub(r"^features\.(\d*[02468])\.", lambda m: f"layers.{int(m[1]) // 2}.downsample.", k)
        k = re.sub(r"\.mlp\.0\.", ".mlp.fc1.", k)
        k = re.sub(r"\.mlp\.3\.", ".mlp.fc2.", k)
        out[re.sub(r"^head\.", "head.fc.", k)] = v
    return out


# --- ViT: torchvision `vision_transformer.py` (vit_b_16, vit_l_16, ...) -------------------------------------------

_TV_VIT = [  # the block prefix first, then names inside a block
    (r"^class_token$", "cls_token"),
    (r"^conv_proj\.", "patch_embed.proj."),
    (r"^encoder\.pos_embedding$", "pos_embed"),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.", r"blocks.\1."),
    (r"\.ln_1\.", ".norm1."),
    (r"\.ln_2\.", ".norm2."),
    (r"\.self_attention\.in_proj_(weight|bias)$", r".attn.qkv.\1"),
    (r"\.self_attention\.out_proj\.", ".attn.proj."),
    (r"\.mlp\.(0|linear_1)\.", ".mlp.fc1."),
    (r"\.mlp\.(3|linear_2)\.", ".mlp.fc2."),
    (r"^encoder\.ln\.", "norm."),
    (r"^heads\.head\.", "head."),
]


def _is_torchvision_vit(sd: StateDict) -> bool:
    return "class_token" in sd and "encoder.pos_embedding" in sd


@register_converter("torchvision", VisionTransformer, _is_torchvision_vit)
def vit_from_torchvision(sd: StateDict, model: VisionTransformer) -> StateDict:
    """torchvision ViT -> vitkit: renames only (its in_proj is already the fused q, k, v rows)."""
    return rename_keys(sd, _TV_VIT)
