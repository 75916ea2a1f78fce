"""Looking inside the models: ViT's learned position embeddings (ViT §4.5, Fig. 7 centre) and attention
rollout (Abnar & Zuidema, arXiv 2005.00928) through the shared attention core.

Attention probabilities are recomputed from the inputs that each `Attention` module sees (the core itself
never materialises them: SDPA fuses the softmax), so nothing in the models changes for visualisation.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import Attention


def position_similarity(model: nn.Module) -> Tensor:
    """(gh, gw, gh, gw) cosine similarity between the position embedding of every patch and every other one."""
    pos = getattr(model, "pos_embed", None)
    grid = getattr(model, "grid_size", None)
    if pos is None or grid is None or len(grid) != 2:
        raise ConfigError(f"{type(model).__name__} has no learned 2-D position embedding to plot (ViT/DeiT have)")
    gh, gw = grid
    patches = pos[0, -gh * gw:].detach().float()  # drop prefix tokens: (N, D)
    sim = F.normalize(patches, dim=-1) @ F.normalize(patches, dim=-1).t()  # (N, N)
    return sim.reshape(gh, gw, gh, gw)


def plot_position_similarity(model: nn.Module, path: str | os.PathLike) -> None:
    """Save the grid of similarity maps: tile (i, j) shows how patch (i, j)'s embedding resembles every other's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sim = position_similarity(model)
    gh, gw = sim.shape[:2]
    fig, axes = plt.subplots(gh, gw, figsize=(gw * 0.6 + 1, gh * 0.6 + 0.6), squeeze=False)
    for i in range(gh):
        for j in range(gw):
            axes[i][j].imshow(sim[i, j].numpy(), vmin=-1, vmax=1, cmap="viridis")
            axes[i][j].set_axis_off()
    fig.suptitle("Position embedding similarity (cosine)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def attention_maps(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Attention probabilities (B, h, N, N) of every full-sequence `Attention` layer, in order, for input x."""
    inputs: list[tuple[Attention, Tensor]] = []
    hooks = [m.register_forward_hook(lambda mod, args, out: inputs.append((mod, args[0])))
             for m in model.modules() if type(m) is Attention]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    maps = []
    with torch.no_grad():
        for attn, tokens in inputs:
            q, k, _ = attn.split_heads(tokens)
            scale = attn.scale if attn.scale is not None else q.shape[-1] ** -0.5
            maps.append((q @ k.transpose(-2, -1) * scale).softmax(-1))  # (B, h, N, N)
    return maps


def attention_rollout(model: nn.Module, x: Tensor, discard_ratio: float = 0.0) -> Tensor:
    """Rollout (B, N, N): the product over layers of the head-averaged attention mixed half-and-half with the
    identity (the residual path), each row renormalised. Row 0 of a ViT is where the class token looks."""
    maps = attention_maps(model, x)
    if not maps or len({m.shape[-1] for m in maps}) != 1:
        raise ConfigError("attention rollout needs a model whose layers all attend over the same full sequence "
                          "(ViT, DeiT, ViViT model 1, TimeSformer joint space-time)")
    B, _, N, _ = maps[0].shape
    rollout = torch.eye(N).expand(B, N, N)
    for a in maps:
        a = a.mean(1)  # (B, N, N)
        if discard_ratio > 0:
            flat = a.flatten(1)
            drop = flat.topk(int(flat.shape[1] * discard_ratio), dim=1, largest=False).indices
            a = flat.scatter(1, drop, 0).view_as(a)
        a = 0.5 * a + 0.5 * torch.eye(N)
        rollout = (a / a.sum(-1, keepdim=True)) @ rollout
    return rollout


def save_rollout(rollout: Tensor, model: nn.Module, image: Tensor, path: str | os.PathLike) -> None:
    """Save the image beside the class token's rollout over the patch grid (rollout: (N, N) of one image)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = getattr(model, "grid_size", None)
    if grid is None or len(grid) != 2:
        raise ConfigError(f"{type(model).__name__} has no 2-D patch grid to show a rollout on")
    gh, gw = grid
    heat = rollout[0, -gh * gw:].detach().reshape(gh, gw)  # the class token's row, patch columns
    img = image.detach().float()
    img = ((img - img.min()) / (img.max() - img.min() + 1e-8)).permute(1, 2, 0)  # (C, H, W) -> (H, W, C)
    fig, (a, b) = plt.subplots(1, 2, figsize=(6, 3))
    a.imshow(img.squeeze(-1).numpy(), cmap="gray" if img.shape[-1] == 1 else None)
    b.imshow(heat.numpy(), cmap="inferno")
    for ax, title in ((a, "input"), (b, "attention rollout (cls)")):
        ax.set_title(title)
        ax.set_axis_off()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
