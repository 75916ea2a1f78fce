"""`vitkit export CKPT --out FILE.onnx`: the checkpoint's model as ONNX, checked with onnxruntime."""

from __future__ import annotations

import argparse

from .command import Command, Output
from .model_input import add_model_args, load_model, model_paths, resolve_checkpoint
from .options import positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..tools.export import AXES_HELP

    p.epilog = f"The graph is traced at the model's configured input size. Dynamic axes: {AXES_HELP}"
    add_model_args(p)
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument("--opset", type=positive_int, default=18,
                   help="ONNX opset (default %(default)s; below it, position-table models keep only batch dynamic)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")


def paths(args) -> list:
    return [*model_paths(args), Output(args.out, "--out")]


def run(args) -> int:
    from ..tools.export import export_onnx, onnx_dynamic_axes

    model = load_model(args)
    diff = export_onnx(model, args.out, opset=args.opset, check=not args.no_check)
    shape = "×".join(map(str, model.input_shape()))
    print(f"wrote {args.out} (input {shape}, dynamic axes: {', '.join(onnx_dynamic_axes(model, args.opset))})"
          + ("" if diff is None else f"; onnxruntime vs PyTorch max abs diff {diff:.2e}"))
    return 0


COMMAND = Command("export a checkpoint to ONNX, checked with onnxruntime", add_arguments, run, paths,
                  resolve_checkpoint)
