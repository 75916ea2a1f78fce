"""TimeSformer divided space-time vs HF transformers: fp32, batch 1, 8×224 clip, inference and training step.
vitkit takes clips as (B, C, T, H, W); HF as (B, T, C, H, W) (the transpose is part of HF's timed call)."""

import sys
from pathlib import Path

import torch
from transformers import TimesformerConfig, TimesformerForVideoClassification

sys.path.insert(0, str(Path(__file__).parent))
from harness import compare, copy_weights, parse_args

import vitkit

args = parse_args(steps=6)
# HF's defaults are TimeSformer-B: 768 wide, 12 layers, 12 heads, patch 16, 8 frames at 224, divided
ref = TimesformerForVideoClassification(TimesformerConfig(num_labels=400, drop_path_rate=0))
ours = vitkit.create_model("timesformer_base_8x224_divided_space_time", drop_path_rate=0.0)
copy_weights(ours, ref)
for mode in args.modes:
    compare("timesformer_base_8x224_divided_space_time", ours, ref, lambda: torch.randn(1, 3, 8, 224, 224),
            train=mode == "train", steps=args.steps, ref_call=lambda m, x: m(pixel_values=x.transpose(1, 2)).logits)
