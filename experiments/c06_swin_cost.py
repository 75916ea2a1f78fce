"""C6 — Swin's cost grows linearly with image area, ViT's quadratically (Swin §3.2, Tables 1 and 8)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import common as C
import rules as R
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


RULE = R.Rule((
    R.Part("swin_exponent", "the exponent of Swin-T's GMACs in image area between the two largest sides", "≈", 1.0,
           0.15, exact=True),
    R.Part("vit_exponent", "the exponent of ViT-B/16's GMACs in image area between the two largest sides", ">", 1.1,
           1.3, exact=True),
    R.Part("cost_ratio", "Swin-T's GMACs over ViT-B/16's at 224 pixels", "<", 1.0, 0.5, exact=True),
))


def _cost(name: str, side: int) -> dict:
    with torch.device("meta"):
        m = C.create(name, seed=0, img_size=side)
    return {"gmacs": C.gmacs(m, m.input_shape())}


def _speed(name: str, side: int) -> dict:
    return {"images_per_s": C.throughput(C.create(name, seed=0, img_size=side), (3, side, side), batch_size=1)}


def _accuracy(name: str, ov: dict, fit: C.Fit, s: int) -> dict:
    model = C.create(name, seed=s, in_chans=1, num_classes=10, **ov)
    C.fit(model, *C.digits("train", 32), fit, s)
    return {"acc": C.accuracy(model, *C.digits("test", 32)), "gmacs": C.gmacs(model, (1, 32, 32))}


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    sides = [112, 224] if quick else FULL
    timed = [] if quick else [112, 224, 448]  # quick: no timing (building ViT-B's weights alone takes seconds)
    macs, speed = {}, {}
    for label, name in MODELS.items():
        for s in sides:
            macs[label, s] = C.measured(out, {"what": "c6-gmacs", "model": name, "side": s},
                                        lambda name=name, s=s: _cost(name, s), code=__file__)["gmacs"]
            if s in timed:  # a speed belongs to this machine now: recorded in the raw results, never cached
                speed[label, s] = C.measured(out, {"what": "c6-speed", "model": name, "side": s},
                                             lambda name=name, s=s: _speed(name, s), code=__file__,
                                             keep=False)["images_per_s"]
    rows = [[s, f"{macs['ViT-B/16', s]:.1f}", f"{macs['Swin-T', s]:.1f}",
             f"{speed['ViT-B/16', s]:.1f}" if s in timed else "", f"{speed['Swin-T', s]:.1f}" if s in timed else ""]
            for s in sides]
    area = [s * s for s in sides]
    k = {label: slope(area[-2:], [macs[label, s] for s in sides[-2:]]) for label in MODELS}
    values = {"swin_exponent": [k["Swin-T"]], "vit_exponent": [k["ViT-B/16"]],
              "cost_ratio": [macs["Swin-T", 224] / macs["ViT-B/16", 224]]}
    # accuracy at equal budget (same epochs) on digits at 32×32: reported beside the cost, not judged
    fit = C.Fit(epochs=2 if quick else 40)
    acc = {label: [C.measured(out, {"what": "c6-acc", "model": name, "ov": ov, "fit": fit.__dict__, "seed": s},
                              lambda s=s, name=name, ov=ov: _accuracy(name, ov, fit, s), code=__file__) for s in seeds]
           for label, (name, ov) in SMALL.items()}
    for label, rs in acc.items():
        rows.append([f"digits 32×32, tiny {label}", f"{rs[0]['gmacs'] * 1e3:.1f} MMACs", "",
                     "top-1 " + C.mean_std([r["acc"] for r in rs]), ""])
    with C.figure(out / "C6.png") as fig:
        panels = ((sides, macs, "GMACs"), (timed, speed, "images/s (batch 1, this CPU)"))[:2 if timed else 1]
        for i, (xs, measured, ylabel) in enumerate(panels):
            ax = fig.add_subplot(1, 2, i + 1)
            for label in MODELS:
                ax.plot(xs, [measured[label, s] for s in xs], marker="o", label=label)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("image side (pixels)")
            ax.set_ylabel(ylabel)
            ax.legend()
    return C.ClaimResult(ID, TITLE, PAPER, ["image side", "ViT-B/16 GMACs", "Swin-T GMACs", "ViT-B/16 img/s",
                                            "Swin-T img/s"], rows, RULE, values, seeds, quick, figure="C6.png",
                         notes=["GMACs counted on the meta device (vitkit.tools.profile); throughput fp32, batch 1, "
                                "median of 5 steps, one thread."])
