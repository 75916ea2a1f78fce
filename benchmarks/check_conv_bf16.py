"""Where torch's CPU bf16 convolution backward goes wrong, and whether `vitkit.layers.conv`'s rule covers it.

Every case is one conv (2-D and 3-D, full and depthwise, contiguous or channels-last input as `to_map` gives it)
run forward + backward under CPU bf16 autocast with plain `nn.ConvNd`, in a forked child (a wrong kernel can
abort the process), and compared with fp64. A case is "small" when some input extent is below the kernel's:
the cases `needs_fp32` sends to fp32. The last line must show no failure among the "big" ones; when torch fixes
its kernel, the "small" ones turn ok and the rule can go. Takes ~20 min on 2 cores.

    python benchmarks/check_conv_bf16.py
"""

import collections
import os
import signal

import torch
import torch.nn.functional as F

torch.set_num_threads(1)


def relative_error(nd, extents, kernel, stride, channels, groups, channels_last) -> float:
    torch.manual_seed(0)
    x = torch.randn(2, torch.Size(extents).numel(), channels).transpose(1, 2).reshape(2, channels, *extents)
    x = x if channels_last else x.contiguous()
    w = torch.randn(channels, channels // groups, *kernel)
    conv = F.conv2d if nd == 2 else F.conv3d
    pad = tuple(k // 2 for k in kernel)
    grads, g = [], None
    for dtype in (torch.bfloat16, torch.float64):
        xi, wi = x.to(dtype).requires_grad_(), w.to(dtype).requires_grad_()
        y = conv(xi, wi, None, stride, pad, 1, groups)
        g = torch.randn(y.shape) if g is None else g  # one upstream gradient for both
        y.backward(g.to(dtype))
        grads.append((wi.grad.double(), xi.grad.double()))
    return max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(*grads))


def outcome(case) -> str:
    pid = os.fork()
    if pid == 0:
        signal.alarm(30)  # a kernel that spins forever counts as a crash
        try:
            os._exit(0 if relative_error(*case) < 0.05 else 1)
        except Exception:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return "ok" if status == 0 else "wrong" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1 else "crash"


def cases():
    for groups in ("depthwise", "full"):
        for channels_last in (False, True):
            for extents in [(t, h, w) for t in (1, 2, 3, 4, 5) for h in (1, 2, 3, 4, 6, 7) for w in (2, 3, 5, 7, 8)]:
                for kernel, stride in (((3, 3, 3), (1, 2, 2)), ((3, 3, 3), (1, 1, 1)), ((3, 3, 3), (2, 2, 2)),
                                       ((1, 3, 3), (1, 2, 2)), ((3, 7, 7), (2, 4, 4)), ((2, 2, 2), (2, 2, 2))):
                    if groups == "full" or kernel != (3, 7, 7):
                        yield 3, extents, kernel, stride, 16, 16 if groups == "depthwise" else 1, channels_last
            for extents in [(h, w) for h in (1, 2, 3, 5, 7, 9) for w in (1, 2, 3, 5, 7, 9)]:
                for kernel, stride in (((3, 3), (1, 1)), ((3, 3), (2, 2)), ((7, 7), (4, 4))):
                    yield 2, extents, kernel, stride, 16, 16 if groups == "depthwise" else 1, channels_last


if __name__ == "__main__":
    print(f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}")
    counts = collections.Counter()
    for case in cases():
        small = any(n < k for n, k in zip(case[1], case[2]))
        result = outcome(case)
        counts[f"{case[0]}-D", "small" if small else "big", result] += 1
        if result != "ok" and not small:
            print("NOT COVERED by needs_fp32:", case, result, flush=True)
    for key, n in sorted(counts.items()):
        print(*key, n)
    bad_big = sum(n for (_, size, result), n in counts.items() if size == "big" and result != "ok")
    print(f"failures the rule does not cover: {bad_big}")
