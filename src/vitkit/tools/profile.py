"""Cost of a model: parameters, GMACs, throughput and peak activation memory, for images and videos alike.

GMACs follow the papers' convention (one fused multiply-add = 1; SPEC.md §0.1): the FLOPs of
`torch.utils.flop_counter` halved. The stock counter misses two things on the CPU, fixed here through
`custom_mapping` (no global registry is touched): the CPU flash-attention kernel
(`_scaled_dot_product_flash_attention_for_cpu` and its backward, counted as 0, so ViT-B/16 would read 22.5
instead of 35.1 GFLOPs), and the backward of grouped/depthwise convolutions (counted as if dense, ~C× too high).
"""

from __future__ import annotations

import math
import time
from math import prod

import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

aten = torch.ops.aten


def _sdpa_cpu(q, k, v, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(q, k, v)


def _sdpa_cpu_backward(grad_out, q, k, v, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, q, k, v)


def _conv_macs(x_shape, w_shape, out_shape, transposed: bool) -> int:
    # weight is (C_out, C_in / groups, *k): one MAC per output point, kernel tap and input channel of the group
    spatial = (x_shape if transposed else out_shape)[2:]
    return x_shape[0] * prod(spatial) * prod(w_shape)


def _conv_backward(grad_out, x, w, _bias, _stride, _padding, _dilation, transposed, _out_pad, _groups, output_mask,
                   out_shape=None, **kwargs) -> int:
    """grad_input and grad_weight each cost what the forward costs (2 FLOPs per MAC), groups included."""
    fwd = _conv_macs(x, w, grad_out, transposed) if not transposed else _conv_macs(grad_out, w, x, False)
    return 2 * fwd * (int(output_mask[0]) + int(output_mask[1]))


CUSTOM_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_backward,
    aten.convolution_backward: _conv_backward,
}


def count_params(model: nn.Module) -> int:
    """Number of parameters (the papers' "Params")."""
    return sum(p.numel() for p in model.parameters())


def _example(model: nn.Module, input_shape: tuple[int, ...], batch_size: int) -> torch.Tensor:
    p = next(model.parameters())
    return torch.randn(batch_size, *input_shape, device=p.device, dtype=p.dtype)


def _counter(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, backward: bool) -> FlopCounterMode:
    """The flop counter after one forward (and backward) on a (batch, *input_shape) input."""
    x = _example(model, input_shape, batch_size)
    counter = FlopCounterMode(display=False, custom_mapping=CUSTOM_FLOPS)
    with counter:
        if backward:
            model(x).sum().backward()
        else:
            with torch.no_grad():
                model(x)
    return counter


def count_flops(model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 1, backward: bool = False) -> int:
    """FLOPs (2 per MAC) of one forward (and backward) on a (batch, *input_shape) input. Works on the meta
    device, so full-size video models are counted without running them."""
    return _counter(model, input_shape, batch_size, backward).get_total_flops()


def count_gmacs(model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 1) -> float:
    """GMACs per sample of one forward (the papers' "GFLOPs")."""
    return count_flops(model, input_shape, batch_size) / 2 / 1e9 / batch_size


def count_gmacs_by_op(model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 1) -> dict[str, float]:
    """GMACs per sample of one forward by aten operator ({"aten.addmm": ..., "aten.bmm": ...}; they sum to
    `count_gmacs`). On the meta device the attention core's products (q·kᵀ and attention·v) are the batched
    matmuls (`aten.bmm`), linear layers `aten.addmm`/`aten.mm` and convolutions `aten.convolution`."""
    flops = _counter(model, input_shape, batch_size, False).get_flop_counts().get("Global", {})
    return {str(op): f / 2 / 1e9 / batch_size for op, f in flops.items()}


