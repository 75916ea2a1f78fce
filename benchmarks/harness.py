"""Speed of vitkit against a reference library, measured as a ratio in one process.

Both models get the same input; their timed steps alternate (ours, ref, ours, ref, ...) so that the load of
a shared machine hits both alike, and the ratio of medians is reported. A training step is forward +
cross-entropy + backward + AdamW step. Peak memory is the peak of live tensor storage in one step
(`vitkit.tools.profile.PeakMemory`). Run a script with `.venv/bin/python benchmarks/bench_vit.py`; add
`--linear torch` to run vitkit's linears on PyTorch's default fp32 path (MKL), the reference's, so that the
ratio shows the model code alone (see `vitkit.layers.linear` and `bench_gemm.py`). `--profile N` instead runs
N alternating steps of each under torch.profiler and prints, per op, the self time of each side (mean per step):
where a ratio comes from (e.g. `bench_swin.py --linear torch --threads 1 --modes train --profile 3`).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from vitkit.layers import set_layer_config
from vitkit.routes import processor
from vitkit.tools.profile import PeakMemory

Call = Callable[[nn.Module, Tensor], Tensor]
PROFILE = 0  # steps per side profiled instead of timed (`--profile`); 0: time them
JSON: str | None = None  # `--json PATH`: every result row is also appended there as one JSON line


def _plain(m: nn.Module, x: Tensor) -> Tensor:
    return m(x)


def _stepper(model: nn.Module, call: Call, x: Tensor, train: bool) -> Callable[[], None]:
    if not train:
        model.eval()

        def infer() -> None:
            with torch.inference_mode():
                call(model, x)
        return infer
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    y = None

    def step() -> None:
        nonlocal y
        out = call(model, x)
        if y is None:
            y = torch.randint(0, out.shape[-1], out.shape[:1])
        loss = nn.functional.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _peak(step: Callable[[], None]) -> int:
    with PeakMemory() as mem:
        step()
    return mem.peak


def profile_ops(run_ours: Callable[[], None], run_ref: Callable[[], None], steps: int, top: int = 30) -> dict:
    """Self CPU time per op (ms per step) of each side over `steps` alternating profiled steps; prints the `top`
    ops by the larger of the two and returns {op: (ours_ms, ref_ms)}."""
    from torch.profiler import profile

    ms = {"ours": collections.Counter(), "ref": collections.Counter()}
    for _ in range(steps):
        for side, run in (("ours", run_ours), ("ref", run_ref)):
            with profile() as prof:
                run()
            for e in prof.key_averages():
                ms[side][e.key] += e.self_cpu_time_total / 1e3 / steps
    ops = {k: (ms["ours"][k], ms["ref"][k]) for k in ms["ours"].keys() | ms["ref"].keys()}
    gemm = ("aten::mm", "aten::addmm", "aten::bmm")
    total = [sum(v[i] for v in ops.values()) for i in (0, 1)]
    other = [sum(v[i] for k, v in ops.items() if k not in gemm) for i in (0, 1)]
    print(f"  total {total[0]:.0f} vs {total[1]:.0f} ms/step; outside mm/addmm/bmm {other[0]:.0f} vs {other[1]:.0f}")
    for k, (a, b) in sorted(ops.items(), key=lambda kv: -max(kv[1]))[:top]:
        print(f"  {k[:48]:<48} vitkit {a:8.1f}  ref {b:8.1f}  diff {a - b:+8.1f}")
    return ops


def compare(label: str, ours: nn.Module, ref: nn.Module, make_input: Callable[[], Tensor], *, train: bool,
            ours_call: Call = _plain, ref_call: Call = _plain, steps: int = 10, warmup: int = 2) -> dict:
    """Time `steps` alternating steps of each model after `warmup`; return and print one result row."""
    x = make_input()
    batch = x.shape[0]
    run_ours, run_ref = _stepper(ours, ours_call, x, train), _stepper(ref, ref_call, x, train)
    for _ in range(warmup):
        run_ours()
        run_ref()
    if PROFILE:
        print(f"{label} {'train' if train else 'infer'} batch {batch}: self CPU ms per step", flush=True)
        return profile_ops(run_ours, run_ref, PROFILE)
    t_ours, t_ref = [], []
    for i in range(steps):
        for run, times in ((run_ours, t_ours), (run_ref, t_ref)) if i % 2 == 0 else ((run_ref, t_ref), (run_ours, t_ours)):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
    row = {
        "bench": label, "mode": "train" if train else "infer", "batch": batch,
        "vitkit_per_s": batch / statistics.median(t_ours), "ref_per_s": batch / statistics.median(t_ref),
        "vitkit_mem_mb": _peak(run_ours) / 2**20, "ref_mem_mb": _peak(run_ref) / 2**20,
    }
    row["ratio"] = row["vitkit_per_s"] / row["ref_per_s"]
    if JSON:
        proc = processor()
        with open(JSON, "a") as f:
            f.write(json.dumps({**row, "kind": proc.kind, "cpu": proc.name, "torch": torch.__version__,
                                "threads": torch.get_num_threads(), "load": os.getloadavg()[0]}) + "\n")
    print(f"{label:<34} {row['mode']:<5} batch {batch:<3} vitkit {row['vitkit_per_s']:8.2f}/s  "
          f"ref {row['ref_per_s']:8.2f}/s  ratio {row['ratio']:.3f}  "
          f"peak mem {row['vitkit_mem_mb']:.0f} vs {row['ref_mem_mb']:.0f} MB", flush=True)
    return row


def parse_args(argv: list[str] | None = None, steps: int = 10) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="vitkit vs reference throughput ratio")
    p.add_argument("--steps", type=int, default=steps, help="timed steps per model and mode")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    p.add_argument("--modes", default="infer,train", help="comma-separated: infer,train")
    p.add_argument("--linear", choices=("auto", "onednn", "torch"), default="auto",
                   help="vitkit's fp32 CPU linears as this processor's rule chooses (default, what users get), on "
                   "oneDNN, or on PyTorch's own path, as the reference's")
    p.add_argument("--json", metavar="PATH", help="also append each result row to PATH as a JSON line")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="profile N steps per model and print self time per op instead of timing")
    args = p.parse_args(argv)
    global PROFILE, JSON
    PROFILE, JSON = args.profile, args.json
    torch.set_num_threads(args.threads)
    if args.linear != "auto":
        set_layer_config(onednn_linear=args.linear == "onednn")
    proc = processor()
    print(f"# {proc.name}, {proc.kind} (torch capability {proc.isa}), torch {torch.__version__}, "
          f"{args.threads} threads, linear route {args.linear}", flush=True)
    args.modes = args.modes.split(",")
    return args


def copy_weights(ours: nn.Module, ref: nn.Module) -> None:
    """Load the reference's random weights into ours through vitkit's converters (same function as users')."""
    from vitkit.checkpoint import load_state_dict
    from vitkit.convert import to_vitkit

    sd, _ = to_vitkit(ref.state_dict(), ours)
    load_state_dict(ours, sd)


if __name__ == "__main__":
    sys.exit("run one of benchmarks/bench_*.py, or benchmarks/run.py for all")
