"""The `vitkit` command: list, train, eval, predict, profile, visualize, convert, export (each with --help).

A subcommand is a pair (add its arguments, run it) in `COMMANDS`; adding one is adding a pair. Errors a user
can cause (VitkitError, bad flag values) print one line `error: ...` and exit with status 2; `--debug` shows
the traceback instead."""

from __future__ import annotations

import argparse
import ast
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError, DataError, VitkitError

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line `error: ...` (no usage block) and raises instead of exiting."""

    def error(self, message: str):
        raise ConfigError(f"{self.prog}: {message} (see `{self.prog} --help`)")


# --- flag value types -----------------------------------------------------------------------------------------
def _number(kind: type, low: float | None = None, strict: bool = False, what: str = "") -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what or kind.__name__}, got {text!r}") from None
        if low is not None and (value <= low if strict else value < low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value
    return parse


positive_int = _number(int, 0, strict=True, what="a positive integer")
non_negative_int = _number(int, 0, what="a non-negative integer")
positive_float = _number(float, 0, strict=True, what="a positive number")
non_negative_float = _number(float, 0, what="a non-negative number")
_BARE = re.compile(r"[A-Za-z_][\w.\-]*")


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` with a Python/JSON literal value (`depth=4`, `img_size=[32,48]`, `qkv_bias=false`); a bare
    word is a string (`global_pool=avg`)."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key.isidentifier():
        raise ConfigError(f"--override expects key=value (e.g. depth=4), got {text!r}")
    lowered = {"true": True, "false": False, "null": None, "none": None}
    if raw.lower() in lowered:
        return key, lowered[raw.lower()]
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if _BARE.fullmatch(raw):
            return key, raw
        raise ConfigError(f"--override {key}: cannot parse the value {raw!r} (expected a number, list, "
                          "true/false or a word)") from None


def overrides_dict(items: list[str] | None) -> dict:
    return dict(parse_override(t) for t in items or [])


def _add_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--override", action="append", metavar="KEY=VALUE",
                   help="model config override, repeatable (e.g. --override depth=4 --override img_size=32)")


# --- list -----------------------------------------------------------------------------------------------------
def _list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern, e.g. 'deit*'")


def _list(args) -> int:
    from .registry import list_models

    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"no registered model matches {args.pattern!r}")
    print("\n".join(names))
    return 0


# --- train ----------------------------------------------------------------------------------------------------
def _train_args(p: argparse.ArgumentParser) -> None:
    from .train.losses import KINDS

    p.description = ("Train a model. With no arguments: the main job (a CNN teacher, then a DeiT-tiny-style "
                     "student with hard distillation on the bundled digits; see vitkit/train/main_job.py).")
    p.add_argument("--model", help="registered model name (required unless running the main job)")
    p.add_argument("--data", default="digits", help="'digits', 'moving-digits' or a folder root/<class>/<file> "
                   "(optionally with train/ and val/ sub-folders)")
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=1e-3, help="peak AdamW learning rate")
    p.add_argument("--weight-decay", type=non_negative_float, default=0.05)
    p.add_argument("--warmup-epochs", type=non_negative_float, default=3.0)
    p.add_argument("--clip-grad", type=non_negative_float, default=1.0, help="gradient-norm clip; 0 turns it off")
    p.add_argument("--label-smoothing", type=non_negative_float, default=0.1)
    p.add_argument("--distill", choices=KINDS, default="none", help="DeiT distillation kind")
    p.add_argument("--teacher", help="teacher: a vitkit checkpoint, a model name, or tv:<torchvision name>")
    p.add_argument("--teacher-weights", help="weights file for a teacher given by name (default: random init)")
    p.add_argument("--alpha", type=non_negative_float, default=0.5, help="weight of the distillation term, in [0, 1]")
    p.add_argument("--tau", type=positive_float, default=1.0, help="soft-distillation temperature")
    p.add_argument("--soft-normalisation", choices=("elementwise", "batch"), default="elementwise",
                   help="soft KL divided by batch × classes (official DeiT) or by batch (timm)")
    p.add_argument("--out", help="run folder (default runs/<model>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    _add_overrides(p)
    p.add_argument("--workers", type=non_negative_int, default=0, help="DataLoader worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (fast on CPUs with AVX-512 BF16 / AMX)")
    p.add_argument("--limit", type=positive_int, help="train on the first N samples only (quick checks)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")


def _train(args, argv: list[str]) -> int:
    if not argv:
        from .train.main_job import run_main_job

        run_main_job()
        return 0
    if not args.model:
        raise ConfigError("train: --model is required (run `vitkit train` with no arguments for the main job)")
    from .train.run import TrainConfig, train

    cfg = TrainConfig(
        model=args.model, data=args.data, overrides=overrides_dict(args.override), epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
        clip_grad=args.clip_grad or None, label_smoothing=args.label_smoothing, distill=args.distill,
        teacher=args.teacher, teacher_weights=args.teacher_weights, alpha=args.alpha, tau=args.tau,
        soft_normalisation=args.soft_normalisation,
        out=args.out, resume=args.resume, workers=args.workers, seed=args.seed, bf16=args.bf16, limit=args.limit,
        progress=not args.no_progress)
    result = train(cfg)
    if not result.is_main:
        return 0
    last = result.history[-1] if result.history else {}
    print(f"{cfg.model}: val acc {last.get('val_acc1', float('nan')):.2f}% after {len(result.history)} epochs; "
          f"weights {result.out_dir / 'model.safetensors'}, metrics {result.out_dir / 'metrics.csv'}")
    return 0


# --- eval / predict -------------------------------------------------------------------------------------------
def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="vitkit .safetensors (rebuilds its model), or any weights file with --model")
    p.add_argument("--model", help="registered name, for weights files without vitkit metadata")
    _add_overrides(p)


def _load_model(args):
    from .checkpoint import load_checkpoint
    from .registry import create_model

    overrides = overrides_dict(args.override)
    if args.model:
        model = create_model(args.model, checkpoint=args.checkpoint, **overrides)
    else:
        model = load_checkpoint(args.checkpoint, **overrides)
    return model.eval()


def _eval_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--data", default="digits", help="'digits', 'moving-digits' or a folder")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--workers", type=non_negative_int, default=0)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--fast", action="store_true", help="serve through vitkit.optimize_for_inference (bf16 where "
                   "the CPU has it, weights cast once)")


def _eval(args) -> int:
    from torch.utils.data import DataLoader

    from .data import build_dataset
    from .tools.fast import optimize_for_inference
    from .train.engine import evaluate

    model = _load_model(args)
    if args.fast:
        model = optimize_for_inference(model)
    data = build_dataset(args.data, args.split, model.input_shape(), augment=False)
    if data.num_classes != model.num_classes:
        raise DataError(f"the model predicts {model.num_classes} classes but {args.data!r} has {data.num_classes}")
    m = evaluate(model, DataLoader(data, args.batch_size, num_workers=args.workers), args.bf16)
    print(f"{args.checkpoint} on {args.data} {args.split} ({len(data)} samples): top-1 {m['acc1']:.2f}%  "
          f"top-5 {m['acc5']:.2f}%  loss {m['loss']:.4f}")
    return 0


def _predict_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("files", nargs="+", help="image (or, for video models, video) files")
    p.add_argument("--topk", type=positive_int, default=5)
    p.add_argument("--data", help="the dataset the model was trained on, for its preprocessing and class names "
                   "(default: read from data.json next to the checkpoint, else ImageNet statistics)")
    p.add_argument("--fast", action="store_true", help="serve through vitkit.optimize_for_inference (bf16 where "
                   "the CPU has it, weights cast once)")


def _predict(args) -> int:
    import torch

    from .data import prediction_inputs
    from .tools.fast import optimize_for_inference

    model = _load_model(args)
    if args.fast:
        model = optimize_for_inference(model)
    x, classes = prediction_inputs(args.files, model.input_shape(), args.data, Path(args.checkpoint).parent)
    with torch.no_grad():
        probs = model(x).float().softmax(-1)
    k = min(args.topk, probs.shape[1])
    top = probs.topk(k, dim=1)
    for f, p, i in zip(args.files, top.values.tolist(), top.indices.tolist()):
        names = [classes[j] if classes and j < len(classes) else str(j) for j in i]
        print(f"{f}: " + ", ".join(f"{n} {q:.3f}" for n, q in zip(names, p)))
    return 0


# --- profile --------------------------------------------------------------------------------------------------
def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", help="registered names or shell patterns (e.g. 'deit_*')")
    p.add_argument("--batch-size", type=positive_int, default=1, help="batch size for throughput")
    p.add_argument("--no-throughput", action="store_true", help="parameters and GMACs only (no compute)")
    p.add_argument("--fast", action="store_true", help="time through vitkit.optimize_for_inference (bf16 where "
                   "the CPU has it, weights cast once)")
    _add_overrides(p)


def _profile(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .registry import create_model, list_models
    from .tools.profile import profile_model

    names: list[str] = []
    for pattern in args.models:
        found = list_models(pattern) if any(ch in pattern for ch in "*?[") else [pattern]
        if not found:
            raise ConfigError(f"no registered model matches {pattern!r}")
        names += found
    overrides = overrides_dict(args.override)
    for name in names:  # unknown names and overrides fail here, with one sentence, before any timing
        with __import__("torch").device("meta"):
            create_model(name, **overrides)
    rows = [profile_model(n, batch_size=args.batch_size, throughput=not args.no_throughput, memory=False,
                          fast=args.fast, **overrides) for n in names]
    table = Table(title="vitkit profile (GMACs per sample; throughput in samples/s, this machine)")
    cols = [("model", "model", str), ("input", "input", str), ("params (M)", "params_m", "{:.2f}".format),
            ("GMACs", "gmacs", "{:.3f}".format)]
    if not args.no_throughput:
        cols.append((f"samples/s (batch {args.batch_size})", "samples_per_s", "{:.1f}".format))
    for title, _, _ in cols:
        table.add_column(title, justify="left" if title in ("model", "input") else "right", no_wrap=title == "model")
    for r in rows:
        table.add_row(*[fmt(r[key]) for _, key, fmt in cols])
    Console(width=None if sys.stdout.isatty() else 120).print(table)  # logs/pipes: room for full names
    return 0


# --- visualize / convert / export -----------------------------------------------------------------------------
def _visualize_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--what", choices=("pos-embed", "rollout"), default="pos-embed",
                   help="position-embedding similarity grid, or attention rollout of --input")
    p.add_argument("--input", help="image file for --what rollout")
    p.add_argument("--data", help="the training dataset, for --input's preprocessing (as in predict)")
    p.add_argument("--out", required=True, help="PNG file to write")


def _visualize(args) -> int:
    from .tools.visualize import attention_rollout, plot_position_similarity, save_rollout

    model = _load_model(args)
    if args.what == "pos-embed":
        plot_position_similarity(model, args.out)
    else:
        if not args.input:
            raise ConfigError("visualize --what rollout needs --input IMAGE")
        from .data import prediction_inputs

        x, _ = prediction_inputs([args.input], model.input_shape(), args.data, Path(args.checkpoint).parent)
        save_rollout(attention_rollout(model, x)[0], model, x[0], args.out)
    print(f"wrote {args.out}")
    return 0


def _convert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("weights", help="a timm / HF / torchvision / official / vitkit weights file")
    p.add_argument("--model", required=True, help="the registered vitkit name the weights are for")
    p.add_argument("--out", required=True, help="vitkit .safetensors to write (weights + name + config)")
    _add_overrides(p)


def _convert(args) -> int:
    from .checkpoint import load_weights, save_checkpoint
    from .registry import create_model

    model = create_model(args.model, **overrides_dict(args.override))
    source = load_weights(model, args.weights)
    save_checkpoint(model, args.out)
    print(f"{args.weights} ({source} layout) -> {args.out} ({args.model})")
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument("--opset", type=positive_int, default=17)
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")


def _export(args) -> int:
    from .tools.export import export_onnx

    diff = export_onnx(_load_model(args), args.out, opset=args.opset, check=not args.no_check)
    print(f"wrote {args.out}" + ("" if diff is None else f"; onnxruntime vs PyTorch max abs diff {diff:.2e}"))
    return 0


# --- entry point ----------------------------------------------------------------------------------------------
COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "list": ("list registered models", _list_args, _list),
    "train": ("train a model (no arguments: the main job)", _train_args, _train),
    "eval": ("accuracy of a checkpoint on a dataset split", _eval_args, _eval),
    "predict": ("top-k classes of a checkpoint for image/video files", _predict_args, _predict),
    "profile": ("parameters, GMACs and throughput of one or many models", _profile_args, _profile),
    "visualize": ("plot position-embedding similarity or attention rollout", _visualize_args, _visualize),
    "convert": ("convert a foreign weights file into a vitkit checkpoint", _convert_args, _convert),
    "export": ("export a checkpoint to ONNX, checked with onnxruntime", _export_args, _export),
}
_NEEDS_ARGV = {"train"}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="vitkit", description="vitkit: the vision-transformer family in one PyTorch toolkit.")
    parser.add_argument("--version", action="version", version=f"vitkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}",
                                parser_class=_Parser)
    for name, (help_text, add_args, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser


def _one_line(e: BaseException) -> str:
    """The error's sentence. Errors raised in DataLoader workers arrive wrapped with the worker's traceback:
    keep only the original message."""
    text = str(e)
    if "Original Traceback" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if re.match(r"^[\w.]+(Error|Exception): ", last) else last
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 a user error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        _, _, run = COMMANDS[args.command]
        rest = [a for a in argv[argv.index(args.command) + 1:] if a != "--debug"]
        return run(args, rest) if args.command in _NEEDS_ARGV else run(args)
    except SystemExit as e:  # --help / --version
        return e.code if isinstance(e.code, int) else 0
    except VitkitError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted (a run can continue with `vitkit train ... --resume`)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
