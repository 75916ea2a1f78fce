"""The designs of C2, C6 and C7 (experiments/): C2's permutation null, C6's exact split of each model's cost into
the attention products and the rest, C7's 2×2 arms, and the figures (the three from synthetic results, all ten from the
committed raw results): axes that include zero and tick labels that do not overlap."""

import sys

import pytest
import torch

import vitkit
from vitkit.tools.profile import count_gmacs, count_gmacs_by_op
from vitkit.tools.reproduce import experiments_dir

sys.path.insert(0, str(experiments_dir()))
import c02_position_embeddings as c2  # experiments/ is not a package: its modules import each other by name
import c06_swin_cost as c6
import c07_cvt_locality as c7


def _grid(side: int) -> torch.Tensor:
    return torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij"), -1).reshape(-1, 2).float()


# --- C2 ------------------------------------------------------------------------------------------------------
def test_c2_the_identity_placement_is_the_observed_r_and_a_moved_table_moves_it_back():
    side, g = 4, torch.Generator().manual_seed(0)
    pos = torch.cat([torch.cos(_grid(side) / 3), torch.sin(_grid(side) / 3)], 1) + 0.1 * torch.randn(16, 4, generator=g)
    perm = torch.randperm(16, generator=g)
    moved = pos[perm]  # row k is the embedding of grid position perm[k]
    r = c2.distance_correlation(pos, side)
    assert c2.permuted_correlations(moved, side, perm[None]).item() == pytest.approx(r, abs=1e-9)
    assert c2.distance_correlation(moved, side) > r + 0.2  # scrambled on the grid: the structure is gone


def test_c2_a_smooth_table_beats_every_permutation_and_a_random_one_does_not():
    side, n = 6, 500
    smooth = torch.cat([torch.cos(_grid(side) / 3), torch.sin(_grid(side) / 3)], 1)
    t = c2.permutation_test(smooth, side, n, seed=0)
    assert t["r"] < -0.5 and t["p"] == pytest.approx(1 / (n + 1))  # the smallest p the null can give
    assert abs(t["null_mean"]) < 0.05 and 0 < t["null_sd"] < 0.2
    noise = c2.permutation_test(torch.randn(side * side, 64, generator=torch.Generator().manual_seed(1)), side, n, 0)
    assert noise["p"] > 0.05 and abs(noise["r"] - noise["null_mean"]) < 3 * noise["null_sd"]
    assert c2.permutation_test(smooth, side, n, seed=0) == t  # the null's permutations depend on the seed alone


# --- C6 ------------------------------------------------------------------------------------------------------
def _meta(name: str, **overrides):
    with torch.device("meta"):
        return vitkit.create_model(name, **overrides).eval()


