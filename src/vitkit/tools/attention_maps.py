"""Where every scheme looks: attention recorded in the one core and mapped back onto the token grid.

`record_attention(model)` collects, for every call of `layers.attention.attend` made while it is active, the
probabilities that call used (bias and masks included) and the stack of modules running at that moment
(forward pre-hooks on every submodule). Nothing in a model changes for it. Each recorded layer is then mapped
back onto its token grid by asking the modules of that stack, innermost first, for its `attention_layout`
(the model protocol, models/base.py): the family answers with plain data (layers/tokens.py), the token
*indices* of every sequence each call saw — a regrouping is a permutation/gather of tokens, so it carries
indices as well as features — which heads each call computed, and the pairs its masks forbid. Swin's blocks
answer from their cached window plan, TimeSformer's and ViViT's blocks from the regroupings their `forward`
uses, ViT and ViViT Model 2 from the model. Reduced attention (CvT, MViT) is mapped here, from the layer
alone: it is kept on the pooled grids (`AttentionLayer.pooled`) and mapped back through the reducer's
footprint (a pooled key spreads its weight uniformly over the input tokens under its kernel: kernel, stride
and padding of the conv or pooling), and a pooled skip connection is the skip pool's footprint.

Every layer becomes an `AttentionLayer`: a (B, h, Nq, Nk) matrix over its query tokens and key tokens
(`TokenSpace`: P prefix tokens, then the grid row-major), zero wherever the scheme forbids attention. Layouts
with one class token per frame (TimeSformer space-only, ViViT Model 2's spatial encoder) put the T class
tokens first: P = T.

`rollout` generalises attention rollout (Abnar & Zuidema, arXiv 2005.00928): per layer 0.5·mean_h(A) + 0.5·R
with R the skip path (identity, or the pooled skip's footprint), rows renormalised, multiplied layer after
layer; where the token grid changes between layers (Swin's patch merging, CvT's strided conv embedding) each
new token takes the mean of the old tokens its cell covers (Swin's 2×2 merge exactly; CvT's overlapping
kernel is approximated by its stride cell), new prefix tokens (CvT's stage-3 class token) come from no image
token, and ViViT Model 2's frame tokens are the spatial encoder's class tokens. The map shown is the row of
the prefix tokens (their mean: DeiT's class and distillation tokens, space-only's per-frame class tokens) or,
without prefix tokens, the mean of all rows (a mean-pooled output).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AvgPoolNd, _MaxPoolNd

from ..errors import ConfigError
from ..layers import Attention
from ..layers.config import RECORDERS
from ..layers.reduced_attention import ReducedAttention
from ..layers.tokens import AttentionCall, TokenLayout, TokenSpace

__all__ = ["AttentionLayer", "AttentionRecord", "TokenSpace", "footprint", "output_row", "patch_map", "query_index",
           "record_attention", "regrid", "rollout"]


@dataclass
class AttentionLayer:
    """One attention layer (one residual step) mapped onto its tokens.

    probs: (B, h, Nq, Nk), Nq = q_space.size, Nk = k_space.size; zero where the scheme forbids attention.
    residual: (Nq, Nk) skip path when it is not the identity (MViT's pooled skip), else None.
    enter: (Nk, N_prev) how the layer's input tokens come from the previous layer's output, when not the rule
    of the module docstring (ViViT Model 2's temporal encoder), else None.
    pooled / pooled_k_space: reduced attention's map on the pooled grids before mapping back, (B, h, Nq, Nk').
    """
    name: str
    probs: Tensor
    q_space: TokenSpace
    k_space: TokenSpace
    residual: Tensor | None = None
    enter: Tensor | None = None
    pooled: Tensor | None = None
    pooled_k_space: TokenSpace | None = None


class _Frame(NamedTuple):
    name: str
    module: nn.Module
    args: tuple
    call: int  # invocation number: the calls of one layer invocation share it


class AttentionRecord:
    """What `record_attention` collected during one forward: `calls` (probabilities, module stack) and, mapped
    onto the token grids, `layers`."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.input: Tensor | None = None
        self.calls: list[tuple[Tensor, tuple[_Frame, ...]]] = []
        self._stack: list[_Frame] = []
        self._hooks: list = []
        self._count = 0

    def __enter__(self) -> AttentionRecord:
        for name, m in self.model.named_modules():
            self._hooks.append(m.register_forward_pre_hook(functools.partial(self._enter, name)))
            self._hooks.append(m.register_forward_hook(self._exit))
        RECORDERS.append(self._report)
        return self

    def __exit__(self, *exc) -> None:
        RECORDERS.remove(self._report)
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        self._stack.clear()

    def _enter(self, name: str, module: nn.Module, args: tuple) -> None:
        if not self._stack and self.input is None:
            self.input = args[0]
        self._count += 1
        self._stack.append(_Frame(name, module, args, self._count))

    def _exit(self, module: nn.Module, args: tuple, out) -> None:
        self._stack.pop()

    def _report(self, probs: Tensor) -> None:
        self.calls.append((probs.float().cpu(), tuple(self._stack)))

    @functools.cached_property
    def layers(self) -> list[AttentionLayer]:
        """Every recorded layer mapped onto its token grid, in call order."""
        groups: list[tuple[_Frame, list[Tensor], tuple[_Frame, ...]]] = []
        for probs, stack in self.calls:
            i = max((j for j, f in enumerate(stack) if isinstance(f.module, (Attention, ReducedAttention))), default=None)
            if i is None:
                raise ConfigError("attention was recorded outside any attention layer; expected vitkit's Attention "
                                  "or ReducedAttention modules to call attend")
            if groups and groups[-1][0].call == stack[i].call:
                groups[-1][1].append(probs)
            else:
                groups.append((stack[i], [probs], stack[:i + 1]))
        return [self._map(attn, probs, stack) for attn, probs, stack in groups]

    def _map(self, attn: _Frame, probs: list[Tensor], stack: tuple[_Frame, ...]) -> AttentionLayer:
        if isinstance(attn.module, ReducedAttention):
            return _map_reduced(attn, probs, stack)
        for frame in reversed(stack):
            ask = getattr(frame.module, "attention_layout", None)
            layout = ask(AttentionCall(attn.module, attn.name, frame.args, self.model, self.input)) if ask else None
            if layout is not None:
                return _from_layout(layout, attn.name, probs)
        raise ConfigError(f"vitkit does not know how {type(self.model).__name__} groups the tokens of {attn.name!r} "
                          f"for attention maps; expected a module of its own to answer `attention_layout`")


def record_attention(model: nn.Module) -> AttentionRecord:
    """`with record_attention(model) as rec: model(x)`, then `rec.layers`: every attention layer's probabilities
    over its token grid (see the module docstring). Run one forward inside the context."""
    return AttentionRecord(model)


# --- placing the calls of one layer into its token matrix ------------------------------------------------------
def _place(probs: list[Tensor], index: list[tuple[Tensor, Tensor, slice]], heads: int, q_space: TokenSpace,
           k_space: TokenSpace) -> Tensor:
    """Scatter each call's (B·G, h', L_q, L_k) probabilities into a (B, heads, Nq, Nk) matrix at the (G, L) token
    indices of its queries and keys (-1: padding, dropped) and heads slice. A query that appears in several
    groups (a class token repeated into each) gets the mean of its rows; a query no call covers keeps itself
    (identity row: the layer leaves it unchanged)."""
    Nq, Nk = q_space.size, k_space.size
    B = probs[0].shape[0] // index[0][0].shape[0]  # calls are (B·G, ...), groups innermost
    full = torch.zeros(B, heads, Nq * Nk)
    covered = torch.zeros(heads, Nq, dtype=torch.bool)
    for p, (qi, ki, hs) in zip(probs, index):
        G, Lq = qi.shape
        p = p.float().reshape(B, G, p.shape[1], Lq, ki.shape[1]).permute(0, 2, 1, 3, 4)  # -> (B, h', G, Lq, Lk)
        flat = qi[:, :, None] * Nk + ki[:, None, :]  # (G, Lq, Lk)
        valid = (qi[:, :, None] >= 0) & (ki[:, None, :] >= 0)
        part = torch.zeros(B, p.shape[1], Nq * Nk)
        part.index_add_(2, flat[valid], p[..., valid])
        count = torch.zeros(Nq).index_add_(0, qi[qi >= 0], torch.ones(int((qi >= 0).sum())))
        part = part.view(B, -1, Nq, Nk) / count.clamp_min(1)[:, None]
        full[:, hs] += part.flatten(2)
        covered[hs] |= (count > 0)
    full = full.view(B, heads, Nq, Nk)
    if Nq == Nk:
        eye = torch.eye(Nq)
        full = torch.where(covered[None, :, :, None], full, eye)
    return full


def _from_layout(layout: TokenLayout, name: str, probs: list[Tensor]) -> AttentionLayer:
    """A layer's recorded calls (B·G, h', L_q, L_k) placed on its tokens as the model's layout says."""
    heads = max((hs.stop for *_, hs in layout.calls if hs is not None), default=probs[0].shape[1])
    if layout.forbidden is not None:  # the scheme's masked pairs: exactly zero
        G = layout.forbidden.shape[0]
        probs = [p.view(-1, G, *p.shape[1:]).masked_fill(layout.forbidden[None, :, None], 0.0).flatten(0, 1)
                 for p in probs]  # (B·G, h, Lq, Lk) -> (B, G, h, Lq, Lk) -> back
    index = [(q, k, hs if hs is not None else slice(0, heads)) for q, k, hs in layout.calls]
    return AttentionLayer(name, _place(probs, index, heads, layout.q_space, layout.k_space), layout.q_space,
                          layout.k_space, enter=layout.enter)


def footprint(reducer: nn.Module | None, grid: tuple[int, ...]) -> tuple[Tensor, tuple[int, ...]]:
    """(N', N) row-normalised matrix spreading each output token of a conv/pooling reducer uniformly over the
    input tokens under its kernel (kernel, stride, padding; taps in the padding dropped), and the output grid.
    None (no reducer) is the identity."""
    if reducer is None:
        return torch.eye(math.prod(grid)), tuple(grid)
    layer = next((m for m in reducer.modules() if isinstance(m, (_ConvNd, _MaxPoolNd, _AvgPoolNd))), None)
    if layer is None:
        raise ConfigError(f"cannot map a {type(reducer).__name__} reducer back onto its grid; expected a conv or pooling")
    nd = len(grid)
    per_axis = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd
    axes, out_grid = [], []
    for L, k, s, p in zip(grid, per_axis(layer.kernel_size), per_axis(layer.stride), per_axis(layer.padding)):
        n_out = (L + 2 * p - k) // s + 1
        start = torch.arange(n_out)[:, None] * s - p  # (n_out, 1)
        i = torch.arange(L)[None]
        axes.append(((i >= start) & (i < start + k)).float())  # (n_out, L)
        out_grid.append(n_out)
    m = functools.reduce(torch.kron, axes)  # (N', N), row-major over the grid
    return m / m.sum(1, keepdim=True).clamp_min(1), tuple(out_grid)


def _with_prefix(m: Tensor, P: int) -> Tensor:
    """(N', N) -> (P + N', P + N): prefix tokens map to themselves."""
    return torch.block_diag(torch.eye(P), m) if P else m


def _map_reduced(attn: _Frame, probs: list[Tensor], stack: tuple[_Frame, ...]) -> AttentionLayer:
    """Attention over a reduced token map (CvT, MViT), from the layer's reducers and its block's pooled skip."""
    mod, grid = attn.module, attn.args[1]
    P = mod.num_prefix_tokens
    fq, q_grid = footprint(mod.q_reducer, grid)
    fk, k_grid = footprint(mod.k_reducer, grid)
    pooled = probs[0].float()
    assert pooled.shape[-2:] == (P + math.prod(q_grid), P + math.prod(k_grid)), (pooled.shape, q_grid, k_grid)
    parent = stack[-2].module if len(stack) > 1 else None
    skip = getattr(parent, "shortcut_pool", None)
    residual = None
    if tuple(q_grid) != tuple(grid):
        residual = _with_prefix(footprint(skip, grid)[0] if skip is not None else fq, P)
    q_space, k_space = TokenSpace(P, q_grid), TokenSpace(P, tuple(grid))
    return AttentionLayer(attn.name, pooled @ _with_prefix(fk, P), q_space, k_space, residual=residual,
                          pooled=pooled, pooled_k_space=TokenSpace(P, k_grid))


# --- rollout ---------------------------------------------------------------------------------------------------
def regrid(old: TokenSpace, new: TokenSpace) -> Tensor:
    """(N_new, N_old): each new grid token is the mean of the old tokens whose cell it covers (old coordinate o
    falls in new cell ⌊o·n_new/n_old⌋ per axis); prefix tokens carry over, new ones come from no token."""
    if len(old.grid) != len(new.grid):
        raise ConfigError(f"cannot map a {old.grid} token grid onto {new.grid}")
    axes = []
    for n_old, n_new in zip(old.grid, new.grid):
        cell = torch.arange(n_old) * n_new // n_old
        axes.append((torch.arange(n_new)[:, None] == cell[None]).float())  # (n_new, n_old)
    m = functools.reduce(torch.kron, axes)
    out = torch.zeros(new.size, old.size)
    P = min(old.prefix, new.prefix)
    out[:P, :P] = torch.eye(P)
    out[new.prefix:, old.prefix:] = m / m.sum(1, keepdim=True).clamp_min(1)
    return out


def rollout(layers: list[AttentionLayer], discard_ratio: float = 0.0) -> tuple[Tensor, TokenSpace, TokenSpace]:
    """(B, N_out, N_in) rollout over all layers, with the output tokens' space and the first layer's input space.
    `discard_ratio` drops that fraction of the lowest head-averaged weights of each layer before the residual
    mix (Abnar & Zuidema's "discard" heuristic; 0: none)."""
    if not layers:
        raise ConfigError("no attention was recorded: run the model inside record_attention")
    if not 0 <= discard_ratio < 1:
        raise ConfigError(f"discard ratio {discard_ratio} must be in [0, 1)")
    R, space, first = None, None, layers[0].k_space
    for layer in layers:
        a = layer.probs.mean(1)  # (B, Nq, Nk)
        if discard_ratio > 0:
            flat = a.flatten(1)
            drop = flat.topk(int(flat.shape[1] * discard_ratio), dim=1, largest=False).indices
            a = flat.scatter(1, drop, 0).view_as(a)
        skip = layer.residual if layer.residual is not None else torch.eye(a.shape[-1])
        a = 0.5 * a + 0.5 * skip
        a = a / a.sum(-1, keepdim=True).clamp_min(1e-12)
        if R is None:
            R = a
        else:
            if space != layer.k_space:
                R = (layer.enter if layer.enter is not None else regrid(space, layer.k_space)) @ R
            R = a @ R
        space = layer.q_space
    return R, space, first


def output_row(matrix: Tensor, space: TokenSpace) -> Tensor:
    """(B, N_out, N) -> (B, N): the mean row of the prefix tokens, or of all tokens without any."""
    return matrix[:, :space.prefix].mean(1) if space.prefix else matrix.mean(1)


def query_index(space: TokenSpace, query: tuple[int, ...] | None, first: TokenSpace) -> Tensor:
    """Rows of `space` for a query: None = its prefix tokens (all tokens without any); else a patch coordinate
    on `first`'s grid, scaled onto this grid (for hierarchical models)."""
    if query is None:
        return torch.arange(space.prefix) if space.prefix else torch.arange(space.size)
    if len(query) != len(first.grid):
        raise ConfigError(f"query {tuple(query)} must have one coordinate per axis of the {first.grid} token grid")
    if any(not 0 <= q < n for q, n in zip(query, first.grid)):
        raise ConfigError(f"query {tuple(query)} lies outside the {first.grid} token grid")
    if len(space.grid) != len(first.grid):  # e.g. ViViT Model 2's temporal encoder: time axis only
        query, grid0 = query[:len(space.grid)], first.grid[:len(space.grid)]
    else:
        grid0 = first.grid
    coords = [q * n // n0 for q, n, n0 in zip(query, space.grid, grid0)]
    flat = 0
    for c, n in zip(coords, space.grid):
        flat = flat * n + c
    return torch.tensor([space.prefix + flat])


def patch_map(row: Tensor, space: TokenSpace) -> Tensor:
    """(..., N) over a space -> (..., *grid): the patch part reshaped onto its grid."""
    return row[..., space.prefix:].reshape(*row.shape[:-1], *space.grid)
