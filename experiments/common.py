"""What every claim experiment shares: in-memory data, one small training loop, accuracy, cost, statistics,
a cache of finished runs, and the figure style. Only vitkit's public API is used.

A run is deterministic given its settings and seed (one torch thread, seeded generators), so its result is
cached under `<out>/cache/<key>.json` and a claim that needs another claim's runs (C4 reads C3's students)
reuses them instead of training again.
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
from torch import Tensor, nn

import vitkit
from vitkit.data import Digits
from vitkit.data.moving_digits import MovingDigits
from vitkit.io import write_text
from vitkit.tools.profile import count_gmacs, count_params, measure_throughput
from vitkit.train.losses import DistillationLoss

DIGITS_CLASSES, DIRECTIONS = 10, 8


# --- data ---------------------------------------------------------------------------------------------------
def digits(split: str, img_size: int = 16) -> tuple[Tensor, Tensor]:
    """The bundled digits split as (N, 1, S, S) normalised images and (N,) labels, no augmentation."""
    ds = Digits(split, img_size=img_size, in_chans=1)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    return x, ds.targets.clone()


def deformed_digits(n: int, img_size: int = 16, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A generated image set of any size: training-split digits, each drawn with its own random affine warp
    (rotation ±20°, scale 0.8–1.2, shear ±0.2, shift ±15 %) and pixel noise. Item i depends on (seed, i) only.
    It adds views of the same 1,257 handwriting samples, not new writers: a test of sample count, not of
    content diversity."""
    base, labels = digits("train", img_size)
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
                  seed: int = 0) -> tuple[Tensor, Tensor]:
    """moving-digits clips (N, 1, T, S, S) with labels by `label`: "direction" (8 motions) or "digit" (10)."""
    ds = MovingDigits(split, num_frames=frames, img_size=img_size, in_chans=1, seed=seed, size=n, label=label)
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
    """One training run's settings (AdamW, linear warm-up then cosine, label smoothing, shift augmentation)."""

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


def fit(model: nn.Module, x: Tensor, y: Tensor, cfg: Fit, seed: int, teacher: nn.Module | None = None,
        test: tuple[Tensor, Tensor] | None = None, heads: Callable | None = None) -> dict:
    """Train `model` on (x, y); returns {"seconds", "history": per-epoch test accuracy (when `test` is given)}.
    `heads(model, xb)` gives (cls, dist) logits for distilled students (default: the model's one output)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    per_epoch = max(1, len(x) // cfg.batch_size)
    total = cfg.steps or cfg.epochs * per_epoch
    epochs = math.ceil(total / per_epoch)
    warmup = min(total // 2, int(cfg.warmup_epochs * per_epoch))
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name in model.no_weight_decay() else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    lr_at = lambda s: (s + 1) / max(1, warmup) if s < warmup else \
        0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total - warmup)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    loss_fn = DistillationLoss(nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), teacher, cfg.distill,
                               cfg.alpha, cfg.tau)
    forward = heads or (lambda m, xb: m(xb))
    history, step, start = [], 0, time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=g)
        for i in range(per_epoch):
            if step == total:
                break
            b = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            xb = shift_augment(x[b], g, cfg.max_shift)
            loss = loss_fn(xb, forward(model, xb), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
        if test is not None:
            history.append(accuracy(model, *test))
    return {"seconds": time.perf_counter() - start, "history": history}


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


# --- statistics and caching ---------------------------------------------------------------------------------
def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


# What the runs of the claim in progress cost: run count, how many came from the cache, seconds of the runs whose
# time is known (measured now, or stored with the cached result), and how many have no stored time (older caches).
LEDGER = {"runs": 0, "cached_runs": 0, "run_seconds": 0.0, "untimed_runs": 0}


def cached(out: Path, key: dict, run: Callable[[], dict]) -> dict:
    """`run()` once per distinct `key` (settings + seed); later calls read `<out>/cache/<hash>.json`."""
    text = json.dumps(key, sort_keys=True, default=str)
    path = out / "cache" / f"{hashlib.sha1(text.encode()).hexdigest()[:16]}.json"
    LEDGER["runs"] += 1
    if path.exists():
        saved = json.loads(path.read_text())
        LEDGER["cached_runs"] += 1
        elapsed = saved.get("elapsed", saved["result"].get("seconds", saved["result"].get("train_s")))
        if elapsed is None:
            LEDGER["untimed_runs"] += 1
        LEDGER["run_seconds"] += elapsed or 0.0
        return saved["result"]
    start = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - start
    LEDGER["run_seconds"] += elapsed
    write_text(path, json.dumps({"key": key, "result": result, "elapsed": elapsed}, indent=1))
    return result


def create(name: str, **overrides) -> nn.Module:
    return vitkit.create_model(name, **overrides)


# --- the result every claim returns -------------------------------------------------------------------------
@dataclass
class ClaimResult:
    """One claim's section of the report."""

    id: str
    title: str
    paper: str                      # the paper's statement and number, cited
    columns: list[str]
    rows: list[list]
    verdict: str                    # "reproduced" | "partly reproduced" | "not reproduced"
    why: str                        # one honest sentence
    seeds: list[int]
    quick: bool
    figure: str | None = None       # PNG file name in the report folder
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cost: dict = field(default_factory=dict)  # the LEDGER of this claim's runs, taken (and reset) when it is built

    def __post_init__(self):
        if not self.cost:
            self.cost = dict(LEDGER)
            LEDGER.update(runs=0, cached_runs=0, run_seconds=0.0, untimed_runs=0)

    def to_dict(self) -> dict:
        return asdict(self)


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
