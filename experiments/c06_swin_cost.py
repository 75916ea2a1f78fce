"""C6 — Swin's cost grows linearly with image area, ViT's quadratically (Swin §3.2, Tables 1 and 8)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import common as C
import torch

ID, TITLE, DEFAULT_SEEDS = "C6", "Swin costs far less than ViT, linear instead of quadratic in image size", (0, 1, 2)
PAPER = ("Swin §3.2 Eq. 1–2: global MSA costs 4hwC² + 2(hw)²C, window MSA 4hwC² + 2M²hwC, linear in hw for a "
         "fixed window M; Table 1: Swin-T 4.5 GFLOPs at 224 (ViT-B/16 17.6 at 224, 55.4 at 384) with 81.3 top-1.")
FULL = [112, 224, 448, 896]
MODELS = {"ViT-B/16": "vit_base_patch16_224", "Swin-T": "swin_tiny_patch4_window7_224"}
SMALL = {"ViT": ("vit_tiny_patch16_224", dict(img_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=4)),
         "Swin": ("swin_tiny_patch4_window7_224", dict(img_size=32, patch_size=2, embed_dim=32, depths=(2, 2),
                                                       num_heads=(2, 4), window_size=4))}


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = statistics.mean(lx), statistics.mean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    sides = [112, 224] if quick else FULL
    timed = [112] if quick else [112, 224, 448]
    macs, speed = {}, {}
    for label, name in MODELS.items():
        for s in sides:
            with torch.device("meta"):
                m = C.create(name, img_size=s)
            macs[label, s] = C.gmacs(m, m.input_shape())
            if s in timed:
                speed[label, s] = C.throughput(C.create(name, img_size=s), (3, s, s), batch_size=1)
    rows = [[s, f"{macs['ViT-B/16', s]:.1f}", f"{macs['Swin-T', s]:.1f}",
             f"{speed['ViT-B/16', s]:.1f}" if s in timed else "", f"{speed['Swin-T', s]:.1f}" if s in timed else ""]
            for s in sides]
    area = [s * s for s in sides]
    k = {label: slope(area[-2:], [macs[label, s] for s in sides[-2:]]) for label in MODELS}
    # accuracy at equal budget (same epochs) on digits at 32×32
    fit = C.Fit(epochs=2 if quick else 40)
    test = C.digits("test", 32)
    acc = {}
    for label, (name, ov) in SMALL.items():
        def train(name=name, ov=ov, s=0):
            model = C.create(name, in_chans=1, num_classes=10, **ov)
            C.fit(model, *C.digits("train", 32), fit, s)
            return {"acc": C.accuracy(model, *test), "gmacs": C.gmacs(model, (1, 32, 32))}
        acc[label] = [C.cached(out, {"what": "c6-acc", "model": name, "ov": ov, "fit": fit.__dict__, "seed": s},
                               lambda s=s, train=train: train(s=s)) for s in seeds]
    for label, rs in acc.items():
        rows.append([f"digits 32×32, tiny {label}", f"{rs[0]['gmacs'] * 1e3:.1f} MMACs", "",
                     "top-1 " + C.mean_std([r["acc"] for r in rs]), ""])
    linear = abs(k["Swin-T"] - 1) < 0.15 and k["ViT-B/16"] > 1.3
    verdict = "reproduced" if linear else "partly reproduced"
    why = (f"from {sides[-2]} to {sides[-1]} pixels a side, GMACs grow as area^{k['Swin-T']:.2f} for Swin-T and "
           f"area^{k['ViT-B/16']:.2f} for ViT-B/16 (the attention term (hw)² takes over as the side grows).")
    with C.figure(out / "C6.png") as fig:
        panels = ((sides, macs, "GMACs"), (timed, speed, "images/s (batch 1, this CPU)"))
        for k, (xs, values, ylabel) in enumerate(panels):
            ax = fig.add_subplot(1, 2, k + 1)
            for label in MODELS:
                ax.plot(xs, [values[label, s] for s in xs], marker="o", label=label)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("image side (pixels)")
            ax.set_ylabel(ylabel)
            ax.legend()
    return C.ClaimResult(ID, TITLE, PAPER, ["image side", "ViT-B/16 GMACs", "Swin-T GMACs", "ViT-B/16 img/s",
                                            "Swin-T img/s"], rows, verdict, why, seeds, quick, figure="C6.png",
                         notes=["GMACs counted on the meta device (vitkit.tools.profile); throughput fp32, batch 1, "
                                "median of 5 steps, one thread."])
