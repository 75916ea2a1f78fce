"""Regroupings of a token grid into independent sequences, and back.

A scheme (space-only, temporal, window, axial, local/global, ...) is a regrouping of the patch tokens of a
(T, H, W) grid into sequences that the one attention core treats as a batch, followed by the inverse
regrouping. Video patch tokens are kept flat in (t, h, w) order: (B, T·H·W, D). Groups are folded into the
batch dimension (einops at these layout boundaries), never looped over in Python.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor


def frames(x: Tensor, T: int) -> Tensor:
    """Space step: (B, [h,] T·S, D) in (t, s) order -> (B·T, [h,] S, D), one sequence per frame (and head)."""
    return rearrange(x, "b ... (t s) d -> (b t) ... s d", t=T)


def unframes(x: Tensor, T: int) -> Tensor:
    """Inverse of `frames`: (B·T, [h,] S, D) -> (B, [h,] T·S, D)."""
    return rearrange(x, "(b t) ... s d -> b ... (t s) d", t=T)


def tubes(x: Tensor, T: int) -> Tensor:
    """Time step: (B, [h,] T·S, D) in (t, s) order -> (B·S, [h,] T, D), one sequence per spatial position (and head)."""
    return rearrange(x, "b ... (t s) d -> (b s) ... t d", t=T)


def untubes(x: Tensor, B: int) -> Tensor:
    """Inverse of `tubes`: (B·S, [h,] T, D) -> (B, [h,] T·S, D)."""
    return rearrange(x, "(b s) ... t d -> b ... (t s) d", b=B)


# --- axial lines (TimeSformer T+W+H) -------------------------------------------------------------------------
_LINES = {  # axis of the (T, H, W) grid a sequence runs along -> (fold, unfold) patterns
    0: ("b (t h w) d -> (b h w) t d", "(b h w) t d -> b (t h w) d"),
    1: ("b (t h w) d -> (b t w) h d", "(b t w) h d -> b (t h w) d"),
    2: ("b (t h w) d -> (b t h) w d", "(b t h) w d -> b (t h w) d"),
}


def lines(x: Tensor, grid: tuple[int, int, int], axis: int) -> Tensor:
    """Axial step: (B, T·H·W, D) -> one sequence along `axis` (0 time, 1 height, 2 width) per position of the
    other two axes, e.g. axis 2: (B·T·H, W, D)."""
    T, H, W = grid
    return rearrange(x, _LINES[axis][0], t=T, h=H, w=W)


def unlines(x: Tensor, grid: tuple[int, int, int], axis: int) -> Tensor:
    """Inverse of `lines`: (B·G, L, D) -> (B, T·H·W, D)."""
    T, H, W = grid
    return rearrange(x, _LINES[axis][1], t=T, h=H, w=W)


# --- local neighbourhoods and strided global groups (TimeSformer L+G) ---------------------------------------
def halves(grid: tuple[int, int, int]) -> tuple[int, int, int]:
    """Parts per axis for L+G: 2 where the axis has at least 2 positions, else 1 (a size-1 axis is not split,
    so no group is made of padding only)."""
    return tuple(min(2, n) for n in grid)


def pad_grid(x: Tensor, grid: tuple[int, int, int], parts: tuple[int, int, int]) -> tuple[Tensor, tuple[int, int, int]]:
    """(B, T·H·W, D) -> zero-padded (B, T', H', W', D) with each size a multiple of its part count."""
    # (n + k - 1) // k, not -(-n // k): the ONNX exporter divides traced sizes with truncation, not floor
    padded = tuple((n + k - 1) // k * k for n, k in zip(grid, parts))
    x = x.reshape(x.shape[0], *grid, x.shape[-1])  # (B, T·H·W, D) -> (B, T, H, W, D)
    if padded != tuple(grid):
        (T, H, W), (T2, H2, W2) = grid, padded
        x = F.pad(x, (0, 0, 0, W2 - W, 0, H2 - H, 0, T2 - T))
    return x, padded


def unpad_grid(x: Tensor, grid: tuple[int, int, int]) -> Tensor:
    """Inverse of `pad_grid`: (B, T', H', W', D) -> (B, T·H·W, D), padding dropped."""
    T, H, W = grid
    return x[:, :T, :H, :W].reshape(x.shape[0], T * H * W, x.shape[-1])  # -> (B, T·H·W, D)


_LOCAL = ("b t (nh sh) (nw sw) d -> (b nh nw) (t sh sw) d", "(b nh nw) (t sh sw) d -> b t (nh sh) (nw sw) d")
_GLOBAL = ("b (st nt) (sh nh) (sw nw) d -> (b nt nh nw) (st sh sw) d",
           "(b nt nh nw) (st sh sw) d -> b (st nt) (sh nh) (sw nw) d")


def neighbourhoods(x: Tensor, parts: tuple[int, int, int]) -> Tensor:
    """Local step: padded grid (B, T, H', W', D) -> (B·G, T·(H'/nh)·(W'/nw), D), one sequence per spatial block
    of ⌈H/2⌉×⌈W/2⌉ patches spanning all frames (time is never split: `parts[0]` is ignored)."""
    _, nh, nw = parts
    return rearrange(x, _LOCAL[0], nh=nh, nw=nw)


def unneighbourhoods(x: Tensor, padded: tuple[int, int, int], parts: tuple[int, int, int]) -> Tensor:
    """Inverse of `neighbourhoods`: (B·G, L, D) -> (B, T, H', W', D)."""
    T, H, W = padded
    _, nh, nw = parts
    return rearrange(x, _LOCAL[1], t=T, nh=nh, nw=nw, sh=H // nh, sw=W // nw)


def strided(x: Tensor, parts: tuple[int, int, int]) -> Tensor:
    """Global step: padded grid (B, T', H', W', D) -> (B·G, L, D), one sequence per residue class
    (t mod nt, h mod nh, w mod nw): G = nt·nh·nw interleaved groups, each spanning the whole clip with stride 2."""
    nt, nh, nw = parts
    return rearrange(x, _GLOBAL[0], nt=nt, nh=nh, nw=nw)


def unstrided(x: Tensor, padded: tuple[int, int, int], parts: tuple[int, int, int]) -> Tensor:
    """Inverse of `strided`: (B·G, L, D) -> (B, T', H', W', D)."""
    T, H, W = padded
    nt, nh, nw = parts
    return rearrange(x, _GLOBAL[1], nt=nt, nh=nh, nw=nw, st=T // nt, sh=H // nh, sw=W // nw)


def padding_bias(grid: tuple[int, int, int], padded: tuple[int, int, int], group, dtype: torch.dtype,
                 device: torch.device) -> Tensor | None:
    """Additive key mask (G, 1, 1, L) for sequences made by `group` (a fold of a padded (1, T', H', W', 1) grid):
    0 for real tokens, -inf for padding; None when nothing is padded. Groups are built so that none is all
    padding, so no softmax row is empty."""
    if tuple(grid) == tuple(padded):
        return None
    real = torch.zeros(1, *padded, 1, dtype=torch.bool, device=device)
    real[:, :grid[0], :grid[1], :grid[2]] = True
    real = group(real)[..., 0]  # (1, T', H', W', 1) -> (G, L)
    bias = torch.zeros(real.shape, dtype=dtype, device=device).masked_fill_(~real, float("-inf"))
    return bias[:, None, None]  # (G, L) -> (G, 1, 1, L)


# --- windows (Swin) ------------------------------------------------------------------------------------------
def windows(x: Tensor, window: tuple[int, int]) -> Tensor:
    """Window step: (B, H, W, D), H and W multiples of the window (wh, ww) -> (B·nW, wh·ww, D), one sequence per
    window; windows in row-major order, tokens row-major inside each."""
    wh, ww = window
    return rearrange(x, "b (nh wh) (nw ww) d -> (b nh nw) (wh ww) d", wh=wh, ww=ww)


def unwindows(x: Tensor, window: tuple[int, int], grid: tuple[int, int]) -> Tensor:
    """Inverse of `windows`: (B·nW, wh·ww, D) -> (B, H, W, D) for grid (H, W)."""
    (wh, ww), (H, W) = window, grid
    return rearrange(x, "(b nh nw) (wh ww) d -> b (nh wh) (nw ww) d", nh=H // wh, nw=W // ww, wh=wh, ww=ww)


def shifted_window_mask(grid: tuple[int, int], window: tuple[int, int], shift: tuple[int, int],
                        device: torch.device | None = None) -> Tensor:
    """Additive mask (nW, 1, N, N), N = wh·ww, for the windows of a (padded) grid cyclically rolled by -shift:
    0 between tokens of one pre-shift region, -100 (the official Swin value) across regions. Along each axis of
    length L the regions are [0, L-w), [L-w, L-s) and [L-s, L): the last window row/column holds tokens that the
    roll brought over from the opposite edge."""
    def regions(L: int, w: int, s: int) -> Tensor:
        pos = torch.arange(L, device=device)
        return (pos >= L - w).long() + (pos >= L - s).long()  # 0, 1, 2 (s = 0: no third region)

    label = regions(grid[0], window[0], shift[0])[:, None] * 3 + regions(grid[1], window[1], shift[1])  # (H, W)
    label = windows(label[None, :, :, None], window)[..., 0]  # (1, H, W, 1) -> (nW, N)
    cross = label[:, :, None] != label[:, None, :]  # (nW, N, N)
    return torch.zeros(cross.shape, device=device).masked_fill_(cross, -100.0)[:, None]  # -> (nW, 1, N, N)


def window_index(grid: tuple[int, int], window: tuple[int, int], shift: tuple[int, int],
                 device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """The whole (shifted) window step of a flat H×W map as one gather, and its inverse:

    - `fold` (nW·N,): for each token of the window sequences, in `windows` order after zero-padding the map at the
      bottom/right to a multiple of the window and *then* rolling it by -shift, its index in the flat map; H·W
      (one appended zero token) where it lies in the padding.
    - `unfold` (H·W,): for each map position, its place in that window order.

    `x.index_select(1, fold)` is pad + `torch.roll` + `windows` in one copy, and `index_select(1, unfold)` is
    `unwindows` + the inverse roll + unpad (each several copies otherwise: ~4× slower on the CPU)."""
    H, W = grid
    Hp, Wp = -(-H // window[0]) * window[0], -(-W // window[1]) * window[1]
    pos = torch.full((Hp, Wp), H * W, dtype=torch.long, device=device)
    pos[:H, :W] = torch.arange(H * W, device=device).view(H, W)
    pos = torch.roll(pos, (-shift[0], -shift[1]), dims=(0, 1))
    fold = windows(pos[None, :, :, None], window).flatten()  # (1, Hp, Wp, 1) -> (nW·N,)
    # inverse permutation; every padding token writes to the extra slot H·W, which is dropped
    unfold = torch.empty(H * W + 1, dtype=torch.long, device=device)
    unfold.scatter_(0, fold, torch.arange(fold.numel(), device=device))
    return fold, unfold[:H * W]


class _TokenGather(torch.autograd.Function):
    """`x.index_select(1, index)` for a one-to-one regrouping of tokens, whose backward is the gather by the inverse
    index rather than autograd's scatter-add (`index_add_`, ~20× slower on the CPU). Padding is one zero token
    appended to the input of a fold (its gradient is dropped) and read by the backward of an unfold."""

    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor, inverse: Tensor, pad_grad_in: bool, pad_grad_out: bool) -> Tensor:
        ctx.save_for_backward(inverse)
        ctx.pads = (pad_grad_in, pad_grad_out)
        return x.index_select(1, index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (inverse,) = ctx.saved_tensors
        pad_in, pad_out = ctx.pads
        if pad_in:
            grad = F.pad(grad, (0, 0, 0, 1))  # the zero slot that padding positions read
        grad = grad.index_select(1, inverse)
        if pad_out:
            grad = F.pad(grad, (0, 0, 0, 1))  # gradient of the appended zero token: unused
        return grad, None, None, None, None


def fold_tokens(x: Tensor, fold: Tensor, unfold: Tensor, padded: bool) -> Tensor:
    """(B, H·W (+1 zero token if padded), D) -> (B, nW·N, D) by `window_index`'s fold."""
    return _TokenGather.apply(x, fold, unfold, False, padded)


def unfold_tokens(x: Tensor, fold: Tensor, unfold: Tensor, padded: bool) -> Tensor:
    """(B, nW·N, D) -> (B, H·W, D) by `window_index`'s unfold (the inverse of `fold_tokens`)."""
    return _TokenGather.apply(x, unfold, fold, padded, False)
