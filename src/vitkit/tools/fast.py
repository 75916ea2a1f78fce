"""`optimize_for_inference`: one call that turns a trained model into one ready to serve.

bf16 (where the device computes it natively: CPUs with AVX-512 BF16 or AMX, CUDA GPUs with bf16) runs the
model under bf16 autocast, with two differences from wrapping `forward` in `torch.autocast` by hand:
- The weights of the matrix products (every `nn.Linear` and `nn.ConvNd`: all but ~1 % of the FLOPs) are cast
  to bf16 once, here. Under plain autocast in inference mode every call casts every weight again (the cast
  cache is off there): a read of the fp32 weights and a write of a bf16 copy per forward. At batch 8 on a
  2-core EPYC that is within the noise (fast path / plain autocast 0.94-1.03x, `bench_fast.py --autocast`);
  it counts at batch 1 and for large weights.
- Nothing else is cast: norms, position embeddings, relative-position tables and the residual stream keep
  fp32, as autocast keeps them (layer norm of an fp32 stream runs in fp32; SDPA's softmax accumulates in
  fp32), so the logits differ from fp32 by bf16 rounding of the products only. Logits come back as fp32.
`compile=True` adds `torch.compile` on top, with inductor's freezing (weights become constants of the compiled
graph, prepacked for oneDNN, and pointwise ops fuse into the products): 1.2x over the eager fast path for
ViT-S at batch 8 on a 2-core EPYC (`benchmarks/bench_fast.py --compile`), for a build of minutes, once; the
weights must not change afterwards. `benchmarks/bench_fast.py` measures the result against the
reference libraries' fp32 eager path; `tests/test_fast.py` bounds the accuracy change.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..routes import inference_precision, processor

PRECISIONS = ("bf16", "fp32")
_PRODUCTS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)  # the layers whose weights are cast to bf16


def has_fast_bf16(device: torch.device) -> bool:
    """True when `device` computes bf16 products natively (faster than fp32), not by emulation: the rule of
    `vitkit.routes.inference_precision` (it honours ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA narrowing)."""
    return inference_precision(processor(device)).value == "bf16"


class InferenceModel(nn.Module):
    """A model's forward under bf16 autocast (`dtype` bf16) or as it is (`dtype` None): (B, ...) -> (B, K) fp32
    logits. Attributes it does not define (num_classes, input_shape, ...) are the wrapped model's."""

    def __init__(self, model: nn.Module, dtype: torch.dtype | None, device_type: str):
        super().__init__()
        self.model, self.dtype, self.device_type = model, dtype, device_type

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) images or (B, C, T, H, W) videos -> (B, K) fp32 logits."""
        with torch.autocast(self.device_type, self.dtype or torch.bfloat16, enabled=self.dtype is not None):
            return self.model(x).float()

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["model"], name)


def optimize_for_inference(model: nn.Module, precision: str = "bf16", compile: bool | str = False) -> nn.Module:
    """`model` in eval mode, without gradients, in bf16 where the device has it (see the module docstring),
    optionally `torch.compile`d (`compile=True`: inductor with freezing; a string: that torch.compile backend).
    Works in place: the model's Linear/Conv weights become bf16, so keep a copy (`copy.deepcopy`) if the fp32
    model is still needed. Returns a module with the model's forward contract."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not supported for inference; expected one of "
                          f"{', '.join(PRECISIONS)}")
    device = next(model.parameters()).device
    if precision == "bf16" and not has_fast_bf16(device):
        warnings.warn(f"{device} has no native bf16 products; optimize_for_inference keeps fp32", stacklevel=2)
        precision = "fp32"
    model.eval().requires_grad_(False)
    if precision == "bf16":
        for m in model.modules():
            if isinstance(m, _PRODUCTS):
                m.to(torch.bfloat16)
    fast = InferenceModel(model, torch.bfloat16 if precision == "bf16" else None, device.type).eval()
    if not compile:
        return fast
    if compile is True:
        return torch.compile(fast, backend="inductor", options={"freezing": True})
    return torch.compile(fast, backend=compile)
