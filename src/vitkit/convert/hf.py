"""Hugging Face transformers state dicts <-> vitkit key layout. Each family's key table is a two-way `Pairs`
table (foreign template, vitkit template): `*_from_hf` reads it forwards, `*_to_hf` backwards, with the
transformers config.json of the model (hf_config.py)."""

from __future__ import annotations

from torch import nn

from . import Pairs, StateDict, fuse_qkv, pair_rules, register_converter, register_exporter, rename_keys, split_qkv
from .hf_config import cvt_config, swin_config, timesformer_config, vit_config, vivit_config

# Layers every transformers port here names alike, applied after the family's prefixes (vitkit's names on the right).
_HF_BLOCK: Pairs = [
    (".layernorm_before.", ".norm1."),
    (".layernorm_after.", ".norm2."),
]
_QKV = [(f".attention.{x}_proj.", f".attn.{x}_proj.") for x in "qkv"]  # separate q/k/v, fused after renaming
_OLD_LAYOUT = [  # the hub checkpoints' names (before transformers 5) -> transformers 5's; one way: vitkit writes 5's
    (r"\.attention\.(attention|self)\.(query|key|value)\.", lambda m: f".attention.{m[2][0]}_proj."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
]


def _from_hf(sd: StateDict, pairs: Pairs, fuse: bool = False) -> StateDict:
    sd = rename_keys(sd, pair_rules(pairs))
    return fuse_qkv(sd, ".attn.q_proj.", ".attn.k_proj.", ".attn.v_proj.", ".attn.qkv.") if fuse else sd


def _to_hf(model, pairs: Pairs, split: bool = False) -> StateDict:
    sd = dict(model.state_dict())
    if split:
        sd = split_qkv(sd, ".attn.qkv.", ".attn.q_proj.", ".attn.k_proj.", ".attn.v_proj.")
    return rename_keys(sd, pair_rules(pairs, to_foreign=True))


# --- CvT: transformers `CvtForImageClassification` ---------------------------------------------------------------
_HF_CVT: Pairs = [
    ("^cvt.encoder.stages.{s}.embedding.convolution_embeddings.projection.", "^stages.{s}.patch_embed.proj."),
    ("^cvt.encoder.stages.{s}.embedding.convolution_embeddings.normalization.", "^stages.{s}.patch_embed.norm."),
    ("^cvt.encoder.stages.{s}.cls_token$", "^stages.{s}.cls_token$"),
    ("^cvt.encoder.stages.{s}.layers.", "^stages.{s}.blocks."),
    *[(f".attention.attention.convolution_projection_{n}.convolution_projection.{a}.", f".attn.{n[0]}_reducer.{b}.")
      for n in ("query", "key", "value") for a, b in (("convolution", "conv"), ("normalization", "bn"))],
    *[(f".attention.attention.projection_{n}.", f".attn.proj_{n[0]}.") for n in ("query", "key", "value")],
    (".attention.output.dense.", ".attn.proj."),
    (".intermediate.dense.", ".mlp.fc1."),
    (".output.dense.", ".mlp.fc2."),
    *_HF_BLOCK,
    ("^layernorm.", "^norm."),
    ("^classifier.", "^head."),
]


def _is_hf_cvt(sd: StateDict) -> bool:
    return any(k.startswith("cvt.encoder.stages.") for k in sd)


@register_converter("hf", "CvT", _is_hf_cvt)
def cvt_from_hf(sd: StateDict, model: nn.Module) -> StateDict:
    """HF transformers CvT -> vitkit. HF's port uses nn.GELU where the official code (whose weights HF ships)
    uses QuickGELU; vitkit keeps QuickGELU unless the config says act_layer="gelu"."""
    return _from_hf(sd, _HF_CVT)


@register_exporter("hf", "CvT")
def cvt_to_hf(model: nn.Module) -> tuple[StateDict, dict]:
    """vitkit CvT -> HF (same logits only for act_layer="gelu": transformers' CvT has no QuickGELU)."""
    return _to_hf(model, _HF_CVT), cvt_config(model)


# --- TimeSformer: transformers `TimesformerForVideoClassification` (space_only, joint, divided) -------------------
_HF_TIMESFORMER: Pairs = [
    ("^timesformer.embeddings.cls_token$", "^cls_token$"),
    ("^timesformer.embeddings.position_embeddings$", "^pos_embed$"),
    ("^timesformer.embeddings.time_embeddings$", "^time_embed$"),
    ("^timesformer.embeddings.patch_embeddings.projection.", "^patch_embed.proj."),
    ("^timesformer.encoder.layer.{i}.", "^blocks.{i}."),
    (".temporal_attention.attention.qkv.", ".temporal_attn.qkv."),
    (".temporal_attention.output.dense.", ".temporal_attn.proj."),
    (".temporal_layernorm.", ".temporal_norm1."),
    (".temporal_dense.", ".temporal_fc."),
    (".attention.attention.qkv.", ".attn.qkv."),
    (".attention.output.dense.", ".attn.proj."),
    *_HF_BLOCK,
    (".intermediate.dense.", ".mlp.fc1."),
    (".output.dense.", ".mlp.fc2."),
    ("^timesformer.layernorm.", "^norm."),
    ("^classifier.", "^head."),
]


def _is_hf_timesformer(sd: StateDict) -> bool:
    return "timesformer.embeddings.cls_token" in sd


@register_converter("hf", "TimeSformer", _is_hf_timesformer)
def timesformer_from_hf(sd: StateDict, model: nn.Module) -> StateDict:
    """HF transformers TimeSformer -> vitkit (the official layout without `model.`). HF's space-only model
    returns B·T rows of logits; the weights are the same, vitkit pools over frames as the official code does."""
    return _from_hf(sd, _HF_TIMESFORMER)


@register_exporter("hf", "TimeSformer")
def timesformer_to_hf(model: nn.Module) -> tuple[StateDict, dict]:
    return _to_hf(model, _HF_TIMESFORMER), timesformer_config(model)


# --- ViViT Model 1: transformers `VivitForVideoClassification` (transformers 5 and the older hub layout) ---------
_HF_VIVIT_OLD = [  # the hub checkpoints' layout, some without the `vivit.` prefix
    (r"^(vivit\.)?encoder\.layer\.", r"\1layers."),
    *_OLD_LAYOUT,
    (r"^(embeddings|layers|layernorm)\.", r"vivit.\1."),
]
_HF_VIVIT: Pairs = [
    ("^vivit.embeddings.cls_token$", "^cls_token$"),
    ("^vivit.embeddings.position_embeddings$", "^pos_embed$"),
    ("^vivit.embeddings.patch_embeddings.projection.", "^patch_embed.proj."),
    ("^vivit.layers.{i}.", "^blocks.{i}."),
    *_QKV,
    (".attention.o_proj.", ".attn.proj."),
    *_HF_BLOCK,
    ("^vivit.layernorm.", "^norm."),
    ("^classifier.", "^head."),
]


def _is_hf_vivit(sd: StateDict) -> bool:
    w = sd.get("vivit.embeddings.patch_embeddings.projection.weight", sd.get("embeddings.patch_embeddings.projection.weight"))
    return w is not None and w.ndim == 5


@register_converter("hf", "ViViT", _is_hf_vivit)
def vivit_from_hf(sd: StateDict, model: nn.Module) -> StateDict:
    """HF transformers ViViT (Model 1) -> vitkit: separate q/k/v fused into qkv; the unused pooler dropped.
    HF's default activation, gelu_fast, is the tanh approximation that vitkit's ViViT uses by default (scenic's);
    a model configured with hidden_act="gelu" needs act_layer="gelu" here."""
    sd = {k: v for k, v in sd.items() if ".pooler." not in k and not k.startswith("pooler.")}
    return _from_hf(rename_keys(sd, _HF_VIVIT_OLD), _HF_VIVIT, fuse=True)


@register_exporter("hf", "ViViT")
def vivit_to_hf(model: nn.Module) -> tuple[StateDict, dict]:
    return _to_hf(model, _HF_VIVIT, split=True), vivit_config(model)


# --- ViT / DeiT: transformers `ViTForImageClassification`, `DeiTForImageClassification(WithTeacher)` ---------------
# Both layouts are accepted: transformers >= 5 (`layers.i.attention.q_proj`, `mlp.fc1`) and the hub checkpoints'
# older one (`encoder.layer.i.attention.attention.query`, `intermediate.dense`, `output.dense`).
_HF_VIT_OLD = [(r"\.encoder\.layer\.", ".layers."), *_OLD_LAYOUT]


def _hf_vit_pairs(prefix: str, head: str) -> Pairs:
    """`prefix` is vit or deit; `head` the classifier's name (classifier, or cls_classifier with a teacher head)."""
    return [
        (f"^{prefix}.embeddings.cls_token$", "^cls_token$"),
        (f"^{prefix}.embeddings.distillation_token$", "^dist_token$"),
        (f"^{prefix}.embeddings.position_embeddings$", "^pos_embed$"),
        (f"^{prefix}.embeddings.patch_embeddings.projection.", "^patch_embed.proj."),
        (f"^{prefix}.layers.{{i}}.", "^blocks.{i}."),
        (".attention.o_proj.", ".attn.proj."),
        *_QKV,
        *_HF_BLOCK,
        (f"^{prefix}.layernorm.", "^norm."),
        (f"^{head}.", "^head."),
        ("^distillation_classifier.", "^head_dist."),
    ]


def _is_hf_vit(sd: StateDict) -> bool:
    return any(k in sd for k in ("vit.embeddings.cls_token", "deit.embeddings.cls_token"))


@register_converter("hf", "ViT", _is_hf_vit)
def vit_from_hf(sd: StateDict, model: nn.Module) -> StateDict:
    """HF ViT/DeiT -> vitkit: separate q/k/v projections fused into `qkv` (rows in q, k, v order)."""
    sd = {k: v for k, v in sd.items() if ".pooler." not in k}
    prefix = "deit" if "deit.embeddings.cls_token" in sd else "vit"
    head = "cls_classifier" if "cls_classifier.weight" in sd else "classifier"
    return _from_hf(rename_keys(sd, _HF_VIT_OLD), _hf_vit_pairs(prefix, head), fuse=True)


@register_exporter("hf", "ViT")
def vit_to_hf(model: nn.Module) -> tuple[StateDict, dict]:
    """vitkit ViT / DeiT -> transformers ViT, or DeiT with its teacher head for a distilled model."""
    pairs = _hf_vit_pairs("deit", "cls_classifier") if model.config.distilled else _hf_vit_pairs("vit", "classifier")
    return _to_hf(model, pairs, split=True), vit_config(model)


# --- Swin: transformers `SwinForImageClassification` (transformers 5 and the older hub layout) --------------------
_HF_SWIN_OLD = [
    (r"\.attention\.self\.relative_position_bias_table$", ".attention.relative_position_bias.relative_position_bias_table"),
    *_OLD_LAYOUT,
]
_HF_SWIN: Pairs = [  # HF merges patches at the end of stage i, vitkit (timm) at the start of stage i+1
    ("^swin.embeddings.patch_embeddings.projection.", "^patch_embed.proj."),
    ("^swin.embeddings.norm.", "^patch_embed.norm."),
    ("^swin.encoder.layers.{i}.downsample.", "^layers.{i+1}.downsample."),
    ("^swin.encoder.layers.{i}.blocks.{j}.", "^layers.{i}.blocks.{j}."),
    (".attention.relative_position_bias.relative_position_bias_table", ".attn.relative_position_bias_table"),
    (".attention.o_proj.", ".attn.proj."),
    *_QKV,
    *_HF_BLOCK,
    ("^swin.layernorm.", "^norm."),
    ("^classifier.", "^head.fc."),
]


def _is_hf_swin(sd: StateDict) -> bool:
    return "swin.embeddings.patch_embeddings.projection.weight" in sd


@register_converter("hf", "Swin", _is_hf_swin)
def swin_from_hf(sd: StateDict, model: nn.Module) -> StateDict:
    """HF Swin -> vitkit: q/k/v fused, the downsampling moved to the next stage, stored index buffers dropped."""
    sd = {k: v for k, v in sd.items() if not k.endswith("relative_position_index") and ".pooler." not in k}
    return _from_hf(rename_keys(sd, _HF_SWIN_OLD), _HF_SWIN, fuse=True)


@register_exporter("hf", "Swin")
def swin_to_hf(model: nn.Module) -> tuple[StateDict, dict]:
    return _to_hf(model, _HF_SWIN, split=True), swin_config(model)
