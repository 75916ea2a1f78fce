"""The training step before and after a change of the step loop, on the main job's student (issue 21: "the
training step is no slower").

The engine of a git revision (default: the last one before issue 21's Trainer) is loaded beside the working
tree's as a module of its own; both train their own copy of the main job's student (DeiT-tiny-style, hard
distillation from the ResNet teacher, AdamW, warm-up cosine, clipping, seeded steps) on the same in-memory
batches. Epochs of `--steps` optimiser steps alternate (before, after, before, ..., each first in turn) so the load of a shared
machine hits both alike; the ratio of median epoch times (after / before) is printed per `--log-interval` of the
new loop (1 is the default and does what the old loop did; N > 1 reads the host every N steps and guards the
steps in between on the device).

    .venv/bin/python benchmarks/bench_train_step.py --rounds 7 --steps 8 --log-interval 1 8
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from vitkit.registry import create_model
from vitkit.train.engine import DistillHeads, TrainState, train_epoch
from vitkit.train.losses import DistillationLoss
from vitkit.train.main_job import _student
from vitkit.train.optim import build_optimizer
from vitkit.train.schedule import WarmupCosine

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "d4cab1e"  # main before the Trainer and --log-interval (issue 21) were merged


def _load(rev: str, path: str, name: str, replace: tuple[str, str] | None = None):
    """`path` as it is at `rev`, imported as vitkit.train.<name> (its relative imports resolve in vitkit.train)."""
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    if replace:
        source = source.replace(*replace)
    spec = importlib.util.spec_from_loader(f"vitkit.train.{name}", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "vitkit.train"
    sys.modules[spec.name] = module
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
    return module


def old_engine(rev: str):
    """The engine of `rev` with the distributed helpers of `rev` (its per-micro-batch `sync_scalar`)."""
    _load(rev, "src/vitkit/train/distributed.py", "_distributed_before")
    return _load(rev, "src/vitkit/train/engine.py", "_engine_before",
                 ("from .distributed import", "from ._distributed_before import"))


def student_setup(batch: int, steps: int, precision: str):
    """(student, criterion, batches) of the main job: its student config, a hard-distillation loss with the
    teacher's architecture (random weights: the step's cost does not depend on them)."""
    cfg = _student()
    torch.manual_seed(0)
    model = create_model(cfg.model, **{**cfg.overrides, "num_classes": 10})
    teacher = create_model("resnet_tiny_cifar", num_classes=10).eval()
    criterion = DistillationLoss(torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), teacher, cfg.distill,
                                 cfg.alpha, cfg.tau)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(batch, *model.input_shape(), generator=g), torch.randint(0, 10, (batch,), generator=g))
               for _ in range(steps)]
    return model, criterion, batches, cfg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=BEFORE, help=f"git revision of the old engine (default {BEFORE})")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=8, help="optimiser steps per timed epoch")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--log-interval", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    old = old_engine(args.before)
    model, criterion, batches, cfg = student_setup(args.batch_size, args.steps, args.precision)

    def runner(new: bool, interval: int = 1):
        m = copy.deepcopy(model)
        opt = build_optimizer(m, cfg.lr, cfg.weight_decay)
        sched = WarmupCosine(opt, args.steps, 1000 * args.steps, cfg.min_lr_ratio)
        call = DistillHeads(m)
        state = TrainState(call, criterion, opt, sched, args.precision, torch.device("cpu"), cfg.clip_grad, seed=0,
                           log_interval=interval)
        if new:
            return lambda: train_epoch(state, batches, 0)
        return lambda: old.train_one_epoch(call, batches, criterion, opt, sched, 0, cfg.clip_grad, args.precision,
                                           device=torch.device("cpu"), seed=0)

    # "before, again" is a second copy of the old loop: its ratio is the noise of the measurement
    sides = {"before": runner(False), "before, again": runner(False),
             **{f"after, log-interval {n}": runner(True, n) for n in args.log_interval}}
    wall, cpu = {k: [] for k in sides}, {k: [] for k in sides}
    for fn in sides.values():  # warm-up
        fn()
    for r in range(args.rounds):
        order = list(sides.items())
        for k, fn in order[r % len(order):] + order[:r % len(order)]:  # each side first in turn
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[k].append((time.perf_counter() - t0) / args.steps)
            cpu[k].append((time.process_time() - c0) / args.steps)
    print(f"main job student ({cfg.model}, {cfg.overrides}), batch {args.batch_size}, {args.precision}, "
          f"{torch.get_num_threads()} threads, {args.rounds} rounds of {args.steps} steps; medians per step (the "
          "process's CPU time is what other processes on a loaded machine disturb least)")
    for k in sides:
        w, c = statistics.median(wall[k]), statistics.median(cpu[k])
        print(f"  {k:<24} wall {1000 * w:7.1f} ms (ratio {w / statistics.median(wall['before']):.3f})   "
              f"CPU {1000 * c:7.1f} ms (ratio {c / statistics.median(cpu['before']):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
