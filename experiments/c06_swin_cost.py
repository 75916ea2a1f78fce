"""C6 — Swin's cost grows linearly with image area, ViT's attention quadratically (Swin §3.2, Tables 1 and 8).

Design: two size-matched pairs (Swin-T against DeiT-S, about 4.5 GMACs each at 224; Swin-B against ViT-B/16, about
15–18), counted exactly on the meta device (vitkit.tools.profile: nothing is trained or timed for the cost) at five
image sides. Each model's GMACs are split by operator into the attention products (q·kᵀ and attention·v: the
batched matmuls of the attention core) and the rest (linear layers, convolutions), so the attention term's own
exponent in the token count N is fitted, beside the total's and the share of the N² term of a fit a + b·N + c·N².
A small accuracy comparison on digits is reported beside the cost and not judged.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import common as C
import rules as R
import torch

from vitkit.tools.profile import count_gmacs_by_op

ID, TITLE, DEFAULT_SEEDS = "C6", "Swin's cost is linear in image size, ViT's attention quadratic", (0, 1, 2)
PAPER = ("Swin §3.2 Eq. 1–2: global MSA costs 4hwC² + 2(hw)²C, window MSA 4hwC² + 2M²hwC, linear in hw for a "
         "fixed window M; Table 1: Swin-T 4.5 GFLOPs (81.3 top-1) against DeiT-S 4.6 (79.8), Swin-B 15.4 (83.5) "
         "against DeiT-B, ViT-B/16's architecture, 17.5 (81.8; ViT-B/16 55.4 at 384); §1: linear computational "
         "complexity to image size, where ViT's is quadratic.")
SIDES = [224, 448, 672, 896, 1120]  # multiples of 32·M (M = 7): every Swin window is whole, no padding
PAIRS = (("Swin-T", "DeiT-S"), ("Swin-B", "ViT-B/16"))
MODELS = {"Swin-T": ("swin_tiny_patch4_window7_224", 4), "DeiT-S": ("deit_small_patch16_224", 16),
          "Swin-B": ("swin_base_patch4_window7_224", 4), "ViT-B/16": ("vit_base_patch16_224", 16)}  # name, patch
SMALL = {"ViT": ("vit_tiny_patch16_224", dict(img_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=4)),
         "Swin": ("swin_tiny_patch4_window7_224", dict(img_size=32, patch_size=2, embed_dim=32, depths=(2, 2),
                                                       num_heads=(2, 4), window_size=4))}


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = statistics.mean(lx), statistics.mean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def quadratic_share(tokens: list[float], costs: list[float]) -> list[float]:
    """Least-squares fit cost = a + b·N + c·N² over the sizes; the N² term's share c·N²/cost at each size."""
    n = torch.tensor(tokens, dtype=torch.float64) / max(tokens)  # scaled: a well-conditioned fit
    A = torch.stack([torch.ones_like(n), n, n * n], 1)  # (sizes, 3)
    coef = torch.linalg.lstsq(A, torch.tensor(costs, dtype=torch.float64)[:, None], driver="gelsd").solution[:, 0]
    return (coef[2] * n * n / torch.tensor(costs, dtype=torch.float64)).tolist()


def is_attention_product(op: str) -> bool:
    """The attention core's two products: batched matmuls (meta device, math path) or a fused SDPA kernel."""
    return "bmm" in op or "scaled_dot_product" in op


def _exp(label: str, what: str) -> str:
    return f"the exponent of {label}'s {what} in the token count over sides {SIDES[0]}–{SIDES[-1]}"


RULE = R.Rule(tuple(
    [R.Part(f"{m}_attention_exponent", _exp(m, "attention-product GMACs"), "≈", 1.0 if m.startswith("Swin") else 2.0,
            0.1, exact=True) for pair in PAIRS for m in pair]
    + [R.Part(f"{s}_exponent", _exp(s, "GMACs"), "≈", 1.0, 0.1, exact=True) for s, _ in PAIRS]
    + [R.Part(f"{s}_over_{v}", f"{s}'s GMACs over {v}'s at {SIDES[-1]} pixels", "<", 1.0, 0.5, exact=True)
       for s, v in PAIRS]))


def _cost(name: str, side: int) -> dict:
    """Exact GMACs of one forward at `side`: in all and of the attention products."""
    with torch.device("meta"):
        m = C.create(name, seed=0, img_size=side)
    by_op = count_gmacs_by_op(m.eval(), m.input_shape())
    return {"gmacs": sum(by_op.values()), "attention_gmacs": sum(v for k, v in by_op.items() if is_attention_product(k))}


