"""C2 — learned position embeddings learn the 2-D layout by themselves (ViT Fig. 7, centre).

Design: a ViT with a 1-D learned position table is trained on digits; its statistic is r, Pearson's correlation
between the cosine similarity of two patches' embeddings and their distance on the grid. r is judged against a
permutation null: the same embeddings with their grid positions shuffled (PERMUTATIONS times), which keeps every
property of the table but its relation to the layout. Per seed: the one-sided p-value of r under that null; across
seeds: r minus the null's mean, with a t-interval.
"""

from __future__ import annotations

from pathlib import Path

import common as C
import rules as R
import torch
import torch.nn.functional as F

ID, TITLE, DEFAULT_SEEDS = "C2", "Position embeddings learn 2-D structure", (0, 1, 2, 3, 4)
PAPER = ("ViT §4.5 and Fig. 7 (centre): the 1-D learned position embeddings of ViT-L/32 show, by cosine "
         "similarity, that close patches have similar embeddings, with row and column structure; no 2-D prior was "
         "given (App. D.4: 1-D, 2-D and relative embeddings perform alike).")
IMG, PATCH = 16, 2  # an 8×8 grid of patches
QUICK_EPOCHS = 3
PERMUTATIONS = 2000

# r at least medium (Cohen: |r| 0.1 small, 0.3 medium, 0.5 large) beyond the null, and every seed significant
RULE = R.Rule((
    R.Part("r_minus_null", "r(similarity, grid distance) after training minus its permutation null's mean", "<", 0.0,
           -0.3),
    R.Part("p_max", f"the largest of the seeds' one-sided permutation p-values ({PERMUTATIONS} permutations)", "<",
           0.05, 0.01, exact=True),
))


def similarity(pos: torch.Tensor) -> torch.Tensor:
    """(N, D) position embeddings -> (N, N) cosine similarities."""
    p = F.normalize(pos, dim=-1)
    return p @ p.T


def grid_distance(side: int) -> torch.Tensor:
    """(side², side²) Euclidean distances between the patches of a side×side grid, in row-major order."""
    yx = torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij"), -1).reshape(-1, 2).float()
    return torch.cdist(yx, yx)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson's r of a (n,) against each row of b (k, n) -> (k,)."""
    a, b = a - a.mean(), b - b.mean(-1, keepdim=True)
    return (b @ a) / (a.norm() * b.norm(dim=-1))


def permuted_correlations(pos: torch.Tensor, side: int, perms: torch.Tensor) -> torch.Tensor:
    """r(similarity, grid distance) over all pairs of distinct patches, with the embeddings placed on the grid by
    each permutation: perms (k, N) -> (k,). The identity gives the observed r."""
    sim, dist = similarity(pos.double()), grid_distance(side).double()
    off = ~torch.eye(len(pos), dtype=torch.bool)
    rs = []
    for chunk in perms.split(250):  # (c, N, N) distance tables at a time
        moved = dist[chunk[:, :, None], chunk[:, None, :]]  # patch i sits where perm[i] is
        rs.append(_pearson(sim[off], moved[:, off]))
    return torch.cat(rs)


def distance_correlation(pos: torch.Tensor, side: int) -> float:
    """r for the embeddings at their own grid positions: near 0 for unstructured tables, negative when near means
    similar."""
    return permuted_correlations(pos, side, torch.arange(len(pos))[None]).item()


def permutation_test(pos: torch.Tensor, side: int, n: int, seed: int) -> dict:
    """r and its null: `n` random placements of the same embeddings on the grid. p = (1 + #{null r ≤ r}) / (1 + n),
    one-sided (the claim is that near patches are more similar: r below the null)."""
    g = torch.Generator().manual_seed(20_000 + seed)
    perms = torch.rand(n, len(pos), generator=g).argsort(1)  # (n, N) uniform permutations
    r = distance_correlation(pos, side)
    null = permuted_correlations(pos, side, perms)
    return {"r": r, "null_mean": null.mean().item(), "null_sd": null.std().item(),
            "p": (1 + (null <= r).sum().item()) / (1 + n)}


