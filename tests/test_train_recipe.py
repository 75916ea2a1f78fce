"""The papers' training pieces a recipe turns on: the lr rule (printed, saved, overridden by --lr), SGD with
momentum on every family, the schedule's absolute ends and step decay, drop path per stage, the video papers'
scale jitter and colours (over draws, one draw per clip), and the multi-view test of a training run and of eval."""

from pathlib import Path

import pytest
import torch
import yaml
from test_cli import run
from tiny import tiny_overrides

from vitkit.data.video_augment import ColourAugment, ShortSideJitter
from vitkit.registry import create_model
from vitkit.train.run import TrainConfig, train
from vitkit.train.schedule import WarmupCosine

VIT = ["--model", "vit_tiny_patch16_224", "--override", "img_size=16", "--override", "patch_size=8",
       "--override", "embed_dim=16", "--override", "depth=1", "--override", "num_heads=2"]


def test_the_lr_rule_is_printed_saved_and_overridden(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"lr_base": 5e-4, "lr_base_size": 512, "ref_global_batch": 1024}))
    common = [*VIT, "--config", str(recipe), "--epochs", "1", "--limit", "16", "--no-progress", "--data", "digits"]
    code, _, err = run(capsys, "train", *common, "--batch-size", "8", "--accum-steps", "2", "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert ("global batch 16 differs from the recipe's 1024 (where lr is 0.001): lr 1.563e-05 = lr_base 0.0005 × "
            "(16/512) (linear rule; global batch 16 = 8 per process × 2 accumulation × 1 process)") in err
    assert yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["lr"] == pytest.approx(5e-4 * 16 / 512)
    recipe.write_text(yaml.safe_dump({"lr_base": 1e-3, "lr_base_size": 4, "lr_rule": "sqrt"}))
    code, _, err = run(capsys, "train", *common, "--batch-size", "16", "--out", str(tmp_path / "b"))
    assert code == 0 and "lr 0.002 = lr_base 0.001 × sqrt(16/4) (sqrt rule" in err and "differs" not in err
    code, _, err = run(capsys, "train", *common, "--lr", "0.02", "--out", str(tmp_path / "c"))  # absolute: no rule
    saved = yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())
    assert code == 0 and saved["lr"] == 0.02 and saved["lr_base"] is None and "lr_base" not in err


@pytest.mark.parametrize("name", ["deit_tiny_distilled_patch16_224", "swin_tiny_patch4_window7_224", "cvt_13_224",
                                  "mvitv2_tiny", "timesformer_base_8x224_divided_space_time",
                                  "vivit_base_16x2_factorised_encoder", "mvit_base_16x4"])
def test_sgd_with_momentum_trains_a_step_per_family(tmp_path, name):
    tiny = {k: v for k, v in tiny_overrides(name).items() if k != "num_classes"}
    cfg = TrainConfig(model=name, data="moving-digits" if "num_frames" in tiny else "digits", overrides=tiny,
                      epochs=1, limit=4, batch_size=2, opt="sgd", momentum=0.9, nesterov=True, lr=0.05,
                      weight_decay=1e-4, warmup_epochs=0, device="cpu", progress=False, out=str(tmp_path / "r"))
    result = train(cfg)
    state = torch.load(tmp_path / "r" / "last.pt", weights_only=False)["optimizer"]
    assert state["param_groups"][0]["nesterov"] and state["param_groups"][0]["momentum"] == 0.9
    buffers = [s["momentum_buffer"] for s in state["state"].values()]  # SGD kept momentum for every parameter
    assert len(buffers) == sum(p.requires_grad for p in result.model.parameters())
    assert any(b.abs().sum() > 0 for b in buffers) and result.history[0]["train_loss"] > 0


def test_the_schedule_starts_at_warmup_lr_and_ends_at_min_lr_or_steps_down():
    p = torch.nn.Parameter(torch.zeros(1))
    lrs = lambda s: [s.factor(k) * 1e-3 for k in range(s.total_steps)]  # the peak lr is 1e-3
    opt = torch.optim.SGD([p], lr=1e-3)
    cosine = WarmupCosine(opt, 5, 105, min_lr_ratio=1e-5 / 1e-3, warmup_ratio=1e-6 / 1e-3)
    got = lrs(cosine)
    assert got[0] == pytest.approx(1e-6 + (1e-3 - 1e-6) / 5) and got[4] == pytest.approx(1e-3)
    assert got[-1] == pytest.approx(1e-5)
    steps = WarmupCosine(torch.optim.SGD([p], lr=1e-3), 0, 150, milestones=(110, 140), decay_rate=0.1)
    got = lrs(steps)  # TimeSformer: × 0.1 at epochs 11 and 14 (10 steps per epoch)
    assert got[109] == pytest.approx(1e-3) and got[110] == pytest.approx(1e-4) and got[140] == pytest.approx(1e-5)


