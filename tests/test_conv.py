"""vitkit's convolutions train right under CPU bf16 autocast where torch's oneDNN bf16 backward does not: an input
extent smaller than the kernel (clips of 2 frames under a 3×3×3 pooling conv, maps one token wide). The weight
and input gradients are compared with fp64 on the shapes the sweep found wrong in torch 2.14.1."""

import pytest
import torch

from vitkit.layers import Conv2d, Conv3d
from vitkit.layers.conv import needs_fp32

# (conv class, channels, groups, input extents, kernel, stride, channels-last view): each was wrong (or aborted the
# process) with nn.ConvNd under CPU bf16 autocast in torch 2.14.1.
CASES = [
    (Conv3d, 16, 16, (2, 8, 8), (3, 3, 3), (1, 2, 2), True),   # MViT pooling conv over a 2-frame clip
    (Conv3d, 16, 16, (2, 4, 4), (3, 3, 3), (1, 1, 1), True),
    (Conv3d, 16, 1, (2, 7, 7), (3, 3, 3), (1, 2, 2), False),   # full conv, contiguous input
    (Conv3d, 16, 1, (4, 1, 4), (3, 3, 3), (2, 2, 2), False),
    (Conv2d, 16, 1, (7, 1), (3, 3), (2, 2), True),             # a map one token wide
]


def _grads(conv, x, bf16: bool):
    x = x.clone().requires_grad_()
    conv.zero_grad()
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        y = conv(x)
    torch.manual_seed(1)
    y.float().backward(torch.randn(y.shape))
    return conv.weight.grad.clone(), x.grad.clone()


@pytest.mark.parametrize("cls, C, groups, extents, kernel, stride, channels_last", CASES)
def test_bf16_autocast_gradients_match_fp64(cls, C, groups, extents, kernel, stride, channels_last):
    torch.manual_seed(0)
    conv = cls(C, C, kernel, stride, tuple(k // 2 for k in kernel), groups=groups, bias=False)
    n = torch.Size(extents).numel()
    tokens = torch.randn(2, n, C)  # (B, N, C) as the models hold them
    x = tokens.transpose(1, 2).reshape(2, C, *extents)  # a channels-first view, as to_map gives
    x = x if channels_last else x.contiguous()
    w, gx = _grads(conv, x, bf16=True)
    ref = conv.double()
    w_ref, gx_ref = _grads(ref, x.double(), bf16=False)
    for got, want in ((w, w_ref), (gx, gx_ref)):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got.double(), want, rtol=0, atol=2e-2 * want.abs().max().item())


def test_fp32_route_is_taken_only_where_needed():
    x = torch.randn(1, 4, 2, 8, 8)
    with torch.autocast("cpu", torch.bfloat16):
        assert needs_fp32(x, (3, 3, 3))
        assert not needs_fp32(x, (1, 3, 3))          # every extent covers the kernel: bf16 as usual
        with torch.no_grad():
            assert not needs_fp32(x, (3, 3, 3))      # inference: the forward is right in bf16
    assert not needs_fp32(x, (3, 3, 3))              # no autocast: fp32 anyway
    conv = Conv3d(4, 4, 3, padding=1)
    with torch.autocast("cpu", torch.bfloat16):
        assert conv(x).dtype == torch.float32 and conv(torch.randn(1, 4, 4, 8, 8)).dtype == torch.bfloat16
