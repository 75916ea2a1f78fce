"""C5 — the student can surpass its CNN teacher, and learns faster with distillation (DeiT §5)."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import deit_students as S
import rules as R

ID, TITLE, DEFAULT_SEEDS = "C5", "The student surpasses its CNN teacher and learns faster with distillation", (0, 1, 2)
PAPER = ("DeiT §5.1/Table 2 and Fig. 1: DeiT-B⚗ reaches 83.4 (85.2 at 384, 1000 epochs) with a RegNetY-16GF teacher "
         "at 82.9, i.e. the student surpasses its teacher; distillation improves accuracy at every training length "
         "(Fig. 3 / Table 3).")


RULE = R.Rule((
    R.Part("hard_minus_teacher", "hard-distilled student − teacher, test top-1 (points)", ">", 0.0, 0.0),
    R.Part("hard_minus_none", "hard-distilled − undistilled student, final test top-1 (points)", ">", 0.0, 0.5),
    R.Part("epochs_saved", "epochs the undistilled student needs beyond the distilled one to reach 95 % of the "
                           "better final top-1 of the pair", ">", 0.0, 1.0),
))


def _epochs_to(curve: list[float], level: float) -> int:
    """First epoch (1-based) at or above `level`; one past the end when never."""
    return next((i + 1 for i, a in enumerate(curve) if a >= level), len(curve) + 1)


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    teacher_acc = S.teacher_accuracy(out, quick)
    runs = {arm: [S.student(out, arm, s, quick)["history"] for s in seeds] for arm in ("none", "hard")}
    curves = {arm: [statistics.mean(epoch) for epoch in zip(*h)] for arm, h in runs.items()}  # mean over seeds
    levels = [0.95 * max(none[-1], hard[-1]) for none, hard in zip(runs["none"], runs["hard"])]  # per seed
    values = {"hard_minus_teacher": [h[-1] - teacher_acc for h in runs["hard"]],
              "hard_minus_none": [h[-1] - n[-1] for h, n in zip(runs["hard"], runs["none"])],
              "epochs_saved": [_epochs_to(n, lv) - _epochs_to(h, lv)
                               for n, h, lv in zip(runs["none"], runs["hard"], levels)]}
    rows = []
    for arm, c in curves.items():
        half = c[len(c) // 2 - 1] if len(c) > 1 else c[0]
        reached = [_epochs_to(h, lv) for h, lv in zip(runs[arm], levels)]
        rows.append([arm, f"{half:.1f}", f"{c[-1]:.1f}", ", ".join(str(e) if e <= len(c) else "never" for e in reached)])
    rows.append(["teacher (ResNet)", "", f"{teacher_acc:.1f}", ""])
    with C.figure(out / "C5.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        for arm, c in curves.items():
            ax.plot(range(1, len(c) + 1), c, label=f"student, {arm} distillation")
        ax.axhline(teacher_acc, ls="--", color="grey", label="teacher")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test top-1 (%, mean over seeds)")
        ax.set_ylim(0, 102)  # the teacher's line stays visible at 100 %
        ax.legend()
    return C.ClaimResult(ID, TITLE, PAPER, ["student", "top-1 % at half the epochs", "final top-1 %",
                                            "first epoch at 95 % of the pair's better final top-1, per seed"], rows,
                         RULE, values, seeds, quick,
                         figure="C5.png", notes=["Same runs as C3 (none and hard arms), curves averaged over seeds."])
