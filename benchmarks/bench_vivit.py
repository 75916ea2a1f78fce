"""ViViT-B/16x2 Model 1 (spatio-temporal) vs HF transformers `VivitForVideoClassification`: fp32, batch 1,
8×112 clip (4×7×7 = 196 tubelet tokens + cls), inference and training step, same random weights (converted).
Both use their defaults, the same function: scenic's GELU is Flax's tanh approximation, which is HF's gelu_fast and
vitkit's act_layer="gelu_tanh". vitkit takes clips as (B, C, T, H, W); HF as (B, T, C, H, W) (the transpose is
in HF's timed call)."""

import sys
from pathlib import Path

import torch
from transformers import VivitConfig, VivitForVideoClassification

sys.path.insert(0, str(Path(__file__).parent))
from harness import compare, copy_weights, parse_args

import vitkit

args = parse_args(steps=10)
T, SIZE = 8, 112
ref = VivitForVideoClassification(VivitConfig(num_frames=T, image_size=SIZE, num_labels=400))
ours = vitkit.create_model("vivit_base_16x2_spatiotemporal", num_frames=T, img_size=SIZE)
copy_weights(ours, ref)
for mode in args.modes:
    compare(f"vivit_base_16x2_spatiotemporal {T}x{SIZE}", ours, ref, lambda: torch.randn(1, 3, T, SIZE, SIZE),
            train=mode == "train", steps=args.steps, ref_call=lambda m, x: m(pixel_values=x.transpose(1, 2)).logits)
