"""The optimiser step: vitkit's AdamW (fused: one pass over every tensor) vs PyTorch's default AdamW (a loop over
the tensors on the CPU, as timm's `create_optimizer` builds it), on the main job's student (1.8M parameters in
59 tensors) and on ViT-S/16. Alternating steps, ratio of medians (> 1: vitkit's is faster). Run it under each
processor kind (`benchmarks/kinds.py bench_optimizer`)."""

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from harness import parse_args

import vitkit
from vitkit.train import build_optimizer

args = parse_args(steps=20)
MODELS = {"main-job student": ("deit_tiny_distilled_patch16_224",
                               dict(img_size=32, patch_size=8, embed_dim=192, depth=4, num_heads=3)),
          "vit_small_patch16_224": ("vit_small_patch16_224", {})}
for label, (name, overrides) in MODELS.items():
    model = vitkit.create_model(name, num_classes=10, **overrides)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opts = {"vitkit": build_optimizer(model, 1e-3, 0.05),
            "default AdamW": torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)}
    times = {k: [] for k in opts}
    for _ in range(args.steps):
        for k, opt in opts.items():
            t = time.perf_counter()
            opt.step()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v[2:]) * 1e3 for k, v in times.items()}
    print(f"{label}: vitkit {med['vitkit']:.2f} ms, default {med['default AdamW']:.2f} ms, "
          f"ratio {med['default AdamW'] / med['vitkit']:.2f} (fused: {opts['vitkit'].defaults.get('fused')})")
