"""Regroupings of a token grid into independent sequences, and back.

A scheme (space-only, temporal, window, axial, local/global, ...) is a regrouping of the patch tokens of a
(T, H, W) grid into sequences that the one attention core treats as a batch, followed by the inverse
regrouping. Video patch tokens are kept flat in (t, h, w) order: (B, T·H·W, D). Groups are folded into the
batch dimension (einops at these layout boundaries), never looped over in Python.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor


def frames(x: Tensor, T: int) -> Tensor:
    """Space step: (B, T·S, D) in (t, s) order -> (B·T, S, D), one sequence per frame."""
    return rearrange(x, "b (t s) d -> (b t) s d", t=T)


def unframes(x: Tensor, T: int) -> Tensor:
    """Inverse of `frames`: (B·T, S, D) -> (B, T·S, D)."""
    return rearrange(x, "(b t) s d -> b (t s) d", t=T)


def tubes(x: Tensor, T: int) -> Tensor:
    """Time step: (B, T·S, D) in (t, s) order -> (B·S, T, D), one sequence per spatial position."""
    return rearrange(x, "b (t s) d -> (b s) t d", t=T)


def untubes(x: Tensor, B: int) -> Tensor:
    """Inverse of `tubes`: (B·S, T, D) -> (B, T·S, D)."""
    return rearrange(x, "(b s) t d -> b (t s) d", b=B)
