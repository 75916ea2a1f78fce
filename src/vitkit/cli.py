"""The `vitkit` command: list, train, eval, predict, profile, visualize, convert, export (each with --help).

A subcommand is a pair (add its arguments, run it) in `COMMANDS`; adding one is adding a pair. Paths are
checked by `check_paths` before a command starts (inputs readable files, outputs writable), so a bad path costs
no work and leaves nothing half-written. Errors a user can cause (VitkitError, bad flag values) print one line
`error: ...` and exit with status 2; any other failure prints one line naming the command and exits with
status 1; `--debug` shows the traceback as well."""

from __future__ import annotations

import argparse
import ast
import os
import re
import stat
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from .errors import CheckpointError, ConfigError, DataError, VitkitError

EXIT_FAILURE = 1
EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line `error: ...` (no usage block) and raises instead of exiting."""

    def error(self, message: str):
        raise ConfigError(f"{self.prog}: {message} (see `{self.prog} --help`)")


class _CommandParser(_Parser):
    """A subcommand's parser: flags and positionals in any order (`predict CKPT a.png --topk 3 b.png`)."""

    _mixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._mixing:  # the intermixed parse calls back in here for its two passes
            return super().parse_known_args(args, namespace)
        self._mixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._mixing = False


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


integer = _number(int, what="an integer")
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


