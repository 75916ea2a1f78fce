"""C4 — the distillation token matters more than the class token (DeiT, Table 3)."""

from __future__ import annotations

import statistics
from pathlib import Path

import common as C
import deit_students as S
import rules as R

ID, TITLE, DEFAULT_SEEDS = "C4", "The distillation head beats the class head", (0, 1, 2)
PAPER = ("DeiT Table 3 (hard-distilled DeiT⚗ on ImageNet): class embedding alone 83.0, distillation embedding "
         "alone 83.1, both (averaged) 83.4 for DeiT-B; 73.9 / 74.6 / 74.5 for DeiT-Ti.")


RULE = R.Rule((R.Part("dist_minus_cls", "distillation head − class head, test top-1 of the hard-distilled student "
                       "(points)", ">", 0.0, 0.3),))


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    runs = [S.student(out, "hard", s, quick) for s in seeds]
    cols = {"class head": [r["acc_cls"] for r in runs], "distillation head": [r["acc_dist"] for r in runs],
            "both (averaged logits)": [r["acc"] for r in runs]}
    rows = [[k, C.mean_std(v), ", ".join(f"{x:.1f}" for x in v)] for k, v in cols.items()]
    m = {k: statistics.mean(v) for k, v in cols.items()}
    values = {"dist_minus_cls": [d - c for d, c in zip(cols["distillation head"], cols["class head"])]}
    with C.figure(out / "C4.png") as fig:
        ax = fig.add_subplot(1, 1, 1)
        ax.bar(range(3), list(m.values()), yerr=[statistics.stdev(v) if len(v) > 1 else 0 for v in cols.values()],
               color=["#999", "#c63", "#36c"])
        ax.set_xticks(range(3), list(cols))
        ax.set_ylim(0, 100)
        ax.set_ylabel("test top-1 (%)")
        ax.set_title("One hard-distilled student, evaluated through each head")
    return C.ClaimResult(ID, TITLE, PAPER, ["evaluated through", "test top-1 % (mean ± std)", "per seed"], rows,
                         RULE, values, seeds, quick, figure="C4.png",
                         notes=["Same students as C3's hard arm (cached runs are shared)."])
