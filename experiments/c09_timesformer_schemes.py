"""C9 — TimeSformer's attention schemes: close on appearance, far apart when the label is motion."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import rules as R
import video as V

ID, TITLE, DEFAULT_SEEDS = "C9", "TimeSformer's schemes: space-only falls behind when motion is the label", (0, 1, 2)
PAPER = ("TimeSformer Table 1 (K400 / SSv2 top-1): space-only 76.9 / 36.6, joint space-time 77.4 / 58.5, divided "
         "space-time 78.0 / 59.5, sparse local-global 75.9 / 56.3, axial 73.5 / 56.2 — close on K400 (appearance), "
         "while space-only falls ~20 points behind on SSv2 (motion).")
SCHEMES = ("space_only", "joint_space_time", "divided_space_time", "local_global", "axial")
TASKS = {"digit (appearance)": "digit", "direction (motion)": "direction"}


RULE = R.Rule((
    R.Part("appearance_range", "the range of the five schemes' top-1 on the appearance task, per seed (points)", "<",
           10.0, 5.0),
    R.Part("motion_gap", "the mean of the other four schemes − space-only on the motion task, per seed (points)", ">",
           0.0, 10.0),
))
QUICK_BUDGET = (128, 1)  # (clips, epochs): ten runs do not fit the quick test's time with the learning budget


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    budget = QUICK_BUDGET if quick else None
    acc = {(s, t): [V.train_video(out, f"timesformer_base_8x224_{s}", V.TIMESFORMER, label, seed, quick,
                                  budget=budget)["acc"] for seed in seeds] for s in SCHEMES for t, label in TASKS.items()}
    rows = [[s.replace("_", " ")] + [C.mean_std(acc[s, t]) for t in TASKS] for s in SCHEMES]
    mean = {k: statistics.mean(v) for k, v in acc.items()}
    appearance, motion = list(TASKS)
    values = {"appearance_range": [max(acc[s, appearance][i] for s in SCHEMES) - min(acc[s, appearance][i] for s in SCHEMES)
                                   for i in range(len(seeds))],
              "motion_gap": [statistics.mean(acc[s, motion][i] for s in SCHEMES if s != "space_only")
                             - acc["space_only", motion][i] for i in range(len(seeds))]}
    chance = {appearance: 100 / C.DIGITS_CLASSES, motion: 100 / C.DIRECTIONS}
    at_chance = [f"{s.replace('_', ' ')} on {t}" for s in SCHEMES for t in TASKS if mean[s, t] < chance[t] + 3]
    with C.figure(out / "C9.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        width = 0.38
        for j, t in enumerate(TASKS):
            ax.bar([i + (j - 0.5) * width for i in range(len(SCHEMES))], [mean[s, t] for s in SCHEMES], width, label=t)
        ax.set_xticks(range(len(SCHEMES)), [s.replace("_", "\n") for s in SCHEMES])
        ax.set_ylabel("test top-1 (%)")
        ax.legend()
    return C.ClaimResult(ID, TITLE, PAPER, ["scheme", *(f"{t} top-1 %" for t in TASKS)], rows, RULE, values, seeds,
                         quick, figure="C9.png",
                         notes=["Same clips for both tasks (moving-digits with label='digit' or 'direction'); "
                                f"{V.FRAMES}×{V.IMG}, patch 8, D 48, 2 blocks; retires the old "
                                "experiments/moving_digits_timesformer.py.",
                                *([f"Within 3 points of chance: {'; '.join(at_chance)}."] if at_chance else [])])
