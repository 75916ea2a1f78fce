"""The attention core's CPU training route: `attend` (written out up to `math_attention_max_tokens` keys, SDPA
beyond) vs bare SDPA, forward + backward, at the sequence shapes of the families: TimeSformer's temporal step
(8 frames), the main job's student (18 tokens), CvT stage 1 reduced keys, a small window, ViT-S/16 (197).
Alternating calls, ratio of medians (> 1: attend is faster). Run it under each processor kind
(`benchmarks/kinds.py bench_attention`)."""

import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from harness import parse_args

from vitkit.layers import attend, layer_config

args = parse_args(steps=10)
SHAPES = {"timesformer temporal (B·H·W, h, T, d)": (196, 12, 8, 64), "main-job student": (64, 3, 18, 64),
          "window 7x7": (64, 3, 49, 32), "64 tokens": (32, 3, 64, 64), "vit-s/16 batch 8": (8, 6, 197, 64)}
print(f"attend writes out up to {layer_config().math_attention_max_tokens} keys here")
for dtype in (torch.float32, torch.bfloat16):
    for label, shape in SHAPES.items():
        q, k, v = (torch.randn(shape, dtype=dtype, requires_grad=True) for _ in range(3))
        g = torch.randn(shape, dtype=dtype)
        runs = {"attend": lambda q=q, k=k, v=v, g=g: attend(q, k, v).backward(g),
                "sdpa": lambda q=q, k=k, v=v, g=g: F.scaled_dot_product_attention(q, k, v).backward(g)}
        times = {name: [] for name in runs}
        for i in range(args.steps + 2):
            for name in (("attend", "sdpa") if i % 2 else ("sdpa", "attend")):
                t0 = time.perf_counter()
                runs[name]()
                if i >= 2:
                    times[name].append(time.perf_counter() - t0)
        med = {n: statistics.median(t) * 1e3 for n, t in times.items()}
        print(f"{label:<38} {str(dtype)[6:]:<9} attend {med['attend']:7.2f} ms  sdpa {med['sdpa']:7.2f} ms  "
              f"ratio {med['sdpa'] / med['attend']:.2f}", flush=True)
