"""How pixels become tokens: non-overlapping patches (ViT/DeiT/Swin) or tubelets (ViViT) projected linearly."""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import InputError


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
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, patch_size, bias=bias)
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def grid(self, x: Tensor) -> tuple[int, int]:
        return x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, N, D)."""
        check_input(x, self.in_chans, 4, (self.patch_size, self.patch_size))
        x = self.proj(x).flatten(2).transpose(1, 2)  # (B, D, H/P, W/P) -> (B, N, D)
        return self.norm(x)


class TubeletEmbed(nn.Module):
    """t×P×P tubelets -> linear projection (ViViT §3.2): (B, C, T, H, W) -> (B, N, D), N = (T/t)·(H/P)·(W/P),
    tokens in (t, h, w) order. Uniform frame sampling is the tubelet with t = 1."""

    def __init__(self, tubelet_size: int, patch_size: int, in_chans: int, embed_dim: int, bias: bool = True):
        super().__init__()
        self.tubelet_size, self.patch_size, self.in_chans = tubelet_size, patch_size, in_chans
        # kernel = stride = (t, P, P): the linear map E applied to each non-overlapping tubelet
        self.proj = nn.Conv3d(in_chans, embed_dim, (tubelet_size, patch_size, patch_size),
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
