"""C3 — hard distillation beats soft (DeiT, Table 3)."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import deit_students as S
import rules as R

ID, TITLE, DEFAULT_SEEDS = "C3", "Hard distillation beats soft distillation", (0, 1, 2)
PAPER = ("DeiT Table 3 (ImageNet top-1, 300 epochs): DeiT-B without distillation 81.8, usual (soft, τ 3, λ 0.1) "
         "distillation 81.8, hard distillation 83.0; DeiT-Ti 72.2 / 72.2 / 74.3. The teacher is a RegNetY-16GF "
         "(82.9).")


RULE = R.Rule((R.Part("hard_minus_soft", "hard − soft distillation, student test top-1 (points)", ">", 0.0, 0.5),))


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    teacher_acc = S.teacher_accuracy(out, quick)
    accs = {arm: [S.student(out, arm, s, quick)["acc"] for s in seeds] for arm in S.ARMS}
    rows = [[arm, C.mean_std(a), ", ".join(f"{v:.1f}" for v in a)] for arm, a in accs.items()]
    rows.append(["teacher (ResNet)", f"{teacher_acc:.1f}", "seed 0"])
    values = {"hard_minus_soft": [h - s for h, s in zip(accs["hard"], accs["soft"])]}
    with C.figure(out / "C3.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        for i, (arm, a) in enumerate(accs.items()):
            ax.scatter([i] * len(a), a, label=arm)
            ax.plot([i - 0.2, i + 0.2], [statistics.mean(a)] * 2, color="k")
        ax.axhline(teacher_acc, ls="--", color="grey", label="teacher")
        ax.set_xticks(range(len(accs)), list(accs))
        ax.set_ylabel("test top-1 (%)")
        ax.set_ylim(0, 102)  # the teacher's line stays visible at 100 %
        ax.set_title("DeiT students on digits: no / soft / hard distillation")
        ax.legend()
    return C.ClaimResult(
        ID, TITLE, PAPER, ["student", "test top-1 % (mean ± std)", "per seed"], rows, RULE, values, seeds, quick,
        figure="C3.png",
        notes=[f"Students: DeiT-tiny layout at 16×16 digits, patch 4, D 96, 4 blocks, 3 heads, "
               f"{S.epochs(quick)} epochs; soft: τ 3, α 0.1 (elementwise normalisation, as official DeiT); "
               "hard: α 0.5. The no-distillation arm has no distillation token (DeiT's first row)."])
