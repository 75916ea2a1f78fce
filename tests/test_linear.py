"""layers.linear: the oneDNN route for fp32 CPU linears gives F.linear's values and gradients, is taken exactly
where it is safe, and leaves parameters and state dicts as nn.Linear's."""

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import vitkit
from vitkit.layers import Linear, layer_config, set_layer_config, set_onednn_linear

L = sys.modules["vitkit.layers.linear"]
needs_onednn = pytest.mark.skipif(L._checked_op() is None, reason="this PyTorch build has no working oneDNN linear")


@pytest.fixture
def calls(monkeypatch):
    """Turns the route on (whatever the default) and counts calls of the oneDNN op."""
    n = [0]
    op = L._checked_op()

    def counted(*args):
        n[0] += 1
        return op(*args)
    monkeypatch.setattr(L, "_checked_op", lambda: counted)
    with set_layer_config(onednn_linear=True):
        yield n


def _close(a, b):
    assert a.shape == b.shape
    assert (a - b).abs().max() <= 1e-5 * (1 + b.abs().max()), (a - b).abs().max()


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("out", [40, 16])  # wider and narrower than the input
@pytest.mark.parametrize("shape", [(2, 7, 24), (5, 24), (1, 24), (3, 4, 5, 24), (2, 100, 24)])  # last: dW as (xᵀg)ᵀ
def test_values_and_gradients_match_f_linear(calls, shape, out, bias):
    torch.manual_seed(0)
    layer = Linear(24, out, bias=bias)
    x = torch.randn(shape, requires_grad=True)
    g = torch.randn(*shape[:-1], out)
    layer(x).backward(g)
    got = [x.grad, layer.weight.grad, layer.bias.grad if bias else None]
    assert calls[0] == 3  # forward, dx, dW: all on oneDNN
    x.grad = None
    layer.zero_grad()
    F.linear(x, layer.weight, layer.bias).backward(g)
    want = [x.grad, layer.weight.grad, layer.bias.grad if bias else None]
    for a, b in zip(got, want, strict=True):
        if b is not None:
            _close(a, b)


@needs_onednn
def test_non_contiguous_input_and_partial_gradients(calls):
    layer = Linear(16, 8)
    x = torch.randn(6, 5, 16).transpose(0, 1)  # (5, 6, 16), not contiguous
    _close(layer(x), F.linear(x, layer.weight, layer.bias))
    layer.weight.requires_grad_(False)          # frozen layer, input needs its gradient
    layer.bias.requires_grad_(False)
    xr = x.detach().requires_grad_()
    layer(xr).sum().backward()
    _close(xr.grad, layer.weight.sum(0).expand(5, 6, 16))
    assert layer.weight.grad is None


@needs_onednn
def test_vectorised_jacobian_through_the_custom_backward():
    layer = Linear(3, 4)
    J = torch.autograd.functional.jacobian(layer, torch.randn(2, 3), vectorize=True)  # (2, 4, 2, 3)
    _close(J[1, :, 1], layer.weight)
    assert J[1, :, 0].abs().max() == 0


@needs_onednn
@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
def test_route_taken_only_where_safe(calls):
    layer = Linear(8, 4)
    x = torch.randn(3, 8)
    with torch.inference_mode():
        layer(x)
    assert calls[0] == 1
    Linear(8, 4).double()(x.double())                       # float64: F.linear
    with torch.autocast("cpu", dtype=torch.bfloat16):       # autocast casts: F.linear
        assert layer(x).dtype == torch.bfloat16
    with FlopCounterMode(display=False) as fc:              # dispatch modes (flop counter, fake tensors)
        layer(x)
    assert fc.get_total_flops() == 2 * 3 * 8 * 4
    Linear(8, 4, device="meta")(torch.empty(3, 8, device="meta"))
    layer(torch.empty(0, 8))                                # empty batch
    torch.jit.trace(layer, x, check_trace=False)            # tracing (the ONNX exporter traces too)
    torch.func.vmap(layer)(x.unsqueeze(0))                  # torch.func transforms
    torch.func.grad(lambda w: torch.func.functional_call(layer, {"weight": w}, (x,)).sum())(layer.weight)
    with set_layer_config(onednn_linear=False):
        layer(x)
    assert calls[0] == 1


def test_state_dict_and_type_are_nn_linears():
    layer = Linear(5, 3)
    assert isinstance(layer, nn.Linear)
    ref = nn.Linear(5, 3)
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(2, 5)
    _close(layer(x), ref(x))


