"""Peak memory per rank of a training step, FSDP (`--fsdp`, a unit per block) against DDP, for ViT-L/16 at batch 2
on 2 gloo ranks on the CPU (fp32, AdamW). Each rank measures its resident-set high-water mark (VmHWM, reset through
/proc/self/clear_refs once the model is built and wrapped) over 2 optimiser steps (the first allocates AdamW's
state) and reports it above the process's size before the model existed; glibc's mmap threshold is fixed so freed
tensors return to the system. Prints each rank's figure and the ratio FSDP / DDP (the maximum over ranks).

    python benchmarks/bench_fsdp_memory.py [--model NAME] [--batch-size N] [--ranks N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

STEPS = 2


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def rank_main(args) -> None:
    import torch
    import torch.distributed as dist

    import vitkit
    from vitkit.train.distributed import DistInfo, wrap_ddp
    from vitkit.train.fsdp import fully_shard_model
    from vitkit.train.optim import build_optimizer

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_RANK"]))
    base = _status_kib("VmRSS")
    torch.manual_seed(0)
    model = vitkit.create_model(args.model).train()
    device = torch.device("cpu")
    wrap = fully_shard_model if args.mode == "fsdp" else wrap_ddp
    model = wrap(model, info, device)
    optimizer = build_optimizer(model, 1e-4, 0.05)
    inner = getattr(model, "module", model)
    x = torch.randn(args.batch_size, *inner.input_shape())
    y = torch.randint(0, inner.num_classes, (args.batch_size,))
    dist.barrier()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    for _ in range(STEPS):
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    peak = (_status_kib("VmHWM") - base) * 1024
    peaks = [None] * info.world_size
    dist.all_gather_object(peaks, peak)
    if info.is_main:
        print("RESULT " + json.dumps({"mode": args.mode, "peaks": peaks}), flush=True)
    dist.destroy_process_group()


def launch(args, mode: str) -> list[int]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_="65536")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.ranks), __file__,
           "--mode", mode, "--model", args.model, "--batch-size", str(args.batch_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(line.removeprefix("RESULT "))["peaks"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vit_large_patch16_224")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--mode", choices=("ddp", "fsdp"), help=argparse.SUPPRESS)  # set for the ranks
    args = ap.parse_args()
    if args.mode:
        rank_main(args)
        return
    peaks = {mode: launch(args, mode) for mode in ("ddp", "fsdp")}
    print(f"{args.model}, batch {args.batch_size} per rank, {args.ranks} gloo ranks, fp32 AdamW, {STEPS} steps")
    for mode, values in peaks.items():
        print(f"  {mode:>4}: peak per rank " + ", ".join(f"{v / 2**20:,.0f} MiB" for v in values))
    print(f"  FSDP / DDP peak per rank: {max(peaks['fsdp']) / max(peaks['ddp']):.2f}")


if __name__ == "__main__":
    main()
