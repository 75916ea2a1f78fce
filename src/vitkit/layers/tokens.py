"""Where the calls of the attention core sit on a model's token grid: the plain data a model returns when the
attention-map tools (tools/attention_maps.py) ask it how one recorded layer maps back onto its tokens.

A regrouping (window partition, per-frame or per-position sequences, axial lines, strided groups) is a
permutation/gather of tokens, so applying it to token *indices* instead of features gives, for every sequence
the core saw, the grid position of each of its rows. Token indices count P prefix (class-like) tokens first,
then the grid row-major (`TokenSpace`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn


class TokenSpace(NamedTuple):
    """The tokens of one layer: `prefix` class-like tokens first, then the `grid` ((H, W), (T, H, W) or (T,))."""
    prefix: int
    grid: tuple[int, ...]

    @property
    def size(self) -> int:
        return self.prefix + math.prod(self.grid)


class AttentionCall(NamedTuple):
    """One recorded attention layer as a model's `attention_layout` sees it: `attn` is the attention module
    whose core calls were recorded (`name` its qualified name), `args` the forward arguments of the module
    asked, `model` and `input` the model and its input."""
    attn: nn.Module
    name: str
    args: tuple
    model: nn.Module
    input: Tensor


@dataclass
class TokenLayout:
    """How the core calls of one attention layer sit on its tokens.

    q_space / k_space: the layer's query and key tokens.
    calls: per call of the core, in call order: query indices (G, Lq), key indices (G, Lk) (the G sequences the
    call saw, folded into its batch after the batch: (B·G, ...); -1 marks padding) and the heads it computed
    (None: all of them).
    forbidden: (G, Lq, Lk) pairs the scheme masks out (a shifted window's cross-region pairs), set to exactly 0.
    enter: (Nk, N_prev) how the layer's key tokens come from the previous layer's output, when that is not the
    default rule (ViViT Model 2's frame tokens are its spatial encoder's class tokens), else None.
    """
    q_space: TokenSpace
    k_space: TokenSpace
    calls: list[tuple[Tensor, Tensor, slice | None]]
    forbidden: Tensor | None = None
    enter: Tensor | None = None

    @classmethod
    def groups(cls, index: Tensor, space: TokenSpace) -> TokenLayout:
        """One call whose sequences are the (G, L) tokens `index` of `space`, as queries and as keys."""
        return cls(space, space, [(index, index, None)])

    @classmethod
    def joint(cls, space: TokenSpace) -> TokenLayout:
        """One call over every token of `space` (a plain transformer layer)."""
        return cls.groups(torch.arange(space.size)[None], space)


def trace(fold: Callable[[Tensor], Tensor], n: int, offset: int = 0) -> Tensor:
    """Token index of every position of a regrouping: `fold` maps (1, n, 1) tokens to (G, L, 1) sequences (as it
    maps (B, n, D) features); returns (G, L) indices shifted by `offset`, -1 where the fold inserted padding."""
    idx = torch.arange(1, n + 1, dtype=torch.float64).view(1, n, 1)  # 0 is what padding reads
    out = fold(idx)[..., 0].round().long()  # -> (G, L)
    return torch.where(out > 0, out - 1 + offset, -1)


def per_frame_index(T: int, S: int) -> Tensor:
    """(T, 1 + S) token indices of per-frame sequences [cls_t, patches of frame t] in the layout of P = T class
    tokens first, then the T·S patches in (t, s) order."""
    patches = T + torch.arange(T * S).view(T, S)
    return torch.cat((torch.arange(T)[:, None], patches), dim=1)
