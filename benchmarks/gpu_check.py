"""`make gpu-check`: short CUDA checks of training (nothing in the test suite needs a GPU).

1. bf16 and fp16 training steps of ViT-S/16, Swin-T and TimeSformer divided 8×224 at full size (fp16 through the
   GradScaler), with peak memory and samples/s;
2. `--compile` (torch.compile) on ViT-S/16: a few steps, loss finite, samples/s beside eager;
3. DDP with NCCL on every visible GPU: `torchrun -m vitkit train` for one short epoch on the bundled digits.
Without CUDA it prints "no CUDA device; skipped" and exits 0. `--device cpu` runs the same steps on the CPU
(fp32/bf16, gloo, tiny batch) to check the script itself.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch
from torch import nn

import vitkit
from vitkit.train.engine import TrainState, train_epoch
from vitkit.train.optim import build_optimizer

MODELS = ["vit_small_patch16_224", "swin_tiny_patch4_window7_224", "timesformer_base_8x224_divided_space_time"]


def _steps(model: nn.Module, batch: int, precision: str, device: torch.device, steps: int = 4) -> dict:
    x = torch.randn(batch, *model.input_shape(), device=device)
    y = torch.randint(0, model.num_classes, (batch,), device=device)
    opt = build_optimizer(model, 1e-4)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    state = TrainState(model, nn.CrossEntropyLoss(), opt, precision=precision, device=device, scaler=scaler)
    stats = train_epoch(state, [(x, y)], 0)  # warm-up (and compilation)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        stats = train_epoch(state, [(x, y)], 0)
    sync()
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    assert torch.isfinite(torch.tensor(stats["train_loss"])), stats
    return {"loss": stats["train_loss"], "samples_per_s": batch * steps / dt, "peak_mb": peak,
            "skipped": stats["skipped_steps"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu, to check this script")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device; skipped")
        return 0
    device = torch.device(args.device)
    cpu = device.type == "cpu"
    batch = 2 if cpu else args.batch_size
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name(device) if not cpu else 'cpu'}")
    print(f"{'model':45s} {'precision':9s} {'batch':>5s} {'samples/s':>10s} {'peak MB':>9s} {'loss':>8s} skipped")
    for name in MODELS:
        for precision in ("bf16",) if cpu else ("bf16", "fp16"):
            overrides = ({"depths": (1, 1, 1, 1)} if "swin" in name else {"depth": 1}) if cpu else {}
            torch.manual_seed(0)
            model = vitkit.create_model(name, **overrides).to(device)
            b = max(1, batch // 4) if "timesformer" in name else batch
            r = _steps(model, b, precision, device)
            print(f"{name:45s} {precision:9s} {b:5d} {r['samples_per_s']:10.1f} {r['peak_mb']:9.0f} {r['loss']:8.4f} "
                  f"{r['skipped']}")
            del model
    if not cpu:  # torch.compile needs a compiler toolchain; checked on the GPU machine
        torch.manual_seed(0)
        model = vitkit.create_model("vit_small_patch16_224").to(device)
        eager = _steps(model, batch, "bf16", device)
        compiled = _steps(torch.compile(model), batch, "bf16", device)
        print(f"--compile ViT-S/16 bf16: {compiled['samples_per_s']:.1f} samples/s vs eager {eager['samples_per_s']:.1f} "
              f"(×{compiled['samples_per_s'] / eager['samples_per_s']:.2f}), loss {compiled['loss']:.4f}")
    n = torch.cuda.device_count() if not cpu else 2
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n), "-m", "vitkit",
               "train", "--model", "vit_small_patch16_224", "--data", "digits", "--epochs", "1", "--limit", str(64 * n),
               "--batch-size", "32", "--device", args.device, "--precision", "bf16", "--no-progress", "--out", out,
               "--override=img_size=32", "--override=patch_size=4"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
        backend = "gloo" if cpu else "NCCL"
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})\n{proc.stderr[-2000:]}"
        print(f"DDP ({backend}) on {n} {'processes' if cpu else 'GPUs'}: {status} in {time.perf_counter() - t0:.1f}s; "
              f"{proc.stdout.strip()}")
        return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
