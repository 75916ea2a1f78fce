"""`vitkit.layers.Linear` (fp32 CPU products on oneDNN) vs `torch.nn.Linear` (PyTorch's default fp32 path, MKL sgemm)
at the shapes of ViT-B (197 tokens, batch 1 and 8) and Swin-T stage 1 (batch 8): forward, and forward + backward.
The gap is the CPU's: MKL does not run its AVX-512 kernels on AMD processors, oneDNN does; on Intel CPUs the two
are expected to be close. `--linear torch` makes both sides nn.Linear's path (a ratio of ~1: the harness check)."""

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from harness import compare, parse_args

from vitkit.layers import Linear


class Tokens(nn.Module):
    """One linear applied to (B, N, K) tokens, averaged over N: (B, N_out) logits for the harness's loss."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x).mean(1)


args = parse_args(steps=20)
print(f"cpu: {torch.backends.cpu.get_cpu_capability()}")
for B, N, K, M in [(1, 197, 768, 3072), (1, 197, 3072, 768), (8, 197, 768, 2304), (8, 3136, 96, 384)]:
    ours, ref = Linear(K, M), nn.Linear(K, M)
    ref.load_state_dict(ours.state_dict())
    for mode in args.modes:
        compare(f"linear ({B},{N},{K})x({K},{M})", Tokens(ours), Tokens(ref), lambda s=(B, N, K): torch.randn(s),
                train=mode == "train", steps=args.steps)
