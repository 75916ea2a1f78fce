"""C9 — TimeSformer's attention schemes: close on appearance, far apart when the label is motion."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import notes as N
import rules as R
import video as V

ID, TITLE, DEFAULT_SEEDS = "C9", "TimeSformer's schemes: space-only falls behind when motion is the label", (0, 1, 2)
PAPER = ("TimeSformer Table 1 (K400 / SSv2 top-1): space-only 76.9 / 36.6, joint space-time 77.4 / 58.5, divided "
         "space-time 78.0 / 59.5, sparse local-global 75.9 / 56.3, axial 73.5 / 56.2 — close on K400 (appearance), "
         "while space-only falls ~20 points behind on SSv2 (motion).")
SCHEMES = ("space_only", "joint_space_time", "divided_space_time", "local_global", "axial")
TASKS = {"digit (appearance)": V.APPEARANCE, "motion": V.MOTION}


RULE = R.Rule((
    R.Part("appearance_range", "the range of the five schemes' top-1 on the appearance task, per seed (points)", "<",
           10.0, 5.0),
    R.Part("motion_gap", "the mean of the other four schemes − space-only on the motion task, per seed (points)", ">",
           0.0, 10.0),
))
QUICK_SIZE = (128, 1)  # (clips, epochs): ten runs do not fit the quick test's time with the learning budget


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    size = QUICK_SIZE if quick else None
    res = {(s, t): [V.train_video(out, f"timesformer_base_8x224_{s}", V.TIMESFORMER, label, seed, quick, size=size)
                    for seed in seeds] for s in SCHEMES for t, label in TASKS.items()}
    acc = {k: [r["acc"] for r in rs] for k, rs in res.items()}
    appearance, motion = list(TASKS)
    rows = [[s.replace("_", " "), C.mean_std(acc[s, appearance]), C.mean_std(acc[s, motion]),
             *(C.mean_std([r[key] for r in res[s, motion]]) for key in ("acc_shuffled", "acc_reversed",
                                                                         "acc_order_classes"))] for s in SCHEMES]
    mean = {k: statistics.mean(v) for k, v in acc.items()}
    values = {"appearance_range": [max(acc[s, appearance][i] for s in SCHEMES) - min(acc[s, appearance][i] for s in SCHEMES)
                                   for i in range(len(seeds))],
              "motion_gap": [statistics.mean(acc[s, motion][i] for s in SCHEMES if s != "space_only")
                             - acc["space_only", motion][i] for i in range(len(seeds))]}
    with C.figure(out / "C9.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        width = 0.38
        for j, t in enumerate(TASKS):
            ax.bar([i + (j - 0.5) * width for i in range(len(SCHEMES))], [mean[s, t] for s in SCHEMES], width, label=t)
        ax.axhline(V.BLIND, color="grey", lw=0.8, ls=":", label="best order-blind top-1, motion")
        ax.set_xticks(range(len(SCHEMES)), [s.replace("_", "\n") for s in SCHEMES])
        ax.set_ylabel("test top-1 (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
    row = {(s, t): f"{s.replace('_', ' ')} on {t}" for s in SCHEMES for t in TASKS}
    capped = N.capped({row[k]: rs for k, rs in res.items()}, size[1] if size else V.budget(quick).epochs)
    stuck = [note for t, label in TASKS.items()
             for note in V.learned_note({row[s, t]: res[s, t] for s in SCHEMES}, label)]
    return C.ClaimResult(ID, TITLE, PAPER, ["scheme", *(f"{t} top-1 %" for t in TASKS), "motion, frames shuffled",
                                            "motion, frames reversed", "motion, order classes"], rows, RULE, values,
                         seeds, quick, figure="C9.png",
                         notes=["The same clips for both tasks, labelled by the digit that moves (chance 10 %, best "
                                f"possible {V.APPEARANCE_CEILING:.2f} %) or by its motion. Motion: "
                                + V.task_note(quick, size),
                                f"TimeSformer {V.FRAMES}×{V.IMG}, patch 8, D 48, 2 blocks.", *capped, *stuck,
                                *N.outliers({row[k]: rs for k, rs in res.items()}, seeds)])
