"""Hugging Face transformers state dicts -> vitkit key layout."""

from __future__ import annotations

from ..models.cvt import CvT
from ..models.timesformer import TimeSformer
from ..models.vit import VisionTransformer
from ..models.vivit import ViViT
from . import StateDict, fuse_qkv, register_converter, rename_keys

# --- CvT: transformers `CvtForImageClassification` ---------------------------------------------------------------
_HF_CVT = [  # (HF pattern, vitkit replacement), applied in order to each key
    (r"^cvt\.encoder\.stages\.(\d+)\.embedding\.convolution_embeddings\.projection\.", r"stages.\1.patch_embed.proj."),
    (r"^cvt\.encoder\.stages\.(\d+)\.embedding\.convolution_embeddings\.normalization\.", r"stages.\1.patch_embed.norm."),
    (r"^cvt\.encoder\.stages\.(\d+)\.cls_token$", r"stages.\1.cls_token"),
    (r"^cvt\.encoder\.stages\.(\d+)\.layers\.", r"stages.\1.blocks."),
    (r"\.attention\.attention\.convolution_projection_(query|key|value)\.convolution_projection\.convolution\.",
     lambda m: f".attn.{m.group(1)[0]}_reducer.conv."),
    (r"\.attention\.attention\.convolution_projection_(query|key|value)\.convolution_projection\.normalization\.",
     lambda m: f".attn.{m.group(1)[0]}_reducer.bn."),
    (r"\.attention\.attention\.projection_(query|key|value)\.", lambda m: f".attn.proj_{m.group(1)[0]}."),
    (r"\.attention\.output\.dense\.", ".attn.proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"^layernorm\.", "norm."),
    (r"^classifier\.", "head."),
]


def _is_hf_cvt(sd: StateDict) -> bool:
    return any(k.startswith("cvt.encoder.stages.") for k in sd)


@register_converter("hf", CvT, _is_hf_cvt)
def cvt_from_hf(sd: StateDict, model: CvT) -> StateDict:
    """HF transformers CvT -> vitkit. HF's port uses nn.GELU where the official code (whose weights HF ships)
    uses QuickGELU; vitkit keeps QuickGELU unless the config says act_layer="gelu"."""
    return rename_keys(sd, _HF_CVT)


# --- TimeSformer: transformers `TimesformerForVideoClassification` (space_only, joint, divided) -------------------
_HF_TIMESFORMER = [  # (HF pattern, vitkit replacement), applied in order to each key
    (r"^timesformer\.embeddings\.cls_token$", "cls_token"),
    (r"^timesformer\.embeddings\.position_embeddings$", "pos_embed"),
    (r"^timesformer\.embeddings\.time_embeddings$", "time_embed"),
    (r"^timesformer\.embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^timesformer\.encoder\.layer\.(\d+)\.", r"blocks.\1."),
    (r"\.temporal_attention\.attention\.qkv\.", ".temporal_attn.qkv."),
    (r"\.temporal_attention\.output\.dense\.", ".temporal_attn.proj."),
    (r"\.temporal_layernorm\.", ".temporal_norm1."),
    (r"\.temporal_dense\.", ".temporal_fc."),
    (r"\.attention\.attention\.qkv\.", ".attn.qkv."),
    (r"\.attention\.output\.dense\.", ".attn.proj."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
    (r"^timesformer\.layernorm\.", "norm."),
    (r"^classifier\.", "head."),
]


def _is_hf_timesformer(sd: StateDict) -> bool:
    return "timesformer.embeddings.cls_token" in sd


@register_converter("hf", TimeSformer, _is_hf_timesformer)
def timesformer_from_hf(sd: StateDict, model: TimeSformer) -> StateDict:
    """HF transformers TimeSformer -> vitkit (the official layout without `model.`). HF's space-only model
    returns B·T rows of logits; the weights are the same, vitkit pools over frames as the official code does."""
    return rename_keys(sd, _HF_TIMESFORMER)


# --- ViViT Model 1: transformers `VivitForVideoClassification` (transformers 5 and the older hub layout) ---------
_HF_VIVIT = [  # (HF pattern, vitkit replacement), applied in order to each key; q/k/v are fused afterwards
    (r"^(vivit\.)?embeddings\.cls_token$", "cls_token"),
    (r"^(vivit\.)?embeddings\.position_embeddings$", "pos_embed"),
    (r"^(vivit\.)?embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^(vivit\.)?(encoder\.layer|layers)\.(\d+)\.", r"blocks.\3."),
    (r"\.attention\.attention\.(q)uery\.|\.attention\.attention\.(k)ey\.|\.attention\.attention\.(v)alue\.",
     lambda m: f".attn.{m.group(1) or m.group(2) or m.group(3)}."),
    (r"\.attention\.([qkv])_proj\.", r".attn.\1."),
    (r"\.attention\.(output\.dense|o_proj)\.", ".attn.proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"^(vivit\.)?layernorm\.", "norm."),
    (r"^classifier\.", "head."),
]


def _is_hf_vivit(sd: StateDict) -> bool:
    w = sd.get("vivit.embeddings.patch_embeddings.projection.weight", sd.get("embeddings.patch_embeddings.projection.weight"))
    return w is not None and w.ndim == 5


@register_converter("hf", ViViT, _is_hf_vivit)
def vivit_from_hf(sd: StateDict, model: ViViT) -> StateDict:
    """HF transformers ViViT (Model 1) -> vitkit: separate q/k/v fused into qkv; the unused pooler dropped.
    HF's default activation, gelu_fast, is the tanh approximation that vitkit's ViViT uses by default (scenic's);
    a model configured with hidden_act="gelu" needs act_layer="gelu" here."""
    sd = {k: v for k, v in sd.items() if ".pooler." not in k and not k.startswith("pooler.")}
    return fuse_qkv(rename_keys(sd, _HF_VIVIT), ".attn.q.", ".attn.k.", ".attn.v.", ".attn.qkv.")


# --- ViT / DeiT: transformers `ViTForImageClassification`, `DeiTForImageClassification(WithTeacher)` ---------------
# Both layouts are accepted: transformers >= 5 (`layers.i.attention.q_proj`, `mlp.fc1`) and the hub checkpoints'
# older one (`encoder.layer.i.attention.attention.query`, `intermediate.dense`, `output.dense`).

_HF_VIT_OLD = [
    (r"\.encoder\.layer\.", ".layers."),
    (r"\.attention\.attention\.query\.", ".attention.q_proj."),
    (r"\.attention\.attention\.key\.", ".attention.k_proj."),
    (r"\.attention\.attention\.value\.", ".attention.v_proj."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
]
_HF_VIT = [  # the block prefix first, then names inside a block
    (r"^(vit|deit)\.embeddings\.cls_token$", "cls_token"),
    (r"^(vit|deit)\.embeddings\.distillation_token$", "dist_token"),
    (r"^(vit|deit)\.embeddings\.position_embeddings$", "pos_embed"),
    (r"^(vit|deit)\.embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^(vit|deit)\.layers\.(\d+)\.", r"blocks.\2."),
    (r"\.attention\.o_proj\.", ".attn.proj."),
    (r"\.attention\.([qkv])_proj\.", r".attn.\1_proj."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"^(vit|deit)\.layernorm\.", "norm."),
    (r"^(classifier|cls_classifier)\.", "head."),
    (r"^distillation_classifier\.", "head_dist."),
]


def _is_hf_vit(sd: StateDict) -> bool:
    return any(k in sd for k in ("vit.embeddings.cls_token", "deit.embeddings.cls_token"))


@register_converter("hf", VisionTransformer, _is_hf_vit)
def vit_from_hf(sd: StateDict, model: VisionTransformer) -> StateDict:
    """HF ViT/DeiT -> vitkit: separate q/k/v projections fused into `qkv` (rows in q, k, v order)."""
    sd = {k: v for k, v in sd.items() if ".pooler." not in k}
    sd = rename_keys(rename_keys(sd, _HF_VIT_OLD), _HF_VIT)
    return fuse_qkv(sd, ".attn.q_proj.", ".attn.k_proj.", ".attn.v_proj.", ".attn.qkv.")
