"""CvT-13 vs HF transformers `CvtForImageClassification`: fp32, batch 8, 224, inference and training step.
Ours runs with act_layer="gelu" so both compute the same function (HF's port uses nn.GELU, not QuickGELU)."""

import sys
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).parent))
from harness import compare, copy_weights, parse_args

import vitkit

args = parse_args()
ref = transformers.CvtForImageClassification(transformers.CvtConfig(num_labels=1000))  # CvT-13 defaults
ours = vitkit.create_model("cvt_13_224", act_layer="gelu")
copy_weights(ours, ref)
for mode in args.modes:
    compare("cvt_13_224 vs HF", ours, ref, lambda: torch.randn(8, 3, 224, 224), train=mode == "train",
            steps=args.steps, ref_call=lambda m, x: m(x).logits)
