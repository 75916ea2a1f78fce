"""ViT-S/16 and DeiT-S distilled vs timm: fp32, batch 8, 224, inference and training step."""

import sys
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).parent))
from harness import compare, copy_weights, parse_args

import vitkit

args = parse_args()
for name in ("vit_small_patch16_224", "deit_small_distilled_patch16_224"):
    ref = timm.create_model(name, pretrained=False)
    ours = vitkit.create_model(name)
    if hasattr(ref, "set_distilled_training"):
        ref.set_distilled_training(True)  # timm returns both heads while training only when asked
    copy_weights(ours, ref)
    for mode in args.modes:
        if mode == "train" and "distilled" in name:
            # timm's distilled model returns two heads in train mode; time ours the same way (both heads)
            compare(name, ours, ref, lambda: torch.randn(8, 3, 224, 224), train=True, steps=args.steps,
                    ours_call=lambda m, x: sum(m.forward_distill(x)), ref_call=lambda m, x: sum(m(x)))
        else:
            compare(name, ours, ref, lambda: torch.randn(8, 3, 224, 224), train=mode == "train", steps=args.steps)
