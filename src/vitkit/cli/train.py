"""`vitkit train`: one run from TrainConfig's flags (made from its fields, cli/config_flags.py), a settings
file and the flags written here (--config, model overrides, --bf16); with no --model, the main job."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from ..train.config import AUG, LARGE, RECIPE, TrainConfig, load_config
from .command import Command, Input, Output, dataset
from .config_flags import add_config_flags
from .options import add_bf16, add_overrides, overrides_dict, positive_int

GROUPS = {AUG: "augmentation (DeiT's recipe: --randaugment 2,9 --reprob 0.25 --mixup 0.8 --cutmix 1.0 --repeated-aug 3)",
          RECIPE: "the papers' recipes (recipes/*.yaml set these; see README, Training the papers' way)",
          LARGE: "large models and kept checkpoints (README: Training large models)"}
MAIN_JOB_FLAGS = {"seed", "out"}  # what the main job (no --model, no --config) takes
NOT_SETTINGS = ("command", "debug", "config", "override", "bf16", "drop_path", "img_size")  # flags, not fields


def _drop_path(text: str):
    """--drop-path: one rate (0.1) or one per stage (0,0,0.1 or [0,0,0.1])."""
    try:
        rates = [float(v) for v in text.strip("[]() ").split(",")]
    except ValueError:
        rates = []
    if not rates or not all(0 <= r < 1 for r in rates):
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1) or one per stage (e.g. 0,0,0.1), got {text!r}")
    return rates[0] if len(rates) == 1 and "," not in text else rates


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Train a model. Without --model: the main job (a CNN teacher, then a DeiT-tiny-style "
                     "student with hard distillation on the bundled digits; see vitkit/train/main_job.py). "
                     "Settings come from the defaults, then --config FILE.yaml (or, with --resume, the run's saved "
                     "config.yaml), then the flags given.")
    p.argument_default = argparse.SUPPRESS  # only the flags given override the file (TrainConfig holds defaults)
    p.add_argument("--config", help="YAML file of training settings (every flag below is a key; see recipes/)")
    groups = {key: p.add_argument_group(title) for key, title in GROUPS.items()}
    add_config_flags(p, groups=groups)
    add_bf16(p)
    add_overrides(p)
    groups[RECIPE].add_argument("--drop-path", type=_drop_path, metavar="RATE[,RATE...]",
                                help="stochastic depth: one rate, or one per stage where the family has stages "
                                "(CvT: 0,0,0.1)")
    groups[RECIPE].add_argument("--img-size", type=positive_int, help="input size (a model override)")


def train_settings(args) -> dict:
    """TrainConfig fields from (lowest first) --config or, with --resume, <out>/config.yaml; then the flags given."""
    flags = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS}
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
        from ..data import parse_randaugment

        spec = parse_randaugment(flags["randaugment"])
        flags["randaugment"] = str(spec) if spec is not None else None  # N,M -> rand-mM-nN; none -> off
    return {**settings, **flags, "overrides": overrides}


@dataclass(frozen=True)
class TrainJob:
    """The flags as given and the settings they resolve to (defaults < --config or the run's config.yaml < flags)."""

    args: argparse.Namespace
    settings: dict

    def run_dir(self) -> Path:
        from ..train.main_job import MainJob

        model, out = self.settings.get("model"), self.settings.get("out")
        return TrainConfig(model=model, out=out).out_dir() if model else Path(MainJob().out)


def prepare(args) -> TrainJob:
    return TrainJob(args, train_settings(args))


def paths(job: TrainJob) -> list:
    """The teacher's files, the dataset, the run folder and, with --resume, the run state to continue from."""
    args, found = job.args, []
    if getattr(args, "teacher_weights", None):
        found.append(Input(args.teacher_weights, "--teacher-weights", CheckpointError))
    teacher = getattr(args, "teacher", None)
    if teacher and not teacher.startswith("tv:") and (teacher.endswith((".safetensors", ".pth", ".pt"))
                                                      or os.sep in teacher or Path(teacher).exists()):
        found.append(Input(teacher, "--teacher", CheckpointError))
    found += [*dataset(args), Output(job.run_dir(), "run folder", folder=True)]
    if job.settings.get("resume"):
        from ..train.keeper import resume_file

        state = resume_file(job.run_dir(), bool(job.settings.get("fsdp")))
        found.append(Input(state, "--resume: the run state", CheckpointError))
    return found


def run(job: TrainJob) -> int:
    from ..train.run import train

    settings = job.settings
    if not settings.get("model"):
        given = {k for k, v in settings.items() if k != "overrides" or v}
        if not getattr(job.args, "config", None) and given <= MAIN_JOB_FLAGS:
            from ..train.main_job import MainJob, run_main_job

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


COMMAND = Command("train a model (no arguments: the main job)", add_arguments, run, paths, prepare)
