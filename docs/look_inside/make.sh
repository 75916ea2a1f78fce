#!/usr/bin/env bash
# Regenerates the pictures of the README's "Look inside" section (~8 min on 2 CPU cores):
#   bash docs/look_inside/make.sh [path/to/python]   (default .venv/bin/python)
# A small ViT trained on the bundled digits gives the position-embedding and rollout pictures; a tiny Swin (random
# weights: the windows are the point) gives the attention picture; the cost curves are counted on the meta device.
set -euo pipefail
PY=${1:-.venv/bin/python}
OUT=docs/look_inside
RUN=$(mktemp -d)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
vitkit() { "$PY" -m vitkit.cli "$@"; }

vitkit train --model vit_tiny_patch16_224 --data digits --epochs 20 --lr 1e-3 --override img_size=32 \
    --override patch_size=4 --override depth=4 --override embed_dim=96 --override num_heads=3 --out "$RUN/vit" \
    --no-progress --seed 0
"$PY" - "$RUN" <<'PYEOF'
import sys

import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits

import vitkit

digit = load_digits().images[1][None, None] / 16.0  # a "1", 8×8 -> 32×32 as the Digits dataset upsamples it
import torch  # noqa: E402
big = F.interpolate(torch.from_numpy(digit).float(), size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
Image.fromarray((big.clamp(0, 1) * 255).byte().numpy()).save(f"{sys.argv[1]}/digit.png")
swin = vitkit.create_model("swin_tiny_patch4_window7_224", img_size=64, patch_size=2, embed_dim=16, depths=(2, 2),
                           num_heads=(2, 4), window_size=8, num_classes=10)
vitkit.save_checkpoint(swin, f"{sys.argv[1]}/swin.safetensors")
PYEOF
vitkit visualize "$RUN/vit/model.safetensors" --what pos-embed --out "$OUT/pos_embed.png"
vitkit visualize "$RUN/vit/model.safetensors" --what rollout --input "$RUN/digit.png" --data digits \
    --out "$OUT/rollout.png"
vitkit visualize "$RUN/swin.safetensors" --what attention --input "$RUN/digit.png" --query 13,18 \
    --out "$OUT/attention_swin.png"
vitkit profile vit_base_patch16_224 swin_tiny_patch4_window7_224 cvt_13_224 --sweep img_size=112,224,448,896 \
    --no-throughput --plot "$OUT/cost.png"
rm -rf "$RUN"
