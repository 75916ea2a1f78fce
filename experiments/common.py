"""What every claim experiment shares: in-memory data, training through vitkit's Trainer, accuracy, cost, statistics,
the record of every measurement (cache and raw results) and the figure style. Only vitkit's public API is used.

A run's result depends on its settings and seed alone: every model is built right after seeding (`create`),
the Trainer seeds every step and every sample from the run's seed (`fit`), and each claim runs on one torch
thread. A measurement (`measured`) is recorded in the claim's raw results, committed as numbers under
`<out>/raw/`, and cached under `<out>/cache/` with vitkit's version and the hash of the code that defines it, so
a claim that needs another claim's runs (C4 reads C3's students) reuses them instead of training again, and
changed code trains anew.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from rules import Rule, judge
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

import vitkit
from vitkit.data import Digits, digits_transform
from vitkit.data.moving_digits import MovingDigits
from vitkit.errors import ConfigError
from vitkit.io import write_text
from vitkit.tools.profile import count_gmacs, count_params, measure_throughput
from vitkit.train.callbacks import Callback, EarlyStopping
from vitkit.train.run import TrainConfig, Trainer

DIGITS_CLASSES, DIRECTIONS = 10, 8


# --- data ---------------------------------------------------------------------------------------------------
def digits(split: str, img_size: int = 16) -> tuple[Tensor, Tensor]:
    """The bundled digits split as (N, 1, S, S) normalised images and (N,) labels, no augmentation (the dataset's
    default for the train split augments, drawing from the global generator: the set would depend on the run)."""
    ds = Digits(split, img_size=img_size, in_chans=1, transform=digits_transform(train=False, in_chans=1))
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    return x, ds.targets.clone()


def deformed_digits(n: int, img_size: int = 16, seed: int = 0, split: str = "train") -> tuple[Tensor, Tensor]:
    """A generated image set of any size: digits of `split` (1,257 train, 180 val, 360 test), each drawn with its
    own random affine warp (rotation ±20°, scale 0.8–1.2, shear ±0.2, shift ±15 %) and pixel noise. The set
    depends on (split, n, seed) only. It adds views of the same handwriting samples, not new writers: a test of
    sample count, not of content diversity (a large test set of views of the test split's digits still holds
    only those 360 digits)."""
    base, labels = digits(split, img_size)
    g = torch.Generator().manual_seed(10_000 + seed)
    idx = torch.arange(n) % len(base)
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(20)
    scale = 0.8 + 0.4 * torch.rand(n, generator=g)
    shear = (torch.rand(n, generator=g) * 2 - 1) * 0.2
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * 0.3  # in [-1, 1] grid units: ±15 % of the side
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # (n, 2, 3)
    out = []
    for chunk in torch.arange(n).split(4096):
        x = base[idx[chunk]]
        bg = x.amin(dim=(1, 2, 3), keepdim=True)  # normalised black: what the warp pads with
        grid = F.affine_grid(theta[chunk], list(x.shape), align_corners=False)
        warped = F.grid_sample(x - bg, grid, align_corners=False, padding_mode="zeros") + bg
        out.append(warped + 0.1 * torch.randn(warped.shape, generator=g))
    return torch.cat(out), labels[idx]


def moving_digits(split: str, n: int | None = None, frames: int = 8, img_size: int = 32, label: str = "direction",
                  seed: int = 0, **options) -> tuple[Tensor, Tensor]:
    """moving-digits clips (N, 1, T, S, S) with labels by `label`: "direction" (8 motions), "digit" (10) or "motion"
    (8, order needed for half); `options`: the generator's distractors, noise and label_noise."""
    ds = MovingDigits(split, num_frames=frames, img_size=img_size, in_chans=1, seed=seed, size=n, label=label,
                      **options)
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack(xs), torch.tensor(ys)


def shift_augment(x: Tensor, g: torch.Generator, max_shift: int) -> Tensor:
    """One random integer translation per sample (zero padding), for images (B, C, H, W) and clips alike."""
    if max_shift <= 0:
        return x
    B = x.shape[0]
    pad = [max_shift, max_shift, max_shift, max_shift]
    padded = F.pad(x - x.amin(), pad) + x.amin()
    H, W = x.shape[-2:]
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, B), generator=g)
    lead = (B,) + (1,) * (x.ndim - 3)  # broadcasts over channels (and frames)
    rows = (dy[:, None] + torch.arange(H)).view(*lead, H, 1).expand(*padded.shape[:-2], H, padded.shape[-1])
    out = padded.gather(-2, rows)  # (B, ..., H, W + 2s): each sample's rows
    cols = (dx[:, None] + torch.arange(W)).view(*lead, 1, W).expand(*out.shape[:-1], W)
    return out.gather(-1, cols)  # (B, ..., H, W): and its columns


