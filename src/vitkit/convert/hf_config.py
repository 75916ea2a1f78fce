"""transformers `config.json` contents for a vitkit model (what `convert --to hf` writes beside the weights), as
plain dicts: vitkit does not need transformers to write them. Field names are transformers' configuration
classes' (ViTConfig, DeiTConfig, SwinConfig, CvtConfig, TimesformerConfig, VivitConfig)."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError

_ACTS = {"gelu": "gelu", "gelu_tanh": "gelu_fast"}  # vitkit act_layer -> transformers hidden_act (same function)


def _labels(model: nn.Module) -> dict:
    from ..hub import class_names

    names = class_names(model) or [f"LABEL_{i}" for i in range(model.num_classes)]
    return {"id2label": {str(i): n for i, n in enumerate(names)}, "label2id": {n: i for i, n in enumerate(names)}}


def _common(model: nn.Module, model_type: str, architecture: str, **fields) -> dict:
    return {"model_type": model_type, "architectures": [architecture], **fields, **_labels(model)}


def _size(value) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ConfigError(f"transformers' models take square inputs; this model is configured for {tuple(value)}")
        return int(value[0])
    return int(value)


def vit_config(model: nn.Module) -> dict:
    c = model.config
    if c.global_pool != "token":
        raise ConfigError(f"transformers' ViT classifies the class token; this model pools {c.global_pool!r}")
    distilled = c.distilled
    return _common(model, "deit" if distilled else "vit",
                   "DeiTForImageClassificationWithTeacher" if distilled else "ViTForImageClassification",
                   hidden_size=c.embed_dim, num_hidden_layers=c.depth, num_attention_heads=c.num_heads,
                   intermediate_size=int(c.embed_dim * c.mlp_ratio), hidden_act="gelu", layer_norm_eps=1e-6,
                   image_size=_size(c.img_size), patch_size=c.patch_size, num_channels=c.in_chans, qkv_bias=c.qkv_bias)


def swin_config(model: nn.Module) -> dict:
    c = model.config
    return _common(model, "swin", "SwinForImageClassification", image_size=_size(c.img_size), patch_size=c.patch_size,
                   num_channels=c.in_chans, embed_dim=c.embed_dim, depths=list(c.depths), num_heads=list(c.num_heads),
                   window_size=c.window_size, mlp_ratio=c.mlp_ratio, qkv_bias=c.qkv_bias, hidden_act="gelu",
                   layer_norm_eps=1e-5, use_absolute_embeddings=False)


def cvt_config(model: nn.Module) -> dict:
    c = model.config
    n = len(c.depths)
    return _common(model, "cvt", "CvtForImageClassification", num_channels=c.in_chans,
                   patch_sizes=list(c.patch_sizes), patch_stride=list(c.patch_strides),
                   patch_padding=list(c.patch_paddings), embed_dim=list(c.embed_dims), num_heads=list(c.num_heads),
                   depth=list(c.depths), mlp_ratio=[c.mlp_ratio] * n, qkv_bias=[c.qkv_bias] * n,
                   cls_token=[False] * (n - 1) + [c.cls_token], qkv_projection_method=["dw_bn"] * n,
                   kernel_qkv=[c.kernel_qkv] * n, padding_kv=[c.padding_qkv] * n, stride_kv=[c.stride_kv] * n,
                   padding_q=[c.padding_qkv] * n, stride_q=[c.stride_q] * n)


def timesformer_config(model: nn.Module) -> dict:
    c = model.config
    if c.attention_type not in ("divided_space_time", "space_only", "joint_space_time"):
        raise ConfigError(f"transformers' TimeSformer has no {c.attention_type!r} attention; it has divided_space_time, "
                          "space_only and joint_space_time")
    return _common(model, "timesformer", "TimesformerForVideoClassification", image_size=_size(c.img_size),
                   patch_size=c.patch_size, num_channels=c.in_chans, num_frames=c.num_frames, hidden_size=c.embed_dim,
                   num_hidden_layers=c.depth, num_attention_heads=c.num_heads,
                   intermediate_size=int(c.embed_dim * c.mlp_ratio), hidden_act="gelu", layer_norm_eps=1e-6,
                   qkv_bias=c.qkv_bias, attention_type=c.attention_type)


def vivit_config(model: nn.Module) -> dict:
    c = model.config
    if c.variant != "spatiotemporal":
        raise ConfigError(f"transformers' ViViT is Model 1 (spatiotemporal); this model is {c.variant!r}")
    return _common(model, "vivit", "VivitForVideoClassification", image_size=_size(c.img_size),
                   num_frames=c.num_frames, tubelet_size=[c.tubelet_size, c.patch_size, c.patch_size],
                   num_channels=c.in_chans, hidden_size=c.embed_dim, num_hidden_layers=c.depth,
                   num_attention_heads=c.num_heads, intermediate_size=int(c.embed_dim * c.mlp_ratio),
                   hidden_act=_ACTS[c.act_layer], layer_norm_eps=1e-6, qkv_bias=c.qkv_bias)