def test_c6_attention_products_of_a_vit_are_two_n_squared_d_per_block():
    depth, D, side, patch = 2, 64, 64, 8
    m = _meta("vit_tiny_patch16_224", img_size=side, patch_size=patch, embed_dim=D, depth=depth, num_heads=4)
    by_op = count_gmacs_by_op(m, m.input_shape())
    N = (side // patch) ** 2 + 1  # patches and the class token
    attention = sum(v for k, v in by_op.items() if c6.is_attention_product(k))
    assert attention == pytest.approx(depth * 2 * N * N * D / 1e9)  # q·kᵀ and attention·v
    assert sum(by_op.values()) == pytest.approx(count_gmacs(m, m.input_shape()))


def test_c6_swin_attention_grows_with_the_area_and_vit_attention_with_its_square():
    cost = {(label, s): c6._cost(name, s) for label, (name, _) in list(c6.MODELS.items())[:2] for s in (224, 448)}
    swin, deit = (cost[label, 448]["attention_gmacs"] / cost[label, 224]["attention_gmacs"] for label in ("Swin-T",
                                                                                                        "DeiT-S"))
    assert swin == pytest.approx(4.0)  # 4× the tokens, windows of the same size
    assert deit == pytest.approx(((28 * 28 + 1) / (14 * 14 + 1)) ** 2)


def test_c6_quadratic_share_recovers_a_known_polynomial():
    tokens = [100.0, 400.0, 900.0, 1600.0]
    costs = [5 + 2 * n + 0.01 * n * n for n in tokens]
    share = c6.quadratic_share(tokens, costs)
    assert share == pytest.approx([0.01 * n * n / c for n, c in zip(tokens, costs)], rel=1e-6)
    assert max(map(abs, c6.quadratic_share(tokens, [3 * n for n in tokens]))) < 1e-9  # linear cost: no N² share


# --- C7 ------------------------------------------------------------------------------------------------------
def _shuffle_patches(x: torch.Tensor, patch: int, perm: torch.Tensor) -> torch.Tensor:
    B, C, H, W = x.shape
    g = H // patch
    p = x.reshape(B, C, g, patch, g, patch).permute(0, 2, 4, 1, 3, 5).reshape(B, g * g, C, patch, patch)
    p = p[:, perm].reshape(B, g, g, C, patch, patch)  # (B, gy, gx, C, ph, pw): the patches in another order
    return p.permute(0, 3, 1, 4, 2, 5).reshape(B, C, H, W)


def test_c7_vit_without_its_position_embedding_is_blind_to_where_patches_are():
    name, ov = c7.VIT
    x = torch.randn(2, 1, c7.IMG, c7.IMG)
    shuffled = _shuffle_patches(x, ov["patch_size"], torch.randperm((c7.IMG // ov["patch_size"]) ** 2))
    with_pos = c7.C.create(name, seed=3, in_chans=1, num_classes=10, **ov).eval()
    without = c7.remove_position_embedding(c7.C.create(name, seed=3, in_chans=1, num_classes=10, **ov)).eval()
    assert not without.pos_embed.requires_grad and not without.pos_embed.any()
    same = {k: v for k, v in without.state_dict().items() if k != "pos_embed"}
    assert all(torch.equal(v, with_pos.state_dict()[k]) for k, v in same.items())  # paired: only the table differs
    with torch.no_grad():
        moved, kept = ((m(shuffled) - m(x)).abs().max().item() for m in (with_pos, without))
    assert kept < 1e-5  # rounding only: a bag of patches
    assert moved > 100 * kept  # (an untrained ViT attends almost uniformly: a small change, yet far above rounding)


def test_c7_cvt_with_a_position_embedding_trains_a_table_per_stage():
    name, ov = c7.CVT
    m = c7.add_position_embedding(c7.C.create(name, seed=0, in_chans=1, num_classes=10, **ov))
    tables = [n for n, _ in m.named_parameters() if n.endswith("pos_embed")]
    assert tables == [f"stages.{i}.pos_embed" for i in range(len(m.stages))]
    x = torch.randn(2, 1, c7.IMG, c7.IMG)
    m.eval()
    with torch.no_grad():
        before = m(x)
        m.stages[0].pos_embed.add_(1.0)
        assert not torch.allclose(m(x), before)


def test_c7_arms_are_the_two_by_two():
    assert {(model[0], pos) for model, pos in c7.ARMS.values()} == {(m, p) for m in (c7.VIT[0], c7.CVT[0])
                                                                    for p in (True, False)}


# --- the figures ---------------------------------------------------------------------------------------------
@pytest.fixture
def figures(monkeypatch):
    """The figures the claims draw, kept open instead of closed once saved."""
    import matplotlib.pyplot as plt

    kept = []
    monkeypatch.setattr(plt, "close", kept.append)
    yield kept
    for f in kept:
        plt.figure(f.number)
        plt.clf()


def _synthetic(claim: str, path):
    seeds = [0, 1, 2, 3, 4]
    if claim == "C2":
        g = torch.Generator().manual_seed(0)
        runs = [{"sim_init": c2.similarity(torch.randn(64, 8, generator=g)).tolist(),
                 "sim_trained": c2.similarity(torch.randn(64, 8, generator=g)).tolist(),
                 **{f"{k}_{w}": v for w in ("init", "trained")
                    for k, v in (("r", -0.3), ("null_mean", 0.0), ("null_sd", 0.03))}} for _ in seeds]
        c2._figure(path, 8, runs, seeds)
    elif claim == "C6":
        c6._figure(path, {(label, s): {"gmacs": s * s / 1e4 * (1 + (s / 500) ** 2 * label.startswith(("ViT", "DeiT"))),
                                       "attention_gmacs": s / 100} for label in c6.MODELS for s in c6.SIDES})
    else:
        c7._figure(path, {k: [90.0 + i + j for j in range(len(seeds))] for i, k in enumerate(c7.ARMS)})


@pytest.mark.parametrize("claim", ["C2", "C6", "C7"])
def test_figures_axes_include_zero_and_ticks_do_not_overlap(claim, figures, tmp_path):
    _synthetic(claim, tmp_path / f"{claim}.png")
    (fig,) = figures
    assert (tmp_path / f"{claim}.png").stat().st_size > 0
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    drawn = [ax for ax in fig.axes if ax.axison]
    assert drawn
    for ax in drawn:
        for axis, lim, scale in ((ax.xaxis, ax.get_xlim(), ax.get_xscale()), (ax.yaxis, ax.get_ylim(),
                                                                               ax.get_yscale())):
            assert scale == "linear" and min(lim) <= 0 <= max(lim), (claim, lim)  # from zero: no hidden break
            boxes = [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), (claim, axis)


def test_every_committed_figure_reads_from_zero_without_overlapping_ticks(figures, tmp_path):
    """The ten figures as `make report` draws them from the committed raw results: every value axis linear and
    from zero (a cut axis hides its break); an x axis may instead be logarithmic (C1's training-set sizes span two
    decades, and its ticks say so); tick labels apart."""
    import shutil

    from vitkit.tools.reproduce import run_claims

    shutil.copytree(experiments_dir().parent / "reports" / "review" / "raw", tmp_path / "raw")
    run_claims([], tmp_path, from_raw=True, log=lambda *_: None)
    assert len(figures) == 10
    bad = []
    for claim, fig in zip([f"C{i}" for i in range(1, 11)], figures):  # drawn in the claims' order
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for n, ax in enumerate(a for a in fig.axes if a.axison):
            for name, axis, lim, scale in (("x", ax.xaxis, ax.get_xlim(), ax.get_xscale()),
                                           ("y", ax.yaxis, ax.get_ylim(), ax.get_yscale())):
                where = f"{claim} panel {n} {name}"
                if not ((scale == "linear" and min(lim) <= 0 <= max(lim)) or (name == "x" and scale == "log")):
                    bad.append(f"{where}: {scale} {lim}")
                boxes = [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
                if any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]):
                    bad.append(f"{where}: tick labels overlap")
    assert not bad, "\n".join(bad)
