"""C2 — learned position embeddings learn the 2-D layout by themselves (ViT Fig. 7, centre)."""

from __future__ import annotations

from pathlib import Path

import common as C
import rules as R
import torch
import torch.nn.functional as F

ID, TITLE, DEFAULT_SEEDS = "C2", "Position embeddings learn 2-D structure", (0, 1, 2)
PAPER = ("ViT §4.5 and Fig. 7 (centre): the 1-D learned position embeddings of ViT-L/32 show, by cosine "
         "similarity, that close patches have similar embeddings, with row and column structure; no 2-D prior was "
         "given (App. D.4: 1-D, 2-D and relative embeddings perform alike).")
IMG, PATCH = 16, 2  # an 8×8 grid of patches
QUICK_EPOCHS = 3


def similarity(pos: torch.Tensor) -> torch.Tensor:
    """(N, D) position embeddings -> (N, N) cosine similarities."""
    p = F.normalize(pos, dim=-1)
    return p @ p.T


def distance_correlation(pos: torch.Tensor, side: int) -> float:
    """Pearson correlation between the cosine similarity of two patches' embeddings and their grid distance
    (all pairs of distinct patches): near 0 for unstructured tables, negative when near means similar."""
    yx = torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij"), -1).reshape(-1, 2).float()
    dist = torch.cdist(yx, yx)
    sim = similarity(pos)
    off = ~torch.eye(len(pos), dtype=torch.bool)
    return torch.corrcoef(torch.stack([sim[off], dist[off]]))[0, 1].item()


RULE = R.Rule((
    R.Part("r_change", "r(similarity, grid distance) after training minus at initialisation", "<", 0.0, -0.3),
))


def _train(ov: dict, fit: C.Fit, side: int, s: int) -> dict:
    """One seed: test accuracy, the correlation r before and after training, and both similarity tables."""
    model = C.create("vit_tiny_patch16_224", seed=s, **ov)
    init = model.pos_embed[0, 1:].detach().clone()
    C.fit(model, *C.digits("train", IMG), fit, s)
    trained = model.pos_embed[0, 1:].detach()
    table = lambda pos: [[round(v, 4) for v in row] for row in similarity(pos).tolist()]
    return {"acc": C.accuracy(model, *C.digits("test", IMG)), "r_init": distance_correlation(init, side),
            "r_trained": distance_correlation(trained, side), "sim_init": table(init), "sim_trained": table(trained)}


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    side = IMG // PATCH
    ov = dict(img_size=IMG, patch_size=PATCH, embed_dim=64, depth=4, num_heads=4, in_chans=1, num_classes=10)
    fit = C.Fit(epochs=QUICK_EPOCHS, warmup_epochs=0.5) if quick else C.Fit(epochs=50)
    runs = [C.measured(out, {"what": "c2", "ov": ov, "fit": fit.__dict__, "seed": s},
                       lambda s=s: _train(ov, fit, side, s), code=__file__) for s in seeds]
    rows = [[s, f"{r['acc']:.1f}", f"{r['r_init']:+.3f}", f"{r['r_trained']:+.3f}"] for s, r in zip(seeds, runs)]
    values = {"r_change": [r["r_trained"] - r["r_init"] for r in runs]}
    init, trained = torch.tensor(runs[0]["sim_init"]), torch.tensor(runs[0]["sim_trained"])
    with C.figure(out / "C2.png") as fig:  # tile (r, c): cosine similarity of patch (r, c) to every patch
        for k, (title, table) in enumerate((("initialisation", init), ("trained", trained))):
            sim = table.reshape(side, side, side, side)  # (query y, x, key y, x)
            grid = sim.permute(0, 2, 1, 3).reshape(side * side, side * side)  # one side×side tile per query patch
            ax = fig.add_subplot(1, 2, k + 1)
            ax.imshow(grid, cmap="viridis", vmin=-1, vmax=1)
            for i in range(1, side):
                ax.axhline(i * side - 0.5, color="w", lw=0.5)
                ax.axvline(i * side - 0.5, color="w", lw=0.5)
            ax.set_axis_off()
            ax.set_title(f"{title}", fontsize=10)
    return C.ClaimResult(ID, TITLE, PAPER, ["seed", "test top-1 %", "r(similarity, distance) at init",
                                            "r after training"], rows, RULE, values, seeds, quick, figure="C2.png",
                         notes=[f"ViT at 16×16 digits, patch 2 (an 8×8 grid), D 64, 4 blocks, {fit.epochs} epochs; "
                                "r is Pearson's correlation over all pairs of distinct patches."])
