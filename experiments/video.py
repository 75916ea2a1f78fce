"""What the video claims (C8–C10) share: tiny models of each family on moving-digits clips (1 channel, 32×32,
8 frames), trained to convergence by validation and tested with the frames in order, shuffled and reversed, with
cost counted per clip.

The task (`label="motion"`, src/vitkit/data/moving_digits.py): 8 motions of which 4 (right/left, down/up) only
the order of frames tells apart, while the other 4 (down-right, down-left, still, jumping) the unordered set of
frames tells; one dimmer distractor digit moving in a random compass direction, Gaussian pixel noise and 10 % of
labels redrawn at random. Computed from the generator's motion table (`order_blind_ceiling`): chance 12.5 %, the
best order-blind model 68.75 % (75 % of the clean labels), the best model of all 91.25 %. So an order-blind model
can score well above chance, an order-aware one can beat it by up to 22.5 points, and no model reaches 100 %.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path

import common as C
import torch

from vitkit.data.moving_digits import order_aware_ceiling, order_blind_ceiling, order_decided

FRAMES, IMG = 8, 32
TINY = dict(img_size=IMG, num_frames=FRAMES, in_chans=1)
VIVIT = dict(TINY, patch_size=8, tubelet_size=2, embed_dim=48, depth=2, temporal_depth=1, num_heads=4)
TIMESFORMER = dict(TINY, patch_size=8, embed_dim=48, depth=2, num_heads=4)
MVIT = dict(TINY, embed_dim=16, depths=(1, 1), pool_stride_kv=(1, 4, 4), head_drop_rate=0.0, drop_path_rate=0.0)

MOTION, APPEARANCE = "motion", "digit"
TASK = dict(distractors=1, noise=0.2, label_noise=0.1)  # the same clips for both labels
CHANCE = {MOTION: 100 / 8, APPEARANCE: 100 / 10}
BLIND = 100 * order_blind_ceiling(MOTION, TASK["label_noise"])    # 68.75: the best order-blind top-1
CEILING = 100 * order_aware_ceiling(MOTION, TASK["label_noise"])  # 91.25: the best top-1 of any model
APPEARANCE_CEILING = 100 * order_aware_ceiling(APPEARANCE, TASK["label_noise"])  # 91.0
ORDER_CLASSES = order_decided(MOTION)  # right, left, down, up: the classes whose reversal is in the task


@dataclass(frozen=True)
class Budget:
    train: int       # training clips
    epochs: int      # at most; training stops earlier when validation accuracy stops improving
    val: int         # validation clips (early stopping, and the "learned" check)
    test: int        # test clips
    patience: int    # epochs without a better validation accuracy before stopping


FULL = Budget(train=4096, epochs=100, val=1024, test=2048, patience=10)
QUICK = Budget(train=512, epochs=4, val=128, test=256, patience=4)
QUICK_PAPER_FRAMES = 8  # quick mode times ViViT-B on 8 of the paper's 32 frames (a quarter of the time)

# Warm-up in full mode, and schedules per model beyond the shared settings. One warm-up epoch and patience 5 (the
# 2026-12-06 run) left 4 of 67 runs stopped on a plateau; probed with the same seeds (`probe_video_budget.py --runs
# stopped`; test top-1 %, epochs run): ViViT Model 2, motion, seed 4: 21.5 (10) -> patience 10: 21.5 (15) -> warm-up
# 3 and patience 10: 80.4 (46), its other seeds 78.2-82.6; TimeSformer divided, motion, seed 4: 62.5 (32) ->
# patience 10: 81.7 (61); converged controls kept their result (ViViT Model 2 seed 0: 79.7, Model 1 seed 0: 73.2).
# So every video model warms up 3 epochs (ViViT Model 1 already needed them: 74-82 % on motion, 2026-12-05) and waits
# 10 epochs for a better validation accuracy. TimeSformer joint (128 tokens) did not learn motion at peak 1e-3;
# probed (motion, seed 0, at most 100 epochs): 1e-3 with 3 warm-up epochs 23.4 % (33), 1e-3 with 10: 27.6 % (86),
# 3e-4 with 5: 38.7 % (76, still rising slowly). So it gets the lower peak and 5 warm-up epochs; early stopping
# waits out at least twice the warm-up (`fit_settings`).
WARMUP = 3.0
# The first 100-epoch schedule (2026-12-06): 1 warm-up epoch, patience 5. A claim reports at it (`first=True`) only
# until its runs at the current schedule are finished; they go on from raw/pending.json. (C9 uses it: TimeSformer
# only; ViViT Model 1 had 3 warm-up epochs then.)
FIRST = dict(warmup_epochs=1.0, patience=5)
SCHEDULE = {"timesformer_base_8x224_joint_space_time": dict(lr=3e-4, warmup_epochs=5.0)}


def budget(quick: bool) -> Budget:
    return QUICK if quick else FULL


def data(split: str, label: str, n: int):
    return C.moving_digits(split, n, FRAMES, IMG, label, **TASK)


def shuffled(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The same clips with their frames in one random order (B, C, T, H, W)."""
    perm = torch.randperm(x.shape[2], generator=torch.Generator().manual_seed(seed))
    return x[:, :, perm]


