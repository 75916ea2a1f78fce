"""Peak training memory of ViT-B/16 at batch 8 with and without `--grad-checkpointing` (one forward + backward
each, fp32, CPU; peak of live tensor storage by `vitkit.tools.profile.PeakMemory`), and the step-time ratio
(steps alternate, ratio of medians). `--model` / `--batch-size` pick another configuration."""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import vitkit
from vitkit.tools.profile import PeakMemory


def step(model, x, y) -> tuple[int, float]:
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return mem.peak, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vit_base_patch16_224")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = vitkit.create_model(args.model).train()
    x = torch.randn(args.batch_size, *model.input_shape())
    y = torch.randint(0, model.num_classes, (args.batch_size,))
    peaks, times = {False: 0, True: 0}, {False: [], True: []}
    for _ in range(args.repeats):
        for enabled in (False, True):
            model.set_grad_checkpointing(enabled)
            peak, dt = step(model, x, y)
            peaks[enabled] = max(peaks[enabled], peak)
            times[enabled].append(dt)
    off, on = peaks[False] / 2**20, peaks[True] / 2**20
    ratio = statistics.median(times[True]) / statistics.median(times[False])
    print(f"{args.model} batch {args.batch_size}, fp32 train step (forward + backward), CPU:")
    print(f"  peak memory without checkpointing {off:8.0f} MiB")
    print(f"  peak memory with checkpointing    {on:8.0f} MiB  ({on / off:.2f}×)")
    print(f"  step time with / without          {ratio:8.2f}×  (median of {args.repeats}, alternating)")


if __name__ == "__main__":
    main()
