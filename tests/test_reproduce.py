"""`vitkit reproduce`: every claim of the review runs in --quick mode and its report section has the rows the
claim promises, a verdict that is its declared rule's judgement of the numbers it measured, and models that
learned; runs do not depend on what ran before; the report rebuilds from the raw results without training; the
report is whole (ten sections) and bad claim names are one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vitkit.cli import main
from vitkit.tools.reproduce import experiments_dir, load_claims, run_claims

CLAIMS = [f"C{i}" for i in range(1, 11)]
DEIT_ARMS = ["no distillation (class token)", "distillation token, labels only", "soft, class token", "hard, class token",
             "soft, distillation token", "hard, distillation token"]  # DeiT Table 3's rows (C3, C5)
ROWS = {  # first column of each claim's table
    "C1": ["250", "1000"],
    "C3": [*DEIT_ARMS, "teacher (resnet_tiny_cifar)"],
    "C4": ["hard: distillation token − class token", "labels only: distillation token − none (a second class token)",
           "the token's gain beyond a second class token", "hard, distillation token: distillation head − class head"],
    "C5": [*DEIT_ARMS, "teacher (resnet_tiny_cifar)"],
    "C7": ["ViT + learned position embedding", "ViT (no position embedding)", "CvT + learned position embedding",
           "CvT (no position embedding)"],
    "C8": ["Model 1 spatio-temporal", "Model 2 factorised encoder", "Model 3 factorised self-attention",
           "Model 4 factorised dot-product"],
    "C9": ["space only", "joint space time", "divided space time", "local global", "axial"],
    "C10": ["MViT (pooling attention)", "ViViT Model 1 (joint space-time ViT)", "TimeSformer divided"],
}
# chance accuracy of each claim's task, and where at least one model must beat it by LEARNED points in quick mode:
# every claim but C9, whose ten TimeSformer runs cannot get the steps they need to learn within the test's time
CHANCE = {"C1": 10.0, "C2": 10.0, "C3": 10.0, "C4": 10.0, "C5": 10.0, "C6": 10.0, "C7": 10.0, "C8": 12.5, "C10": 12.5}
LEARNED = 5.0  # points above chance: about three binomial standard deviations on the 360 test digits


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
    module = load_claims()[claim]
    import rules  # experiments/rules.py, on the path since load_claims

    judged = rules.judge(module.RULE, r["values"])  # the verdict and its sentence are the rule's, not prose
    assert (r["verdict"], r["why"], r["parts"]) == (judged.verdict, judged.why, judged.parts)
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
    import deit_students  # experiments/, on the path since load_claims

    first = json.loads((report / "C3.json").read_text())["cost"]
    ladder = len(deit_students.QUICK.teacher_steps)  # the teacher candidates, then six students (one seed)
    assert first["runs"] == ladder + 6 and first["cached_runs"] == 0 and first["run_seconds"] > 0
    again = json.loads((report / "C4.json").read_text())["cost"]
    assert again["runs"] >= 1 and again["cached_runs"] == again["runs"] and again["untimed_runs"] == 0
    text = (report / "README.md").read_text()
    assert f"read {again['cached_runs']} of them from the cache of an earlier run" in text

def _accuracies(result) -> list[float]:
    """Every accuracy in a measurement's result (final, per head, per epoch)."""
    if isinstance(result, dict):
        return [a for k, v in result.items() if k.startswith(("acc", "history")) for a in _accuracies(v)]
    return [float(a) for a in result] if isinstance(result, list) else [float(result)]


@pytest.mark.parametrize("claim", list(CHANCE))
def test_a_model_of_each_claim_learns_in_quick_mode(report, claim):
    """The rules see real numbers: at least one model trained for the claim ends well above chance."""
    raw = json.loads((report / "raw" / f"{claim}.json").read_text())
    accs = [a for run in raw["runs"] for k, v in run["result"].items() if k.startswith("acc") for a in _accuracies(v)]
    assert accs and max(accs) >= CHANCE[claim] + LEARNED, (claim, max(accs, default=None))


def test_raw_results_are_numbers_with_their_code_and_version(report):
    raw = json.loads((report / "raw" / "C7.json").read_text())
    assert raw["quick"] and raw["seeds"] == [0] and raw["runs"]
    for run in raw["runs"]:
        assert run["vitkit"] and len(run["code"]) == 12 and run["seconds"] >= 0
        assert all(isinstance(v, (int, float)) for v in run["result"].values())