def test_per_stage_drop_path_reaches_each_stage():
    cvt = create_model("cvt_13_224", **{**tiny_overrides("cvt_13_224"), "depths": (1, 2, 3),
                                        "drop_path_rate": [0.0, 0.05, 0.1]})
    rates = [[getattr(b.drop_path, "p", 0.0) for b in stage.blocks] for stage in cvt.stages]
    assert rates == [[0.0], [0.0, 0.05], [0.0, 0.05, 0.1]]  # linear within each stage, as the official code
    swin = create_model("swin_tiny_patch4_window7_224", **{**tiny_overrides("swin_tiny_patch4_window7_224"),
                                                           "drop_path_rate": 0.2})
    rates = [getattr(b.drop_path1, "p", 0.0) for layer in swin.layers for b in layer.blocks]
    assert rates == pytest.approx([0.2 * i / 5 for i in range(6)])  # one rate, linear over all blocks


def test_scale_jitter_gives_the_short_side_range_it_states():
    torch.manual_seed(0)
    frames = torch.zeros(2, 3, 240, 320, dtype=torch.uint8)  # (T, C, H, W), landscape
    timesformer = ShortSideJitter((256, 320))
    sizes = [tuple(timesformer(frames).shape[-2:]) for _ in range(300)]
    shorts = [h for h, _ in sizes]
    assert min(shorts) == 256 and max(shorts) == 320 and len(set(shorts)) > 40
    assert all(w == int(320 * h / 240) for h, w in sizes)  # the aspect is kept
    vivit = ShortSideJitter((256, 256), aspect_jitter=(0.9, 1.33))
    sizes = torch.tensor([vivit.size(240, 320) for _ in range(2000)]).float()  # shorter side 256, then factors
    assert sizes[:, 0].min() >= int(0.9 * 256) and sizes[:, 0].max() <= int(1.33 * 256)
    assert sizes[:, 0].min() < 235 and sizes[:, 0].max() > 335
    ratio = sizes[:, 1] / sizes[:, 0]
    assert ratio.min() < 1.0 and ratio.max() > 1.8  # height and width drawn apart (DMVR)


def test_colour_augment_draws_once_per_clip_with_its_probabilities():
    torch.manual_seed(0)
    frame = torch.rand(3, 8, 8)
    clip = frame.expand(4, 3, 8, 8)  # (T, C, H, W): four identical frames
    colour = ColourAugment(0.8, 0.1)
    outs = [colour(clip) for _ in range(1000)]
    assert all(torch.equal(o[0], o[t]) for o in outs[:50] for t in range(4))  # one draw for all frames
    changed = sum(not torch.allclose(o, clip) for o in outs) / len(outs)
    grey = sum(bool((o[:, 0] == o[:, 1]).all() and (o[:, 1] == o[:, 2]).all()) for o in outs) / len(outs)
    assert 0.78 < changed < 0.86 and 0.07 < grey < 0.13  # p 0.8 (or grey only), p_drop 0.1
    assert all(o.min() >= 0 and o.max() <= 1 for o in outs)


def test_test_views_are_a_training_runs_final_evaluation_and_evals_default(tmp_path, capsys):
    from test_video_data import TINY_TIMESFORMER, noise_video_folder

    noise_video_folder(tmp_path / "v")
    code, out, err = run(capsys, "train", *TINY_TIMESFORMER, "--data",
                         str(tmp_path / "v"), "--epochs", "1", "--batch-size", "2", "--workers", "0", "--test-views",
                         "2x3", "--out", str(tmp_path / "r"), "--no-progress")
    assert code == 0, err
    result = yaml.safe_load((tmp_path / "r" / "test_views.json").read_text())
    assert result["test_views"] == "2x3" and 0 <= result["acc1"] <= 100
    code, out, err = run(capsys, "eval", str(tmp_path / "r" / "model.safetensors"), "--data", str(tmp_path / "v"),
                         "--split", "val", "--workers", "0")
    assert code == 0 and "2x3 views" in out, err  # eval takes the run's test_views when none is given
    assert f"top-1 {result['acc1']:.2f}%" in out
    assert Path(tmp_path / "r" / "config.yaml").is_file()