def test_model_train_step_matches_with_and_without_onednn():
    """A ViT training step's loss and gradients agree whether linears run on oneDNN or on PyTorch's default."""
    torch.manual_seed(0)
    model = vitkit.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=5)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    grads = []
    for enabled in (True, False):
        with set_layer_config(onednn_linear=enabled):
            model.zero_grad()
            F.cross_entropy(model(x), y).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        _close(a, b)


@pytest.mark.parametrize("value, want", [("0", (False, False)), ("1", (True, True))])
def test_environment_variable_forces_the_route(value, want):
    code = "import vitkit.layers as L; c = L.layer_config(); print(c.onednn_linear_infer, c.onednn_linear_train)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "VITKIT_ONEDNN_LINEAR": value},
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(w) for w in want]


def test_training_and_inference_switches_are_separate(calls):
    """The route can be on for inference and off for training (the AVX2 rule): only gradient-free calls take it."""
    layer = Linear(8, 4)
    x = torch.randn(3, 8)
    with set_layer_config(onednn_linear_infer=True, onednn_linear_train=False):
        with torch.no_grad():
            layer(x)
        assert calls[0] == 1
        layer(x).sum().backward()             # records a gradient: the default path
        assert calls[0] == 1
    with set_layer_config(onednn_linear_infer=False, onednn_linear_train=True):
        layer(x).sum().backward()             # forward, dx is not needed (x has no grad), dW: two calls
        assert calls[0] == 3
    assert layer_config() == set_layer_config().previous  # the context managers restored the switches


@pytest.fixture
def fresh_check(monkeypatch):
    """Re-runs the once-per-process op check inside the test, and again (on the real op) afterwards."""
    L._checked_op.cache_clear()
    yield
    L._checked_op.cache_clear()


@pytest.mark.parametrize("ops", [
    SimpleNamespace(),                                                         # op missing from this build
    SimpleNamespace(_linear_pointwise=lambda x, w, b, *a: torch.zeros(x.shape[0], w.shape[0])),  # wrong values
    SimpleNamespace(_linear_pointwise=lambda *a: torch.ops.aten.mm(*a)),       # changed signature: raises
])
def test_missing_or_broken_op_falls_back_to_f_linear(monkeypatch, fresh_check, ops):
    monkeypatch.setattr(torch.ops, "mkldnn", ops)
    assert L._checked_op() is None
    with set_layer_config(onednn_linear=True):
        assert set_onednn_linear(True) is False and L._route(False) is None  # asked for, refused: the route stays off
    layer = Linear(5, 3)
    x = torch.randn(4, 5, requires_grad=True)
    out = layer(x)
    _close(out, F.linear(x, layer.weight, layer.bias))
    out.sum().backward()
    _close(x.grad, layer.weight.sum(0).expand(4, 5))


@needs_onednn
def test_working_op_passes_the_check(fresh_check):
    assert L._checked_op() is torch.ops.mkldnn._linear_pointwise
    with set_layer_config(onednn_linear=True):
        assert L._route(True) is L._route(False) is torch.ops.mkldnn._linear_pointwise


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
def test_double_backward_matches_f_linear(calls, bias):
    """A gradient penalty (create_graph=True) differentiates the backward itself; values as with F.linear."""
    torch.manual_seed(0)
    layer = Linear(6, 4, bias=bias)
    x = torch.randn(3, 6, requires_grad=True)

    def penalty(f):
        layer.zero_grad()
        x.grad = None
        y = f(x)
        gx, = torch.autograd.grad((y.tanh() ** 2).sum(), x, create_graph=True)
        (gx ** 2).sum().backward()
        return [x.grad, layer.weight.grad] + ([layer.bias.grad] if bias else [])

    got = penalty(layer)
    # oneDNN: the forward, and dx, dW of the last backward (through y); the create_graph pass: ordinary ops
    assert calls[0] == 3
    want = penalty(lambda t: F.linear(t, layer.weight, layer.bias))
    for a, b in zip(got, want, strict=True):
        _close(a, b)


def test_first_use_under_tracing_records_only_the_product():
    """The op's once-per-process check must not run inside a trace (the ONNX exporter's first linear call)."""
    code = ("import torch, vitkit.layers as L; m = L.Linear(8, 4).eval(); "
            "g = torch.jit.trace(m, torch.randn(2, 8)).inlined_graph; "
            "print(sorted({n.kind() for n in g.nodes()}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "linspace" not in out and "aten::linear" in out, out
