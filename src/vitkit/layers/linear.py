"""`Linear`: nn.Linear (same parameters, same state-dict keys) whose fp32 CPU products run on oneDNN.

PyTorch sends fp32 `F.linear` on CPU to MKL's sgemm. MKL picks its kernels by CPU vendor and on AMD processors
does not use its AVX-512 code, so on an EPYC a transformer — ~85 % of whose time is these products — runs at
well under half the speed the hardware gives. oneDNN, which PyTorch already uses for convolutions and bf16,
picks kernels by instruction set. `Linear` therefore computes x·Wᵀ + b and both gradients with oneDNN's
matmul when that is safe (fp32, CPU, plain tensors; no autocast, compile, tracing, export, dispatch mode or torch.func —
all of which see the ordinary `F.linear`); the result is the same product up to summation order.
The op (`torch.ops.mkldnn._linear_pointwise`) is private: it is checked once per process (present, and right on
a small product) before any call is routed to it, else every call takes `F.linear`. Gradients recorded for a
second differentiation (`create_graph=True`) are computed with ordinary ops.
Whether the route is taken is decided per kind of call — inference (no gradient recorded) or training — by the
processor (`vitkit.routes.linear_route`: on AVX2 the route wins in inference and loses in training);
`vitkit.layers.set_layer_config` (or `set_onednn_linear`, both kinds) and `VITKIT_ONEDNN_LINEAR=0|1` override it.
`benchmarks/bench_gemm.py` and `bench_onednn.py` measure the two backends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from .config import layer_config, set_layer_config


@functools.cache
def _checked_op() -> Callable | None:
    """oneDNN's private linear op, once checked: present in this build and right on a small product; else None."""
    if not torch.backends.mkldnn.is_available():
        return None
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None:
        return None
    x = torch.linspace(-1, 1, 15).reshape(3, 5)            # (M, K)
    w = torch.linspace(0.5, -2, 20).reshape(4, 5)          # (N, K)
    b = torch.linspace(-1, 1, 4)                           # (N,)
    try:
        ok = all(torch.allclose(op(x, w, bias, "none", [], ""), x @ w.t() + (0 if bias is None else bias), atol=1e-5)
                 for bias in (b, None))
    except Exception:  # a changed signature or an unsupported CPU: any failure means "do not route"
        return None
    return op if ok else None


def _route(training: bool) -> Callable | None:
    """The op for fp32 CPU products of a call that records gradients (`training`) or not; None: the default path.
    Whether the route is on for each kind of call is `layers.config`'s switch (by processor, see vitkit.routes)."""
    cfg = layer_config()
    return _checked_op() if (cfg.onednn_linear_train if training else cfg.onednn_linear_infer) else None


def set_onednn_linear(enabled: bool) -> bool:
    """Route fp32 CPU linears through oneDNN (True; only where its op passes the check) or PyTorch's default path
    (False), for inference and training alike; returns whether the route was on for both before. For one of the
    two, or for a block only, use `vitkit.layers.set_layer_config`."""
    old = set_layer_config(onednn_linear=enabled).previous
    return old.onednn_linear_infer and old.onednn_linear_train and _checked_op() is not None


def _plain(*ts: Tensor | None) -> bool:
    """True when oneDNN may take these tensors: fp32 CPU dense tensors outside any tracing or dispatch mode."""
    return (
        all(t is None or (type(t) in (Tensor, nn.Parameter) and t.dtype == torch.float32
                              and t.device.type == "cpu" and t.layout == torch.strided) for t in ts)
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.compiler.is_compiling()
        and not torch.onnx.is_in_onnx_export()
        and _get_current_dispatch_mode() is None
        and torch._C._functorch.peek_interpreter_stack() is None  # torch.func transforms (vmap, grad, jacrev)
    )


def _mm(op: Callable, a: Tensor, b_t: Tensor) -> Tensor:
    """a: (M, K), b_t: (N, K), any strides -> a·b_tᵀ: (M, N); oneDNN when it may, else torch."""
    return op(a, b_t, None, "none", [], "") if _plain(a, b_t) else a @ b_t.t()


class _OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, op: Callable) -> Tensor:
        """x: (M, K), weight: (N, K), bias: (N,) -> (M, N)."""
        ctx.save_for_backward(x, weight)
        ctx.op = op
        return op(x, weight, bias, "none", [], "")

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:
        """g: (M, N) -> dx = g·W: (M, K), dW = gᵀ·x: (N, K), db = Σ_M g: (N,)."""
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        if torch.is_grad_enabled():
            # create_graph=True (gradient penalties, double backward): the oneDNN op records no graph, so the
            # gradients are computed with ordinary differentiable ops.
            return (g @ weight if need_x else None, g.t() @ x if need_w else None, g.sum(0) if need_b else None, None)
        dx = _mm(ctx.op, g, weight.t()) if need_x else None
        dw = None
        if need_w:
            # Over a long reduction (M >> N) oneDNN is 1.5-4x faster with the operand of fewer rows first; that
            # order gives dWᵀ, whose transpose costs a copy, so it is taken only there (Swin stage 1, MViT).
            N, K = g.shape[1], x.shape[1]
            dw = _mm(ctx.op, x.t(), g.t()).t().contiguous() if N > K and g.shape[0] >= 4 * N else _mm(ctx.op, g.t(), x.t())
        db = g.sum(0) if need_b else None  # False when there is no bias
        return dx, dw, db, None


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.linear with fp32 CPU products on oneDNN: x: (..., K), weight: (N, K) -> (..., N)."""
    if not _plain(x, weight, bias) or x.numel() == 0:  # first: tracing and compiling never reach the op's check
        return F.linear(x, weight, bias)
    training = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                            or (bias is not None and bias.requires_grad))
    op = _route(training)
    if op is None:
        return F.linear(x, weight, bias)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1]).contiguous()  # (M, K)
    if training:
        out = _OneDNNLinear.apply(x2, weight.contiguous(), bias, op)
    else:
        out = op(x2, weight.contiguous(), bias, "none", [], "")
    return out.reshape(*lead, weight.shape[0])


class Linear(nn.Linear):
    """nn.Linear computed by `linear`: (..., in_features) -> (..., out_features)."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)
