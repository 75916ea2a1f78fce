"""The one attention core of vitkit.

Every family computes softmax(QKᵀ·scale + bias)·V through `attend`, which is
`torch.nn.functional.scaled_dot_product_attention` with dropout that is on only while training; the same math
written out while a learned bias needs its gradient (which SDPA's fused kernels do not give), and for short
sequences that record gradients on the CPU, where SDPA's flash backward is slow (`layers.config`'s
`math_attention_max_tokens`, chosen by `vitkit.routes`).
`Attention` adds the fused qkv and output projections used by most families; variants (windows,
factorised heads, reduced token maps) own only their projections, biases and regroupings and call
`split_heads` / `attend` / `merge_heads` themselves.

Inspection: while a `vitkit.record_attention` context is active, `attend` also hands the probabilities it used
(bias and masks included) to that context's recorder; the output still comes from SDPA, unchanged. With no
recorder active the only extra work is one test of an empty list.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import RECORDERS, layer_config  # the active `record_attention` recorders, with the layer switches
from .linear import Linear


def attention_probs(q: Tensor, k: Tensor, bias: Tensor | None = None, scale: float | None = None) -> Tensor:
    """softmax(q·kᵀ·scale + bias) in fp32, what SDPA computes internally: (B, h, Nq, d), (B, h, Nk, d)
    -> (B, h, Nq, Nk)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    logits = q.float() @ k.float().transpose(-2, -1) * scale  # (B, h, Nq, Nk)
    return (logits if bias is None else logits + bias.float()).softmax(-1)


def attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None, dropout_p: float = 0.0,
           scale: float | None = None) -> Tensor:
    """q: (B, h, Nq, d), k/v: (B, h, Nk, d), bias: additive, broadcastable to (B, h, Nq, Nk) -> (B, h, Nq, d).

    `dropout_p` must already be 0 outside training: callers pass `p if self.training else 0.0`.
    """
    if bias is not None and bias.dim() == 3:
        bias = bias.unsqueeze(0)  # (h, Nq, Nk) -> (1, h, Nq, Nk): the fused CPU kernel refuses 3-D masks
    if torch.is_grad_enabled() and ((bias is not None and bias.requires_grad) or _short_on_cpu(q, k)):
        # A learned bias (Swin's relative-position table, MViT's decomposed rel-pos) needs a gradient, which
        # SDPA's fused kernels do not give: SDPA would fall back to its math path, which is this same product
        # plus a "safe" softmax's checks for fully masked rows and two scalings. Written out, it costs less;
        # so it does for short CPU sequences (see the module docstring).
        # (A row that is -inf everywhere would give NaN here; no vitkit mask leaves a row empty.)
        logits = (q * (q.shape[-1] ** -0.5 if scale is None else scale)) @ k.transpose(-2, -1)  # (B, h, Nq, Nk)
        probs = (logits if bias is None else logits + bias).softmax(-1)
        out = F.dropout(probs, dropout_p) @ v if dropout_p else probs @ v  # (B, h, Nq, d)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p, scale=scale)
    if RECORDERS:
        RECORDERS[-1](attention_probs(q.detach(), k.detach(), None if bias is None else bias.detach(), scale))
    return out


def _short_on_cpu(q: Tensor, k: Tensor) -> bool:
    """A CPU call recording gradients over few enough keys that the written-out product beats SDPA's kernel."""
    return q.device.type == "cpu" and k.shape[-2] <= layer_config().math_attention_max_tokens and (
        q.requires_grad or k.requires_grad)


class Attention(nn.Module):
    """Multi-head self-attention over independent sequences: (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, scale: float | None = None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.scale = scale  # None: head_dim ** -0.5 inside SDPA
        self.attn_drop = attn_drop
        self.qkv = Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()

    def split_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, N, D) -> q, k, v each (B, h, N, d)."""
        return qkv_to_heads(self.qkv(x), self.num_heads)

    def merge_heads(self, x: Tensor) -> Tensor:
        """x: (B, h, N, d) -> output projection (B, N, D)."""
        return self.proj_drop(self.proj(from_heads(x)))

    @property
    def dropout_p(self) -> float:
        return self.attn_drop if self.training else 0.0

    def forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """x: (B, N, D), bias: broadcastable to (B, h, N, N) -> (B, N, D)."""
        q, k, v = self.split_heads(x)
        return self.merge_heads(attend(q, k, v, bias, self.dropout_p, self.scale))


# --- head split and merge, shared by every attention layer ----------------------------------------------------
def to_heads(x: Tensor, num_heads: int) -> Tensor:
    """One projection (B, N, h·d) -> (B, h, N, d)."""
    B, N, _ = x.shape
    return x.reshape(B, N, num_heads, -1).transpose(1, 2)  # (B, N, h, d) -> (B, h, N, d)


def qkv_to_heads(qkv: Tensor, num_heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """Fused projections (B, N, 3·h·d) -> q, k, v each (B, h, N, d)."""
    B, N, _ = qkv.shape
    return qkv.reshape(B, N, 3, num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # -> (3, B, h, N, d)


def from_heads(x: Tensor) -> Tensor:
    """(B, h, N, d) -> (B, N, h·d), the input of the output projection."""
    B, _, N, _ = x.shape
    return x.transpose(1, 2).reshape(B, N, -1)  # (B, h, N, d) -> (B, N, h·d)
