"""C7 — convolutions bring locality to CvT: it beats ViT on small data and needs no position embedding.

Design: a 2×2 — ViT / CvT × with / without a learned position embedding — every cell trained with the same seeds
and epochs. Removing the position embedding is paired by seed (the same initial weights apart from the table), so
each model's drop (with − without) has a t-interval over seeds, and the claim's causal part, that the convolutions
are what make the table unnecessary, is the difference of the two drops: ViT's minus CvT's.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import rules as R
import torch
from torch import nn

ID, TITLE, DEFAULT_SEEDS = "C7", "Convolutions bring locality to CvT; its position embedding can go", (0, 1, 2, 3, 4)
PAPER = ("CvT Table 3: CvT-13 81.6 top-1 (4.5 GFLOPs) against DeiT-S 79.8 (4.6); Table 5 (ablation): CvT-13 has no "
         "position embedding (81.6) and adding one to every stage gives 81.5 — the convolutional token embedding and "
         "projection already encode position — while DeiT-S drops from 79.8 to 78.0 without its own.")
IMG = 32
VIT = ("vit_tiny_patch16_224", dict(img_size=IMG, patch_size=4, embed_dim=64, depth=4, num_heads=4))
CVT = ("cvt_13_224", dict(img_size=IMG, embed_dims=(32, 64, 96), depths=(1, 1, 2), num_heads=(1, 2, 3)))
ARMS = {"ViT + learned position embedding": (VIT, True), "ViT (no position embedding)": (VIT, False),
        "CvT + learned position embedding": (CVT, True), "CvT (no position embedding)": (CVT, False)}

RULE = R.Rule((
    R.Part("cvt_minus_vit", "CvT (no position embedding) − ViT (with) test top-1 at equal epochs (points)", ">", 0.0,
           1.0),
    R.Part("cvt_pos_drop", "CvT's drop from removing its position embedding, with − without (points)", "≈", 0.0, 1.0),
    R.Part("vit_minus_cvt_drop", "ViT's drop from removing the position embedding minus CvT's (points)", ">", 0.0, 1.0),
))


def add_position_embedding(model: nn.Module) -> nn.Module:
    """CvT with a learned absolute position embedding added after each stage's convolutional token embedding
    (trunc-normal init, resampling not needed at a fixed size)."""
    for stage in model.stages:
        def hook(module, args, output, stage=stage):
            tokens, grid = output
            if not hasattr(stage, "pos_embed"):
                stage.pos_embed = nn.Parameter(torch.zeros(1, tokens.shape[1], tokens.shape[2]))
                nn.init.trunc_normal_(stage.pos_embed, std=0.02)
            return tokens + stage.pos_embed, grid
        stage.patch_embed.register_forward_hook(hook)
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, IMG, IMG))  # creates the tables before the optimiser sees the parameters
    return model.train()


def remove_position_embedding(model: nn.Module) -> nn.Module:
    """ViT without a position embedding: its table held at zero and frozen (every other weight as built)."""
    with torch.no_grad():
        model.pos_embed.zero_()
    model.pos_embed.requires_grad_(False)
    return model


def _train(name: str, ov: dict, with_pos: bool, fit: C.Fit, s: int) -> dict:
    model = C.create(name, seed=s, in_chans=1, num_classes=10, **ov)
    if name == CVT[0] and with_pos:
        add_position_embedding(model)
    elif name == VIT[0] and not with_pos:
        remove_position_embedding(model)
    C.fit(model, *C.digits("train", IMG), fit, s)
    return {"acc": C.accuracy(model, *C.digits("test", IMG)), "params": C.params(model),
            "mmacs": C.gmacs(model, (1, IMG, IMG)) * 1e3}


def _figure(path: Path, acc: dict[str, list[float]]) -> None:
    """The 2×2's mean top-1 (bars from zero, seed spread) and the paired drops with their 95 % intervals (one seed:
    none)."""
    with C.figure(path) as fig:
        ax = fig.add_subplot(1, 2, 1)
        for j, (with_pos, colour) in enumerate(((True, "#36c"), (False, "#999"))):
            cells = [k for k, (_, p) in ARMS.items() if p == with_pos]  # ViT, CvT
            ax.bar([i + 0.38 * (j - 0.5) for i in range(2)], [statistics.mean(acc[k]) for k in cells], 0.36,
                   yerr=[statistics.stdev(acc[k]) if len(acc[k]) > 1 else 0 for k in cells], color=colour,
                   label="with position embedding" if with_pos else "without")
        ax.set_xticks(range(2), ["ViT", "CvT"])
        ax.set_ylim(0, 118)  # room above 100 % for the legend
        ax.set_yticks(range(0, 101, 20))
        ax.set_ylabel("test top-1 on digits (%)")
        ax.legend(fontsize=8, loc="upper center", ncol=2)
        ax = fig.add_subplot(1, 2, 2)
        drops = {m: [a - b for a, b in zip(acc[f"{m} + learned position embedding"], acc[f"{m} (no position embedding)"])]
                 for m in ("ViT", "CvT")}
        band = RULE.parts[1].effect
        ax.axhspan(-band, band, color="#eee", label="CvT's declared band")
        reach = band
        for i, d in enumerate(drops.values()):
            e = R.estimate(d)
            half = 0 if e.n == 1 else e.hi - e.mean
            ax.errorbar([i], [e.mean], yerr=[half], fmt="o", color="#36c", capsize=4)
            reach = max(reach, abs(e.mean) + half)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylim(-1.2 * reach, 1.2 * reach)  # symmetric around zero: no drop
        ax.set_xlim(-0.5, 1.5)
        ax.legend(fontsize=8, loc="upper right")
        ax.set_xticks(range(2), list(drops))
        ax.set_ylabel("drop without position embedding (points)")


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    fit = C.Fit(epochs=2 if quick else 40)
    acc, cost = {}, {}
    for label, ((name, ov), with_pos) in ARMS.items():
        rs = [C.measured(out, {"what": "c7", "model": name, "ov": ov, "pos": with_pos, "fit": fit.__dict__, "seed": s},
                         lambda s=s, name=name, ov=ov, with_pos=with_pos: _train(name, ov, with_pos, fit, s),
                         code=__file__) for s in seeds]
        acc[label] = [r["acc"] for r in rs]
        cost[label] = (rs[0]["params"], rs[0]["mmacs"])
    rows = [[k, f"{cost[k][0] / 1e3:.0f}k", f"{cost[k][1]:.1f}", C.mean_std(v), ", ".join(f"{a:.1f}" for a in v)]
            for k, v in acc.items()]
    vit, vit_no, cvt, cvt_no = list(ARMS)
    vit_drop = [a - b for a, b in zip(acc[vit], acc[vit_no])]
    cvt_drop = [a - b for a, b in zip(acc[cvt], acc[cvt_no])]
    values = {"cvt_minus_vit": [c - v for c, v in zip(acc[cvt_no], acc[vit])], "cvt_pos_drop": cvt_drop,
              "vit_minus_cvt_drop": [v - c for v, c in zip(vit_drop, cvt_drop)]}
    _figure(out / "C7.png", acc)
    return C.ClaimResult(ID, TITLE, PAPER, ["model", "params", "MMACs", "top-1 % (mean ± std)", "per seed"], rows,
                         RULE, values, seeds, quick, figure="C7.png",
                         notes=[f"Digits at {IMG}×{IMG}, {fit.epochs} epochs each (equal budget in epochs); ViT "
                                "without its position embedding keeps the table at zero and frozen; CvT with one adds "
                                "a learned table after each stage's convolutional token embedding.",
                                "ViT's drop (with − without, per seed): " + ", ".join(f"{d:+.1f}" for d in vit_drop)
                                + "; CvT's: " + ", ".join(f"{d:+.1f}" for d in cvt_drop) + "."])
