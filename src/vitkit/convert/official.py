"""The papers' official code (microsoft/CvT, microsoft/Swin-Transformer, ...) state dicts -> vitkit key layout."""

from __future__ import annotations

import re

import torch

from ..models.cvt import CvT
from ..models.timesformer import TimeSformer
from . import StateDict, register_converter


# --- CvT: microsoft/CvT `lib/models/cls_cvt.py` --------------------------------------------------------------------
def _is_official_cvt(sd: StateDict) -> bool:
    return any(k.startswith("stage0.patch_embed.") for k in sd)


@register_converter("official", CvT, _is_official_cvt)
def cvt_from_official(sd: StateDict, model: CvT) -> StateDict:
    """`stage{i}.` -> `stages.{i}.`, `attn.conv_proj_{q,k,v}.{conv,bn}` -> `attn.{q,k,v}_reducer.{conv,bn}`;
    `norm` and `head` are the same."""
    out = {}
    for k, v in sd.items():
        k = re.sub(r"^stage(\d+)\.", r"stages.\1.", k)
        out[re.sub(r"\.attn\.conv_proj_([qkv])\.", r".attn.\1_reducer.", k)] = v
    return out


def cvt_to_official(sd: StateDict) -> StateDict:
    """vitkit CvT -> the official key layout (the inverse of `cvt_from_official`)."""
    out = {}
    for k, v in sd.items():
        k = re.sub(r"^stages\.(\d+)\.", r"stage\1.", k)
        out[re.sub(r"\.attn\.([qkv])_reducer\.", r".attn.conv_proj_\1.", k)] = v
    return out


# --- TimeSformer: facebookresearch/TimeSformer `timesformer/models/vit.py` ----------------------------------------
def _is_official_timesformer(sd: StateDict) -> bool:
    return "model.cls_token" in sd and "model.patch_embed.proj.weight" in sd


@register_converter("official", TimeSformer, _is_official_timesformer)
def timesformer_from_official(sd: StateDict, model: TimeSformer) -> StateDict:
    """The official wrapper holds the ViT as `model`: vitkit's keys are its keys less the `model.` prefix
    (`blocks.i.{norm1,attn,temporal_norm1,temporal_attn,temporal_fc,norm2,mlp}`, `pos_embed`, `time_embed`,
    `cls_token`, `norm`, `head`). Position/time tables at another size are resampled by `adapt_state_dict`."""
    return {k.removeprefix("model."): v for k, v in sd.items()}


