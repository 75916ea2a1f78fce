"""MViTv2-S 16x224 vs torchvision mvit_v2_s: fp32, batch 1 clip, inference and training step (same random
weights, converted). Full-size video on the CPU is slow: few steps by default."""

import sys
from pathlib import Path

import torch
from torchvision.models.video import mvit_v2_s

sys.path.insert(0, str(Path(__file__).parent))
from harness import compare, copy_weights, parse_args

import vitkit

args = parse_args(steps=4)
ref = mvit_v2_s()
ours = vitkit.create_model("mvitv2_small_16x4")
copy_weights(ours, ref)
for mode in args.modes:
    compare("mvitv2_small_16x4 vs tv mvit_v2_s", ours, ref, lambda: torch.randn(1, 3, 16, 224, 224),
            train=mode == "train", steps=args.steps, warmup=1)
