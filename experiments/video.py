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


def train_sizes(quick: bool) -> tuple[int, int]:
    """(training clips, epochs)."""
    return (128, 1) if quick else (4096, 12)


def data(split: str, label: str, quick: bool):
    n = train_sizes(quick)[0] if split == "train" else (64 if quick else 512)
    return C.moving_digits(split, n, FRAMES, IMG, label)


def shuffled(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The same clips with their frames in one random order (B, C, T, H, W)."""
    perm = torch.randperm(x.shape[2], generator=torch.Generator().manual_seed(seed))
    return x[:, :, perm]


def train_video(out: Path, name: str, overrides: dict, label: str, seed: int, quick: bool,
                extra: tuple[str, ...] = ()) -> dict:
    """Train one tiny video model (cached): test accuracy, params, GMACs per clip, clips/s; `extra` may ask for
    "shuffled" (accuracy with the test frames shuffled)."""
    classes = C.DIRECTIONS if label == "direction" else C.DIGITS_CLASSES
    n, epochs = train_sizes(quick)
    fit = C.Fit(epochs=epochs, batch_size=32, max_shift=0, warmup_epochs=1.0)

    def run() -> dict:
        model = C.create(name, num_classes=classes, **overrides)
        x, y = data("train", label, quick)
        test = data("test", label, quick)
        r = C.fit(model, x, y, fit, seed)
        shape = model.input_shape()
        result = {"acc": C.accuracy(model, *test), "params": C.params(model), "gmacs": C.gmacs(model, shape),
                  "train_s": r["seconds"]}
        if "shuffled" in extra:
            result["acc_shuffled"] = C.accuracy(model, shuffled(test[0]), test[1])
        return result

    result = C.cached(out, {"what": "video", "model": name, "ov": overrides, "label": label, "seed": seed,
                          "quick": quick, "fit": fit.__dict__, "n": n, "extra": list(extra)}, run)
    # speed is measured now, not cached: it belongs to this machine at this moment, not to the trained weights
    model = C.create(name, num_classes=classes, **overrides)
    result["clips_per_s"] = C.throughput(model, model.input_shape(), batch_size=4, steps=5)
    return result