# --- training ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fit:
    """One training run's settings (AdamW, linear warm-up then cosine to 1 % of lr, label smoothing, shift
    augmentation), run by vitkit's Trainer."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 2.0
    label_smoothing: float = 0.1
    max_shift: int = 1                       # pixels of random translation (0: none)
    distill: str = "none"                    # none | soft | hard (DeiT §4)
    alpha: float = 0.5
    tau: float = 1.0
    steps: int | None = None                 # a fixed step budget instead of epochs (data-size sweeps)
    patience: int | None = None              # with `val`: stop after this many epochs without a val top-1 gain,
                                             # and keep the best epoch's weights


class Shifted(Dataset):
    """(x[i] translated by a random integer offset of at most `max_shift` pixels, y[i]): `shift_augment` one
    sample at a time, the set padded once with its minimum (normalised black). The Trainer seeds torch's
    generator from (seed, epoch, position in the epoch) before reading each sample, so each draw depends on
    those alone. Images (N, C, H, W) and clips (N, C, T, H, W) alike."""

    def __init__(self, x: Tensor, y: Tensor, max_shift: int):
        s = self.max_shift = max(0, max_shift)
        self.padded = F.pad(x - x.amin(), [s, s, s, s]) + x.amin() if s else x  # (N, ..., H + 2s, W + 2s)
        self.y, self.size = y, x.shape[-2:]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        if not self.max_shift:
            return self.padded[i], self.y[i]
        (H, W), (dy, dx) = self.size, torch.randint(0, 2 * self.max_shift + 1, (2,)).tolist()
        return self.padded[i, ..., dy:dy + H, dx:dx + W], self.y[i]  # (..., H, W)


class _TestAccuracy(Callback):
    """The test top-1 after every epoch's validation (the history fit returns)."""

    def __init__(self, test: tuple[Tensor, Tensor]):
        self.test, self.history = test, []

    def on_evaluate(self, trainer, row: dict) -> None:
        self.history.append(accuracy(trainer.model, *self.test))


