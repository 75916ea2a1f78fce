"""C8 — ViViT: Model 1 (spatio-temporal) is the most accurate, Model 2 (factorised encoder) the most efficient."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import notes as N
import rules as R
import video as V

ID, TITLE, DEFAULT_SEEDS = "C8", "ViViT: Model 1 most accurate, Model 2 most efficient", (0, 1, 2, 3, 4)
PAPER = ("ViViT Table 2 (ViViT-B, K400 / EK, 32 frames): Model 1 spatio-temporal 80.0 / 43.1 top-1 at 455 GFLOPs; "
         "Model 2 factorised encoder 78.8 / 43.7 at 284; Model 3 factorised self-attention 77.4 / 39.1 at 372; "
         "Model 4 factorised dot-product 76.3 / 39.5 at 277. Model 2 is the fastest: 17.4 ms a clip against 22.9 to "
         "58.9 for the others (Table 2, inference on TPU-v3).")
# the paper's Table 2 GFLOPs, to set beside vitkit's counts
PAPER_GFLOPS = {"Model 1 spatio-temporal": 455.2, "Model 2 factorised encoder": 284.4,
                "Model 3 factorised self-attention": 372.3, "Model 4 factorised dot-product": 277.1}
MODELS = {"Model 1 spatio-temporal": "vivit_base_16x2_spatiotemporal",
          "Model 2 factorised encoder": "vivit_base_16x2_factorised_encoder",
          "Model 3 factorised self-attention": "vivit_base_16x2_factorised_self_attention",
          "Model 4 factorised dot-product": "vivit_base_16x2_factorised_dot_product"}


# Declared 2026-12-06, before the run at the 100-epoch budget: the former cost part ("Model 2's GFLOPs below every
# other model's") was arithmetic on the paper's configuration, decided before anything ran, and the paper's own
# Table 2 fails it (Model 4 has fewer); the paper's case for Model 2's efficiency is its runtime. The speed part
# needs a 10 % margin, the drift of one timing on a shared machine.
RULE = R.Rule((
    R.Part("m1_minus_best_other", "Model 1 − the best other model, test top-1 per seed (points)", ">", 0.0, 0.5),
    R.Part("m2_speed_ratio", "Model 2's clips/s over the fastest other model's, ViViT-B at 32×224 (quick: 8×224) "
           "on this CPU", ">", 1.0, 1.1, exact=True),
))


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    res = {k: [V.train_video(out, name, V.VIVIT, V.MOTION, s, quick) for s in seeds] for k, name in MODELS.items()}
    paper = {k: V.paper_cost(out, name, quick) for k, name in MODELS.items()}
    acc = {k: [r["acc"] for r in rs] for k, rs in res.items()}
    rows = [[k, f"{rs[0]['gmacs'] * 1e3:.1f}", f"{paper[k]['gmacs']:.0f}", f"{paper[k]['clips_per_s']:.3f}",
             C.mean_std(acc[k]), C.mean_std([r["acc_shuffled"] for r in rs]),
             C.mean_std([r["acc_reversed"] for r in rs]), C.mean_std([r["acc_order_classes"] for r in rs])]
            for k, rs in res.items()]
    m1, m2 = list(MODELS)[:2]
    fastest_other = max(paper[k]["clips_per_s"] for k in MODELS if k != m2)
    values = {"m1_minus_best_other": [acc[m1][i] - max(acc[k][i] for k in MODELS if k != m1) for i in range(len(seeds))],
              "m2_speed_ratio": [paper[m2]["clips_per_s"] / fastest_other]}
    with C.figure(out / "C8.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        for k in MODELS:
            ax.errorbar(paper[k]["gmacs"], statistics.mean(acc[k]), yerr=statistics.stdev(acc[k]) if len(seeds) > 1 else 0,
                        marker="o", capsize=3, label=k)
        ax.set_xlabel("GFLOPs per clip of ViViT-B at 32×224 (the tiny models' accuracy)")
        ax.set_ylabel("test top-1 (%), moving-digits motion")
        ax.set_ylim(0, 100)
        ax.set_xlim(0, 1.1 * max(p["gmacs"] for p in paper.values()))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        for level, what in ((V.CEILING, "best possible"), (V.BLIND, "best order-blind"), (V.CHANCE[V.MOTION], "chance")):
            ax.axhline(level, color="grey", lw=0.8, ls=":")
            ax.annotate(what, (2, level), fontsize=7, va="bottom")
    return C.ClaimResult(ID, TITLE, PAPER, ["model", "MMACs / clip (tiny)", "GFLOPs / clip (ViViT-B 32×224)",
                                            "clips/s (ViViT-B, timed input)", "top-1 %", "top-1 %, frames shuffled",
                                            "top-1 %, frames reversed", "top-1 % on the order classes"],
                         rows, RULE, values, seeds, quick, figure="C8.png", notes=notes(res, paper, quick, seeds))


def notes(res: dict, paper: dict, quick: bool, seeds: list[int]) -> list[str]:
    timed = next(iter(paper.values()))
    frames, size = timed["timed_input"][1], timed["timed_input"][-1]
    return ["Accuracy: tiny models (tubelet 2×8×8, D 48, 2 blocks; Model 2: 2 spatial + 1 temporal) on "
            + V.task_note(quick),
            f"Cost: ViViT-B at the paper's configuration (32 frames, 224², tubelet 2×16×16), GFLOPs counted by "
            f"vitkit's profiler on the meta device; clips/s of fp32 inference of ViViT-B at {frames}×{size}, batch "
            f"{timed['batch']}, on this CPU ({'one timed forward' if quick else 'the median of 3 after a warm-up'}).",
            _paper_cost_note(paper), *N.capped(res, V.budget(quick).epochs), *V.learned_note(res, V.MOTION),
            *N.outliers(res, seeds)]


def _paper_cost_note(paper: dict) -> str:
    """vitkit's GFLOPs beside the paper's, and the cost part judged on the paper's own figures."""
    worst = max(abs(paper[k]["gmacs"] / g - 1) for k, g in PAPER_GFLOPS.items())
    m2, others = PAPER_GFLOPS["Model 2 factorised encoder"], [g for k, g in PAPER_GFLOPS.items() if "Model 2" not in k]
    listed = ", ".join(f"{g:g}" for g in PAPER_GFLOPS.values())
    return (f"vitkit's GFLOPs are within {worst:.1%} of the paper's Table 2 ({listed}). "
            f"Model 2 does not have the fewest FLOPs in the paper either ({m2:g} / {min(others):g} = "
            f"{m2 / min(others):.2f}): its case for efficiency is its runtime, so the rule judges clips per second.")

