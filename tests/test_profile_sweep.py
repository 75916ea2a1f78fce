"""`vitkit profile --sweep`: the table, JSON and CSV rows, the log-log plot, and the growth of GMACs with image
size that windows buy (Swin linear in the area, ViT's global attention faster), counted on the meta device."""

import csv
import io
import json

from vitkit.cli import main
from vitkit.tools.profile import loglog_slope


def test_loglog_slope_is_the_power_law_exponent():
    assert abs(loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]) - 2.0) < 1e-9


def test_gmacs_slope_swin_linear_in_area_vit_faster(tmp_path, capsys):
    plot = tmp_path / "sweep.png"
    code = main(["profile", "vit_base_patch16_224", "swin_tiny_patch4_window7_224", "--sweep", "img_size=224,448,896",
                 "--no-throughput", "--json", "--plot", str(plot)])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["img_size"]) for r in rows][:3] == [("vit_base_patch16_224", s) for s in (224, 448, 896)]
    gmacs = {m: [r["gmacs"] for r in rows if r["model"] == m] for m in ("vit_base_patch16_224", "swin_tiny_patch4_window7_224")}
    sides = [224, 448, 896]
    swin, vit = gmacs["swin_tiny_patch4_window7_224"], gmacs["vit_base_patch16_224"]
    assert abs(swin[0] - 4.49) < 0.01
    assert 1.98 < loglog_slope(sides, swin) < 2.02  # ∝ side²: linear in the area
    assert loglog_slope(sides, vit) > 2.3  # global attention: ∝ N² = side⁴ grows in
    assert loglog_slope(sides[1:], vit[1:]) > loglog_slope(sides[:2], vit[:2]) + 0.3  # and its share rises with size
    assert 5_000 < plot.stat().st_size < 200_000


def test_sweep_with_throughput_memory_bf16_training_as_csv(capsys):
    tiny = ["--override", "patch_size=8", "--override", "depth=1", "--override", "embed_dim=48",
            "--override", "num_heads=3"]
    code = main(["profile", "vit_tiny_patch16_224", "--sweep", "img_size=32,64", "--precision", "bf16", "--train",
                 "--memory", "--csv", *tiny])
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["img_size"] for r in rows] == ["32", "64"]
    assert all(float(r["samples_per_s"]) > 0 and float(r["peak_mem_mb"]) > 0 for r in rows)
    assert float(rows[1]["peak_mem_mb"]) > float(rows[0]["peak_mem_mb"])
    code = main(["profile", "vit_tiny_patch16_224", "--sweep", "num_frames=4,8", "--no-throughput", *tiny])
    assert code == 2  # an image model has no num_frames
    assert "num_frames" in capsys.readouterr().err


def test_bad_sweep_flags(capsys):
    assert main(["profile", "vit_tiny_patch16_224", "--plot", "x.png"]) == 2
    assert "add --sweep" in capsys.readouterr().err
    assert main(["profile", "vit_tiny_patch16_224", "--sweep", "depth=1,2"]) == 2
    assert "cannot sweep 'depth'" in capsys.readouterr().err
    assert main(["profile", "vit_tiny_patch16_224", "--sweep", "img_size=a"]) == 2
    assert "img_size=112,224,448" in capsys.readouterr().err
