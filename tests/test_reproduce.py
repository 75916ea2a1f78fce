"""`vitkit reproduce`: every claim of the review runs in --quick mode and its report section has the rows the
claim promises; the report is whole (ten sections) and bad claim names are one line."""

import json

import pytest

from vitkit.cli import main

CLAIMS = [f"C{i}" for i in range(1, 11)]
ROWS = {  # first column of each claim's table
    "C1": ["250", "1000"],
    "C3": ["none", "soft", "hard", "teacher (ResNet)"],
    "C4": ["class head", "distillation head", "both (averaged logits)"],
    "C5": ["none", "hard", "teacher (ResNet)"],
    "C7": ["ViT (patch 4)", "CvT (no position embedding)", "CvT + learned position embedding"],
    "C8": ["Model 1 spatio-temporal", "Model 2 factorised encoder", "Model 3 factorised self-attention",
           "Model 4 factorised dot-product"],
    "C9": ["space only", "joint space time", "divided space time", "local global", "axial"],
    "C10": ["MViT (pooling attention)", "ViViT Model 1 (joint space-time ViT)", "TimeSformer divided"],
}
VERDICTS = {"reproduced", "partly reproduced", "not reproduced"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("review")
    assert main(["reproduce", "--quick", "--out", str(out)]) == 0
    return out


def test_list_names_the_ten_claims(capsys):
    assert main(["reproduce", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == CLAIMS


@pytest.mark.parametrize("claim", CLAIMS)
def test_each_claim_reports_its_rows(report, claim):
    r = json.loads((report / f"{claim}.json").read_text())
    assert r["id"] == claim and r["quick"] and r["seeds"] == [0]
    assert r["verdict"] in VERDICTS and r["why"]
    assert all(len(row) == len(r["columns"]) for row in r["rows"])
    if claim in ROWS:
        assert [str(row[0]) for row in r["rows"]] == ROWS[claim]
    assert (report / r["figure"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_has_ten_sections_with_commands(report):
    text = (report / "README.md").read_text()
    for c in CLAIMS:
        assert f"## {c} — " in text
        assert f"`vitkit reproduce {c} --quick`" in text
    assert "not run yet" not in text



def test_a_rerun_reads_the_cache_and_says_so(report):
    """C4 reuses C3's students: its report counts those runs, their time, and that they came from the cache."""
    first = json.loads((report / "C3.json").read_text())["cost"]
    assert first["runs"] == 3 and first["cached_runs"] == 0 and first["run_seconds"] > 0
    again = json.loads((report / "C4.json").read_text())["cost"]
    assert again["runs"] >= 1 and again["cached_runs"] == again["runs"] and again["untimed_runs"] == 0
    text = (report / "README.md").read_text()
    assert f"read {again['cached_runs']} of them from the cache of an earlier run" in text

def test_c2_correlation_is_computed_on_the_grid():
    import sys

    import torch

    from vitkit.tools.reproduce import experiments_dir

    sys.path.insert(0, str(experiments_dir()))
    from c02_position_embeddings import distance_correlation

    side = 4
    yx = torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij"), -1).reshape(-1, 2).float()
    smooth = torch.cat([torch.cos(yx / 3), torch.sin(yx / 3)], 1)  # nearby positions -> similar vectors
    assert distance_correlation(smooth, side) < -0.5
    assert abs(distance_correlation(torch.randn(side * side, 256, generator=torch.Generator().manual_seed(0)),
                                    side)) < 0.2


def test_unknown_claim_is_one_line(capsys):
    assert main(["reproduce", "C11", "--quick", "--out", "/tmp/unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown claim C11") and "\n" not in err


@pytest.mark.parametrize("shape", [(6, 1, 16, 16), (3, 2, 4, 8, 12)])  # images and clips
def test_shift_augment_moves_each_sample_by_its_own_offset(shape):
    import sys

    import torch

    from vitkit.tools.reproduce import experiments_dir

    sys.path.insert(0, str(experiments_dir()))
    from common import shift_augment

    x, s = torch.randn(shape), 2
    out = shift_augment(x, torch.Generator().manual_seed(0), s)
    dy, dx = torch.randint(0, 2 * s + 1, (2, shape[0]), generator=torch.Generator().manual_seed(0)).tolist()
    H, W = shape[-2:]
    for i in range(shape[0]):  # the sample shifted by (s - dy, s - dx), the uncovered border at the batch minimum
        want = torch.full_like(x[i], x.amin().item())
        src = x[i][..., max(dy[i] - s, 0):H + min(dy[i] - s, 0), max(dx[i] - s, 0):W + min(dx[i] - s, 0)]
        want[..., max(s - dy[i], 0):H + min(s - dy[i], 0), max(s - dx[i], 0):W + min(s - dx[i], 0)] = src
        torch.testing.assert_close(out[i], want, rtol=0, atol=1e-6)