def train_config(model: nn.Module, n: int, cfg: Fit, seed: int) -> TrainConfig:
    """The TrainConfig of a `Fit` on n samples: in memory on the CPU in fp32, gradients clipped at norm 1."""
    per_epoch = max(1, n // cfg.batch_size)
    epochs = math.ceil(cfg.steps / per_epoch) if cfg.steps else cfg.epochs
    return TrainConfig(model=getattr(model, "model_name", type(model).__name__), epochs=epochs, max_steps=cfg.steps,
                       batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       warmup_epochs=cfg.warmup_epochs, min_lr_ratio=0.01, clip_grad=1.0,
                       label_smoothing=cfg.label_smoothing, augment=False, distill=cfg.distill, alpha=cfg.alpha,
                       tau=cfg.tau, precision="fp32", device="cpu", workers=0, seed=seed, progress=False)


def fit(model: nn.Module, x: Tensor, y: Tensor, cfg: Fit, seed: int, teacher: nn.Module | None = None,
        test: tuple[Tensor, Tensor] | None = None, heads: Callable | None = None,
        val: tuple[Tensor, Tensor] | None = None) -> dict:
    """Train `model` on (x, y) with vitkit's Trainer (its optimiser, schedule, clipping, seeding and loss), nothing
    written to disk; returns {"seconds", "history": per-epoch test top-1 (when `test` is given)} and, with
    `val`, "val_history" (per-epoch val top-1) and "best_epoch" (0-based; with cfg.patience the run stops after
    that many epochs without a gain and the model ends with the best epoch's weights). `heads(model, xb)` gives
    (cls, dist) logits for distilled students (default: the Trainer's choice)."""
    torch.manual_seed(seed)
    if cfg.patience is not None and val is None:
        raise ConfigError("Fit.patience stops on validation accuracy: pass val=(x, y)")
    tests = [_TestAccuracy(test)] if test is not None else []
    stopper = EarlyStopping(cfg.patience if cfg.patience is not None else 1 << 30, restore_best=cfg.patience is not None)
    val_set = TensorDataset(*(val if val is not None else (x[:0], y[:0])))  # none: an empty pass, not a split
    start = time.perf_counter()
    trainer = Trainer(train_config(model, len(x), cfg, seed), model=model, train_set=Shifted(x, y, cfg.max_shift),
                      val_set=val_set, teacher=teacher if cfg.distill != "none" else None, write=False, forward=heads,
                      callbacks=[*tests, *([stopper] if val is not None else [])])
    history = trainer.run().history
    out = {"seconds": time.perf_counter() - start, "history": tests[0].history if tests else []}
    if val is not None:
        out.update(val_history=[row["val_acc1"] for row in history], best_epoch=stopper.best_epoch)
    return out


@torch.no_grad()
def logits(model: nn.Module, x: Tensor, forward: Callable | None = None, batch_size: int = 256) -> Tensor:
    model.eval()
    f = forward or (lambda m, xb: m(xb))
    return torch.cat([f(model, xb) for xb in x.split(batch_size)])


def accuracy(model: nn.Module, x: Tensor, y: Tensor, forward: Callable | None = None) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * (logits(model, x, forward).argmax(1) == y).float().mean().item()


# --- cost ---------------------------------------------------------------------------------------------------
def gmacs(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    return count_gmacs(model.eval(), input_shape)


def params(model: nn.Module) -> int:
    return count_params(model)


def throughput(model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 8, steps: int = 5) -> float:
    return measure_throughput(model, input_shape, batch_size=batch_size, steps=steps, warmup=2)


# --- statistics ---------------------------------------------------------------------------------------------
def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


# --- determinism --------------------------------------------------------------------------------------------
def create(name: str, *, seed: int, **overrides) -> nn.Module:
    """A model built right after seeding: its initial weights depend on (name, overrides, seed) alone, not on what
    ran before in the process or on which runs came from the cache."""
    torch.manual_seed(seed)
    return vitkit.create_model(name, **overrides)


# --- measurements: the cache, the raw results and their replay ----------------------------------------------
# The claim in progress: what its measurements cost (run count, how many came from the cache, seconds of the runs
# whose time is known, how many have none; replaying: how many were made by other code), every measurement it made
# (its raw results), and, when the report is rebuilt from committed raw results, those results by settings.
LEDGER = {"runs": 0, "cached_runs": 0, "run_seconds": 0.0, "untimed_runs": 0, "stale_runs": 0}
RAW: list[dict] = []
REPLAY: dict[str, dict] | None = None


def begin(replay: list[dict] | None = None) -> None:
    """Start a claim: empty ledger and raw results; with `replay` (a claim's committed raw runs) every measurement
    is read from them and nothing is trained."""
    global REPLAY
    LEDGER.update(runs=0, cached_runs=0, run_seconds=0.0, untimed_runs=0, stale_runs=0)
    RAW.clear()
    REPLAY = None if replay is None else {_digest(r["key"]): r for r in replay}


def code_hash(module_file: str) -> str:
    """Hash of the source that defines a measurement: its module and this one."""
    h = hashlib.sha1()
    for f in sorted({Path(__file__).resolve(), Path(module_file).resolve()}):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _digest(key: dict) -> str:
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def measured(out: Path, key: dict, run: Callable[[], dict], code: str, keep: bool = True) -> dict:
    """`run()` once per distinct `key` (settings + seed): its result (numbers) is recorded in the claim's raw
    results and cached as `<out>/cache/<hash>.json` under the settings, vitkit's version and `code_hash(code)`
    (the module that defines the run), so changed code never reads an old result. `keep=False`: recorded but not
    cached (a speed belongs to this machine at this moment). While replaying, the result comes from the raw
    results, matched by settings."""
    settings = json.loads(json.dumps(key, sort_keys=True, default=str))  # as it reads back from JSON
    LEDGER["runs"] += 1
    if REPLAY is not None:
        entry = REPLAY.get(_digest(settings))
        if entry is None:
            raise ConfigError(f"the raw results lack the measurement {json.dumps(settings, sort_keys=True)}; "
                              "run the claim to measure it")
        if (entry["vitkit"], entry["code"]) != (vitkit.__version__, code_hash(code)):
            LEDGER["stale_runs"] += 1  # measured by other code: the rebuilt report says so
        RAW.append(entry)
        return entry["result"]
    stamp = {"vitkit": vitkit.__version__, "code": code_hash(code)}
    path = out / "cache" / f"{_digest({**settings, **stamp})}.json"
    if keep and path.exists():
        saved = json.loads(path.read_text())
        LEDGER["cached_runs"] += 1
    else:
        start = time.perf_counter()
        saved = {"key": settings, **stamp, "result": json.loads(json.dumps(run())),
                 "seconds": time.perf_counter() - start}
        if keep:
            write_text(path, json.dumps(saved))
    LEDGER["run_seconds"] += saved["seconds"]
    RAW.append(saved)
    return saved["result"]


# --- the result every claim returns -------------------------------------------------------------------------
@dataclass
class ClaimResult:
    """One claim's section of the report; its verdict and why-sentence come from `rule` judged on `values`."""

    id: str
    title: str
    paper: str                      # the paper's statement and number, cited
    columns: list[str]
    rows: list[list]
    rule: Rule                      # declared by the claim module before it runs
    values: dict[str, list[float]]  # what the claim measured, per part of its rule
    seeds: list[int]
    quick: bool
    figure: str | None = None       # PNG file name in the report folder
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cost: dict = field(default_factory=dict)  # the LEDGER of this claim's runs, taken when it is built
    verdict: str = field(init=False)          # "reproduced" | "partly reproduced" | "not reproduced"
    why: str = field(init=False)              # generated from the numbers by the rule
    parts: dict = field(init=False)           # per part: mean, interval, seeds, verdict

    def __post_init__(self):
        judged = judge(self.rule, self.values)
        self.verdict, self.why, self.parts = judged.verdict, judged.why, judged.parts
        if not self.cost:
            self.cost = dict(LEDGER)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rule"] = self.rule.describe()
        return d


def figure(path: Path):
    """A matplotlib figure saved to `path` when the block ends (Agg backend, no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    class _Fig:
        def __enter__(self):
            self.fig = plt.figure(figsize=(9, 3.6), dpi=90)
            return self.fig

        def __exit__(self, *exc):
            if exc[0] is None:
                self.fig.tight_layout()
                self.fig.savefig(path)
            plt.close(self.fig)

    return _Fig()