def reversed_in_time(x: torch.Tensor) -> torch.Tensor:
    """The same clips played backwards (B, C, T, H, W)."""
    return x.flip(2)


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, label: str) -> dict:
    """Top-1 with the frames in order, shuffled and reversed; on the motion task also on the order classes alone
    (clip i of a split shows class i mod 8 before its label is redrawn)."""
    out = {"acc": C.accuracy(model, x, y), "acc_shuffled": C.accuracy(model, shuffled(x), y),
           "acc_reversed": C.accuracy(model, reversed_in_time(x), y)}
    if label == MOTION:
        keep = torch.isin(torch.arange(len(y)) % 8, torch.tensor(ORDER_CLASSES))
        out["acc_order_classes"] = C.accuracy(model, x[keep], y[keep])
    return out


def fit_settings(name: str, quick: bool, first: bool = False) -> C.Fit:
    b = budget(quick)
    warmup, patience = (0.5, b.patience) if quick else (FIRST["warmup_epochs"], FIRST["patience"]) if first else \
        (WARMUP, b.patience)
    shared = dict(epochs=b.epochs, batch_size=32, max_shift=0, warmup_epochs=warmup, lr=2e-3 if quick else 1e-3)
    shared.update({} if quick else SCHEDULE.get(name, {}))
    if "patience" in C.Fit.__dataclass_fields__:  # early stopping on validation (fit's `val`, issue 22)
        # a plateau at chance during a long warm-up is not convergence: wait at least twice the warm-up
        shared["patience"] = max(patience, math.ceil(2 * shared["warmup_epochs"]))
    return C.Fit(**shared)


def _train(model, x, y, cfg: C.Fit, seed: int, val) -> dict:
    """`fit` with early stopping on `val` where it takes one; until then the fixed budget, with the validation
    curve recorded either way."""
    if "val" in inspect.signature(C.fit).parameters:
        return C.fit(model, x, y, cfg, seed, test=val, val=val)
    return C.fit(model, x, y, cfg, seed, test=val)


def train_video(out: Path, name: str, overrides: dict, label: str, seed: int, quick: bool,
                size: tuple[int, int] | None = None, first: bool = False) -> dict:
    """Train one tiny video model (cached): test top-1 (in order, shuffled, reversed), the validation curve,
    params and GMACs per clip; `size` (clips, epochs) replaces the mode's training budget; `first`: at the first
    100-epoch schedule (`FIRST`)."""
    b = budget(quick)
    n, epochs = size or (b.train, b.epochs)
    fit = fit_settings(name, quick, first)
    fit = C.Fit(**{**fit.__dict__, "epochs": epochs})
    classes = 8 if label == MOTION else 10

    def run() -> dict:
        model = C.create(name, seed=seed, num_classes=classes, **overrides)
        trained = _train(model, *data("train", label, n), fit, seed, data("val", label, b.val))
        result = evaluate(model, *data("test", label, b.test), label)
        curve = trained.get("history", [])
        return {**result, "history_val": curve, "epochs_run": len(curve), "params": C.params(model),
                "gmacs": C.gmacs(model, model.input_shape())}

    return C.measured(out, {"what": "video", "model": name, "ov": overrides, "label": label, "task": TASK,
                            "seed": seed, "fit": fit.__dict__, "n": n, "n_val": b.val, "n_test": b.test}, run,
                      code=__file__)


