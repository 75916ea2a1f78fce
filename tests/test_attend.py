"""`attend` with a learned bias: written out while the bias needs a gradient, SDPA otherwise; both agree."""

import pytest
import torch
import torch.nn.functional as F

from vitkit.layers.attention import attend


@pytest.mark.parametrize("bias_shape", [(3, 5, 7), (2, 3, 5, 7), (2, 1, 5, 7)])
@pytest.mark.parametrize("scale", [None, 0.3])
def test_learned_bias_gives_sdpa_output_and_gradients(bias_shape, scale):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 5, 4, generator=g)
    k, v = torch.randn(2, 3, 7, 4, generator=g), torch.randn(2, 3, 7, 4, generator=g)
    bias = torch.randn(bias_shape, generator=g)
    w = torch.randn(2, 3, 5, 4, generator=g)  # weights of the loss, so every gradient entry is tested

    def grads(fn):
        leaves = [t.clone().requires_grad_() for t in (q, k, v, bias)]
        out = fn(*leaves)
        (out * w).sum().backward()
        return out.detach(), [t.grad for t in leaves]

    b4 = (lambda b: b.unsqueeze(0) if b.dim() == 3 else b)
    out, got = grads(lambda q, k, v, b: attend(q, k, v, b, scale=scale))
    ref, want = grads(lambda q, k, v, b: F.scaled_dot_product_attention(q, k, v, attn_mask=b4(b), scale=scale))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # the SDPA path, no gradient needed
        torch.testing.assert_close(attend(q, k, v, bias.requires_grad_(), scale=scale), ref, atol=1e-5, rtol=1e-5)


def test_learned_bias_dropout_drops_probabilities():
    q = k = v = torch.ones(1, 1, 4, 2)
    bias = torch.zeros(1, 4, 4, requires_grad=True)
    torch.manual_seed(0)
    out = attend(q, k, v, bias, dropout_p=0.5)
    # uniform probabilities 1/4, each kept (x2) or dropped: every output is 2·(kept)/4, a multiple of 0.5, not all 1
    assert torch.allclose(out * 2, (out * 2).round()) and not torch.allclose(out, torch.ones_like(out))
