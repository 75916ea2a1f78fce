"""The papers' official code (microsoft/CvT, microsoft/Swin-Transformer, ...) state dicts -> vitkit key layout."""

from __future__ import annotations

import re

import torch
from torch import nn

from ..layers import relative_position_index
from . import Pairs, StateDict, pair_rules, register_converter, rename_keys
from .timm import MVIT_ATTN

# --- CvT: microsoft/CvT `lib/models/cls_cvt.py` --------------------------------------------------------------------
_OFFICIAL_CVT: Pairs = [("^stage{i}.", "^stages.{i}."), *[(f".attn.conv_proj_{x}.", f".attn.{x}_reducer.") for x in "qkv"]]

def _is_official_cvt(sd: StateDict) -> bool:
    return any(k.startswith("stage0.patch_embed.") for k in sd)


@register_converter("official", "CvT", _is_official_cvt)
def cvt_from_official(sd: StateDict, model: nn.Module) -> StateDict:
    """`stage{i}.` -> `stages.{i}.`, `attn.conv_proj_{q,k,v}.{conv,bn}` -> `attn.{q,k,v}_reducer.{conv,bn}`;
    `norm` and `head` are the same."""
    return rename_keys(sd, pair_rules(_OFFICIAL_CVT))


def cvt_to_official(sd: StateDict) -> StateDict:
    """vitkit CvT -> the official key layout (the inverse of `cvt_from_official`)."""
    return rename_keys(sd, pair_rules(_OFFICIAL_CVT, to_foreign=True))


# --- TimeSformer: facebookresearch/TimeSformer `timesformer/models/vit.py` ----------------------------------------
def _is_official_timesformer(sd: StateDict) -> bool:
    return "model.cls_token" in sd and "model.patch_embed.proj.weight" in sd


@register_converter("official", "TimeSformer", _is_official_timesformer)
def timesformer_from_official(sd: StateDict, model: nn.Module) -> StateDict:
    """The official wrapper holds the ViT as `model`: vitkit's keys are its keys less the `model.` prefix
    (`blocks.i.{norm1,attn,temporal_norm1,temporal_attn,temporal_fc,norm2,mlp}`, `pos_embed`, `time_embed`,
    `cls_token`, `norm`, `head`). Position/time tables at another size are resampled by `adapt_state_dict`."""
    return {k.removeprefix("model."): v for k, v in sd.items()}


# --- MViT v1/v2: facebookresearch/SlowFast `slowfast/models/{video_model_builder,attention}.py` (video) and ----------
# facebookresearch/mvit `mvit/models/{mvit_model,attention}.py` (image): one key layout, `blocks.{i}` flat.
def _is_official_mvit(sd: StateDict) -> bool:
    return "head.projection.weight" in sd and "patch_embed.proj.weight" in sd


@register_converter("official", "MViT", _is_official_mvit)
def mvit_from_official(sd: StateDict, model: nn.Module) -> StateDict:
    """`attn.pool_{q,k,v}` / `attn.norm_{q,k,v}` -> `attn.{q,k,v}_reducer` / `attn.{q,k,v}_norm`,
    `attn.rel_pos_{h,w,t}` -> `attn.rel_pos.rel_pos_*`, `head.projection` -> `head`, the block's skip `proj` ->
    `shortcut_proj_attn` (DIM_MUL_IN_ATT) or `shortcut_proj_mlp`. `pos_embed_{spatial,temporal,class}`,
    `cls_token`, `patch_embed.proj`, `norm{1,2}`, `mlp.fc{1,2}`, `attn.{qkv,proj}` are the same. Checkpoints
    written with SEPARATE_QKV have `attn.{q,k,v}` linears applied before pooling: they are stacked into `qkv`.
    (POOL_FIRST checkpoints pool before projecting, a different model, and are not supported.) The official
    TransformerBasicHead applies a softmax in eval mode; vitkit returns logits in every mode."""
    skip = "shortcut_proj_attn" if model.config.expand_attn else "shortcut_proj_mlp"
    rules = pair_rules([*MVIT_ATTN, ("^blocks.{i}.proj.", f"^blocks.{{i}}.{skip}."), ("^head.projection.", "^head.")])
    out = rename_keys(sd, rules)
    for k in [k for k in out if k.endswith((".attn.q.weight", ".attn.q.bias"))]:
        stem, kind = k.rsplit(".q.", 1)
        out[f"{stem}.qkv.{kind}"] = torch.cat([out.pop(f"{stem}.{x}.{kind}") for x in "qkv"])
    return out


# --- Swin: microsoft/Swin-Transformer `models/swin_transformer.py` (also timm < 0.9) -------------------------------
def _is_official_swin(sd: StateDict) -> bool:
    return "layers.0.downsample.reduction.weight" in sd or (
        "head.weight" in sd and "layers.0.blocks.0.attn.relative_position_bias_table" in sd)


@register_converter("official", "Swin", _is_official_swin)
def swin_from_official(sd: StateDict, model: nn.Module) -> StateDict:
    """The official code merges patches at the *end* of stage i (`layers.{i}.downsample`), vitkit/timm at the
    start of stage i+1 (`layers.{i+1}.downsample`); `head` -> `head.fc`. The stored `relative_position_index`
    and `attn_mask` buffers are dropped: vitkit derives them from the window size and input size."""
    out = {}
    for k, v in sd.items():
        if k.endswith(("relative_position_index", "attn_mask")):
            continue
        k = re.sub(r"^layers\.(\d+)\.downsample\.", lambda m: f"layers.{int(m[1]) + 1}.downsample.", k)
        out[re.sub(r"^head\.", "head.fc.", k)] = v
    return out


def swin_to_official(sd: StateDict, window_size: int) -> StateDict:
    """vitkit Swin -> the official key layout (the inverse of `swin_from_official`, with the index buffers the
    official code stores; its shifted blocks' `attn_mask` buffers depend on the input size and are left out)."""
    out = {}
    for k, v in sd.items():
        k = re.sub(r"^layers\.(\d+)\.downsample\.", lambda m: f"layers.{int(m[1]) - 1}.downsample.", k)
        out[re.sub(r"^head\.fc\.", "head.", k)] = v
        if k.endswith("attn.relative_position_bias_table"):
            out[k.replace("bias_table", "index")] = relative_position_index(window_size)
    return out
