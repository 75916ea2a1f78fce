"""ONNX export of any vitkit model, checked against onnxruntime on inputs other than the traced one.

The TorchScript-based exporter is used (`dynamo=False`): it needs no extra package and handles every family
(Swin's cyclic shift and padded windows as constant gathers, TimeSformer's padded local/global groups, MViT's
pooled grids). The graph is traced at the model's configured input size; every path a family takes at that
size (padding, window shrinking, odd merges, odd frame counts, non-square grids) is exported.

Which input axes stay dynamic (`onnx_dynamic_axes`) depends on the family, because a size that PyTorch
resolves in Python while tracing becomes a constant of the graph:

- batch: every family.
- height and width: CvT and the ResNet teachers (convolutions only, no position table or per-size plan).
- frames: TimeSformer space-only (no time embedding; frames are folded into the batch).
- fixed otherwise: ViT/DeiT, ViViT, TimeSformer and MViT v1 add position tables of the configured grid, Swin
  gathers its windows by a plan built for that grid, MViT v2 indexes its relative-position tables for it.
  Export such a model at another size by rebuilding it there (`img_size=` / `num_frames=` overrides; position
  tables are resampled when the checkpoint loads).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, VitkitError

AXES_HELP = ("batch is dynamic for every family; height and width also for CvT and the ResNet teachers; frames "
             "also for TimeSformer space-only. Other sizes are fixed at the configured ones (position tables, "
             "Swin window plans, MViT v2 relative positions): for another size, export a model rebuilt with "
             "--override img_size=... / num_frames=...")


def onnx_dynamic_axes(model: nn.Module) -> tuple[str, ...]:
    """Input axes that the exported graph of `model` leaves free, among "batch", "frames", "height", "width"
    (see the module docstring for why the others are fixed)."""
    from ..models.cnn import SmallResNet
    from ..models.cvt import CvT
    from ..models.timesformer import TimeSformer

    if isinstance(model, (CvT, SmallResNet)):
        return "batch", "height", "width"
    if isinstance(model, TimeSformer) and model.config.attention_type == "space_only":
        return "batch", "frames"
    return ("batch",)


def _axis_dims(input_shape: tuple[int, ...]) -> dict[str, int]:
    """Axis name -> dimension of a (B, *input_shape) input: (B, C, H, W) or (B, C, T, H, W)."""
    spatial = {"height": len(input_shape) - 1, "width": len(input_shape)}
    return {"batch": 0, **({"frames": 2} if len(input_shape) == 4 else {}), **spatial}


def _check_shapes(input_shape: tuple[int, ...], axes: tuple[str, ...], batch_size: int) -> list[tuple[int, ...]]:
    """Inputs an export traced at (batch_size, *input_shape) is checked on: another batch size, then (when other
    axes are free) another size along each of them as well (+1 frame, +8 pixels)."""
    dims = _axis_dims(input_shape)
    first = (batch_size + 1, *input_shape)
    second = list(first)
    for axis in axes:
        if axis != "batch":
            second[dims[axis]] += 1 if axis == "frames" else 8
    return [first] if tuple(second) == first else [first, tuple(second)]


def export_onnx(model: nn.Module, path: str | os.PathLike, batch_size: int = 1, opset: int = 17,
                check: bool = True) -> float | None:
    """Write `model` (eval mode) to `path` as ONNX, traced at (batch_size, *model.input_shape()) with the axes
    of `onnx_dynamic_axes(model)` left free. With `check`, run the graph in onnxruntime on another batch size (and
    another size along each other free axis) and return the max abs difference of the logits from PyTorch's
    (None without check)."""
    model = model.eval()
    shape, axes = tuple(model.input_shape()), onnx_dynamic_axes(model)
    dims = _axis_dims(shape)
    device = next(model.parameters()).device
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks are expected
            torch.onnx.export(model, (torch.randn(batch_size, *shape, device=device),), str(path), dynamo=False,
                              opset_version=opset, input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {dims[a]: a for a in axes}, "logits": {0: "batch"}})
    except torch.onnx.errors.UnsupportedOperatorError as e:
        if "upsample_bicubic2d_aa" in str(e):
            raise ConfigError(f"at input {shape} this model resamples a position table with antialiased bicubic "
                              f"interpolation at every forward, which ONNX opset {opset} cannot express; build it "
                              f"at a size its token grid matches (MViT v1: img_size a multiple of the patch "
                              f"stride)") from e
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
    for s in _check_shapes(shape, axes, batch_size):
        x = torch.randn(s)
        (out,) = session.run(["logits"], {"input": x.numpy()})
        with torch.no_grad():
            ref = model(x.to(device)).float().cpu().numpy()
        diff = max(diff, float(np.abs(out - ref).max()))
    return diff
