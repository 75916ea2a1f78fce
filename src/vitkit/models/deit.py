"""DeiT (Touvron et al., "Training data-efficient image transformers & distillation through attention",
arXiv 2012.12877): §4 distillation token, §5.1 configurations (head dim 64, linear head), Table 1 sizes.
A DeiT is a ViT with DeiT's settings; the distilled models add a distillation token at index 1
([cls, dist, patches], as the official code and timm) and a second head `head_dist`. Checked against timm
`deit.py` (VisionTransformerDistilled) by tests/parity/test_vit_deit.py. The losses are in train/losses.py.
"""

from __future__ import annotations

from ..registry import register_model
from .vit import _BASE, _SMALL, _TINY, VisionTransformer, _vit


@register_model
def deit_tiny_patch16_224(**overrides) -> VisionTransformer:
    return _vit(overrides, **_TINY)


@register_model
def deit_small_patch16_224(**overrides) -> VisionTransformer:
    return _vit(overrides, **_SMALL)


@register_model
def deit_base_patch16_224(**overrides) -> VisionTransformer:
    return _vit(overrides, **_BASE)


@register_model
def deit_base_patch16_384(**overrides) -> VisionTransformer:
    return _vit(overrides, img_size=384, **_BASE)


@register_model
def deit_tiny_distilled_patch16_224(**overrides) -> VisionTransformer:
    return _vit(overrides, distilled=True, **_TINY)


@register_model
def deit_small_distilled_patch16_224(**overrides) -> VisionTransformer:
    return _vit(overrides, distilled=True, **_SMALL)


@register_model
def deit_base_distilled_patch16_224(**overrides) -> VisionTransformer:
    return _vit(overrides, distilled=True, **_BASE)


@register_model
def deit_base_distilled_patch16_384(**overrides) -> VisionTransformer:
    return _vit(overrides, img_size=384, distilled=True, **_BASE)
