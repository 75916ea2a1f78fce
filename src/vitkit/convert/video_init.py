"""Initialising a video model from an image ViT's weights: one function for ViViT and TimeSformer.

Both papers start their video models from an image ViT of the same width, depth and heads:
- ViViT (Arnab et al., arXiv 2103.15691, §3.4): the tubelet filter is the image filter "inflated" over the t
  frames of a tubelet, either at the central frame ⌊t/2⌋ with zeros elsewhere (`inflate="central"`) or as its
  mean, E_image / t at every temporal index (`inflate="mean"`; both give the image embedding on a static clip);
  the image position table (resampled to n_h×n_w) is tiled over n_t (Models 1/3/4; Models 3/4 drop the cls row)
  or is the spatial encoder's own table (Model 2); blocks and the final norm are copied; Model 3's temporal
  attention starts with a zero output projection; Model 2's temporal encoder and the head keep their fresh init.
- TimeSformer (Bertasius et al., arXiv 2102.05095, App. A): patch embedding (2-D, per frame: `inflate` does not
  apply), cls, position table (resampled), blocks and final norm copied; every extra attention step
  (`temporal_`, `local_`, `width_` + `norm1`/`attn`) starts as a copy of its block's spatial `norm1`/`attn`, with
  its `*_fc` zeroed; time embedding zero; the head keeps its fresh init (new classes).

The image weights may be a vitkit / timm ViT state dict or any layout with a registered ViT converter (HF ViT).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..layers.pos_embed import resample_square_pos_embed
from ..models.timesformer import TimeSformer
from ..models.vit import VisionTransformer, ViTConfig
from ..models.vivit import FactorisedSelfAttentionBlock, ViViT, ViViTFactorisedEncoder
from . import StateDict, to_vitkit

INFLATIONS = ("central", "mean")
_STEP_KEY = re.compile(r"^(blocks\.\d+)\.[a-z]+_(norm1|attn|fc)\.")  # a TimeSformer extra step: blocks.i.temporal_attn.


def init_video_from_image(model: nn.Module, vit_state_dict: StateDict, inflate: str = "central") -> None:
    """Initialise `model` (a ViViT or TimeSformer) in place from an image ViT's state dict, as its paper does
    (see the module docstring); `inflate` ("central" or "mean") maps ViViT's 2-D patch filter to its tubelets."""
    if inflate not in INFLATIONS:
        raise ConfigError(f"unknown inflate {inflate!r}; expected one of {', '.join(INFLATIONS)}")
    if not isinstance(model, (ViViT, ViViTFactorisedEncoder, TimeSformer)):
        raise ConfigError(f"init_video_from_image initialises ViViT and TimeSformer models, got {type(model).__name__}")
    image = _image_vit_state_dict(vit_state_dict, model)
    new = dict(model.state_dict())  # what the image does not provide keeps its fresh initialisation
    if isinstance(model, TimeSformer):
        new.update(_timesformer_from_image(model, image))
    else:
        new.update(_vivit_from_image(model, image, inflate))
    model.load_state_dict(new)
    for blk in getattr(model, "blocks", []):
        if isinstance(blk, FactorisedSelfAttentionBlock):
            blk.zero_init_temporal()


def _image_vit_state_dict(state_dict: StateDict, model: nn.Module) -> StateDict:
    """The image weights in vitkit's ViT layout, checked against the video model's width, patch and depth."""
    c = model.config
    if "patch_embed.proj.weight" not in state_dict:  # another layout (HF ViT, ...): through vitkit's converters
        with torch.device("meta"):
            vit = VisionTransformer(ViTConfig(img_size=c.img_size, patch_size=c.patch_size, in_chans=c.in_chans,
                                              embed_dim=c.embed_dim, depth=c.depth, num_heads=c.num_heads,
                                              mlp_ratio=c.mlp_ratio, qkv_bias=c.qkv_bias))
        state_dict, _ = to_vitkit(state_dict, vit)
        if "patch_embed.proj.weight" not in state_dict:
            raise CheckpointError("the image checkpoint is not a ViT state dict in a known layout (vitkit/timm, or "
                                  "one with a registered converter such as HF ViT)")
    w = state_dict["patch_embed.proj.weight"]  # (D, C, P, P)
    if tuple(w.shape) != (c.embed_dim, c.in_chans, c.patch_size, c.patch_size):
        raise CheckpointError(f"the image ViT's patch embedding has shape {tuple(w.shape)}, expected "
                              f"({c.embed_dim}, {c.in_chans}, {c.patch_size}, {c.patch_size}) for this model")
    depth = 1 + max((int(k.split(".")[1]) for k in state_dict if k.startswith("blocks.")), default=-1)
    if depth != c.depth:
        raise CheckpointError(f"the image ViT has {depth} blocks and this model {c.depth}; expected an image ViT of "
                              f"the same size")
    return state_dict


def _copied(image: StateDict, prefixes: tuple[str, ...]) -> StateDict:
    return {k: v for k, v in image.items() if k.startswith(prefixes)}


def _vivit_from_image(model: ViViT | ViViTFactorisedEncoder, image: StateDict, inflate: str) -> StateDict:
    (n_t, n_h, n_w), t = model.grid_size, model.config.tubelet_size
    w = image["patch_embed.proj.weight"]  # (D, C, P, P)
    if inflate == "central":
        w3 = torch.zeros(*w.shape[:2], t, *w.shape[2:], dtype=w.dtype)  # (D, C, t, P, P)
        w3[:, :, t // 2] = w
    else:
        w3 = w.unsqueeze(2).repeat(1, 1, t, 1, 1) / t  # (D, C, P, P) -> (D, C, t, P, P)
    new = _copied(image, ("blocks.", "norm.", "patch_embed.proj.bias"))
    new["patch_embed.proj.weight"] = w3
    pos = resample_square_pos_embed(image["pos_embed"], (n_h, n_w))  # (1, 1 + S, D)
    tiled = pos[:, 1:].repeat(1, n_t, 1)  # (1, S, D) -> (1, n_t·S, D), frame-major like the tokens
    if isinstance(model, ViViTFactorisedEncoder):  # the spatial encoder is the image ViT
        new["pos_embed"], new["cls_token"] = pos, image["cls_token"]
    elif model.cls_token is None:  # Models 3 and 4
        new["pos_embed"] = tiled
    else:
        new["pos_embed"], new["cls_token"] = torch.cat((pos[:, :1], tiled), 1), image["cls_token"]
    return _checked(model, new)


def _timesformer_from_image(model: TimeSformer, image: StateDict) -> StateDict:
    new = _copied(image, ("blocks.", "norm.", "patch_embed.", "cls_token"))
    new["pos_embed"] = resample_square_pos_embed(image["pos_embed"], model.grid_size)
    for k, v in model.state_dict().items():
        step = _STEP_KEY.match(k)
        if step is None:
            continue
        if step[2] == "fc":
            new[k] = torch.zeros_like(v)
        elif (src := _STEP_KEY.sub(rf"\1.{step[2]}.", k)) in image:
            new[k] = image[src]
    if model.time_embed is not None:
        new["time_embed"] = torch.zeros_like(model.time_embed)
    return _checked(model, new)


def _checked(model: nn.Module, new: StateDict) -> StateDict:
    own = model.state_dict()
    bad = [k for k in new if k not in own or own[k].shape != new[k].shape]
    if bad:
        raise CheckpointError(f"the image ViT does not match this model at {bad[0]!r} (depth, width or heads differ); "
                              f"expected an image ViT of the same size")
    return new
