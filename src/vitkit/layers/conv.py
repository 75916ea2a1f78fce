"""`Conv2d` / `Conv3d`: nn.Conv2d / nn.Conv3d (same parameters, same state-dict keys) that keep their gradients
right when trained under CPU bf16 autocast.

In torch 2.14.1 the oneDNN bf16 convolution backward on the CPU returns wrong weight gradients — or corrupts the
heap and aborts the process — when an input extent is smaller than the kernel's along that axis: a 3×3×3 pooling
conv over a clip of 2 frames (a tubelet of 2 over 4 frames), a 3×3 conv over a map one token wide. The forward
is right, and every case computes right in fp32 or with oneDNN off. `benchmarks/check_conv_bf16.py` sweeps 3,732
shapes (2-D/3-D, full/depthwise, contiguous/channels-last): on a 2-core AMD EPYC with torch 2.14.1, 427 were wrong
or aborted, every one with an extent below the kernel, and none of the 1,452 others. Such a conv, while autocast is
on for the CPU and a gradient will flow, therefore runs in fp32 (`tests/test_conv.py`); everywhere else it is the
ordinary nn.ConvNd.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def needs_fp32(x: Tensor, kernel: tuple[int, ...]) -> bool:
    """True when oneDNN's bf16 backward would be wrong for this conv: CPU autocast, grad on, an extent < kernel."""
    return (
        x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.is_grad_enabled()
        and any(n < k for n, k in zip(x.shape[2:], kernel))
    )


class _SafeBackward:
    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, *spatial) -> (B, C', *spatial')."""
        if needs_fp32(x, self.kernel_size):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


class Conv2d(_SafeBackward, nn.Conv2d):
    """nn.Conv2d whose CPU bf16-autocast training stays right on maps smaller than the kernel."""


class Conv3d(_SafeBackward, nn.Conv3d):
    """nn.Conv3d whose CPU bf16-autocast training stays right on clips or maps smaller than the kernel."""
