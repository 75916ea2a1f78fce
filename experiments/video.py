"""What the video claims (C8–C10) share: tiny models of each family on moving-digits clips (1 channel, 32×32,
8 frames), trained on a fixed generated set and tested on the test split, with cost counted per clip."""

from __future__ import annotations

from pathlib import Path

import common as C
import torch

FRAMES, IMG = 8, 32
TINY = dict(img_size=IMG, num_frames=FRAMES, in_chans=1)
VIVIT = dict(TINY, patch_size=8, tubelet_size=2, embed_dim=48, depth=2, temporal_depth=1, num_heads=4)
TIMESFORMER = dict(TINY, patch_size=8, embed_dim=48, depth=2, num_heads=4)
MVIT = dict(TINY, embed_dim=16, depths=(1, 1), pool_stride_kv=(1, 4, 4), head_drop_rate=0.0, drop_path_rate=0.0)


# (training clips, epochs): in quick mode enough steps for the quickest models (MViT, ViViT Model 1) to learn
FULL, QUICK = (4096, 12), (512, 4)


def train_sizes(quick: bool) -> tuple[int, int]:
    return QUICK if quick else FULL


def data(split: str, label: str, n: int):
    return C.moving_digits(split, n, FRAMES, IMG, label)


def shuffled(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The same clips with their frames in one random order (B, C, T, H, W)."""
    perm = torch.randperm(x.shape[2], generator=torch.Generator().manual_seed(seed))
    return x[:, :, perm]


def train_video(out: Path, name: str, overrides: dict, label: str, seed: int, quick: bool,
                extra: tuple[str, ...] = (), budget: tuple[int, int] | None = None) -> dict:
    """Train one tiny video model (cached): test accuracy, params and GMACs per clip; `extra` may ask for
    "shuffled" (accuracy with the test frames shuffled); `budget` (clips, epochs) replaces the mode's."""
    classes = C.DIRECTIONS if label == "direction" else C.DIGITS_CLASSES
    n, epochs = budget or train_sizes(quick)
    n_test = 128 if quick else 512
    fit = C.Fit(epochs=epochs, batch_size=32, max_shift=0, warmup_epochs=0.5, lr=2e-3) if quick else \
        C.Fit(epochs=epochs, batch_size=32, max_shift=0, warmup_epochs=1.0)

    def run() -> dict:
        model = C.create(name, seed=seed, num_classes=classes, **overrides)
        test = data("test", label, n_test)
        C.fit(model, *data("train", label, n), fit, seed)
        result = {"acc": C.accuracy(model, *test), "params": C.params(model),
                  "gmacs": C.gmacs(model, model.input_shape())}
        if "shuffled" in extra:
            result["acc_shuffled"] = C.accuracy(model, shuffled(test[0]), test[1])
        return result

    return C.measured(out, {"what": "video", "model": name, "ov": overrides, "label": label, "seed": seed,
                            "fit": fit.__dict__, "n": n, "n_test": n_test, "extra": list(extra)}, run, code=__file__)


def speed(out: Path, name: str, overrides: dict) -> float:
    """Clips per second (batch 4) on this machine now: recorded in the raw results, never cached."""
    def run() -> dict:
        model = C.create(name, seed=0, num_classes=C.DIRECTIONS, **overrides)
        return {"clips_per_s": C.throughput(model, model.input_shape(), batch_size=4, steps=5)}

    return C.measured(out, {"what": "video-speed", "model": name, "ov": overrides}, run, code=__file__,
                      keep=False)["clips_per_s"]