# --- paths: checked before a command does any work ------------------------------------------------------------
def _what_it_is(path: Path) -> str:
    mode = path.stat().st_mode
    kinds = [(stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def check_input_file(path: str | Path, what: str, error: type[VitkitError] = DataError) -> Path:
    """`path` as a readable, non-empty regular file; else `error` saying what it is instead."""
    p = Path(path)
    if not p.exists():
        raise error(f"{what} {str(path)!r} does not exist")
    if not p.is_file():
        raise error(f"{what} {str(path)!r} is {_what_it_is(p)}, not a file")
    if p.stat().st_size == 0:
        raise error(f"{what} {str(path)!r} is an empty file (0 bytes)")
    if not os.access(p, os.R_OK):
        raise error(f"{what} {str(path)!r} is not readable (permission denied)")
    return p


def _can_write_in(folder: Path) -> bool:
    """Whether a file can be created in `folder` (tried for real: permissions, read-only mounts, root)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def check_output_path(path: str | Path, what: str, folder: bool = False) -> Path:
    """Fail unless `path` (a file to write, or with `folder` a folder to write into) can be written: not an
    existing path of the other kind, no parent that is a file, the nearest existing folder writable. Creates
    nothing."""
    p = Path(path)
    if p.exists() and not (p.is_dir() if folder else p.is_file()):
        expected = "a folder" if folder else "a file name"
        raise ConfigError(f"{what} {str(path)!r} is {_what_it_is(p)}; expected {expected}")
    existing = p.absolute() if folder and p.is_dir() else p.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"cannot write {what} {str(path)!r}: {str(existing)!r} is a file, not a folder")
    if not _can_write_in(existing):
        raise ConfigError(f"cannot write {what} {str(path)!r}: the folder {str(existing)!r} is not writable")
    return p


def _resolve_checkpoint(args) -> None:
    """One checkpoint, positional or `--checkpoint` (with the flag, predict's first positional is a file)."""
    flag, positional = args.checkpoint_flag, args.checkpoint
    if flag and positional:
        if not hasattr(args, "files"):
            raise ConfigError(f"vitkit {args.command}: the checkpoint is given twice ({positional!r} and "
                              f"--checkpoint {flag!r}); give it once")
        args.files.insert(0, positional)
    args.checkpoint = flag or positional
    if not args.checkpoint:
        raise ConfigError(f"vitkit {args.command}: the following arguments are required: checkpoint "
                          "(as the first argument or --checkpoint PATH)")
    if hasattr(args, "files") and not args.files:
        raise ConfigError(f"vitkit {args.command}: no input files given (usage: vitkit {args.command} CHECKPOINT "
                          "FILE [FILE ...])")


FOLDER_OUTPUTS = {"reproduce"}  # commands whose --out is a folder, not a file


def check_paths(args) -> None:
    """Every path a command reads or writes, checked before it starts; `args` is the parsed namespace."""
    from .registry import is_weights_name

    if hasattr(args, "checkpoint_flag"):
        _resolve_checkpoint(args)
        if not is_weights_name(args.checkpoint):  # a published tag is fetched, not read
            check_input_file(args.checkpoint, "checkpoint", CheckpointError)
    for dest, flag, error in (("weights", "weights file", CheckpointError), ("teacher_weights", "--teacher-weights",
                              CheckpointError), ("input", "--input", DataError)):
        if getattr(args, dest, None) and not (dest == "weights" and (is_weights_name(args.weights)
                                                                   or Path(args.weights).is_dir())):
            check_input_file(getattr(args, dest), flag, error)  # a tag is fetched; a folder: a sharded checkpoint
    for f in getattr(args, "files", None) or []:
        check_input_file(f, "input file")
    teacher = getattr(args, "teacher", None)
    if teacher and not teacher.startswith("tv:") and (teacher.endswith((".safetensors", ".pth", ".pt"))
                                                      or os.sep in teacher or Path(teacher).exists()):
        check_input_file(teacher, "--teacher", CheckpointError)
    data = getattr(args, "data", None)
    if data and Path(data).exists() and not Path(data).is_dir():
        from .data import BUILTIN

        if data not in BUILTIN:
            raise DataError(f"--data {data!r} is {_what_it_is(Path(data))}; expected {' or '.join(map(repr, BUILTIN))}"
                            " or a folder root/<class>/<file>")
    if args.command == "train":
        from .train.main_job import MainJob
        from .train.run import TrainConfig

        settings = train_settings(args)  # flags over --config (train's flags have no argparse defaults)
        model, out = settings.get("model"), settings.get("out")
        run_dir = TrainConfig(model=model, out=out).out_dir() if model else Path(MainJob().out)
        check_output_path(run_dir, "run folder", folder=True)
        if settings.get("resume"):
            from .train.keeper import resume_file

            check_input_file(resume_file(run_dir, bool(settings.get("fsdp"))), "--resume: the run state", CheckpointError)
    elif getattr(args, "out", None) is not None:
        check_output_path(args.out, "--out", folder=args.command in FOLDER_OUTPUTS)


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
def _add_device_args(p: argparse.ArgumentParser, defaults: bool = True) -> None:
    """--device / --precision (and --bf16, short for --precision bf16); without defaults for train, whose
    defaults live in TrainConfig."""
    from .train.distributed import PRECISIONS

    d = lambda value: value if defaults else argparse.SUPPRESS
    p.add_argument("--device", default=d("auto"), help="auto (CUDA if present, else CPU; cuda:$LOCAL_RANK under "
                   "torchrun), cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", choices=PRECISIONS, default=d("fp32"),
                   help="autocast precision; auto: chosen for this processor (bf16 where it is native; training times "
                   "the routes on long runs); fp16 uses a gradient scaler, not on the CPU (default: fp32 here, auto "
                   "for train)")
    p.add_argument("--bf16", action="store_true", default=d(False), help="same as --precision bf16")


def _clip_args(p: argparse.ArgumentParser, defaults: bool = True) -> None:
    """--frame-stride / --sampling for video folders; without defaults for train (TrainConfig holds them)."""
    from .data.video_folder import SAMPLINGS

    d = lambda value: value if defaults else argparse.SUPPRESS
    p.add_argument("--frame-stride", type=positive_int, default=d(2),
                   help="video folders: frames between clip frames (default 2)")
    p.add_argument("--sampling", choices=SAMPLINGS, default=d("stride"),
                   help="video folders: strided clips at a random offset in training (TimeSformer, MViT; default) "
                   "or one frame per segment (ViViT)")


def _device_and_precision(args):
    """(torch.device, precision) from --device / --precision / --bf16, checked (one sentence if unusable)."""
    from .routes import emulated_bf16_warning, inference_precision, processor
    from .train.distributed import check_precision, resolve_device

    device = resolve_device(args.device)
    precision = "bf16" if args.bf16 else args.precision
    check_precision(precision, device)
    if precision == "auto":
        precision = str(inference_precision(processor(device)).value)
    warning = emulated_bf16_warning(processor(device), precision)
    if warning:
        print(f"note: {warning}", file=sys.stderr)
    return device, precision


def _train_args(p: argparse.ArgumentParser) -> None:
    from .convert.video_init import INFLATIONS
    from .train.losses import KINDS

    p.description = ("Train a model. Without --model: the main job (a CNN teacher, then a DeiT-tiny-style "
                     "student with hard distillation on the bundled digits; see vitkit/train/main_job.py). "
                     "Settings come from the defaults, then --config FILE.yaml (or, with --resume, the run's saved "
                     "config.yaml), then the flags given.")
    p.argument_default = argparse.SUPPRESS  # only the flags given override the file (TrainConfig holds defaults)
    p.add_argument("--config", help="YAML file of training settings (every flag below is a key; see recipes/)")
    p.add_argument("--model", help="registered model name (required unless running the main job)")
    p.add_argument("--data", help="'digits', 'moving-digits' or a folder root/<class>/<file> "
                   "(optionally with train/ and val/ sub-folders)")
    p.add_argument("--epochs", type=positive_int, help="(default 30)")
    p.add_argument("--batch-size", type=positive_int, help="per process and micro-batch (default 64)")
    p.add_argument("--accum-steps", type=positive_int, help="micro-batches per optimiser step (default 1)")
    p.add_argument("--lr", type=positive_float, help="peak AdamW learning rate (default 1e-3)")
    p.add_argument("--weight-decay", type=non_negative_float, help="(default 0.05)")
    p.add_argument("--layer-decay", type=positive_float, help="layer-wise lr decay rate, e.g. 0.65 when fine-tuning")
    p.add_argument("--warmup-epochs", type=non_negative_float, help="(default 3)")
    p.add_argument("--min-lr-ratio", type=non_negative_float, help="the cosine ends at lr × this (default 0.01)")
    p.add_argument("--clip-grad", type=non_negative_float, help="gradient-norm clip; 0 turns it off (default 1)")
    p.add_argument("--label-smoothing", type=non_negative_float, help="(default 0.1)")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no training augmentation")
    p.add_argument("--distill", choices=KINDS, help="DeiT distillation kind (default none)")
    p.add_argument("--teacher", help="teacher: a vitkit checkpoint, a model name, or tv:<torchvision name>")
    p.add_argument("--teacher-weights", help="weights file for a teacher given by name (default: random init)")
    p.add_argument("--alpha", type=non_negative_float, help="weight of the distillation term, in [0, 1] (default 0.5)")
    p.add_argument("--tau", type=positive_float, help="soft-distillation temperature (default 1)")
    p.add_argument("--soft-normalisation", choices=("elementwise", "batch"),
                   help="soft KL divided by batch × classes (official DeiT, default) or by batch (timm)")
    p.add_argument("--init", help="fine-tune from these weights (timm, transformers, torchvision, official or vitkit), "
                   "or a published tag (`vitkit weights`)")
    p.add_argument("--inflate", choices=INFLATIONS, help="image ViT -> ViViT tubelets: central frame (default) or mean")
    p.add_argument("--ema", type=positive_float, help="EMA decay of the weights, e.g. 0.99996")
    _add_device_args(p, defaults=False)
    p.add_argument("--compile", action="store_true", help="torch.compile the training model")
    p.add_argument("--grad-checkpointing", action="store_true", help="recompute block activations in backward")
    p.add_argument("--out", help="run folder (default runs/<model>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt with the run's saved settings")
    p.add_argument("--force", action="store_true", help="with --resume: accept settings that changed")
    p.add_argument("--save-every", type=non_negative_int, help="also checkpoint every N optimiser steps (default 0)")
    p.add_argument("--log-dir", help="TensorBoard log folder (needs tensorboard installed)")
    p.add_argument("--log-interval", type=positive_int, metavar="N", help="reduce the metrics and check for "
                   "divergence every N optimiser steps (timm's --log-interval; steps.csv; default 1)")
    _add_overrides(p)
    p.add_argument("--workers", type=non_negative_int, help="DataLoader worker processes (default: the machine's "
                   "cores for folders, 0 for the bundled sets)")
    p.add_argument("--seed", type=integer, help="(default 0)")
    p.add_argument("--limit", type=positive_int, help="train on the first N samples only (quick checks)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar or per-epoch lines")
    g = p.add_argument_group("augmentation (DeiT's recipe: --randaugment 2,9 --reprob 0.25 --mixup 0.8 --cutmix 1.0 "
                             "--repeated-aug 3)")
    g.add_argument("--aa", dest="randaugment", metavar="STR", help="RandAugment as timm's string, e.g. "
                   "rand-m9-mstd0.5-inc1 (DeiT, Swin, CvT) or rand-m9-n6-mstd0.5-inc1 (MViTv2) (default off)")
    g.add_argument("--randaugment", metavar="N,M", help="same as --aa rand-mM-nN (N ops of magnitude M of 10)")
    g.add_argument("--reprob", type=float, help="random-erasing probability, in [0, 1] (default 0)")
    g.add_argument("--mixup", type=non_negative_float, help="Mixup alpha (default 0: off)")
    g.add_argument("--cutmix", type=non_negative_float, help="CutMix alpha (default 0: off)")
    g.add_argument("--mix-prob", type=float, help="probability of mixing a batch, in [0, 1] (default 1)")
    g.add_argument("--switch-prob", type=float, help="probability of CutMix when both are on (default 0.5)")
    g.add_argument("--repeated-aug", type=positive_int, metavar="K", help="copies of each image per epoch, spread "
                   "over the ranks (DeiT's sampler; default 1: off)")
    _clip_args(g, defaults=False)
    _recipe_args(p)
    _large_model_args(p)


def _drop_path(text: str):
    """--drop-path: one rate (0.1) or one per stage (0,0,0.1 or [0,0,0.1])."""
    try:
        rates = [float(v) for v in text.strip("[]() ").split(",")]
    except ValueError:
        rates = []
    if not rates or not all(0 <= r < 1 for r in rates):
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1) or one per stage (e.g. 0,0,0.1), got {text!r}")
    return rates[0] if len(rates) == 1 and "," not in text else rates


def _recipe_args(p: argparse.ArgumentParser) -> None:
    """The papers' training: lr by rule, optimiser, schedule ends, sizes, test views (timm's flag names)."""
    from .train.lr_rule import LR_RULES
    from .train.optim import OPTIMIZERS

    g = p.add_argument_group("the papers' recipes (recipes/*.yaml set these; see README, Training the papers' way)")
    g.add_argument("--lr-base", type=positive_float, help="lr at the reference batch --lr-base-size; the run uses "
                   "lr_base × global batch / lr_base_size (--lr sets an absolute lr instead)")
    g.add_argument("--lr-base-size", type=positive_int, help="reference global batch of --lr-base (default 512)")
    g.add_argument("--lr-rule", choices=LR_RULES, help="how lr scales with the global batch (default linear)")
    g.add_argument("--opt", choices=OPTIMIZERS, help="optimiser (default adamw)")
    g.add_argument("--momentum", type=non_negative_float, help="SGD momentum (default 0.9)")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, help="SGD with Nesterov momentum")
    g.add_argument("--warmup-lr", type=non_negative_float, help="lr the warm-up starts from (default 0)")
    g.add_argument("--min-lr", type=non_negative_float, help="absolute lr the cosine ends at (else --min-lr-ratio)")
    g.add_argument("--drop-path", type=_drop_path, metavar="RATE[,RATE...]",
                   help="stochastic depth: one rate, or one per stage where the family has stages (CvT: 0,0,0.1)")
    g.add_argument("--img-size", type=positive_int, help="input size (a model override)")
    g.add_argument("--crop-pct", type=positive_float, help="evaluation crop ratio (default: the model's data config)")
    g.add_argument("--test-views", metavar="TxS", help="video: clips x crops of the final evaluation (e.g. 4x3)")


def _large_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("large models and kept checkpoints (README: Training large models)")
    g.add_argument("--fsdp", action="store_true", help="shard weights, gradients and optimiser state over the ranks "
                   "(FSDP2, a unit per block; checkpoints are sharded: last.sharded)")
    g.add_argument("--fsdp-offload", action="store_true", help="with --fsdp: keep shards and optimiser state in host "
                   "memory")
    g.add_argument("--ema-device", choices=("same", "cpu"), help="where the EMA weights live (default same: the "
                   "training device)")
    g.add_argument("--ema-every", type=positive_int, metavar="N", help="update the EMA every N optimiser steps, with "
                   "decay^N (default 1)")
    g.add_argument("--val-batch-size", type=positive_int, help="evaluation batch per process (default: --batch-size)")
    g.add_argument("--checkpoint-hist", type=non_negative_int, metavar="K", help="keep the K best weights by "
                   "validation top-1 as checkpoint-<epoch>.safetensors (default 0; best.safetensors is always kept)")


def train_settings(args) -> dict:
    """TrainConfig fields from (lowest first) --config or, with --resume, <out>/config.yaml; then the flags given."""
    from .train.config_file import load_config

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "debug", "config", "override", "bf16",
                                                                "drop_path", "img_size")}
    if getattr(args, "bf16", False):
        flags.setdefault("precision", "bf16")
    if "clip_grad" in flags:
        flags["clip_grad"] = flags["clip_grad"] or None
    settings = load_config(args.config) if getattr(args, "config", None) else {}
    if flags.get("resume"):
        out = flags.get("out") or settings.get("out") or str(Path("runs") / (flags.get("model") or settings.get("model", "")))
        saved = Path(out) / "config.yaml"
        if saved.is_file() and not getattr(args, "config", None):
            settings = load_config(saved)
    overrides = {**settings.get("overrides", {}), **overrides_dict(getattr(args, "override", None))}
    overrides.update({key: getattr(args, flag) for flag, key in (("drop_path", "drop_path_rate"),
                                                                 ("img_size", "img_size")) if hasattr(args, flag)})
    if "lr" in flags:  # an absolute --lr wins over the recipe's rule
        flags["lr_base"] = None
    if flags.get("randaugment"):
        from .data import parse_randaugment

        spec = parse_randaugment(flags["randaugment"])
        flags["randaugment"] = str(spec) if spec is not None else None  # N,M -> rand-mM-nN; none -> off
    return {**settings, **flags, "overrides": overrides}


