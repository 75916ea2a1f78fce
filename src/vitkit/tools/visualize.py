"""Looking inside the models: position tables (ViT §4.5, Fig. 7 centre, for every family's tables), attention
maps of a chosen query per layer and head, and attention rollout (Abnar & Zuidema, arXiv 2005.00928),
generalised to every scheme by `tools/attention_maps.py`.

Videos are drawn as a strip of frames (one panel per token frame); `save_gif` writes the rollout as an
animated GIF. Figures are made with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .attention_maps import AttentionLayer, output_row, patch_map, query_index, record_attention, rollout


# --- position tables -------------------------------------------------------------------------------------------
def _cosine(rows: Tensor) -> Tensor:
    """(N, D) -> (N, N) cosine similarity of every row with every other."""
    rows = F.normalize(rows.detach().float(), dim=-1)
    return rows @ rows.t()


def _grid_similarity(rows: Tensor, grid: tuple[int, int]) -> Tensor:
    """(H·W, D) table rows on an H×W grid -> (H, W, H, W): tile (i, j) is row (i, j)'s similarity to every row."""
    return _cosine(rows).reshape(*grid, *grid)


def _pictures(table) -> list[tuple[str, Tensor]]:
    """One position table of a model (`VitkitModel.position_tables`) as (title, picture)s: a 2-D table's (H, W, H, W)
    similarity mosaic, a 1-D table's (n, n) similarity matrix, a (T, H, W) table's mosaic at the centre frame
    and its (T, T) similarity over time (mean over positions), a bias table's (h, ...) maps per head."""
    title, rows, grid = table.title, table.values.detach().float(), tuple(table.grid)
    if table.kind == "bias":
        return [(f"{title} (per head)", rows)]
    if len(grid) == 1:
        return [(f"{title} (cosine)", _cosine(rows))]
    if len(grid) == 2:
        return [(f"{title} (cosine)", _grid_similarity(rows, grid))]
    T, H, W = grid
    per_frame = rows.reshape(T, H * W, -1)  # (T·H·W, D) -> (T, S, D)
    unit = F.normalize(per_frame, dim=-1)
    over_time = torch.einsum("asd,bsd->ab", unit, unit) / (H * W)  # mean over positions of cos(t, t')
    return [(f"{title}, frame {T // 2} (cosine)", _grid_similarity(per_frame[T // 2], (H, W))),
            (f"{title} over time (cosine, mean over positions)", over_time)]


def position_similarity(model: nn.Module) -> Tensor:
    """(gh, gw, gh, gw) cosine similarity between the position embedding of every patch and every other one
    (the model's first learned 2-D table: ViT/DeiT's, TimeSformer's spatial one)."""
    tables = getattr(model, "position_tables", list)()
    table = next((t for t in tables if t.kind == "embedding" and len(t.grid) == 2), None)
    if table is None:
        raise ConfigError(f"{type(model).__name__} has no learned 2-D position embedding to plot (ViT/DeiT have)")
    return _grid_similarity(table.values, tuple(table.grid))


def position_tables(model: nn.Module) -> list[tuple[str, Tensor]]:
    """Every position table of a model as (title, picture): (H, W, H, W) similarity mosaics for learned spatial
    tables, (n, n) similarity matrices for temporal / 1-D tables, (h, 2M-1, 2M-1) per-head bias maps for Swin."""
    pictures = [p for table in getattr(model, "position_tables", list)() for p in _pictures(table)]
    if not pictures:
        name = getattr(model, "model_name", None) or type(model).__name__
        raise ConfigError(f"{name} has no learned 2-D position embedding or position table to plot (a model such as "
                          f"CvT encodes position through its convolutions)")
    return pictures


def _mosaic(sim: Tensor) -> Tensor:
    """(H, W, H, W) -> one (H·(H+1), W·(W+1)) picture of H×W tiles separated by NaN gaps."""
    H, W = sim.shape[:2]
    out = torch.full((H, H + 1, W, W + 1), float("nan"))
    out[:, :H, :, :W] = sim.permute(0, 2, 1, 3)  # (i, j, y, x) -> (i, y, j, x)
    return out.reshape(H * (H + 1), W * (W + 1))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_position_tables(model: nn.Module, path: str | os.PathLike) -> None:
    """Save every position table of the model (see `position_tables`) in one figure, a row per table."""
    plt = _pyplot()
    tables = position_tables(model)
    cols = max(t.shape[0] if t.dim() == 3 else 1 for _, t in tables)
    side = 2.6 if cols > 1 else 4.5  # a lone similarity mosaic gets room for its tiles
    fig, axes = plt.subplots(len(tables), cols, figsize=(side * cols, (side + 0.2) * len(tables)), squeeze=False)
    for row, (title, pic) in zip(axes, tables):
        panels = list(pic) if pic.dim() == 3 else [_mosaic(pic) if pic.dim() == 4 else pic]
        for j, ax in enumerate(row):
            ax.set_axis_off()
            if j < len(panels):
                cosine = pic.dim() != 3
                ax.imshow(panels[j].numpy(), cmap="viridis", vmin=-1 if cosine else None, vmax=1 if cosine else None)
                if pic.dim() == 3:
                    ax.set_title(f"head {j}", fontsize=8)
        row[0].set_title(title if pic.dim() != 3 else f"{title}\nhead 0", fontsize=8, loc="left")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


# --- attention maps and rollout ----------------------------------------------------------------------------
def record(model: nn.Module, x: Tensor) -> list[AttentionLayer]:
    """Run one eval forward of x under `record_attention` and return its mapped layers."""
    model.eval()
    with torch.no_grad(), record_attention(model) as rec:
        model(x)
    return rec.layers


def attention_maps(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Attention probabilities (B, h, Nq, Nk) of every layer over its tokens, in order, for input x."""
    return [layer.probs for layer in record(model, x)]


def attention_rollout(model: nn.Module, x: Tensor, discard_ratio: float = 0.0) -> Tensor:
    """Rollout (B, N_out, N_in): the product over layers of the head-averaged attention mixed half-and-half with
    the skip path, rows renormalised (see `attention_maps.rollout`). Row 0 of a ViT is where the class token looks."""
    return rollout(record(model, x), discard_ratio)[0]


def query_maps(layers: list[AttentionLayer], query: tuple[int, ...] | None = None, sample: int = 0) -> list[Tensor]:
    """Per layer, the chosen query's attention per head over the key grid: (h, *k_grid). query None: the prefix
    tokens (mean of their rows), or every token without any; else a patch coordinate on the first layer's grid."""
    first = layers[0].k_space
    out = []
    for layer in layers:
        rows = query_index(layer.q_space, query, first)
        out.append(patch_map(layer.probs[sample][:, rows].mean(1), layer.k_space))  # (h, Nk) -> (h, *k_grid)
    return out


def rollout_map(layers: list[AttentionLayer], sample: int = 0, discard_ratio: float = 0.0) -> Tensor:
    """The output's rollout over the first layer's patch grid, (*grid), for one sample."""
    R, space, first = rollout(layers, discard_ratio)
    return patch_map(output_row(R, space)[sample], first)


def _as_frames(heat: Tensor) -> Tensor:
    """(H, W), (T, H, W) or (T,) -> (T, H, W) frames to draw."""
    if heat.dim() == 1:
        return heat[:, None, None]
    return heat[None] if heat.dim() == 2 else heat


def _strip(heat: Tensor) -> Tensor:
    """(T, H, W) -> (H, T·(W+1) - 1): frames side by side with NaN gaps."""
    T, H, W = heat.shape
    out = torch.full((H, T, W + 1), float("nan"))
    out[:, :, :W] = heat.permute(1, 0, 2)  # (T, H, W) -> (H, T, W)
    return out.reshape(H, T * (W + 1))[:, :-1]


def _display(x: Tensor) -> Tensor:
    """An input (C, H, W) or (C, T, H, W) scaled to [0, 1] as frames (T, H, W, C)."""
    x = x.detach().float()
    x = (x - x.min()) / (x.max() - x.min() + 1e-8)
    return x.unsqueeze(1).permute(1, 2, 3, 0) if x.dim() == 3 else x.permute(1, 2, 3, 0)  # -> (T, H, W, C)


def _frame_for(frames: Tensor, n: int) -> Tensor:
    """Pick n frames of (T, H, W, C) at the centres of n equal parts of the clip (a tubelet's centre frame)."""
    T = frames.shape[0]
    return frames[[min(T - 1, (2 * i + 1) * T // (2 * n)) for i in range(n)]]


def plot_attention(layers: list[AttentionLayer], path: str | os.PathLike, query: tuple[int, ...] | None = None,
                   max_heads: int = 8) -> None:
    """Save a grid of the query's attention: a row per layer, a column per head (at most `max_heads`), each panel
    over the layer's key grid (video: frames side by side)."""
    plt = _pyplot()
    maps = query_maps(layers, query)
    cols = min(max_heads, max(m.shape[0] for m in maps))
    widths = max(_strip(_as_frames(m[0])).shape[1] / _strip(_as_frames(m[0])).shape[0] for m in maps)
    fig, axes = plt.subplots(len(maps), cols, figsize=(cols * min(1.6 * widths, 8) + 0.5, 1.6 * len(maps) + 0.4),
                             squeeze=False)
    for row, layer, m in zip(axes, layers, maps):
        for j, ax in enumerate(row):
            ax.set_axis_off()
            if j < m.shape[0]:
                ax.imshow(_strip(_as_frames(m[j])).numpy(), cmap="inferno")
        row[0].set_title(f"{layer.name} (head 0..{m.shape[0] - 1})", fontsize=7, loc="left")
    who = "class token (mean of all queries where there is none)" if query is None else f"patch {tuple(query)}"
    fig.suptitle(f"attention of the {who} per layer and head", fontsize=9)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def plot_rollout(layers: list[AttentionLayer], x: Tensor, path: str | os.PathLike, discard_ratio: float = 0.0) -> None:
    """Save the input (frames) above the output's attention rollout over the first layer's grid, upsampled and
    overlaid on the input; x is one input (C, H, W) or (C, T, H, W)."""
    plt = _pyplot()
    heat = _as_frames(rollout_map(layers, 0, discard_ratio))  # (T', H', W')
    heat = heat / heat.amax().clamp_min(1e-12)
    frames = _frame_for(_display(x), heat.shape[0])  # (T', H, W, C)
    up = F.interpolate(heat[None], size=frames.shape[1:3], mode="nearest")[0]  # -> (T', H, W)
    T = heat.shape[0]
    # an image: input and rollout side by side; a video: frames in a row, the rollout overlaid below
    fig, axes = plt.subplots(2, T, figsize=(2.2 * T + 0.4, 4.6), squeeze=False) if T > 1 else \
        plt.subplots(1, 2, figsize=(5, 2.6), squeeze=False)
    pairs = list(zip(axes[0], axes[1])) if T > 1 else [tuple(axes[0])]
    for t, (top, bottom) in enumerate(pairs):
        img = frames[t].squeeze(-1).numpy()
        cmap = "gray" if frames.shape[-1] == 1 else None
        top.imshow(img, cmap=cmap)
        bottom.imshow(img, cmap=cmap)
        bottom.imshow(up[t].numpy(), cmap="inferno", alpha=0.6)
        top.set_axis_off()
        bottom.set_axis_off()
    pairs[0][0].set_title("input", fontsize=8, loc="left")
    pairs[0][1].set_title("attention rollout of the output", fontsize=8, loc="left")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def save_gif(layers: list[AttentionLayer], x: Tensor, path: str | os.PathLike, discard_ratio: float = 0.0) -> None:
    """Save the rollout over a video as an animated GIF: one frame per token frame, input blended with the heat."""
    from matplotlib import colormaps
    from PIL import Image

    heat = _as_frames(rollout_map(layers, 0, discard_ratio))
    heat = heat / heat.amax().clamp_min(1e-12)
    frames = _frame_for(_display(x), heat.shape[0])
    up = F.interpolate(heat[None], size=frames.shape[1:3], mode="nearest")[0]
    colours = torch.from_numpy(colormaps["inferno"](up.numpy())[..., :3]).float()  # (T', H, W, 3)
    mix = 0.5 * frames.expand(-1, -1, -1, 3) + 0.5 * colours
    images = [Image.fromarray((m * 255).byte().numpy()) for m in mix]
    images[0].save(path, save_all=True, append_images=images[1:], duration=300, loop=0)
