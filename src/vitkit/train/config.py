"""`TrainConfig`, the one description of a training run's settings, and its YAML files.

Each field carries its command-line description in its metadata (`opt` below), so the `vitkit train` flags,
the defaults their help shows and the YAML keys all come from the fields: a new setting is one field here.
Settings files (`vitkit train --config FILE.yaml`, the shipped `recipes/`, a run's `<out>/config.yaml`) use the
field names as keys (`batch_size` or `batch-size`), model overrides as a mapping under `overrides`; an unknown
key is one error listing the valid ones."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..convert.video_init import INFLATIONS
from ..data import parse_randaugment
from ..data.video_folder import SAMPLINGS
from ..errors import ConfigError
from ..io import write_yaml
from .distributed import PRECISIONS
from .losses import KINDS, TEACHERLESS
from .lr_rule import LR_RULES
from .optim import OPTIMIZERS
from .recipe import SCHEDULES, check_recipe

EMA_DEVICES = ("same", "cpu")
POSITIVE, NON_NEGATIVE = "positive", "non-negative"


def option(default: Any, help: str, **flag: Any) -> Any:
    """A TrainConfig field with its flag (read by `vitkit.cli.config_flags`). The flag is `--field-name` (a bool
    that defaults to True: `--no-field-name`), its value type the field's, and its help ends with the default.
    `help` is the flag's help. Optional keys:
      check      POSITIVE or NON_NEGATIVE: the numbers the flag accepts (validate() says the finer rules)
      choices, metavar   as in argparse
      unset      what the default None (or an empty tuple) means, shown as the default
      shown      False: the command does not use this default, so the help does not show it
      group      the help section (AUG, RECIPE, LARGE; none: the main options)
      negatable  a bool with both --x and --no-x
      flag       the flag's name when it is not --field-name
      also       ((flag, metavar, help), ...): other spellings that set the field
      via        the hand-written flags that fill the field (cli/train.py), instead of a generated one"""
    return field(default=default, metadata={"help": help, **flag})


AUG, RECIPE, LARGE = "augmentation", "recipe", "large models"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on. Defaults are DeiT's recipe scaled to small data (AdamW, cosine)."""

    model: str = option("deit_tiny_distilled_patch16_224", "registered model name (required unless running the main job)",
                        shown=False)  # the command without --model runs the main job
    data: str = option("digits", "'digits', 'moving-digits' or a folder root/<class>/<file> (optionally with train/ and "
                    "val/ sub-folders)")
    overrides: dict = field(default_factory=dict, metadata={  # model config overrides (img_size, depth, ...)
        "help": "model config overrides", "via": ("--override", "--drop-path", "--img-size")})
    epochs: int = option(30, "", check=POSITIVE)
    max_steps: int | None = option(None, "stop after N optimiser steps in all, mid-epoch if need be; the schedule spans "
                                "them (a fixed step budget; --epochs still bounds the run)", check=POSITIVE,
                                metavar="N", unset="--epochs × the epoch's steps")
    batch_size: int = option(64, "per process and micro-batch: the optimiser sees batch × accum × ranks", check=POSITIVE)
    accum_steps: int = option(1, "micro-batches per optimiser step (gradient accumulation)", check=POSITIVE)
    lr: float = option(1e-3, "peak AdamW learning rate, reached after the warm-up", check=POSITIVE)
    weight_decay: float = option(0.05, "not applied to biases, norms, tokens, position tables", check=NON_NEGATIVE)
    layer_decay: float | None = option(None, "layer-wise lr decay rate, e.g. 0.65 when fine-tuning (BEiT §3.3)",
                                    check=POSITIVE, unset="off")
    warmup_epochs: float = option(3.0, "linear warm-up, in epochs, stepped per optimiser step", check=NON_NEGATIVE)
    min_lr_ratio: float = option(0.01, "the cosine ends at lr × this", check=NON_NEGATIVE)
    clip_grad: float | None = option(1.0, "global gradient-norm clip; 0 turns it off", check=NON_NEGATIVE)
    label_smoothing: float = option(0.1, "on the true label only (DeiT §5.2)", check=NON_NEGATIVE)
    augment: bool = option(True, "no training augmentation")
    randaugment: str | None = option(None, "RandAugment as timm's string, e.g. rand-m9-mstd0.5-inc1 (DeiT, Swin, CvT) or "
                                  "rand-m9-n6-mstd0.5-inc1 (MViTv2)", flag="--aa", metavar="STR", unset="off", group=AUG,
                                  also=(("--randaugment", "N,M", "same as --aa rand-mM-nN (N ops of magnitude M of 10)"),))
    reprob: float = option(0.0, "random-erasing probability, in [0, 1] (DeiT: 0.25)", group=AUG)
    mixup: float = option(0.0, "Mixup alpha (DeiT: 0.8; 0: off)", check=NON_NEGATIVE, group=AUG)
    cutmix: float = option(0.0, "CutMix alpha (DeiT: 1.0; 0: off)", check=NON_NEGATIVE, group=AUG)
    mix_prob: float = option(1.0, "probability of mixing a batch, in [0, 1]", group=AUG)
    switch_prob: float = option(0.5, "probability of CutMix rather than Mixup when both are on", group=AUG)
    repeated_aug: int = option(1, "copies of each image per epoch, spread over the ranks (DeiT's sampler; 1: off)",
                            check=POSITIVE, metavar="K", group=AUG)
    frame_stride: int = option(2, "video folders: frames between clip frames", check=POSITIVE, group=AUG)
    sampling: str = option("stride", "video folders: strided clips at a random offset in training (TimeSformer, MViT) or "
                        "one frame per segment (uniform, ViViT)", choices=SAMPLINGS, group=AUG)
    distill: str = option("none", "DeiT distillation kind (§4; labels: the distillation head learns the labels)",
                         choices=KINDS)
    teacher: str | None = option(None, "teacher: a vitkit checkpoint, a model name, or tv:<torchvision name>", unset="none")
    teacher_weights: str | None = option(None, "weights file for a teacher given by name", unset="random init")
    alpha: float = option(0.5, "weight of the distillation term, in [0, 1]", check=NON_NEGATIVE)
    tau: float = option(1.0, "soft-distillation temperature", check=POSITIVE)
    soft_normalisation: str = option("elementwise", "soft KL divided by batch × classes (elementwise: official DeiT) or by "
                                  "batch (timm, lucidrains)", choices=("elementwise", "batch"))
    init: str | None = option(None, "fine-tune from these weights (timm, transformers, torchvision, official or vitkit), "
                           "or a published tag (`vitkit weights`)", unset="none")
    inflate: str = option("central", "image ViT -> ViViT tubelets: the central frame or the mean", choices=INFLATIONS)
    ema: float | None = option(None, "EMA decay of the weights, e.g. 0.99996", check=POSITIVE, unset="off")
    precision: str = option("auto", "autocast precision; auto: chosen for this processor (bf16 where it is native; "
                         "training times the routes on long runs); fp16 uses a gradient scaler, not on the CPU",
                         choices=PRECISIONS)
    device: str = option("auto", "auto (CUDA if present, else CPU; cuda:$LOCAL_RANK under torchrun), cpu, cuda, cuda:N or "
                      "mps")
    compile: bool = option(False, "torch.compile the training model")
    grad_checkpointing: bool = option(False, "recompute block activations in backward")
    out: str | None = option(None, "run folder", unset="runs/<model>")
    resume: bool = option(False, "continue from <out>/last.pt with the run's saved settings")
    force: bool = option(False, "with --resume: accept settings that changed")
    save_every: int = option(0, "also checkpoint every N optimiser steps (0: at epoch ends only)", check=NON_NEGATIVE)
    log_interval: int = option(1, "reduce the metrics and check for divergence every N optimiser steps (timm's "
                            "--log-interval)", check=POSITIVE, metavar="N")
    log_dir: str | None = option(None, "TensorBoard log folder (needs tensorboard installed)", unset="none")
    workers: int | None = option(None, "DataLoader worker processes", check=NON_NEGATIVE,
                              unset="the machine's cores for folders, 0 for the bundled sets")
    seed: int = option(0, "")
    limit: int | None = option(None, "train on the first N samples only (quick checks)", check=POSITIVE, unset="all")
    progress: bool = option(True, "no progress bar or per-epoch lines")
    # the papers' training (recipes/): lr by rule, optimiser, schedule ends, crops, test views (train/recipe.py)
    lr_base: float | None = option(None, "lr at the reference batch --lr-base-size; the run uses lr_base × global batch / "
                                "lr_base_size (--lr sets an absolute lr instead)", check=POSITIVE, unset="off",
                                group=RECIPE)
    lr_base_size: int = option(512, "reference global batch of --lr-base (DeiT: 512)", check=POSITIVE, group=RECIPE)
    lr_rule: str = option("linear", "how lr scales with the global batch", choices=LR_RULES, group=RECIPE)
    ref_global_batch: int | None = option(None, "the paper's global batch (a run at another one says what lr it got)",
                                       check=POSITIVE, unset="none", group=RECIPE)
    opt: str = option("adamw", "optimiser", choices=OPTIMIZERS, group=RECIPE)
    momentum: float = option(0.9, "SGD momentum", check=NON_NEGATIVE, group=RECIPE)
    nesterov: bool = option(False, "SGD with Nesterov momentum", negatable=True, group=RECIPE)
    warmup_lr: float = option(0.0, "lr the warm-up starts from (timm's --warmup-lr)", check=NON_NEGATIVE, group=RECIPE)
    min_lr: float | None = option(None, "absolute lr the cosine ends at (timm's --min-lr)", check=NON_NEGATIVE,
                               unset="lr × --min-lr-ratio", group=RECIPE)
    sched: str = option("cosine", "cosine, or multistep: lr × --decay-rate at each of --decay-milestones",
                     choices=SCHEDULES, group=RECIPE)
    decay_milestones: tuple[float, ...] = option((), "epochs of the multistep decays", metavar="EPOCH[,EPOCH...]",
                                              unset="none", group=RECIPE)
    decay_rate: float = option(0.1, "multistep: lr factor at each milestone", check=POSITIVE, group=RECIPE)
    crop_pct: float | None = option(None, "evaluation crop ratio", check=POSITIVE, unset="the model's data config",
                                 group=RECIPE)
    scale_jitter: tuple[int, int] | None = option(None, "training crop: shorter side in [min, max] px, then a random crop",
                                               metavar="MIN,MAX", unset="off", group=RECIPE)
    aspect_jitter: tuple[float, float] | None = option(None, "with --scale-jitter: height and width × factors in [lo, hi] "
                                                    "(ViViT / DMVR)", metavar="LO,HI", unset="off", group=RECIPE)
    color_augment: tuple[float, float] | None = option(None, "DMVR colour jitter probability, grey probability (ViViT)",
                                                    metavar="P,P_GREY", unset="off", group=RECIPE)
    test_views: str = option("1x1", "video: clips x crops of the final evaluation (and of `vitkit eval`), e.g. 4x3",
                          metavar="TxS", group=RECIPE)
    # large models and run hygiene: FSDP, host-memory EMA, evaluation batch, kept checkpoints (train/keeper.py)
    fsdp: bool = option(False, "shard weights, gradients and optimiser state over the ranks (FSDP2, a unit per block; "
                     "checkpoints are sharded: last.sharded)", group=LARGE)
    fsdp_offload: bool = option(False, "with --fsdp: keep shards and optimiser state in host memory", group=LARGE)
    ema_device: str = option("same", "where the EMA weights live (same: the training device)", choices=EMA_DEVICES,
                          group=LARGE)
    ema_every: int = option(1, "update the EMA every N optimiser steps, with decay^N", check=POSITIVE, metavar="N",
                         group=LARGE)
    val_batch_size: int | None = option(None, "evaluation batch per process", check=POSITIVE, unset="--batch-size",
                                     group=LARGE)
    checkpoint_hist: int = option(0, "keep the K best weights by validation top-1 as checkpoint-<epoch>.safetensors "
                               "(0: best.safetensors only, which is always kept)", check=NON_NEGATIVE, metavar="K",
                               group=LARGE)

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / self.model

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.accum_steps >= 1, f"--accum-steps must be at least 1, got {self.accum_steps}"),
            (self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (self.weight_decay >= 0, f"--weight-decay must be non-negative, got {self.weight_decay}"),
            (self.layer_decay is None or 0 < self.layer_decay <= 1, f"--layer-decay must be in (0, 1], got {self.layer_decay}"),
            (self.warmup_epochs >= 0, f"--warmup-epochs must be non-negative, got {self.warmup_epochs}"),
            (self.distill in KINDS, f"--distill must be one of {', '.join(KINDS)}, got {self.distill!r}"),
            (0 <= self.alpha <= 1, f"--alpha must be in [0, 1], got {self.alpha}"),
            (self.tau > 0, f"--tau must be positive, got {self.tau}"),
            (self.workers is None or self.workers >= 0, f"--workers must be non-negative, got {self.workers}"),
            (self.limit is None or self.limit >= 1, f"--limit must be at least 1, got {self.limit}"),
            (self.max_steps is None or self.max_steps >= 1, f"--max-steps must be at least 1, got {self.max_steps}"),
            (0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.distill in TEACHERLESS or self.teacher,
             f"--distill {self.distill} needs --teacher (a checkpoint or model name)"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.inflate in INFLATIONS, f"--inflate must be one of {', '.join(INFLATIONS)}, got {self.inflate!r}"),
            (self.ema is None or 0 < self.ema < 1, f"--ema must be a decay in (0, 1), got {self.ema}"),
            (self.save_every >= 0, f"--save-every must be non-negative, got {self.save_every}"),
            (self.log_interval >= 1, f"--log-interval must be at least 1, got {self.log_interval}"),
            (0 <= self.reprob <= 1, f"--reprob must be a probability in [0, 1], got {self.reprob}"),
            (0 <= self.mix_prob <= 1, f"--mix-prob must be a probability in [0, 1], got {self.mix_prob}"),
            (0 <= self.switch_prob <= 1, f"--switch-prob must be a probability in [0, 1], got {self.switch_prob}"),
            (self.mixup >= 0 and self.cutmix >= 0,
             f"--mixup and --cutmix must be non-negative (0 turns them off), got {self.mixup} and {self.cutmix}"),
            (self.repeated_aug >= 1, f"--repeated-aug must be at least 1, got {self.repeated_aug}"),
            (self.frame_stride >= 1, f"--frame-stride must be at least 1, got {self.frame_stride}"),
            (self.sampling in SAMPLINGS, f"--sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}"),
            (self.fsdp or not self.fsdp_offload, "--fsdp-offload needs --fsdp (it offloads FSDP's shards)"),
            (self.ema_device in EMA_DEVICES, f"--ema-device must be one of {', '.join(EMA_DEVICES)}, got {self.ema_device!r}"),
            (self.ema_every >= 1, f"--ema-every must be at least 1, got {self.ema_every}"),
            (self.val_batch_size is None or self.val_batch_size >= 1,
             f"--val-batch-size must be at least 1, got {self.val_batch_size}"),
            (self.checkpoint_hist >= 0, f"--checkpoint-hist must be non-negative, got {self.checkpoint_hist}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        parse_randaugment(self.randaugment)
        check_recipe(self)

    def settings(self) -> dict:
        """What must not change between a run and its resumption (everything but where it runs and writes)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in RUNTIME_FIELDS}


# Options that change where and how fast a run goes, never its result (so --resume may change them).
RUNTIME_FIELDS = ("out", "resume", "force", "save_every", "log_dir", "workers", "progress", "device", "compile",
                  "grad_checkpointing", "fsdp", "fsdp_offload", "ema_device", "val_batch_size", "checkpoint_hist",
                  "log_interval")


def config_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def load_config(path: str | os.PathLike) -> dict:
    """The settings in a YAML file as {TrainConfig field: value}; ConfigError for a missing file, bad YAML, a
    non-mapping or an unknown key."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {str(p)!r} does not exist (expected a YAML file of training settings)")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {str(p)!r} is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {str(p)!r} must hold a mapping of settings, got a {type(data).__name__}")
    settings = {str(k).replace("-", "_"): v for k, v in data.items()}
    settings.pop("routes", None)  # what a run chose for its processor (train/run.py writes it): a record, not a setting
    valid = config_keys()
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ConfigError(f"--config {str(p)!r}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                          f"valid keys are {', '.join(valid)}")
    if not isinstance(settings.get("overrides", {}), dict):
        raise ConfigError(f"--config {str(p)!r}: overrides must be a mapping of model config keys to values")
    return settings


def save_config(cfg: TrainConfig, path: str | os.PathLike, **records: Any) -> None:
    """Write `cfg` as a settings file that `load_config` reads back (atomically), without resume and force (how
    the run was started, not what it is); `records` (e.g. `routes`) are kept beside the settings, and loading
    ignores the known ones."""
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("resume", "force")}
    write_yaml(path, {**settings, **records})
