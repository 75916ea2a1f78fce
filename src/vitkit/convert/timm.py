"""timm (`timm.models`) state dicts <-> vitkit key layout."""

from __future__ import annotations

import re

from torch import nn

from . import Pairs, StateDict, pair_rules, register_converter, register_exporter, rename, rename_keys

# --- MViT v2: timm `models/mvitv2.py` (mvitv2_tiny/small/base/...) ------------------------------------------------------
# The attention's names, shared with the official layout (official.py); vitkit's on the right.
MVIT_ATTN: Pairs = [
    *[(f".attn.pool_{x}.", f".attn.{x}_reducer.") for x in "qkv"],
    *[(f".attn.norm_{x}.", f".attn.{x}_norm.") for x in "qkv"],
    *[(f".attn.rel_pos_{x}$", f".attn.rel_pos.rel_pos_{x}$") for x in "thw"],
]
_TIMM_MVIT: Pairs = [*MVIT_ATTN, ("^head.fc.", "^head.")]


def _is_timm_mvit(sd: StateDict) -> bool:
    return "patch_embed.proj.weight" in sd and any(k.startswith("stages.0.blocks.0.attn.") for k in sd)


def _stage_offsets(model: nn.Module) -> list[int]:
    depths = model.config.depths
    return [sum(depths[:s]) for s in range(len(depths))]


@register_converter("timm", "MViT", _is_timm_mvit)
def mvit_from_timm(sd: StateDict, model: nn.Module) -> StateDict:
    """timm MultiScaleVit -> vitkit: `stages.{s}.blocks.{j}` -> `blocks.{i}` (i counted over the stage split),
    `attn.pool_{q,k,v}` / `attn.norm_{q,k,v}` -> `attn.{q,k,v}_reducer` / `attn.{q,k,v}_norm`,
    `attn.rel_pos_{h,w}` -> `attn.rel_pos.rel_pos_{h,w}`, `head.fc` -> `head`; the rest is the same."""
    offsets = _stage_offsets(model)
    flat = {re.sub(r"^stages\.(\d+)\.blocks\.(\d+)\.", lambda m: f"blocks.{offsets[int(m[1])] + int(m[2])}.", k): v
            for k, v in sd.items()}
    return rename_keys(flat, pair_rules(_TIMM_MVIT))


@register_exporter("timm", "MViT")
def mvit_to_timm(model: nn.Module) -> tuple[StateDict, None]:
    """vitkit MViT (image, timm's MultiScaleVit) -> timm: the inverse of `mvit_from_timm`."""
    if model.config.num_frames != 1:
        from ..errors import ConfigError

        raise ConfigError("timm's MViTv2 is an image model; this MViT takes video (num_frames > 1)")
    offsets = _stage_offsets(model)

    def stage(m: re.Match) -> str:
        i = int(m[1])
        s = max(j for j, o in enumerate(offsets) if o <= i)
        return f"stages.{s}.blocks.{i - offsets[s]}."
    rules = pair_rules(_TIMM_MVIT, to_foreign=True)
    return {re.sub(r"^blocks\.(\d+)\.", stage, rename(k, rules)): v for k, v in model.state_dict().items()}, None


# --- ViT / DeiT: timm `vision_transformer.py` and `deit.py` (and the official DeiT checkpoints) ---------------------
# vitkit's ViT keys are timm's; only the average-pooling variants differ: timm keeps the final norm as `fc_norm`
# (applied after pooling) with `norm` an Identity, where vitkit has one `norm` applied where the pooling needs it.


def _is_timm_vit(sd: StateDict) -> bool:
    return "patch_embed.proj.weight" in sd and "blocks.0.attn.qkv.weight" in sd and "pos_embed" in sd


@register_converter("timm", "ViT", _is_timm_vit)
def vit_from_timm(sd: StateDict, model: nn.Module) -> StateDict:
    """timm ViT/DeiT -> vitkit: `fc_norm` -> `norm`; Identity-layer keys absent in vitkit are refused by the load."""
    return {re.sub(r"^fc_norm\.", "norm.", k): v for k, v in sd.items()}


@register_exporter("timm", "ViT")
def vit_to_timm(model: nn.Module) -> tuple[StateDict, None]:
    """vitkit ViT / DeiT -> timm (the same keys; `norm` is timm's `fc_norm` when the tokens are average-pooled)."""
    avg = model.config.global_pool == "avg"
    return {re.sub(r"^norm\.", "fc_norm.", k) if avg else k: v for k, v in model.state_dict().items()}, None


@register_exporter("timm", "Swin")
def swin_to_timm(model: nn.Module) -> tuple[StateDict, None]:
    """vitkit Swin -> timm: the same keys (vitkit follows timm's layout)."""
    return dict(model.state_dict()), None