MAIN_JOB_FLAGS = {"seed", "out"}  # what the main job (no --model, no --config) takes


def _train(args, argv: list[str]) -> int:
    from .train.run import TrainConfig, train

    settings = train_settings(args)
    if not settings.get("model"):
        given = {k for k, v in settings.items() if k != "overrides" or v}
        if not getattr(args, "config", None) and given <= MAIN_JOB_FLAGS:
            from .train.main_job import MainJob, run_main_job

            run_main_job(MainJob().with_seed(settings.get("seed", 0), settings.get("out")))
            return 0
        raise ConfigError("train: --model is required (or a --config file with a model key); `vitkit train` with no "
                          "--model runs the main job, which takes only --seed and --out")
    cfg = TrainConfig(**settings)
    result = train(cfg)
    if not result.is_main:
        return 0
    last = result.history[-1] if result.history else {}
    print(f"{cfg.model}: val acc {last.get('val_acc1', float('nan')):.2f}% after {len(result.history)} epochs; "
          f"weights {result.out_dir / 'model.safetensors'}, metrics {result.out_dir / 'metrics.csv'}")
    return 0


# --- eval / predict -------------------------------------------------------------------------------------------
def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", nargs="?", help="required: a vitkit .safetensors (rebuilds its model), or any "
                   "weights file with --model; or give it as --checkpoint PATH")
    p.add_argument("--checkpoint", dest="checkpoint_flag", metavar="PATH",
                   help="the checkpoint, as a flag instead of the first argument")
    p.add_argument("--model", help="registered name, for weights files without vitkit metadata")
    _add_overrides(p)


