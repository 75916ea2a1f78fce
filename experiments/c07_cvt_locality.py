"""C7 — convolutions bring locality to CvT: it beats ViT on small data and needs no position embedding."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import rules as R
import torch
from torch import nn

ID, TITLE, DEFAULT_SEEDS = "C7", "Convolutions bring locality to CvT; its position embedding can go", (0, 1, 2)
PAPER = ("CvT Table 3: CvT-13 81.6 top-1 (4.5 GFLOPs) against DeiT-S 79.8 (4.6); Table 5 (ablation): removing the "
         "position embedding from CvT-13 changes 81.6 to 81.5 — the convolutional token embedding and projection "
         "already encode position.")
IMG = 32
VIT = ("vit_tiny_patch16_224", dict(img_size=IMG, patch_size=4, embed_dim=64, depth=4, num_heads=4))
CVT = ("cvt_13_224", dict(img_size=IMG, embed_dims=(32, 64, 96), depths=(1, 1, 2), num_heads=(1, 2, 3)))


def add_position_embedding(model: nn.Module) -> nn.Module:
    """The ablation's other arm: a learned absolute position embedding added after each stage's convolutional
    token embedding (trunc-normal init, resampling not needed at a fixed size)."""
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


RULE = R.Rule((
    R.Part("cvt_minus_vit", "CvT − ViT test top-1 at equal epochs (points)", ">", 0.0, 1.0),
    R.Part("pos_effect", "CvT without − with a learned position embedding, test top-1 (points)", "≈", 0.0, 1.0),
))


def _train(name: str, ov: dict, with_pos: bool, fit: C.Fit, s: int) -> dict:
    model = C.create(name, seed=s, in_chans=1, num_classes=10, **ov)
    if with_pos:
        add_position_embedding(model)
    C.fit(model, *C.digits("train", IMG), fit, s)
    return {"acc": C.accuracy(model, *C.digits("test", IMG)), "params": C.params(model),
            "mmacs": C.gmacs(model, (1, IMG, IMG)) * 1e3}


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    fit = C.Fit(epochs=2 if quick else 40)
    arms = {"ViT (patch 4)": (VIT, False), "CvT (no position embedding)": (CVT, False),
            "CvT + learned position embedding": (CVT, True)}
    acc, cost = {}, {}
    for label, ((name, ov), with_pos) in arms.items():
        rs = [C.measured(out, {"what": "c7", "model": name, "ov": ov, "pos": with_pos, "fit": fit.__dict__, "seed": s},
                         lambda s=s, name=name, ov=ov, with_pos=with_pos: _train(name, ov, with_pos, fit, s),
                         code=__file__) for s in seeds]
        acc[label] = [r["acc"] for r in rs]
        cost[label] = (rs[0]["params"], rs[0]["mmacs"])
    rows = [[k, f"{cost[k][0] / 1e3:.0f}k", f"{cost[k][1]:.1f}", C.mean_std(v), ", ".join(f"{a:.1f}" for a in v)]
            for k, v in acc.items()]
    m = {k: statistics.mean(v) for k, v in acc.items()}
    vit, cvt, cvt_pos = list(arms)
    values = {"cvt_minus_vit": [c - v for c, v in zip(acc[cvt], acc[vit])],
              "pos_effect": [c - p for c, p in zip(acc[cvt], acc[cvt_pos])]}
    with C.figure(out / "C7.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        ax.bar(range(len(m)), list(m.values()),
               yerr=[statistics.stdev(v) if len(v) > 1 else 0 for v in acc.values()], color=["#999", "#36c", "#6ac"])
        ax.set_xticks(range(len(m)), list(m))
        ax.set_ylim(0, 100)
        ax.set_ylabel("test top-1 on digits (%)")
    return C.ClaimResult(ID, TITLE, PAPER, ["model", "params", "MMACs", "top-1 % (mean ± std)", "per seed"], rows,
                         RULE, values, seeds, quick, figure="C7.png",
                         notes=[f"Digits at {IMG}×{IMG}, {fit.epochs} epochs each (equal budget in epochs)."])
