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
Nothing here names a family: the model says that its paper starts from an image ViT (`image_init`), which one
(`image_model()`, to read other layouts), and how the parameters the image lacks start (`image_init_rules`:
TimeSformer's copied steps, ViViT Model 3's zeroed temporal projection); the patch filter is inflated where the
model's is 3-D, and the position table is the image's, resampled to the frame's patch grid, and tiled over time
where the model's has a row per tubelet.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..layers.pos_embed import resample_square_pos_embed
from . import StateDict, to_vitkit

INFLATIONS = ("central", "mean")
_FROM_IMAGE = ("blocks.", "norm.", "patch_embed.")  # what every such model takes from the image ViT as it is


def init_video_from_image(model: nn.Module, vit_state_dict: StateDict, inflate: str = "central") -> None:
    """Initialise `model` (a ViViT or TimeSformer) in place from an image ViT's state dict, as its paper does
    (see the module docstring); `inflate` ("central" or "mean") maps ViViT's 2-D patch filter to its tubelets."""
    if inflate not in INFLATIONS:
        raise ConfigError(f"unknown inflate {inflate!r}; expected one of {', '.join(INFLATIONS)}")
    if not getattr(model, "image_init", False):
        raise ConfigError(f"init_video_from_image initialises ViViT and TimeSformer models, got {type(model).__name__}")
    image = _image_vit_state_dict(vit_state_dict, model)
    new = dict(model.state_dict())  # what the image does not provide keeps its fresh initialisation
    new.update(_from_image(model, image, inflate))
    model.load_state_dict(new)


def _image_vit_state_dict(state_dict: StateDict, model: nn.Module) -> StateDict:
    """The image weights in vitkit's ViT layout, checked against the video model's width, patch and depth."""
    c = model.config
    if "patch_embed.proj.weight" not in state_dict:  # another layout (HF ViT, ...): through vitkit's converters
        with torch.device("meta"):
            vit = model.image_model()
        if vit is not None:
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


def _inflated(w: torch.Tensor, t: int, inflate: str) -> torch.Tensor:
    """An image patch filter (D, C, P, P) -> a tubelet filter (D, C, t, P, P) (ViViT §3.4)."""
    if inflate == "central":
        w3 = torch.zeros(*w.shape[:2], t, *w.shape[2:], dtype=w.dtype)  # (D, C, t, P, P)
        w3[:, :, t // 2] = w
        return w3
    return w.unsqueeze(2).repeat(1, 1, t, 1, 1) / t  # (D, C, P, P) -> (D, C, t, P, P)


def _positions(image_pos: torch.Tensor, own_pos: torch.Tensor, frame_grid: tuple[int, int], cls: bool) -> torch.Tensor:
    """The image's (1, 1 + n·n, D) table resampled to the frame's patch grid (n_h, n_w), tiled over the model's n_t
    rows of frames (frame-major like the tokens), after the class row where the model has a class token:
    (1, [1 +] n_t·n_h·n_w, D); n_t = 1 for a table per frame (TimeSformer, ViViT Model 2's spatial encoder)."""
    pos = resample_square_pos_embed(image_pos, frame_grid)  # (1, 1 + S, D)
    n_t = (own_pos.shape[1] - cls) // (frame_grid[0] * frame_grid[1])
    tiled = pos[:, 1:].repeat(1, n_t, 1)  # (1, S, D) -> (1, n_t·S, D)
    return torch.cat((pos[:, :1], tiled), 1) if cls else tiled


def _from_image(model: nn.Module, image: StateDict, inflate: str) -> StateDict:
    own = model.state_dict()
    cls = "cls_token" in own
    new = {k: v for k, v in image.items() if k.startswith(_FROM_IMAGE + (("cls_token",) if cls else ()))}
    w = own["patch_embed.proj.weight"]
    if w.ndim == 5:  # tubelets (D, C, t, P, P); a 2-D filter (TimeSformer, per frame) is copied
        new["patch_embed.proj.weight"] = _inflated(image["patch_embed.proj.weight"], w.shape[2], inflate)
    new["pos_embed"] = _positions(image["pos_embed"], own["pos_embed"], tuple(model.grid_size[-2:]), cls)
    for k, v in own.items():
        rule = next(((p, src) for p, src in model.image_init_rules if re.search(p, k)), None)
        if rule is None:
            continue
        if rule[1] is None:
            new[k] = torch.zeros_like(v)
        elif (src := re.sub(rule[0], rule[1], k)) in image:
            new[k] = image[src]
    return _checked(model, new)


def _checked(model: nn.Module, new: StateDict) -> StateDict:
    own = model.state_dict()
    bad = [k for k in new if k not in own or own[k].shape != new[k].shape]
    if bad:
        raise CheckpointError(f"the image ViT does not match this model at {bad[0]!r} (depth, width or heads differ); "
                              f"expected an image ViT of the same size")
    return new
