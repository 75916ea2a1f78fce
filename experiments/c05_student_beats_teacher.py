"""C5 — the distilled student surpasses its CNN teacher (DeiT §5.2, Tables 2–3), with a teacher one point above the
undistilled student as DeiT's RegNetY-16GF (82.9) over DeiT-B (81.8)."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import deit_students as S
import rules as R

ID, TITLE, DEFAULT_SEEDS = "C5", "The distilled student surpasses its CNN teacher", (0, 1, 2, 3, 4)
PAPER = ("DeiT §5.2, Table 3 (ImageNet top-1): DeiT-B⚗ with hard distillation through the distillation token "
         "reaches 83.4 (both heads; Table 2: 83.1 through the distillation head) with a RegNetY-16GF teacher at "
         "82.9 (DeiT-B without distillation: 81.8), so the student surpasses its teacher.")

RULE = R.Rule((
    R.Part("student_minus_teacher", "hard-distilled student (distillation token, two heads' mean) − teacher, test "
                                    "top-1 (points)", ">", 0.0, 0.0),
    R.Part("student_minus_none", "hard-distilled student − undistilled student, test top-1 (points)", ">", 0.0, 0.5),
))
SHOWN = ("none", "hard+token")  # the undistilled student and DeiT⚗


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    t = S.table3(out, quick, seeds)
    teacher = t.teacher["acc"]
    values = {"student_minus_teacher": [a - teacher for a in t.acc("hard+token")],
              "student_minus_none": t.diff("hard+token", "none")}
    rows = [[S.ARMS[arm][2], S.interval(t.acc(arm)), S.interval([a - teacher for a in t.acc(arm)], signed=True),
             ", ".join(f"{a:.1f}" for a in t.acc(arm))] for arm in S.ARMS]
    rows.append([f"teacher ({S.TEACHER['name']})", f"{teacher:.1f}", "", f"seed 0, {t.teacher_steps} steps"])
    with C.figure(out / "C5.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        for arm in SHOWN:
            curve = [statistics.fmean(epoch) for epoch in zip(*(r["history"] for r in t.runs[arm]))]
            ax.plot(range(1, len(curve) + 1), curve, marker="o", label=f"student: {S.ARMS[arm][2]}")
        ax.axhline(teacher, ls="--", color="grey", label=f"teacher {teacher:.1f} %")
        ax.set_xlabel("epoch over the training views")
        ax.set_xlim(0, len(t.runs[SHOWN[0]][0]["history"]) + 0.5)
        ax.set_ylabel("top-1 on test views (%, mean over seeds)")
        ax.set_ylim(0, 100)
        ax.legend(loc="lower right")
    return C.ClaimResult(ID, TITLE, PAPER, ["student", "test top-1 % [95 % CI]", "minus the teacher (points)",
                                            "per seed"], rows, RULE, values, seeds, quick, figure="C5.png",
                         notes=[S.design_note(quick), S.teacher_note(t),
                                "Same students as C3 (cached runs are shared); the curves are on the first "
                                f"{S.budget(quick).curve_views:,} test views."])
