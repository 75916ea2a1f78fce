"""Does the oneDNN route of `vitkit.layers.Linear` pay on this machine? The same vitkit model timed with the
route on and off (PyTorch's default fp32 path, MKL sgemm on x86), alternating in one process: ViT-S/16, Swin-T
and CvT-13 at batch 8 and 1, inference and training step. A ratio > 1 means the route helps."""

import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from harness import compare, parse_args

import vitkit
from vitkit.layers import set_onednn_linear


def _with_route(enabled: bool):
    def call(m, x):
        set_onednn_linear(enabled)
        return m(x)
    return call


args = parse_args()
print(f"cpu: {torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
for name in ["vit_small_patch16_224", "swin_tiny_patch4_window7_224", "cvt_13_224"]:
    on = vitkit.create_model(name)
    off = copy.deepcopy(on)
    for batch in (8, 1):
        for mode in args.modes:
            compare(f"{name} oneDNN/torch", on, off, lambda b=batch: torch.randn(b, 3, 224, 224),
                    train=mode == "train", steps=args.steps, ours_call=_with_route(True), ref_call=_with_route(False))