def test_a_claim_alone_equals_the_same_claim_after_others(report, tmp_path):
    """C4 alone in a fresh process (teacher and student trained there) gives exactly the results it gave after
    C1-C3 in the fixture's process, where its students came from the cache C3 left."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(vitkit_src())), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-m", "vitkit.tools.reproduce", "C4", "--quick", "--out", str(tmp_path)],
                   check=True, env=env, capture_output=True, cwd=experiments_dir().parent)
    alone, after = (json.loads((d / "raw" / "C4.json").read_text()) for d in (tmp_path, report))
    assert after["cost"]["cached_runs"] == after["cost"]["runs"] and alone["cost"]["cached_runs"] == 0
    assert [r["result"] for r in alone["runs"]] == [r["result"] for r in after["runs"]]
    assert [r["key"] for r in alone["runs"]] == [r["key"] for r in after["runs"]]


def test_one_configuration_gives_one_result_across_claims(report):
    """C6's tiny ViT and C7's ViT are the same model, data, budget and seed, trained in different claims."""
    def vit_acc(claim, what):
        runs = json.loads((report / "raw" / f"{claim}.json").read_text())["runs"]
        (acc,) = [r["result"]["acc"] for r in runs if r["key"]["what"] == what and r["key"]["model"].startswith("vit_")
                  and r["key"].get("pos", True)]  # C7's ViT with its position embedding, as C6's
        return acc

    assert vit_acc("C6", "c6-acc") == vit_acc("C7", "c7")


def test_the_report_rebuilds_from_raw_results_without_training(report, tmp_path, monkeypatch):
    import shutil

    import common

    shutil.copytree(report / "raw", tmp_path / "raw")
    monkeypatch.setattr(common, "fit", lambda *a, **k: pytest.fail("rebuilding from raw results trained a model"))
    monkeypatch.setattr(common, "throughput", lambda *a, **k: pytest.fail("rebuilding from raw results timed a model"))
    rebuilt = run_claims([], tmp_path, from_raw=True, log=lambda *_: None)
    assert [r["id"] for r in rebuilt] == CLAIMS
    for r in rebuilt:
        assert r == json.loads((report / f"{r['id']}.json").read_text())
    text = (tmp_path / "README.md").read_text()
    assert text == (report / "README.md").read_text()


def test_a_rebuild_names_raw_results_that_other_code_measured(report, tmp_path):
    raw = json.loads((report / "raw" / "C7.json").read_text())
    raw["runs"][0]["code"] = "0" * 12  # as if the claim's code had changed since it was measured
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "C7.json").write_text(json.dumps(raw))
    (rebuilt,) = run_claims(["C7"], tmp_path, from_raw=True, log=lambda *_: None)
    assert f"1 of its {len(raw['runs'])} raw measurements were made by another version" in rebuilt["notes"][-1]
    assert "1 of its" in (tmp_path / "README.md").read_text()


def test_the_cache_key_carries_the_code_and_the_version(tmp_path, monkeypatch):
    load_claims()
    import common

    calls = []
    key = {"what": "test", "seed": 0}

    def measure():
        calls.append(1)
        return {"acc": 1.5, "curve": [1, 2]}

    common.begin()
    for _ in range(2):
        assert common.measured(tmp_path, key, measure, code=common.__file__) == {"acc": 1.5, "curve": [1, 2]}
    assert len(calls) == 1 and common.LEDGER["cached_runs"] == 1  # same settings, code and version: cached
    monkeypatch.setattr(common.vitkit, "__version__", "0.0.0-other")
    common.measured(tmp_path, key, measure, code=common.__file__)
    assert len(calls) == 2  # another vitkit: measured again
    monkeypatch.setattr(common, "code_hash", lambda module_file: "f" * 12)
    common.measured(tmp_path, key, measure, code=common.__file__)
    assert len(calls) == 3  # other code: measured again
    assert [r["result"] for r in common.RAW] == [{"acc": 1.5, "curve": [1, 2]}] * 4  # every one is in the raw results
    common.begin()


def test_rebuilding_without_raw_results_is_one_sentence(tmp_path):
    from vitkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^no raw results in .*; run the claims first$"):
        run_claims([], tmp_path, from_raw=True, log=lambda *_: None)
    with pytest.raises(ConfigError, match=r"^no raw results for C3 at .*; run `vitkit reproduce C3` first$"):
        run_claims(["C3"], tmp_path, from_raw=True, log=lambda *_: None)


def vitkit_src() -> str:
    import vitkit

    return str(Path(vitkit.__file__).resolve().parents[1])


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
