"""Cost of the attention recorder hook in `layers.attention.attend`, as ratios measured side by side.

1. No recorder active: `attend` against a bare `F.scaled_dot_product_attention` call on the same tensors (what
   `attend` was before the hook), alternated call by call; the ratio of medians should be 1.00 ± noise.
2. Recording: one model forward inside `vitkit.record_attention` against the same forward outside it (the price
   of materialising every probability matrix and the module hooks; only paid while looking inside).

Run: `.venv/bin/python benchmarks/bench_record.py [--model vit_small_patch16_224] [--repeats 200]`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import vitkit
from vitkit.layers import attend


def _alternate(a, b, repeats: int) -> tuple[float, float]:
    ta, tb = [], []
    for i in range(repeats):
        pairs = ((a, ta), (b, tb))
        for fn, times in pairs if i % 2 else pairs[::-1]:  # each goes first half the time
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vit_small_patch16_224")
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args()
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 8, 6, 197, 64).unbind(0)  # ViT-S/16 at 224: (B, h, N, d)
    with torch.inference_mode():
        for _ in range(5):
            attend(q, k, v)
        hooked, bare = _alternate(lambda: attend(q, k, v), lambda: F.scaled_dot_product_attention(q, k, v),
                                  args.repeats)
    print(f"attend (no recorder) / bare SDPA, (8, 6, 197, 64): {hooked / bare:.3f} "
          f"(medians {hooked * 1e3:.3f} / {bare * 1e3:.3f} ms)")

    model = vitkit.create_model(args.model).eval()
    x = torch.randn(1, *model.input_shape())

    def recorded() -> None:
        with vitkit.record_attention(model):
            model(x)

    with torch.no_grad():
        model(x)
        rec, plain = _alternate(recorded, lambda: model(x), max(3, args.repeats // 20))
    print(f"{args.model} forward inside record_attention / outside: {rec / plain:.2f} "
          f"(medians {rec * 1e3:.1f} / {plain * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
