"""C8 — ViViT: Model 1 (spatio-temporal) is the most accurate, Model 2 (factorised encoder) the most efficient."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import rules as R
import video as V

ID, TITLE, DEFAULT_SEEDS = "C8", "ViViT: Model 1 most accurate, Model 2 most efficient", (0, 1, 2)
PAPER = ("ViViT Table 2 (ViViT-B, K400 / EK, 32 frames): Model 1 spatio-temporal 80.0 / 43.1 top-1 at 455 GFLOPs; "
         "Model 2 factorised encoder 78.8 / 43.7 at 284; Model 3 factorised self-attention 77.4 / 39.1 at 372; "
         "Model 4 factorised dot-product 76.3 / 39.5 at 372. Model 2 is the fastest (Fig. / Table 2 runtimes).")
MODELS = {"Model 1 spatio-temporal": "vivit_base_16x2_spatiotemporal",
          "Model 2 factorised encoder": "vivit_base_16x2_factorised_encoder",
          "Model 3 factorised self-attention": "vivit_base_16x2_factorised_self_attention",
          "Model 4 factorised dot-product": "vivit_base_16x2_factorised_dot_product"}


RULE = R.Rule((
    R.Part("m1_minus_best_other", "Model 1 − the best other model, test top-1 per seed (points)", ">", 0.0, 0.5),
    R.Part("m2_cost_ratio", "Model 2's GMACs over the cheapest other model's", "<", 1.0, 1.0, exact=True),
    R.Part("m2_speed_ratio", "Model 2's clips/s over the fastest other model's, on this CPU", ">", 1.0, 1.0,
           exact=True),
))


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    res = {k: [V.train_video(out, name, V.VIVIT, "direction", s, quick) for s in seeds] for k, name in MODELS.items()}
    speed = {k: V.speed(out, name, V.VIVIT) for k, name in MODELS.items()}
    rows = [[k, f"{rs[0]['params'] / 1e3:.0f}k", f"{rs[0]['gmacs'] * 1e3:.1f}", f"{speed[k]:.0f}",
             C.mean_std([r["acc"] for r in rs])] for k, rs in res.items()]
    acc = {k: statistics.mean(r["acc"] for r in rs) for k, rs in res.items()}
    cost = {k: rs[0]["gmacs"] for k, rs in res.items()}
    m1, m2 = list(MODELS)[:2]
    values = {"m1_minus_best_other": [res[m1][i]["acc"] - max(res[k][i]["acc"] for k in MODELS if k != m1)
                                      for i in range(len(seeds))],
              "m2_cost_ratio": [cost[m2] / min(v for k, v in cost.items() if k != m2)],
              "m2_speed_ratio": [speed[m2] / max(v for k, v in speed.items() if k != m2)]}
    with C.figure(out / "C8.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        for k in MODELS:
            ax.errorbar(cost[k] * 1e3, acc[k], yerr=statistics.stdev(r["acc"] for r in res[k]) if len(seeds) > 1 else 0,
                        marker="o", capsize=3, label=k)
        ax.set_xlabel("MMACs per clip")
        ax.set_ylabel("test top-1 (%), moving-digits direction")
        ax.set_ylim(0, 102)
        ax.legend(fontsize=8)
    return C.ClaimResult(ID, TITLE, PAPER, ["model", "params", "MMACs / clip", "clips/s (batch 4)",
                                            "top-1 % (mean ± std)"], rows, RULE, values, seeds, quick,
                         figure="C8.png",
                         notes=[f"moving-digits direction (8 classes, chance 12.5 %), {V.FRAMES}×{V.IMG} clips, tubelet "
                                f"2×8×8, D 48, 2 blocks (Model 2: 2 spatial + 1 temporal); "
                                f"{V.train_sizes(quick)[0]} training clips, {V.train_sizes(quick)[1]} epochs."])
