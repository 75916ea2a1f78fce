"""ONNX export of any vitkit model, checked against onnxruntime on inputs other than the traced one.

The TorchScript-based exporter is used (`dynamo=False`): it needs no extra package and handles every family
(Swin's cyclic shift and padded windows as constant gathers, TimeSformer's padded local/global groups, MViT's
pooled grids). Every path a family takes at its configured input size (padding, window shrinking, odd merges,
odd frame counts, non-square grids) is exported.

Which input axes stay dynamic (`onnx_dynamic_axes`) depends on the family, because a size that PyTorch
resolves in Python while tracing becomes a constant of the graph (each export checks its free axes at another
size in onnxruntime). Each model says what its forward does with each axis (`size_dependence`) and the smallest
valid change of each (`input_steps`); today that gives:

- batch: every family.
- all of frames, height and width: CvT and the ResNet teachers (convolutions only), and, from opset 18, the
  families whose only size-dependent step is resampling their position tables: ViT/DeiT, ViViT, TimeSformer
  (but local-global) and MViT v1/v2. For those the graph is traced one patch (and one tubelet) off the
  configured size, so that the resampling is recorded in the graph rather than skipped; at the configured size
  it is the identity. Antialiased bicubic resampling maps to ONNX `Resize` (opset 18 `antialias`).
- frames only: TimeSformer space-only below opset 18 (no time embedding; frames are folded into the batch).
- fixed otherwise: Swin gathers its windows by a plan built for one grid, TimeSformer local-global pads and
  masks its groups for one grid. Export such a model at another size by rebuilding it there (`img_size=` /
  `num_frames=` overrides; position tables are resampled when the checkpoint loads).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, VitkitError

AXES_HELP = ("batch is dynamic for every family; frames, height and width too for CvT and the ResNet teachers, "
             "and (opset >= 18) for ViT/DeiT, ViViT, TimeSformer except local-global, and MViT, whose position "
             "tables are then resampled inside the graph; frames only for TimeSformer space-only below opset 18. "
             "Swin (window plans) and TimeSformer local-global (padded groups) are fixed at the configured size: "
             "for another size, export a model rebuilt with --override img_size=... / num_frames=...")
_RESIZE_OPSET = 18  # ONNX Resize gained `antialias` in opset 18


def onnx_dynamic_axes(model: nn.Module, opset: int = _RESIZE_OPSET) -> tuple[str, ...]:
    """Input axes that the exported graph of `model` leaves free, among "batch", "frames", "height", "width":
    those whose size the model's forward does not depend on (`size_dependence`), and, from opset 18, those
    that only resample position tables (see the module docstring)."""
    free = {"none", "positions"} if opset >= _RESIZE_OPSET else {"none"}
    return ("batch", *(axis for axis, kind in model.size_dependence().items() if kind in free))


def _resamples(model: nn.Module) -> bool:
    """Whether resampling position tables is what some input axis changes in `model`."""
    return "positions" in model.size_dependence().values()


def _axis_dims(input_shape: tuple[int, ...]) -> dict[str, int]:
    """Axis name -> dimension of a (B, *input_shape) input: (B, C, H, W) or (B, C, T, H, W)."""
    spatial = {"height": len(input_shape) - 1, "width": len(input_shape)}
    return {"batch": 0, **({"frames": 2} if len(input_shape) == 4 else {}), **spatial}


def _moved(shape: tuple[int, ...], axes: tuple[str, ...], steps: dict[str, int], k: int) -> tuple[int, ...]:
    """(B, *input_shape) with each of `axes` grown by k steps."""
    out, dims = list(shape), _axis_dims(shape[1:])
    for a in axes:
        out[dims[a]] += k * steps[a]
    return tuple(out)


def _bicubic_aa(g, x, output_size, align_corners, *scales):
    """ONNX Resize for `aten::_upsample_bicubic2d_aa` (torch's antialiased bicubic: PIL's kernel a = -0.5, taps
    outside the image dropped and the rest renormalised, i.e. exclude_outside=1). vitkit resamples with
    align_corners=False only (half-pixel centres)."""
    nc = g.op("Slice", g.op("Shape", x), g.op("Constant", value_t=torch.tensor([0])),
              g.op("Constant", value_t=torch.tensor([2])))
    sizes = g.op("Concat", nc, g.op("Cast", output_size, to_i=7), axis_i=0)  # (N, C, H', W') as int64
    empty = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))  # no roi, no scales
    return g.op("Resize", x, empty, empty, sizes, mode_s="cubic", cubic_coeff_a_f=-0.5, antialias_i=1,
                exclude_outside_i=1, coordinate_transformation_mode_s="half_pixel")


def export_onnx(model: nn.Module, path: str | os.PathLike, batch_size: int = 1, opset: int = _RESIZE_OPSET,
                check: bool = True) -> float | None:
    """Write `model` (eval mode) to `path` as ONNX with the axes of `onnx_dynamic_axes(model, opset)` left free,
    traced at batch_size (at the configured input size, or one step off it where that records the position-table
    resampling). With `check`, run the graph in onnxruntime at batch_size + 1 and the configured size, then (when
    other axes are free) at another size along each of them, and return the max abs difference of the logits from
    PyTorch's (None without check)."""
    model = model.eval()
    shape, axes, steps = (batch_size, *model.input_shape()), onnx_dynamic_axes(model, opset), model.input_steps()
    dims = _axis_dims(shape[1:])
    sizes = tuple(a for a in axes if a != "batch")
    traced = _moved(shape, sizes, steps, 1) if sizes and _resamples(model) else shape
    device = next(model.parameters()).device
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():  # (the oneDNN linear route steps aside by itself while tracing)
            warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks are expected
            if opset >= _RESIZE_OPSET:
                torch.onnx.register_custom_op_symbolic("aten::_upsample_bicubic2d_aa", _bicubic_aa, _RESIZE_OPSET)
            torch.onnx.export(model, (torch.randn(traced, device=device),), str(path), dynamo=False,
                              opset_version=opset, input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {dims[a]: a for a in axes}, "logits": {0: "batch"}})
    except torch.onnx.errors.UnsupportedOperatorError as e:
        if "upsample_bicubic2d_aa" in str(e):
            raise ConfigError(f"at input {shape[1:]} this model resamples a position table with antialiased "
                              f"bicubic interpolation, which ONNX opset {opset} cannot express; use --opset "
                              f"{_RESIZE_OPSET} or higher") from e
        raise ConfigError(f"ONNX opset {opset} cannot express this model: {str(e).splitlines()[0]}; try a "
                          f"higher --opset") from e
    if not check:
        return None
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise VitkitError("checking an ONNX export needs onnxruntime: pip install 'vitkit[export]'") from e
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diff = 0.0
    checks = [_moved(shape, ("batch",), steps, 1)] + ([_moved(shape, axes, steps, 2)] if sizes else [])
    for s in checks:
        x = torch.randn(s)
        (out,) = session.run(["logits"], {"input": x.numpy()})
        with torch.no_grad():
            ref = model(x.to(device)).float().cpu().numpy()
        diff = max(diff, float(np.abs(out - ref).max()))
    return diff
