"""timm (`timm.models`) state dicts -> vitkit key layout."""

from __future__ import annotations

import re

from ..models.mvit import MViT
from ..models.vit import VisionTransformer
from . import StateDict, register_converter


# --- MViT v2: timm `models/mvitv2.py` (mvitv2_tiny/small/base/...) ------------------------------------------------------
def _is_timm_mvit(sd: StateDict) -> bool:
    return "patch_embed.proj.weight" in sd and any(k.startswith("stages.0.blocks.0.attn.") for k in sd)


@register_converter("timm", MViT, _is_timm_mvit)
def mvit_from_timm(sd: StateDict, model: MViT) -> StateDict:
    """timm MultiScaleVit -> vitkit: `stages.{s}.blocks.{j}` -> `blocks.{i}` (i counted over the stage split),
    `attn.pool_{q,k,v}` / `attn.norm_{q,k,v}` -> `attn.{q,k,v}_reducer` / `attn.{q,k,v}_norm`,
    `attn.rel_pos_{h,w}` -> `attn.rel_pos.rel_pos_{h,w}`, `head.fc` -> `head`; the rest is the same."""
    depths = model.config.depths
    offsets = [sum(depths[:s]) for s in range(len(depths))]
    out = {}
    for k, v in sd.items():
        k = re.sub(r"^stages\.(\d+)\.blocks\.(\d+)\.",
                   lambda m: f"blocks.{offsets[int(m[1])] + int(m[2])}.", k)
        k = re.sub(r"\.attn\.pool_([qkv])\.", r".attn.\1_reducer.", k)
        k = re.sub(r"\.attn\.norm_([qkv])\.", r".attn.\1_norm.", k)
        k = re.sub(r"\.attn\.rel_pos_([thw])$", r".attn.rel_pos.rel_pos_\1", k)
        out[re.sub(r"^head\.fc\.", "head.", k)] = v
    return out


# --- ViT / DeiT: timm `vision_transformer.py` and `deit.py` (and the official DeiT checkpoints) ---------------------
# vitkit's ViT keys are timm's; only the average-pooling variants differ: timm keeps the final norm as `fc_norm`
# (applied after pooling) with `norm` an Identity, where vitkit has one `norm` applied where the pooling needs it.


def _is_timm_vit(sd: StateDict) -> bool:
    return "patch_embed.proj.weight" in sd and "blocks.0.attn.qkv.weight" in sd and "pos_embed" in sd


@register_converter("timm", VisionTransformer, _is_timm_vit)
def vit_from_timm(sd: StateDict, model: VisionTransformer) -> StateDict:
    """timm ViT/DeiT -> vitkit: `fc_norm` -> `norm`; Identity-layer keys absent in vitkit are refused by the load."""
    return {re.sub(r"^fc_norm\.", "norm.", k): v for k, v in sd.items()}
