"""Layer-wise learning-rate decay (BEiT §3.3 / timm `param_groups_layer_decay`), one map for every family.

Parameters get a layer id: the embeddings (patch embedding, class/distillation tokens, position tables) 0,
block i of the flattened stack i + 1, the final norm and the heads L + 1 (L blocks in all). Stages are
flattened for Swin, CvT and MViT; a stage's entry (Swin's patch merging, CvT's convolutional embedding and
class token) shares the id of the stage's first block, and ViViT's factorised encoder stacks its temporal
blocks after the spatial ones. A parameter with id i is trained at lr · rate^(L + 1 − i), so the head keeps
the full rate and the patch embedding gets the smallest. Each model declares its groups as patterns over parameter
names (`VitkitModel.layer_groups`, timm's `group_matcher` idea); this map only applies them."""

from __future__ import annotations

import re

from torch import nn

from ..errors import ConfigError


def layer_ids(model: nn.Module) -> tuple[dict[str, int], int]:
    """({parameter name: layer id}, L + 1, the head's id) for a vitkit model (see the module docstring)."""
    groups = getattr(model, "layer_groups", None)
    if groups is None:
        raise ConfigError(f"--layer-decay has no layer map for {type(model).__name__}; expected a vitkit model, "
                          "which declares its layer groups")
    patterns = [re.compile(p) for p in groups()]
    ids = {name: next((i for i, p in enumerate(patterns, 1) if p.match(name)), 0) for name, _ in model.named_parameters()}
    return ids, len(patterns)


def lr_scales(model: nn.Module, rate: float) -> dict[str, float]:
    """{parameter name: rate^(L + 1 − layer id)}."""
    ids, head = layer_ids(model)
    return {name: rate ** (head - i) for name, i in ids.items()}
