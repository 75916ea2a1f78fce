"""Probe, not a claim: how far the video claims' runs are from convergence under their budget and stopping rule.

Re-trains video runs with a different epoch budget or early-stopping patience into a scratch folder, one JSON line
per run: test top-1, epochs run, best validation top-1, minutes. The committed report is not touched.
`--runs c9`: C9's ten runs (five schemes × appearance / motion) for `--seed` (2026-12-06: the probe that moved the
budget from 30 to 100 epochs). `--runs stopped`: the runs the report names as stopped on a plateau or at chance
(each with its own seed) and two runs that were not, as controls. Run two parts side by side, one per core:

    .venv/bin/python experiments/probe_video_budget.py --part 0 &  .venv/bin/python experiments/probe_video_budget.py --part 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import common as C
import torch
import video as V
from c09_timesformer_schemes import SCHEMES

TS = "timesformer_base_8x224_"
STOPPED = [("vivit_base_16x2_factorised_encoder", V.VIVIT, V.MOTION, 4),  # C8: 21.5 % after 10 epochs
           (TS + "space_only", V.TIMESFORMER, V.MOTION, 2),               # C9: at chance, 8 epochs
           (TS + "axial", V.TIMESFORMER, V.APPEARANCE, 0),                # C9: 29.4 % after 32, still rising
           (TS + "divided_space_time", V.TIMESFORMER, V.MOTION, 4),       # C10: 62.5 % after 32
           ("vivit_base_16x2_factorised_encoder", V.VIVIT, V.MOTION, 0),  # controls: runs that learned
           ("vivit_base_16x2_spatiotemporal", V.VIVIT, V.MOTION, 0)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", choices=("c9", "stopped"), default="c9")
    p.add_argument("--only", type=int, nargs="*", help="with --runs stopped: these of its runs (0-based)")
    p.add_argument("--seed", type=int, default=0, help="with --runs c9")
    p.add_argument("--epochs", type=int, default=V.FULL.epochs, help="the most epochs a run may take")
    p.add_argument("--patience", type=int, default=V.FULL.patience,
                   help="epochs without a better validation top-1 before stopping (at least twice the warm-up)")
    p.add_argument("--warmup", type=float, help="warm-up epochs for every run (default: the claims' schedule)")
    p.add_argument("--part", type=int, choices=(0, 1), default=0, help="every second run, from this one")
    p.add_argument("--out", type=Path, default=Path("runs/probe-video-budget"))
    a = p.parse_args()
    V.FULL = dataclasses.replace(V.FULL, patience=a.patience)  # read by the claims' own fit_settings
    jobs = STOPPED if a.runs == "stopped" else \
        [(TS + s, V.TIMESFORMER, label, a.seed) for label in (V.APPEARANCE, V.MOTION) for s in SCHEMES]
    if a.only:
        jobs = [jobs[i] for i in a.only]
    if a.warmup is not None:
        V.SCHEDULE = {**V.SCHEDULE, **{n: {**V.SCHEDULE.get(n, {}), "warmup_epochs": a.warmup} for n, *_ in jobs}}
    torch.set_num_threads(1)
    C.begin()
    for name, overrides, label, seed in jobs[a.part::2]:
        start = time.perf_counter()
        r = V.train_video(a.out, name, overrides, label, seed, False, size=(V.FULL.train, a.epochs))
        print(json.dumps({"model": name, "task": label, "seed": seed, "patience": a.patience, "warmup": a.warmup,
                          "acc": round(r["acc"], 2),
                          "epochs_run": r["epochs_run"], "best_val": round(max(r["history_val"]), 2),
                          "minutes": round((time.perf_counter() - start) / 60, 1)}), flush=True)


if __name__ == "__main__":
    main()
