"""Multi-process training through torchrun (DDP over gloo on the CPU): two ranks train one tiny epoch."""

import csv
import os
import subprocess
import sys

import torch

import vitkit


def test_torchrun_two_processes(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "vitkit", "train", "--model", "vit_tiny_patch16_224", "--data", "digits", "--epochs", "1",
           "--batch-size", "16", "--limit", "64", "--no-progress", "--out", str(out),
           "--override", "img_size=32", "--override", "patch_size=8", "--override", "depth=1",
           "--override", "embed_dim=48", "--override", "num_heads=3"]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = vitkit.load_checkpoint(out / "model.safetensors")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1  # rank 0 alone writes