def _train(ov: dict, fit: C.Fit, side: int, s: int) -> dict:
    """One seed: test accuracy; r, its null and p at initialisation and after training; both similarity tables."""
    model = C.create("vit_tiny_patch16_224", seed=s, **ov)
    init = model.pos_embed[0, 1:].detach().clone()
    C.fit(model, *C.digits("train", IMG), fit, s)
    trained = model.pos_embed[0, 1:].detach()
    table = lambda pos: [[round(v, 4) for v in row] for row in similarity(pos).tolist()]
    tests = {when: permutation_test(pos, side, PERMUTATIONS, s) for when, pos in (("init", init), ("trained", trained))}
    return {"acc": C.accuracy(model, *C.digits("test", IMG)),
            **{f"{k}_{when}": v for when, t in tests.items() for k, v in t.items()},
            "sim_init": table(init), "sim_trained": table(trained)}


def _figure(path: Path, side: int, runs: list[dict], seeds: list[int]) -> None:
    """The first seed's similarity tiles at initialisation and after training; every seed's r against its null."""
    with C.figure(path) as fig:  # tile (r, c): cosine similarity of patch (r, c) to every patch
        for k, when in enumerate(("init", "trained")):
            sim = torch.tensor(runs[0][f"sim_{when}"]).reshape(side, side, side, side)  # (query y, x, key y, x)
            grid = sim.permute(0, 2, 1, 3).reshape(side * side, side * side)  # one side×side tile per query patch
            ax = fig.add_subplot(1, 3, k + 1)
            ax.imshow(grid, cmap="viridis", vmin=-1, vmax=1)
            for i in range(1, side):
                ax.axhline(i * side - 0.5, color="w", lw=0.5)
                ax.axvline(i * side - 0.5, color="w", lw=0.5)
            ax.set_axis_off()
            ax.set_title("initialisation" if when == "init" else "trained", fontsize=10)
        ax = fig.add_subplot(1, 3, 3)
        for when, colour in (("init", "#999"), ("trained", "#36c")):
            ax.errorbar([r[f"r_{when}"] for r in runs], range(len(runs)), fmt="o", color=colour,
                        label=f"r, {'initialisation' if when == 'init' else 'trained'}")
            ax.errorbar([r[f"null_mean_{when}"] for r in runs], range(len(runs)),
                        xerr=[2 * r[f"null_sd_{when}"] for r in runs], fmt="|", color=colour, alpha=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_xlim(-1, 1)
        ax.set_ylim(-0.5, len(runs) - 0.5)
        ax.set_yticks(range(len(runs)), [f"seed {s}" for s in seeds])
        ax.set_xlabel("r(similarity, distance); null ± 2 sd")
        ax.legend(fontsize=7, loc="upper right")


def run(out: Path, quick: bool, seeds: list[int]) -> C.ClaimResult:
    side = IMG // PATCH
    ov = dict(img_size=IMG, patch_size=PATCH, embed_dim=64, depth=4, num_heads=4, in_chans=1, num_classes=10)
    fit = C.Fit(epochs=QUICK_EPOCHS, warmup_epochs=0.5) if quick else C.Fit(epochs=50)
    runs = [C.measured(out, {"what": "c2", "ov": ov, "fit": fit.__dict__, "permutations": PERMUTATIONS, "seed": s},
                       lambda s=s: _train(ov, fit, side, s), code=__file__) for s in seeds]
    rows = [[s, f"{r['acc']:.1f}", f"{r['r_init']:+.3f} (p {r['p_init']:.3f})",
             f"{r['null_mean_trained']:+.3f} ± {r['null_sd_trained']:.3f}", f"{r['r_trained']:+.3f}",
             f"{r['p_trained']:.4f}"] for s, r in zip(seeds, runs)]
    values = {"r_minus_null": [r["r_trained"] - r["null_mean_trained"] for r in runs],
              "p_max": [max(r["p_trained"] for r in runs)]}
    _figure(out / "C2.png", side, runs, seeds)
    return C.ClaimResult(ID, TITLE, PAPER, ["seed", "test top-1 %", "r at init (p)", "null r after training (mean ± sd)",
                                            "r after training", "p after training"], rows, RULE, values, seeds, quick,
                         figure="C2.png",
                         notes=[f"ViT at 16×16 digits, patch 2 (an 8×8 grid), D 64, 4 blocks, {fit.epochs} epochs; "
                                "r is Pearson's correlation over all pairs of distinct patches; the null places the "
                                f"same embeddings on the grid by {PERMUTATIONS} random permutations per seed "
                                "(p = (1 + #{null r ≤ r}) / (1 + permutations), one-sided)."])