def _accuracy(name: str, ov: dict, fit: C.Fit, s: int) -> dict:
    model = C.create(name, seed=s, in_chans=1, num_classes=10, **ov)
    C.fit(model, *C.digits("train", 32), fit, s)
    return {"acc": C.accuracy(model, *C.digits("test", 32)), "gmacs": C.gmacs(model, (1, 32, 32))}


def _fits(cost: dict) -> tuple[dict, dict]:
    """Per model: the judged values (exponents) and the N² term's share of its GMACs at each side."""
    values, share = {}, {}
    for label, (_, patch) in MODELS.items():
        tokens = [(s // patch) ** 2 for s in SIDES]  # N: tokens of the first stage, ∝ image area
        total, attn = ([cost[label, s][k] for s in SIDES] for k in ("gmacs", "attention_gmacs"))
        values[f"{label}_attention_exponent"] = [slope(tokens, attn)]
        values[f"{label}_exponent"] = [slope(tokens, total)]
        share[label] = quadratic_share(tokens, total)
    for s, v in PAIRS:
        values[f"{s}_over_{v}"] = [cost[s, SIDES[-1]]["gmacs"] / cost[v, SIDES[-1]]["gmacs"]]
    return {p.name: values[p.name] for p in RULE.parts}, {**values, "share": share}


def _figure(path: Path, cost: dict) -> None:
    """GMACs and attention-product GMACs against image area, linear axes from zero: a line bends up when its
    cost is quadratic."""
    area = [s * s / 1e6 for s in SIDES]
    with C.figure(path) as fig:
        for i, (key, ylabel) in enumerate((("gmacs", "GMACs per image"),
                                           ("attention_gmacs", "attention products (GMACs)"))):
            ax = fig.add_subplot(1, 2, i + 1)
            for label in MODELS:
                ax.plot(area, [cost[label, s][key] for s in SIDES], marker="o", label=label,
                        linestyle="-" if label.startswith("Swin") else "--")
            ax.set_xlim(0, area[-1] * 1.05)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("image area (megapixels)")
            ax.set_ylabel(ylabel)
            ax.locator_params(nbins=5)
            ax.legend(fontsize=8)


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    cost = {(label, s): C.measured(out, {"what": "c6-gmacs-by-op", "model": name, "side": s},
                                   lambda name=name, s=s: _cost(name, s), code=__file__)
            for label, (name, _) in MODELS.items() for s in SIDES}
    values, fitted = _fits(cost)
    rows = []
    for label in MODELS:
        rows.append([label, "GMACs", *(f"{cost[label, s]['gmacs']:.1f}" for s in SIDES),
                     f"{fitted[f'{label}_exponent'][0]:.2f}"])
        rows.append([label, "attention products (GMACs)", *(f"{cost[label, s]['attention_gmacs']:.2f}" for s in SIDES),
                     f"{fitted[f'{label}_attention_exponent'][0]:.2f}"])
        rows.append([label, "N² term's share of GMACs (%)", *(f"{round(100 * v):d}" for v in fitted["share"][label]), ""])
    # accuracy at equal budget (same epochs) on digits at 32×32: reported beside the cost, not judged
    fit = C.Fit(epochs=2 if quick else 40)
    for label, (name, ov) in SMALL.items():
        rs = [C.measured(out, {"what": "c6-acc", "model": name, "ov": ov, "fit": fit.__dict__, "seed": s},
                         lambda s=s, name=name, ov=ov: _accuracy(name, ov, fit, s), code=__file__) for s in seeds]
        rows.append([f"tiny {label}, digits 32×32", "top-1 %", C.mean_std([r["acc"] for r in rs]),
                     f"{rs[0]['gmacs'] * 1e3:.1f} MMACs", "", "", "", ""])
    _figure(out / "C6.png", cost)
    return C.ClaimResult(ID, TITLE, PAPER, ["model", "quantity", *map(str, SIDES), "exponent in N"], rows, RULE,
                         values, seeds, quick, figure="C6.png",
                         notes=["GMACs counted exactly on the meta device (vitkit.tools.profile.count_gmacs_by_op), "
                                "nothing timed; attention products are the attention core's batched matmuls; N is "
                                "the first stage's token count ((side / patch)²); exponents are log-log "
                                "least-squares slopes over all five sides; the N² share comes from a least-squares "
                                "fit a + b·N + c·N² of the GMACs.",
                                f"Digits rows: {fit.epochs} epochs each, seeds {', '.join(map(str, seeds))}."])
