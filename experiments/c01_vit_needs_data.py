"""C1 — ViT needs large data: a CNN wins on small data, and the gap shrinks, then turns, as the data grows."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import common as C
import rules as R

ID, TITLE, DEFAULT_SEEDS = "C1", "ViT needs large data", (0, 1, 2)
PAPER = ("ViT §4.2–4.3, App. C Table 5 and Fig. 3–4: pre-trained on ImageNet (1.3M) ViT-B/16 reaches 77.9 against "
         "BiT's ResNets above it; on ImageNet-21k (14M) 84.0 and on JFT-300M 84.2, overtaking ResNets of similar "
         "cost — the CNN's inductive bias wins on small data, ViT wins once data is large.")
IMG = 16
MODELS = {
    "ViT (D 64, 4 blocks, patch 4)": ("vit_tiny_patch16_224", dict(img_size=IMG, patch_size=4, embed_dim=64, depth=4,
                                                                  num_heads=4, in_chans=1, num_classes=10)),
    "ResNet (3 stages)": ("resnet_tiny_cifar", dict(img_size=IMG, in_chans=1, num_classes=10)),
}


def _cost(name: str, ov: dict) -> dict:
    m = C.create(name, seed=0, **ov)
    return {"params": C.params(m), "mmacs": C.gmacs(m, (1, IMG, IMG)) * 1e3}


def _error(accs: list[float]) -> float:
    return 100.0 - statistics.mean(accs)


def sizes(quick: bool) -> list[int]:
    return [250, 1000] if quick else [500, 1500, 5000, 15000, 50000]


RULE = R.Rule((
    R.Part("gap_change", "the change of ViT − ResNet top-1 from the smallest to the largest set (points)", ">", 0.0, 1.0),
    R.Part("gap_largest", "ViT − ResNet top-1 on the largest set (points)", ">", 0.0, 0.0),
))


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    steps = 40 if quick else 2000
    fit = C.Fit(steps=steps, warmup_epochs=0.0, max_shift=0)
    test = C.digits("test", IMG)
    acc: dict[tuple[str, int], list[float]] = {}
    cost = {label: C.measured(out, {"what": "c1-cost", "model": name, "ov": ov},
                              lambda name=name, ov=ov: _cost(name, ov), code=__file__) for label, (name, ov) in MODELS.items()}
    for n in sizes(quick):
        x, y = C.deformed_digits(n, IMG)
        for s in seeds:
            for label, (name, ov) in MODELS.items():
                def train(name=name, ov=ov, s=s, n=n, x=x, y=y):
                    model = C.create(name, seed=s, **ov)
                    warm = replace(fit, warmup_epochs=0.1 * steps / max(1, n // fit.batch_size))  # 10 % of steps
                    C.fit(model, x, y, warm, s)
                    return {"acc": C.accuracy(model, *test)}
                r = C.measured(out, {"what": "c1", "model": name, "ov": ov, "n": n, "seed": s, "steps": steps}, train,
                               code=__file__)
                acc[label, n] = [*acc.get((label, n), []), r["acc"]]
    vit, cnn = list(MODELS)
    gap = {n: [v - c for v, c in zip(acc[vit, n], acc[cnn, n])] for n in sizes(quick)}  # per seed
    small, large = sizes(quick)[0], sizes(quick)[-1]
    values = {"gap_change": [b - a for a, b in zip(gap[small], gap[large])], "gap_largest": gap[large]}
    rows = [[n, C.mean_std(acc[vit, n]), C.mean_std(acc[cnn, n]), f"{statistics.mean(gap[n]):+.1f}",
             f"{_error(acc[vit, n]) / max(_error(acc[cnn, n]), 1e-9):.1f}"] for n in sizes(quick)]
    with C.figure(out / "C1.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        for label in MODELS:
            ax.errorbar(sizes(quick), [statistics.mean(acc[label, n]) for n in sizes(quick)],
                        yerr=[statistics.stdev(acc[label, n]) if len(seeds) > 1 else 0 for n in sizes(quick)],
                        marker="o", capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("training images (generated: warped digits)")
        ax.set_ylabel("test top-1 on real digits (%)")
        ax.set_ylim(0, 102)
        ax.legend()
    return C.ClaimResult(
        ID, TITLE, PAPER, ["training images", "ViT top-1 %", "ResNet top-1 %", "ViT − ResNet",
                           "ViT error / ResNet error"], rows, RULE, values, seeds, quick, figure="C1.png",
        notes=[f"Same step budget for every size ({steps} steps of batch 64), tested on the real digits test split; "
               f"cost: ViT {cost[vit]['params'] / 1e3:.0f}k params, {cost[vit]['mmacs']:.1f} MMACs; ResNet "
               f"{cost[cnn]['params'] / 1e3:.0f}k params, {cost[cnn]['mmacs']:.1f} MMACs.",
               "The generated set (experiments/common.deformed_digits) warps the 1,257 training digits with random "
               "affine maps and noise: it grows the sample count, not the number of writers, so it shows the effect "
               "of more views, not of more content."])