class PeakMemory(TorchDispatchMode):
    """Peak bytes of live tensor storage created while active (activations, gradients, optimizer state)."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for key in [k for k, (ref, _) in self.live.items() if ref.expired()]:
            self.current -= self.live.pop(key)[1]
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                st = t.untyped_storage()
                key = st.data_ptr()
                if key and key not in self.live:
                    self.live[key] = (StorageWeakRef(st), st.nbytes())
                    self.current += st.nbytes()
        self.peak = max(self.peak, self.current)
        return out


def peak_memory(model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 1, train: bool = False) -> int:
    """Peak bytes allocated by one inference forward, or one training forward+backward."""
    x = _example(model, input_shape, batch_size)
    was_training = model.training
    model.train(train)
    try:
        with PeakMemory() as mem:
            if train:
                model(x).float().sum().backward()
            else:
                with torch.inference_mode():
                    model(x)
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    return mem.peak


def measure_throughput(model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 8, steps: int = 5,
                       warmup: int = 2, bf16: bool = False, train: bool = False, precision: str | None = None) -> float:
    """Samples per second (median over `steps` timed batches) on the model's device, of inference or, with
    `train`, of a training step (forward, sum of the logits, backward; no optimizer), under autocast in
    `precision` ("fp32", "bf16", "fp16"; `bf16=True` is short for "bf16")."""
    x = _example(model, input_shape, batch_size)
    model.train(train)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision or ("bf16" if bf16 else "fp32"))
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    times = []
    grad = torch.enable_grad() if train else torch.inference_mode()
    with grad, torch.autocast(x.device.type, dtype or torch.bfloat16, enabled=dtype is not None):
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            out = model(x)
            if train:
                out.float().sum().backward()
                model.zero_grad(set_to_none=True)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    model.eval()
    times.sort()
    return batch_size / times[len(times) // 2]


def profile_model(name: str, batch_size: int = 1, throughput: bool = True, memory: bool = True, bf16: bool = False,
                  train: bool = False, device: torch.device | str = "cpu", precision: str | None = None,
                  fast: bool = False, **overrides) -> dict:
    """Params, GMACs (meta device, no compute), and optionally throughput (under autocast in `precision`, or of a
    training step with `train`) and peak memory (of one inference forward, or a training step) of a registered
    model on `device` (`fast`: of the model `optimize_for_inference` returns)."""
    from ..registry import create_model
    from .fast import optimize_for_inference

    with torch.device("meta"):
        meta = create_model(name, **overrides)
    shape = meta.input_shape()
    row = {"model": name, "input": "x".join(map(str, shape[1:])), "params_m": count_params(meta) / 1e6,
           "gmacs": count_gmacs(meta.eval(), shape)}
    if throughput or memory:
        model = create_model(name, **overrides).eval().to(device)
        if fast:
            model = optimize_for_inference(model)
        if throughput:
            row["samples_per_s"] = measure_throughput(model, shape, batch_size, bf16=bf16, train=train,
                                                      precision=precision)
        if memory:
            row["peak_mem_mb"] = peak_memory(model, shape, batch_size, train=train) / 2**20
    return row


SWEEP_KEYS = ("img_size", "num_frames")


def sweep(names: list[str], key: str, values: list[int], on_row=None, **options) -> list[dict]:
    """`profile_model` of every model at every value of one size override (`img_size` or `num_frames`); each
    row also holds `key`: its value. `options` are profile_model's (batch_size, throughput, ...) and overrides;
    `on_row(row)` is called after each row (progress)."""
    if key not in SWEEP_KEYS:
        from ..errors import ConfigError

        raise ConfigError(f"cannot sweep {key!r}; expected one of {', '.join(SWEEP_KEYS)}")
    rows = []
    for n in names:
        for v in values:
            rows.append({key: v, **profile_model(n, **{**options, key: v})})
            if on_row is not None:
                on_row(rows[-1])
    return rows


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x (the exponent of a power law)."""
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


PLOTTED = (("gmacs", "GMACs per sample"), ("params_m", "parameters (M)"), ("samples_per_s", "samples / s"),
           ("peak_mem_mb", "peak memory (MB)"))


def plot_sweep(rows: list[dict], key: str, path) -> None:
    """One log-log figure: a panel per measured quantity (GMACs, parameters, throughput, peak memory) against the
    swept size, a line per model, each labelled with its GMACs slope against the size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(k, title) for k, title in PLOTTED if all(k in r for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    models = list(dict.fromkeys(r["model"] for r in rows))
    for ax, (k, title) in zip(axes[0], panels):
        for m in models:
            pts = [(r[key], r[k]) for r in rows if r["model"] == m]
            label = m
            if k == "gmacs" and len(pts) > 1:
                label += f" (∝ {key}^{loglog_slope(*zip(*pts)):.2f})"
            ax.plot(*zip(*pts), marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(key)
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
