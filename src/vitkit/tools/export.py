"""ONNX export of any vitkit model, checked against onnxruntime on the same input.

The TorchScript-based exporter is used (`dynamo=False`): it needs no extra package and handles every family
(Swin's cyclic shift included, as `torch.roll` lowers to Slice/Concat). The batch axis is dynamic; the spatial
and temporal sizes are those of the config (position tables are resampled at trace time otherwise).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import VitkitError


def export_onnx(model: nn.Module, path: str | os.PathLike, batch_size: int = 1, opset: int = 17,
                check: bool = True) -> float | None:
    """Write `model` (eval mode) to `path` as ONNX; with `check`, run it in onnxruntime and return the max abs
    difference of the logits from PyTorch's (None without check)."""
    model = model.eval()
    x = torch.randn(batch_size, *model.input_shape())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks are expected
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    if not check:
        return None
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise VitkitError("checking an ONNX export needs onnxruntime: pip install 'vitkit[export]'") from e
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(batch_size + 1, *model.input_shape())  # another batch size than traced
    (out,) = session.run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        return float((torch.from_numpy(out) - model(x)).abs().max())