def model_from(path: str, model_name: str | None, overrides: dict):
    """A model from a published tag, a foreign weights file with its registered name, or a vitkit checkpoint."""
    from .registry import create_model, is_weights_name, load_checkpoint

    if is_weights_name(path):
        return create_model(path, pretrained=True, **overrides)
    if model_name:
        return create_model(model_name, checkpoint=path, **overrides)
    return load_checkpoint(path, **overrides)


def _load_model(args):
    return model_from(args.checkpoint, args.model, overrides_dict(args.override)).eval()


def _add_serving_args(p: argparse.ArgumentParser) -> None:
    """--device / --precision / --bf16 and --fast, for the commands that run a model (eval, predict, profile)."""
    _add_device_args(p)
    p.add_argument("--fast", action="store_true", help="through vitkit.optimize_for_inference (bf16 where the "
                   "device has it, weights cast once)")


def _serving_model(args):
    """(the checkpoint's model on its device, through the fast path with --fast, device, precision)."""
    from .tools.fast import optimize_for_inference

    device, precision = _device_and_precision(args)
    model = _load_model(args).to(device)
    return (optimize_for_inference(model) if args.fast else model), device, precision


def _progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (there is none anyway when stderr is not a terminal)")


def _eval_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--data", default="digits", help="'digits', 'moving-digits' or a folder")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--batch-size", type=positive_int, default=256, help="clips per forward (with --test-views, a "
                   "video's views count: batch 8 at 4x3 is 8 clips, the views of one video chunked to fit) (default 256)")
    p.add_argument("--workers", type=non_negative_int, help="DataLoader worker processes (default: the machine's "
                   "cores for folders, 0 for the bundled sets)")
    p.add_argument("--test-views", metavar="TxS", help="video models: T temporal clips x S spatial crops per video, "
                   "logits averaged (e.g. 4x3; default: the training run's test_views, else 1x1)")
    _progress_arg(p)
    _clip_args(p)
    _add_serving_args(p)