def speed(out: Path, name: str, overrides: dict) -> float:
    """Clips per second (batch 4) of the tiny model on this machine now: recorded in the raw results, never
    cached."""
    def run() -> dict:
        model = C.create(name, seed=0, num_classes=8, **overrides)
        return {"clips_per_s": C.throughput(model, model.input_shape(), batch_size=4, steps=5)}

    return C.measured(out, {"what": "video-speed", "model": name, "ov": overrides}, run, code=__file__,
                      keep=False)["clips_per_s"]


def paper_cost(out: Path, name: str, quick: bool) -> dict:
    """GMACs per clip at the registered (paper) configuration (meta device, nothing computed) and clips per second
    of fp32 inference on this machine now: at the paper's configuration, batch 2, the median of 3 after a warm-up;
    quick: with 8 of its 32 frames, batch 1, one timed forward. The speed is recorded in the raw results, never
    cached."""
    batch, steps, warmup, frames = (1, 1, 0, QUICK_PAPER_FRAMES) if quick else (2, 3, 1, None)

    def run() -> dict:
        with torch.device("meta"):
            meta = C.create(name, seed=0)
        model = C.create(name, seed=0, **({} if frames is None else {"num_frames": frames})).eval()
        shape = model.input_shape()
        return {"gmacs": C.gmacs(meta, meta.input_shape()), "timed_input": list(shape), "batch": batch,
                "clips_per_s": C.measure_throughput(model, shape, batch_size=batch, steps=steps, warmup=warmup)}

    return C.measured(out, {"what": "video-paper-cost", "model": name, "batch": batch, "steps": steps,
                            "frames": frames}, run, code=__file__, keep=False)

def learned_note(res: dict[str, list[dict]], label: str) -> list[str]:
    """A note naming the rows with seeds whose best validation accuracy stayed within 3 points of chance: those
    runs did not learn, so they say nothing about their model."""
    stuck = {k: sum(max(r["history_val"], default=0.0) < CHANCE[label] + 3 for r in rs) for k, rs in res.items()}
    named = [f"{k} ({n} of {len(res[k])} seeds)" for k, n in stuck.items() if n]
    return [f"Did not learn (validation top-1 within 3 points of chance): {', '.join(named)}."] if named else []


def task_note(quick: bool, size: tuple[int, int] | None = None, first: bool = False) -> str:
    """The motion task, its computed levels, the order tests, the budget and the schedule, for a claim's notes."""
    b = budget(quick)
    n, epochs = size or (b.train, b.epochs)
    shared, joint = (fit_settings(m, quick, first) for m in ("", "timesformer_base_8x224_joint_space_time"))
    schedule = (f" Peak lr {shared.lr:g} after a {shared.warmup_epochs:g}-epoch warm-up, stopped after {shared.patience} "
                f"epochs without a better validation top-1 (TimeSformer joint: peak {joint.lr:g}, a "
                f"{joint.warmup_epochs:g}-epoch warm-up, patience {joint.patience})" + (
                    f"; the first 100-epoch schedule: the current one ({WARMUP:g}-epoch warm-up, patience "
                    f"{FULL.patience}) takes over when this claim's re-run at it is finished." if first else "."))
    return (f"moving-digits motion ({FRAMES}×{IMG} clips; a distractor digit, pixel noise σ {TASK['noise']}, "
            f"{TASK['label_noise']:.0%} of labels redrawn): chance {CHANCE[MOTION]:.1f} %, best order-blind model "
            f"{BLIND:.2f} %, best possible {CEILING:.2f} % (computed from the generator's motion table). Shuffled: one "
            "fixed random frame order for every test clip; reversed: played backwards; order classes: the clips drawn "
            "as right, left, down or up, where an order-blind model is right at most half the time. "
            f"{n} training clips, at most {epochs} epochs, early stopping on {b.val} validation clips, "
            f"{b.test} test clips." + ("" if quick else schedule))
