"""`vitkit.optimize_for_inference` vs the reference library's fastest path at the same precision: where this
processor has native bf16, the fast path runs bf16 (weights cast once) and timm runs under bf16 autocast; where
it has not, both run fp32 (timm eager). ViT-S/16, DeiT-S distilled, Swin-T at batch 8, 224, inference.
`--autocast` adds a row per model: the fast path against the same vitkit model under plain bf16 autocast (its
weights recast on every call);
`--compile` times the fast path `torch.compile`d (inductor; its build takes minutes on 2 cores)."""

import copy
import sys
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).parent))
from harness import compare, copy_weights, parse_args

import vitkit
from vitkit.tools.fast import has_fast_bf16


def _autocast(m, x):
    with torch.autocast("cpu", torch.bfloat16):
        return m(x)


extra = {flag: flag in sys.argv for flag in ("--autocast", "--compile")}
args = parse_args([a for a in sys.argv[1:] if a not in extra])
bf16 = has_fast_bf16(torch.device("cpu"))
names = ["vit_small_patch16_224", "deit_small_distilled_patch16_224", "swin_tiny_patch4_window7_224"]
for name in names:
    ref = timm.create_model(name, pretrained=False)
    ours = vitkit.create_model(name)
    copy_weights(ours, ref)
    plain = copy.deepcopy(ours) if extra["--autocast"] else None
    fast = vitkit.optimize_for_inference(ours, "bf16" if bf16 else "fp32", compile=extra["--compile"])
    compare(f"{name} fast vs ref {'bf16 autocast' if bf16 else 'fp32'}", fast, ref, lambda: torch.randn(8, 3, 224, 224),
            train=False, steps=args.steps, ref_call=_autocast if bf16 else lambda m, x: m(x))
    if plain is not None:
        compare(f"{name} fast vs autocast", fast, plain, lambda: torch.randn(8, 3, 224, 224), train=False,
                steps=args.steps, ref_call=_autocast)
