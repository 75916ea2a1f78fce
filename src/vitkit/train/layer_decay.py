"""Layer-wise learning-rate decay (BEiT §3.3 / timm `param_groups_layer_decay`), one map for every family.

Parameters get a layer id: the embeddings (patch embedding, class/distillation tokens, position tables) 0,
block i of the flattened stack i + 1, the final norm and the heads L + 1 (L blocks in all). Stages are
flattened for Swin, CvT and MViT; a stage's entry (Swin's patch merging, CvT's convolutional embedding and
class token) shares the id of the stage's first block, and ViViT's factorised encoder stacks its temporal
blocks after the spatial ones. A parameter with id i is trained at lr · rate^(L + 1 − i), so the head keeps
the full rate and the patch embedding gets the smallest. The map reads parameter names only."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import ConfigError

Stage = tuple[str, tuple[str, ...]]  # (the blocks' container, the prefixes of the stage's entry modules)
_HEAD = ("norm.", "head.", "head_dist.", "fc_norm.", "temporal_norm.")


def _single(model: nn.Module) -> list[Stage]:
    return [("blocks", ())]


def _swin(model: nn.Module) -> list[Stage]:
    return [(f"layers.{s}.blocks", (f"layers.{s}.downsample.",)) for s in range(len(model.layers))]


def _cvt(model: nn.Module) -> list[Stage]:
    entry = ("patch_embed.", "cls_token", "pos_drop.")
    return [(f"stages.{s}.blocks", tuple(f"stages.{s}.{e}" for e in entry) if s else ()) for s in range(len(model.stages))]


def _vivit_factorised_encoder(model: nn.Module) -> list[Stage]:
    return [("blocks", ()), ("temporal_blocks", ("norm.", "temporal_cls_token", "temporal_pos_embed"))]


def _resnet(model: nn.Module) -> list[Stage]:
    return [(f"stages.{s}", ()) for s in range(len(model.stages))]


def _family_stages(model: nn.Module) -> list[Stage]:
    from ..models.cnn import SmallResNet
    from ..models.cvt import CvT
    from ..models.mvit import MViT
    from ..models.swin import SwinTransformer
    from ..models.timesformer import TimeSformer
    from ..models.vit import VisionTransformer
    from ..models.vivit import ViViTFactorisedEncoder, _ViViTBase

    families: list[tuple[type, Callable[[nn.Module], list[Stage]]]] = [
        (ViViTFactorisedEncoder, _vivit_factorised_encoder),  # before its base class
        ((VisionTransformer, TimeSformer, MViT, _ViViTBase), _single),
        (SwinTransformer, _swin), (CvT, _cvt), (SmallResNet, _resnet)]
    for cls, stages in families:
        if isinstance(model, cls):
            return stages(model)
    raise ConfigError(f"--layer-decay has no layer map for {type(model).__name__}; expected a vitkit ViT, DeiT, Swin, "
                      "CvT, ViViT, TimeSformer or MViT model")


def layer_ids(model: nn.Module) -> tuple[dict[str, int], int]:
    """({parameter name: layer id}, L + 1, the head's id) for a vitkit model (see the module docstring)."""
    prefixes: list[tuple[str, int]] = []  # longest match wins
    offset = 0
    for container, entry in _family_stages(model):
        blocks = model.get_submodule(container)
        prefixes += [(e, offset + 1 if offset else 0) for e in entry]
        prefixes += [(f"{container}.{j}.", offset + j + 1) for j in range(len(blocks))]
        offset += len(blocks)
    head = offset + 1
    prefixes.sort(key=lambda p: -len(p[0]))
    ids = {}
    for name, _ in model.named_parameters():
        match = next((i for p, i in prefixes if name.startswith(p)), None)
        ids[name] = match if match is not None else (head if name.startswith(_HEAD) else 0)
    return ids, head


def lr_scales(model: nn.Module, rate: float) -> dict[str, float]:
    """{parameter name: rate^(L + 1 − layer id)}."""
    ids, head = layer_ids(model)
    return {name: rate ** (head - i) for name, i in ids.items()}
