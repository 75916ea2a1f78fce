"""C4 — the distillation token beats distillation through the class token (DeiT, Table 3), beyond what a
second, label-trained token brings (DeiT §4's control)."""

from __future__ import annotations

from pathlib import Path

import common as C
import deit_students as S
import rules as R

ID, TITLE, DEFAULT_SEEDS = "C4", "The distillation token beats class-token distillation", (0, 1, 2, 3, 4)
PAPER = ("DeiT Table 3 (ImageNet top-1, hard distillation): through the class token 83.0 (DeiT-B) / 74.3 (DeiT-Ti); "
         "with the distillation token, class head 83.0 / 73.9, distillation head 83.1 / 74.6, both 83.4 / 74.5. "
         "§4: a second class token trained on the labels brings nothing (the two tokens converge, cosine 0.999).")

# 0.3 points: the mean of the paper's two gains of the distillation token (both heads) over the class token, DeiT-B
# +0.4 (83.4 − 83.0) and DeiT-Ti +0.2 (74.5 − 74.3), Table 3; the second part asks the same of the gain beyond a
# label-trained token (§4: that token brings nothing). Declared before the full runs (commit 41e47f3, 2026-12-05).
RULE = R.Rule((
    R.Part("token_minus_cls", "hard distillation through the distillation token (two heads' mean) − through the "
                              "class token, test top-1 (points)", ">", 0.0, 0.3),
    R.Part("token_beyond_second_token", "that gain − the gain of a label-trained second token (labels-only token − "
                                        "no distillation), test top-1 (points)", ">", 0.0, 0.3),
))


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    t = S.table3(out, quick, seeds)
    gain = t.diff("hard+token", "hard")
    second = t.diff("labels+token", "none")
    values = {"token_minus_cls": gain, "token_beyond_second_token": [g - s for g, s in zip(gain, second)]}
    heads = [a - c for a, c in zip(t.acc("hard+token", "acc_dist"), t.acc("hard+token", "acc_cls"))]
    compared = {"hard: distillation token − class token": gain,
                "labels only: distillation token − none (a second class token)": second,
                "the token's gain beyond a second class token": values["token_beyond_second_token"],
                "hard, distillation token: distillation head − class head": heads}
    rows = [[k, S.interval(v, signed=True), ", ".join(f"{x:+.1f}" for x in v)] for k, v in compared.items()]
    with C.figure(out / "C4.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        for i, v in enumerate(compared.values()):
            ax.scatter([i] * len(v), v, color="#36c")
            ax.plot([i - 0.25, i + 0.25], [sum(v) / len(v)] * 2, color="k")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xticks(range(len(compared)), ["token − class\n(hard)", "second token\n(labels)", "beyond a\nsecond token",
                                             "dist − class\nhead"])
        ax.set_ylabel("paired difference (points)")
        ax.set_title("Per-seed differences of test top-1")
    return C.ClaimResult(ID, TITLE, PAPER, ["comparison", "mean difference [95 % CI] (points)", "per seed"], rows,
                         RULE, values, seeds, quick, figure="C4.png",
                         notes=[S.design_note(quick), S.teacher_note(t),
                                "Same students as C3 (cached runs are shared); C3's table gives every arm and head."])
