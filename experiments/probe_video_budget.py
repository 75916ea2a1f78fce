"""Probe, not a claim: how far C9's TimeSformer runs are from convergence under the video claims' 30-epoch budget.

Trains C9's ten runs (five schemes × appearance / motion) for one seed with a larger epoch budget (early stopping on
validation unchanged) into a scratch folder, one JSON line per run: test top-1, epochs run, best validation top-1,
minutes. The committed report is not touched. Run two parts side by side, one per core:

    .venv/bin/python experiments/probe_video_budget.py --part 0 &  .venv/bin/python experiments/probe_video_budget.py --part 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import common as C
import torch
import video as V
from c09_timesformer_schemes import SCHEMES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=100, help="the most epochs a run may take (the claims use 30)")
    p.add_argument("--part", type=int, choices=(0, 1), default=0, help="every second run, from this one")
    p.add_argument("--out", type=Path, default=Path("runs/probe-video-budget"))
    a = p.parse_args()
    torch.set_num_threads(1)
    C.begin()
    jobs = [(s, label) for label in (V.APPEARANCE, V.MOTION) for s in SCHEMES][a.part::2]
    for scheme, label in jobs:
        start = time.perf_counter()
        r = V.train_video(a.out, f"timesformer_base_8x224_{scheme}", V.TIMESFORMER, label, a.seed, False,
                          size=(V.FULL.train, a.epochs))
        print(json.dumps({"scheme": scheme, "task": label, "seed": a.seed, "acc": round(r["acc"], 2),
                          "epochs_run": r["epochs_run"], "best_val": round(max(r["history_val"]), 2),
                          "minutes": round((time.perf_counter() - start) / 60, 1)}), flush=True)


if __name__ == "__main__":
    main()
