"""C5 — the student can surpass its CNN teacher, and learns faster with distillation (DeiT §5)."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import deit_students as S

ID, TITLE, DEFAULT_SEEDS = "C5", "The student surpasses its CNN teacher and learns faster with distillation", (0, 1, 2)
PAPER = ("DeiT §5.1/Table 2 and Fig. 1: DeiT-B⚗ reaches 83.4 (85.2 at 384, 1000 epochs) with a RegNetY-16GF teacher "
         "at 82.9, i.e. the student surpasses its teacher; distillation improves accuracy at every training length "
         "(Fig. 3 / Table 3).")


def _curve(out: Path, arm: str, seeds: list[int], quick: bool) -> list[float]:
    runs = [S.student(out, arm, s, quick)["history"] for s in seeds]
    return [statistics.mean(epoch) for epoch in zip(*runs)]


def _epochs_to(curve: list[float], level: float) -> int | None:
    return next((i + 1 for i, a in enumerate(curve) if a >= level), None)


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    _, teacher_acc = S.teacher(out, quick)
    curves = {arm: _curve(out, arm, seeds, quick) for arm in ("none", "hard")}
    level = 0.95 * max(curves["none"][-1], curves["hard"][-1])
    rows = []
    for arm, c in curves.items():
        half = c[len(c) // 2 - 1] if len(c) > 1 else c[0]
        rows.append([arm, f"{half:.1f}", f"{c[-1]:.1f}", _epochs_to(c, level) or "never"])
    rows.append(["teacher (ResNet)", "", f"{teacher_acc:.1f}", ""])
    final = curves["hard"][-1]
    faster = (_epochs_to(curves["hard"], level) or 10**9) <= (_epochs_to(curves["none"], level) or 10**9)
    better = final > curves["none"][-1]
    surpass = final > teacher_acc
    if surpass and faster and better:
        verdict = "reproduced"
    elif faster or better:
        verdict = "partly reproduced"
    else:
        verdict = "not reproduced"
    why = (f"the distilled student ends at {final:.1f} % against {curves['none'][-1]:.1f} % without distillation "
           f"({'earlier' if faster else 'not earlier'} to {level:.0f} %), and "
           + ("above" if surpass else "below") + f" its teacher's {teacher_acc:.1f} %"
           + ("" if surpass else ": a 0.3M-parameter ResNet near the ceiling of an easy set is hard to beat "
              "with 1,257 images") + ".")
    with C.figure(out / "C5.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        for arm, c in curves.items():
            ax.plot(range(1, len(c) + 1), c, label=f"student, {arm} distillation")
        ax.axhline(teacher_acc, ls="--", color="grey", label="teacher")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test top-1 (%, mean over seeds)")
        ax.set_ylim(max(0, min(min(c) for c in curves.values())), 100)
        ax.legend()
    return C.ClaimResult(ID, TITLE, PAPER, ["student", "top-1 % at half the epochs", "final top-1 %",
                                            f"first epoch at ≥ {level:.0f} %"], rows, verdict, why, seeds, quick,
                         figure="C5.png", notes=["Same runs as C3 (none and hard arms), curves averaged over seeds."])
