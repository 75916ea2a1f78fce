"""C9 — TimeSformer's attention schemes: close on appearance, far apart when the label is motion."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import video as V

ID, TITLE, DEFAULT_SEEDS = "C9", "TimeSformer's schemes: space-only falls behind when motion is the label", (0, 1, 2)
PAPER = ("TimeSformer Table 1 (K400 / SSv2 top-1): space-only 76.9 / 36.6, joint space-time 77.4 / 58.5, divided "
         "space-time 78.0 / 59.5, sparse local-global 75.9 / 56.3, axial 73.5 / 56.2 — close on K400 (appearance), "
         "while space-only falls ~20 points behind on SSv2 (motion).")
SCHEMES = ("space_only", "joint_space_time", "divided_space_time", "local_global", "axial")
TASKS = {"digit (appearance)": "digit", "direction (motion)": "direction"}


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    acc = {(s, t): [V.train_video(out, f"timesformer_base_8x224_{s}", V.TIMESFORMER, label, seed, quick)["acc"]
                    for seed in seeds] for s in SCHEMES for t, label in TASKS.items()}
    rows = [[s.replace("_", " ")] + [C.mean_std(acc[s, t]) for t in TASKS] for s in SCHEMES]
    mean = {k: statistics.mean(v) for k, v in acc.items()}
    appearance, motion = list(TASKS)
    spread_app = max(mean[s, appearance] for s in SCHEMES) - min(mean[s, appearance] for s in SCHEMES)
    others = [mean[s, motion] for s in SCHEMES if s != "space_only"]
    gap_motion = statistics.mean(others) - mean["space_only", motion]
    close, far = spread_app < 5.0, gap_motion > 20.0
    verdict = "reproduced" if close and far else "partly reproduced" if close or far else "not reproduced"
    why = (f"on the appearance task the five schemes lie within {spread_app:.1f} points; on the motion task "
           f"space-only is {gap_motion:.1f} points below the mean of the other four (chance is 12.5 %).")
    chance = {appearance: 100 / C.DIGITS_CLASSES, motion: 100 / C.DIRECTIONS}
    stuck = [f"{s.replace('_', ' ')} on {t.split()[0]}" for s in SCHEMES for t in TASKS
             if s != "space_only" and mean[s, t] < chance[t] + 3]
    if stuck:
        why += (f" {'; '.join(stuck).capitalize()} stayed at chance: that scheme did not learn at this budget (2 blocks, "
                "12 epochs), so its row says nothing about the scheme itself.")
    with C.figure(out / "C9.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        width = 0.38
        for j, t in enumerate(TASKS):
            ax.bar([i + (j - 0.5) * width for i in range(len(SCHEMES))], [mean[s, t] for s in SCHEMES], width, label=t)
        ax.set_xticks(range(len(SCHEMES)), [s.replace("_", "\n") for s in SCHEMES])
        ax.set_ylabel("test top-1 (%)")
        ax.legend()
    return C.ClaimResult(ID, TITLE, PAPER, ["scheme", *(f"{t} top-1 %" for t in TASKS)], rows, verdict, why, seeds,
                         quick, figure="C9.png",
                         notes=["Same clips for both tasks (moving-digits with label='digit' or 'direction'); "
                                f"{V.FRAMES}×{V.IMG}, patch 8, D 48, 2 blocks; retires the old "
                                "experiments/moving_digits_timesformer.py."])