def _eval(args) -> int:
    from torch.utils.data import DataLoader

    from .data import build_dataset, default_workers, model_data_config
    from .data.video_folder import ViewAverage, parse_views
    from .train.engine import evaluate

    model, device, precision = _serving_model(args)
    views = parse_views(args.test_views or _run_setting(args.checkpoint, "test_views") or "1x1")
    data = build_dataset(args.data, args.split, model.input_shape(), augment=False, data_cfg=model_data_config(model),
                         frame_stride=args.frame_stride, sampling=args.sampling, test_views=views)
    if data.num_classes != model.num_classes:
        raise DataError(f"the model predicts {model.num_classes} classes but {args.data!r} has {data.num_classes}")
    per_video = views[0] * views[1]
    if per_video > 1:
        model = ViewAverage(model, max_clips=args.batch_size)
    workers = default_workers(args.data) if args.workers is None else args.workers
    loader = DataLoader(data, max(1, args.batch_size // per_video), num_workers=workers,
                        pin_memory=device.type == "cuda")
    m = evaluate(model, loader, precision, device, progress=args.progress)
    shown = f", {views[0]}x{views[1]} views" if views != (1, 1) else ""
    print(f"{args.checkpoint} on {args.data} {args.split} ({len(data)} samples{shown}): top-1 {m['acc1']:.2f}%  "
          f"top-5 {m['acc5']:.2f}%  loss {m['loss']:.4f}")
    return 0


def _run_setting(checkpoint: str, key: str):
    """A setting of the training run that wrote `checkpoint` (its folder's config.yaml), or None."""
    from .train.config_file import load_config

    saved = Path(checkpoint).parent / "config.yaml"
    return load_config(saved).get(key) if saved.is_file() else None


def _predict_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("files", nargs="*", metavar="file", help="one or more image (or, for video models, video) files")
    p.add_argument("--topk", type=positive_int, default=5)
    p.add_argument("--data", help="the dataset the model was trained on, for its preprocessing and class names "
                   "(default: read from data.json next to the checkpoint, else ImageNet statistics)")
    _add_serving_args(p)


def _read_inputs(args, model, files: list[str]):
    """(batch, class names or None): image or video files preprocessed for `model` as `predict` does — the
    model's own data config (size, interpolation, crop, mean/std), --data or the checkpoint's data.json."""
    from .data import model_data_config, prediction_inputs
    from .hub import class_names

    x, classes = prediction_inputs(files, model.input_shape(), args.data, Path(args.checkpoint).parent,
                                   model_data_config(model))
    return x, classes or class_names(model)  # a published tag's ImageNet / Kinetics names


def _predict(args) -> int:
    import torch

    from .train.distributed import autocast

    model, device, precision = _serving_model(args)
    x, classes = _read_inputs(args, model, args.files)
    with torch.no_grad(), autocast(device, precision):
        probs = model(x.to(device)).float().softmax(-1).cpu()
    k = min(args.topk, probs.shape[1])
    top = probs.topk(k, dim=1)
    for f, p, i in zip(args.files, top.values.tolist(), top.indices.tolist()):
        names = [classes[j] if classes and j < len(classes) else str(j) for j in i]
        print(f"{f}: " + ", ".join(f"{n} {q:.3f}" for n, q in zip(names, p)))
    return 0


# --- profile --------------------------------------------------------------------------------------------------
def _sweep(text: str) -> tuple[str, list[int]]:
    key, sep, raw = text.partition("=")
    try:
        values = [int(v) for v in raw.split(",")]
    except ValueError:
        values = []
    if not sep or not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected KEY=N1,N2,... (e.g. img_size=112,224,448), got {text!r}")
    return key.strip(), values


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", help="registered names or shell patterns (e.g. 'deit_*')")
    p.add_argument("--batch-size", type=positive_int, default=1, help="batch size for throughput")
    p.add_argument("--no-throughput", action="store_true", help="parameters and GMACs only (no compute)")
    p.add_argument("--memory", action="store_true", help="also the peak activation memory of one step")
    p.add_argument("--train", action="store_true", help="throughput and memory of a training step (fwd + bwd)")
    p.add_argument("--sweep", type=_sweep, help="KEY=N1,N2,...: profile at every img_size (or num_frames)")
    p.add_argument("--plot", help="with --sweep: draw GMACs, params, throughput and memory against the size (PNG)")
    _progress_arg(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    out.add_argument("--csv", action="store_true", help="print the rows as CSV instead of a table")
    _add_serving_args(p)
    _add_overrides(p)


def _profile(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .registry import create_model, list_models
    from .tools.profile import plot_sweep, profile_model, sweep

    names: list[str] = []
    for pattern in args.models:
        found = list_models(pattern) if any(ch in pattern for ch in "*?[") else [pattern]
        if not found:
            raise ConfigError(f"no registered model matches {pattern!r}")
        names += found
    overrides = overrides_dict(args.override)
    if args.plot and not args.sweep:
        raise ConfigError("profile --plot draws a sweep; add --sweep img_size=... (or num_frames=...)")
    key, values = args.sweep or (None, [None])
    for name in names:  # unknown names and overrides fail here, with one sentence, before any timing
        for v in values:
            with __import__("torch").device("meta"):
                create_model(name, **overrides, **({key: v} if key else {}))
    device, precision = _device_and_precision(args)
    options = dict(batch_size=args.batch_size, throughput=not args.no_throughput, memory=args.memory,
                   device=device, precision=precision, train=args.train, fast=args.fast, **overrides)
    if key:
        from .train.engine import progress_bar

        bar, task = progress_bar(args.progress, f"sweep {key}", len(names) * len(values))
        with bar:
            rows = sweep(names, key, values, on_row=lambda row: bar.update(task, advance=1, info=row["model"]),
                         **options)
    else:
        rows = [profile_model(n, **options) for n in names]
    if args.plot:
        plot_sweep(rows, key, args.plot)
    if args.json or args.csv:
        import csv
        import json

        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return 0
    step = "training steps" if args.train else "samples"
    table = Table(title=f"vitkit profile (GMACs per sample; throughput in {step}/s, this machine)")
    cols = ([(key, key, str)] if key else []) + [
        ("model", "model", str), ("input", "input", str), ("params (M)", "params_m", "{:.2f}".format),
        ("GMACs", "gmacs", "{:.3f}".format)]
    if not args.no_throughput:
        cols.append((f"samples/s (batch {args.batch_size}, {precision})", "samples_per_s", "{:.1f}".format))
    if args.memory:
        cols.append(("peak MB", "peak_mem_mb", "{:.1f}".format))
    for title, _, _ in cols:
        table.add_column(title, justify="left" if title in ("model", "input") else "right", no_wrap=title == "model")
    for r in rows:
        table.add_row(*[fmt(r[k]) for _, k, fmt in cols])
    Console(width=None if sys.stdout.isatty() else 120).print(table)  # logs/pipes: room for full names
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


# --- visualize / convert / export -----------------------------------------------------------------------------
def _query(text: str) -> tuple[int, ...] | None:
    if text == "cls":
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'cls' or patch coordinates like 3,5 or 1,3,5, got {text!r}") from None


def _visualize_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--what", choices=("pos-embed", "attention", "rollout"), default="pos-embed",
                   help="position tables; a query's attention per layer and head; or attention rollout of --input")
    p.add_argument("--input", help="image or video file for --what attention / rollout")
    p.add_argument("--data", help="the training dataset, for --input's preprocessing (as in predict)")
    p.add_argument("--query", type=_query, default=None,
                   help="for --what attention: 'cls' (the class token; the mean of all tokens without one) or a patch "
                   "y,x (images) / t,y,x (videos) on the first layer's token grid (default: cls)")
    p.add_argument("--discard-ratio", type=non_negative_float, default=0.0,
                   help="rollout: drop this fraction of the lowest attention weights per layer (default 0)")
    p.add_argument("--gif", help="rollout: also write the frames as an animated GIF")
    p.add_argument("--out", required=True, help="PNG file to write")


def _visualize(args) -> int:
    from .tools import visualize as vis

    model = _load_model(args)
    if args.what == "pos-embed":
        vis.plot_position_tables(model, args.out)
    else:
        if not args.input:
            raise ConfigError(f"visualize --what {args.what} needs --input IMAGE (or VIDEO for a video model)")
        x, _ = _read_inputs(args, model, [args.input])
        layers = vis.record(model, x)
        if args.what == "attention":
            vis.plot_attention(layers, args.out, args.query)
        else:
            vis.plot_rollout(layers, x[0], args.out, args.discard_ratio)
            if args.gif:
                vis.save_gif(layers, x[0], args.gif, args.discard_ratio)
                print(f"wrote {args.gif}")
    print(f"wrote {args.out}")
    return 0


def _convert_args(p: argparse.ArgumentParser) -> None:
    from .convert import TARGETS

    p.add_argument("weights", help="a timm / HF / torchvision / official / vitkit weights file, a published tag "
                   "(`vitkit weights`) with --to, or an FSDP run's sharded checkpoint (its folder or last.sharded)")
    p.add_argument("--model", help="the registered vitkit name the weights are for (required to read a foreign file; "
                   "a sharded checkpoint names its model)")
    p.add_argument("--to", choices=TARGETS, help="write the weights in this library's layout instead (hf: config.json "
                   "beside --out)")
    p.add_argument("--ema", action="store_true", help="a sharded checkpoint's EMA weights instead of the model's")
    p.add_argument("--out", required=True, help="file to write: a vitkit .safetensors (weights + name + config), or "
                   "with --to a .safetensors / .pth / .bin in the target's layout")
    _add_overrides(p)


def _convert(args) -> int:
    from .checkpoint import load_weights, save_checkpoint
    from .registry import create_model
    from .train.sharded_state import is_sharded_checkpoint, load_sharded_weights

    if args.to:
        from .hub.cli import convert_to

        return convert_to(args, model_from(args.weights, args.model, overrides_dict(args.override)))
    if is_sharded_checkpoint(args.weights):
        model = load_sharded_weights(args.weights, ema=args.ema)
        save_checkpoint(model, args.out)
        print(f"{args.weights} (sharded{', EMA' if args.ema else ''}) -> {args.out} ({model.model_name})")
        return 0
    if not args.model:
        raise ConfigError("vitkit convert: the following arguments are required: --model (the registered name of a "
                          "foreign weights file; a sharded checkpoint names its own model), or --to TARGET to write a "
                          "vitkit checkpoint in another layout")
    model = create_model(args.model, **overrides_dict(args.override))
    source = load_weights(model, args.weights)
    save_checkpoint(model, args.out)
    print(f"{args.weights} ({source} layout) -> {args.out} ({args.model})")
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    from .tools.export import AXES_HELP

    p.epilog = f"The graph is traced at the model's configured input size. Dynamic axes: {AXES_HELP}"
    _model_args(p)
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument("--opset", type=positive_int, default=18,
                   help="ONNX opset (default 18; below it, position-table models keep only batch dynamic)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")


def _export(args) -> int:
    from .tools.export import export_onnx, onnx_dynamic_axes

    model = _load_model(args)
    diff = export_onnx(model, args.out, opset=args.opset, check=not args.no_check)
    shape = "×".join(map(str, model.input_shape()))
    print(f"wrote {args.out} (input {shape}, dynamic axes: {', '.join(onnx_dynamic_axes(model, args.opset))})"
          + ("" if diff is None else f"; onnxruntime vs PyTorch max abs diff {diff:.2e}"))
    return 0


def _weights_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style pattern over tags and names, e.g. 'swin*'")


def _weights(args) -> int:
    from .hub.cli import list_tags

    return list_tags(args.pattern)


# --- reproduce -------------------------------------------------------------------------------------------------
def _reproduce_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("claims", nargs="*", metavar="CLAIM", help="claims to run (C1 ... C10; default: all)")
    p.add_argument("--quick", action="store_true", help="tiny budgets: every claim in about a minute")
    p.add_argument("--list", action="store_true", help="list the claims and exit")
    p.add_argument("--seeds", help="comma-separated seeds (default: each claim's own, one seed with --quick)")
    p.add_argument("--out", default="reports/review", help="report folder (README.md, one PNG and JSON per claim)")


def _reproduce(args) -> int:
    from .tools.reproduce import load_claims, run_claims, select

    claims = load_claims()
    if args.list:
        print("\n".join(f"{cid}  {m.TITLE}" for cid, m in claims.items()))
        return 0
    ids = select(claims, args.claims)
    seeds = None
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise ConfigError(f"--seeds expects comma-separated integers, got {args.seeds!r}") from None
    run_claims(ids, Path(args.out), quick=args.quick, seeds=seeds)
    print(f"report: {Path(args.out) / 'README.md'}")
    return 0


# --- entry point ----------------------------------------------------------------------------------------------
COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "list": ("list registered models", _list_args, _list),
    "train": ("train a model (no arguments: the main job)", _train_args, _train),
    "eval": ("accuracy of a checkpoint on a dataset split", _eval_args, _eval),
    "predict": ("top-k classes of a checkpoint for image/video files", _predict_args, _predict),
    "profile": ("parameters, GMACs and throughput of one or many models", _profile_args, _profile),
    "visualize": ("plot position tables, attention maps or attention rollout", _visualize_args, _visualize),
    "convert": ("convert a foreign weights file into a vitkit checkpoint, or (--to) a vitkit one into timm / hf / "
                "torchvision", _convert_args, _convert),
    "weights": ("list the published weights by tag, with accuracy and size", _weights_args, _weights),
    "export": ("export a checkpoint to ONNX, checked with onnxruntime", _export_args, _export),
    "reproduce": ("run the review's claims (experiments/) and write reports/review/", _reproduce_args, _reproduce),
}
_NEEDS_ARGV = {"train"}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="vitkit", description="vitkit: the vision-transformer family in one PyTorch toolkit.")
    parser.add_argument("--version", action="version", version=f"vitkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}",
                                parser_class=_CommandParser)
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
    """Run the command line; returns the exit status (0 ok, 1 an unexpected failure, 2 a user error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    command = next((a for a in argv if a in COMMANDS), None)
    try:
        args = build_parser().parse_args(argv)
        _, _, run = COMMANDS[args.command]
        check_paths(args)
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
    except BrokenPipeError:  # `vitkit list | head`: the reader closed the pipe, nothing went wrong here
        sys.stderr.close()
        return 0
    except Exception as e:  # a bug or an environment failure: one line unless --debug asks for the traceback
        if debug:
            traceback.print_exc()
        where = f"vitkit {command}" if command else "vitkit"
        hint = "" if debug else " (run again with --debug for the traceback)"
        print(f"error: {where} failed: {type(e).__name__}: {_one_line(e)}{hint}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
