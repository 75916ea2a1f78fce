"""C10 — MViT matches heavier models while lighter, and uses time order where a ViT does not."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import notes as N
import rules as R
import video as V

ID, TITLE, DEFAULT_SEEDS = "C10", "MViT: accurate for its cost, and sensitive to frame order", (0, 1, 2, 3, 4)
PAPER = ("MViT Table 4 (K400): MViT-B 16×4 78.4 top-1 and MViT-B 32×3 80.2 at 70.5 and 170 GFLOPs × 5 views, "
         "trained from scratch, against ImageNet-21k-pre-trained TimeSformer 80.7 at 2380 × 3 and ViViT-L 81.3 at "
         "3992 × 12; App. A: MViT-B 32×3 matches ViViT-L's 80.3 (4 × 1446) at 6.8× fewer FLOPs; "
         "Table 9: shuffling the test frames costs MViT-B 7.1 points and a ViT-B "
         "(trained the same way) 0.1 — MViT uses the order of frames.")
MODELS = {"MViT (pooling attention)": ("mvit_base_16x4", V.MVIT),
          "ViViT Model 1 (joint space-time ViT)": ("vivit_base_16x2_spatiotemporal", V.VIVIT),
          "TimeSformer divided": ("timesformer_base_8x224_divided_space_time", V.TIMESFORMER)}


RULE = R.Rule((
    R.Part("mvit_cost_ratio", "MViT's GMACs over the lightest other model's", "<", 1.0, 0.5, exact=True),
    R.Part("mvit_minus_best", "MViT − the best other model, test top-1 per seed (points)", ">", -5.0, -2.0),
    R.Part("mvit_shuffle_drop", "the points MViT loses with shuffled test frames", ">", 0.0, 5.0),
    R.Part("vit_shuffle_drop", "the points the joint space-time ViT loses with shuffled test frames", "≈", 0.0, 2.0),
))


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    res = {k: [V.train_video(out, name, ov, V.MOTION, s, quick) for s in seeds] for k, (name, ov) in MODELS.items()}
    rows, acc, drop = [], {}, {}
    for k, rs in res.items():
        acc[k] = statistics.mean(r["acc"] for r in rs)
        drop[k] = [r["acc"] - r["acc_shuffled"] for r in rs]
        rows.append([k, f"{rs[0]['params'] / 1e3:.0f}k", f"{rs[0]['gmacs'] * 1e3:.1f}",
                     *(C.mean_std([r[key] for r in rs]) for key in ("acc", "acc_shuffled", "acc_reversed",
                                                                     "acc_order_classes")),
                     f"{statistics.mean(drop[k]):.1f}"])
    mvit, vit, _ = list(MODELS)
    cost = {k: res[k][0]["gmacs"] for k in MODELS}
    values = {"mvit_cost_ratio": [cost[mvit] / min(v for k, v in cost.items() if k != mvit)],
              "mvit_minus_best": [res[mvit][i]["acc"] - max(res[k][i]["acc"] for k in MODELS if k != mvit)
                                  for i in range(len(seeds))],
              "mvit_shuffle_drop": drop[mvit], "vit_shuffle_drop": drop[vit]}
    with C.figure(out / "C10.png") as fig:
        ax = fig.add_subplot(1, 2, 1)
        for k in MODELS:
            ax.scatter(cost[k] * 1e3, acc[k], label=k)
        ax.axhline(V.BLIND, color="grey", lw=0.8, ls=":", label="best order-blind top-1")
        ax.set_xscale("log")
        ax.set_xlabel("MMACs per clip")
        ax.set_ylabel("test top-1 (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
        ax = fig.add_subplot(1, 2, 2)
        width = 0.38
        for j, (key, what) in enumerate((("acc_shuffled", "shuffled"), ("acc_reversed", "reversed"))):
            ax.bar([i + (j - 0.5) * width for i in range(len(MODELS))],
                   [acc[k] - statistics.mean(r[key] for r in res[k]) for k in MODELS], width, label=what)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(MODELS)), ["MViT", "ViViT M1", "TimeSformer"])
        ax.set_ylabel("top-1 points lost, test frames")
        ax.legend(fontsize=7)
    return C.ClaimResult(ID, TITLE, PAPER, ["model", "params", "MMACs / clip", "top-1 %", "top-1 %, frames shuffled",
                                            "top-1 %, frames reversed", "top-1 % on the order classes",
                                            "drop with shuffled frames (points)"], rows, RULE, values, seeds, quick,
                         figure="C10.png",
                         notes=["Order decides 4 of the 8 classes, so a model that ignores it loses nothing "
                                "with shuffled or reversed frames and is capped at the order-blind level.",
                                V.task_note(quick), *N.capped(res, V.budget(quick).epochs),
                                *V.learned_note(res, V.MOTION)])
