"""Swin-T vs timm: fp32, batch 8, 224, inference and training step (same random weights, converted)."""

import sys
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).parent))
from harness import compare, copy_weights, parse_args

import vitkit

args = parse_args()
name = "swin_tiny_patch4_window7_224"
ref = timm.create_model(name, pretrained=False)
ours = vitkit.create_model(name)
copy_weights(ours, ref)
for mode in args.modes:
    compare(name, ours, ref, lambda: torch.randn(8, 3, 224, 224), train=mode == "train", steps=args.steps)
