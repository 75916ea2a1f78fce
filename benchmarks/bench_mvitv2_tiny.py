"""MViTv2-T vs timm `mvitv2_tiny`: fp32, batch 8, 224, inference and training step (same random weights,
converted)."""

import sys
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).parent))
from harness import compare, copy_weights, parse_args

import vitkit

args = parse_args()
ref = timm.create_model("mvitv2_tiny", pretrained=False)
ours = vitkit.create_model("mvitv2_tiny")
copy_weights(ours, ref)
for mode in args.modes:
    compare("mvitv2_tiny vs timm", ours, ref, lambda: torch.randn(8, 3, 224, 224), train=mode == "train",
            steps=args.steps)
