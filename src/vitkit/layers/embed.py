"""How pixels become tokens: non-overlapping patches (ViT/DeiT/Swin) or tubelets (ViViT) projected linearly, or an
overlapping strided convolution (CvT, MViT)."""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import InputError
from .conv import Conv2d, Conv3d


def check_input(x: Tensor, in_chans: int, ndim: int, multiple: tuple[int, ...] = ()) -> None:
    """Raise InputError with one sentence when x is not (B, C, *spatial) with C == in_chans and sizes
    divisible by `multiple` (one divisor per trailing spatial axis)."""
    kind = {4: "an image batch (B, C, H, W)", 5: "a video batch (B, C, T, H, W)"}[ndim]
    if x.ndim != ndim:
        raise InputError(f"expected {kind}, got a tensor of shape {tuple(x.shape)}")
    if x.shape[1] != in_chans:
        raise InputError(f"expected {in_chans} input channels, got {x.shape[1]} (input shape {tuple(x.shape)})")
    sizes = tuple(x.shape[-len(multiple):]) if multiple else ()
    if any(s % m for s, m in zip(sizes, multiple)):
        raise InputError(f"input size {sizes} is not divisible by the patch size {multiple}")


class PatchEmbed(nn.Module):
    """P×P patches -> linear projection: (B, C, H, W) -> (B, N, D) with N = (H/P)·(W/P)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, norm_layer: type[nn.Module] | None = None,
                 bias: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.in_chans = in_chans
        # A conv with kernel = stride = P is the linear map E of ViT Eq. 1 applied to each patch.
        self.proj = Conv2d(in_chans, embed_dim, patch_size, patch_size, bias=bias)
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def grid(self, x: Tensor) -> tuple[int, int]:
        return x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, N, D)."""
        check_input(x, self.in_chans, 4, (self.patch_size, self.patch_size))
        x = self.proj(x).flatten(2).transpose(1, 2)  # (B, D, H/P, W/P) -> (B, N, D)
        return self.norm(x)


class ConvEmbed(nn.Module):
    """Overlapping strided conv -> optional norm (CvT §3.1 convolutional token embedding, MViT cube₁):
    (B, C, [T,] H, W) -> tokens (B, N, D) in row-major grid order, and the grid ([T',] H', W').
    The kernel's length (2 or 3 entries; an int is 2-D) chooses an image or a video conv."""

    def __init__(self, in_chans: int, embed_dim: int, kernel: int | tuple[int, ...], stride: int | tuple[int, ...],
                 padding: int | tuple[int, ...], norm_layer: type[nn.Module] | None = None):
        super().__init__()
        nd = 2 if isinstance(kernel, int) else len(kernel)
        self.in_chans = in_chans
        self.kernel = (kernel,) * nd if isinstance(kernel, int) else tuple(kernel)
        self.padding = (padding,) * nd if isinstance(padding, int) else tuple(padding)
        self.proj = {2: Conv2d, 3: Conv3d}[nd](in_chans, embed_dim, kernel, stride, padding)
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        """x: (B, C, [T,] H, W) -> tokens (B, N, D) with N = prod(grid), and the grid."""
        check_input(x, self.in_chans, len(self.kernel) + 2)
        sizes = tuple(x.shape[2:])
        if any(n + 2 * p < k for n, p, k in zip(sizes, self.padding, self.kernel)):
            raise InputError(f"feature map {sizes} is too small for the {'×'.join(map(str, self.kernel))} "
                             f"token-embedding conv; use a larger input")
        x = self.proj(x)
        grid = tuple(x.shape[2:])
        return self.norm(x.flatten(2).transpose(1, 2)), grid  # (B, D, *grid) -> (B, N, D)


class TubeletEmbed(nn.Module):
    """t×P×P tubelets -> linear projection (ViViT §3.2): (B, C, T, H, W) -> (B, N, D), N = (T/t)·(H/P)·(W/P),
    tokens in (t, h, w) order. Uniform frame sampling is the tubelet with t = 1."""

    def __init__(self, tubelet_size: int, patch_size: int, in_chans: int, embed_dim: int, bias: bool = True):
        super().__init__()
        self.tubelet_size, self.patch_size, self.in_chans = tubelet_size, patch_size, in_chans
        # kernel = stride = (t, P, P): the linear map E applied to each non-overlapping tubelet
        self.proj = Conv3d(in_chans, embed_dim, (tubelet_size, patch_size, patch_size),
                           (tubelet_size, patch_size, patch_size), bias=bias)

    def grid(self, x: Tensor) -> tuple[int, int, int]:
        """Token grid (T/t, H/P, W/P) of a video batch."""
        return x.shape[-3] // self.tubelet_size, x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size

    def check(self, x: Tensor) -> None:
        """InputError (one sentence) unless x is a video batch whose sizes the tubelet divides."""
        check_input(x, self.in_chans, 5)
        T, t = x.shape[2], self.tubelet_size
        if t > T or T % t:
            raise InputError(f"got a clip of {T} frames, but the frame count must be a positive multiple of the "
                             f"tubelet depth {t}")
        check_input(x, self.in_chans, 5, (self.patch_size, self.patch_size))

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, T, H, W) -> (B, N, D)."""
        self.check(x)
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, D, T/t, H/P, W/P) -> (B, N, D)
