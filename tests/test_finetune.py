"""Fine-tuning through `--init`: random-init state dicts saved by timm, transformers and torchvision load into a
vitkit model of another size and class count (position tables resampled, the classifier re-initialised) and
train on digits / moving-digits; an image ViT initialises ViViT and TimeSformer."""

import pytest
import timm
import torch
import torchvision
import transformers
from timm.models import mvitv2 as timm_mvit

import vitkit
from vitkit.cli import main
from vitkit.errors import CheckpointError
from vitkit.train.finetune import init_from_checkpoint
from vitkit.train.run import TrainConfig, train


def _tv_mvit_v2():
    from parity.test_mvit import VIDEO, _torchvision

    return _torchvision(vitkit.create_model("mvitv2_small_16x4", num_frames=4, img_size=32, **VIDEO), 4, 32)


def _hf_cvt():
    cfg = transformers.CvtConfig(embed_dim=[16, 32, 48], num_heads=[1, 2, 3], depth=[1, 2, 3], num_labels=5)
    return transformers.CvtForImageClassification(cfg)


def _hf_timesformer(hidden=48, heads=3):
    cfg = transformers.TimesformerConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=hidden,
                                         num_hidden_layers=2, num_attention_heads=heads, intermediate_size=4 * hidden,
                                         num_labels=5, qkv_bias=True, layer_norm_eps=1e-6)
    return transformers.TimesformerForVideoClassification(cfg)


# (source, reference builder, vitkit name, run overrides: same architecture, another size; dataset)
CASES = {
    "timm-vit": (lambda: timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=1, num_classes=5),
                 "vit_tiny_patch16_224", dict(img_size=24, patch_size=8, depth=1), "digits"),
    "timm-deit-distilled": (lambda: timm.create_model("deit_tiny_distilled_patch16_224", img_size=32, patch_size=8,
                                                      depth=1, num_classes=5),
                            "deit_tiny_distilled_patch16_224", dict(img_size=24, patch_size=8, depth=1), "digits"),
    "timm-swin": (lambda: timm.create_model("swin_tiny_patch4_window7_224", img_size=32, embed_dim=16, depths=(1, 1),
                                            num_heads=(1, 2), window_size=4, num_classes=5),
                  "swin_tiny_patch4_window7_224",
                  dict(img_size=48, embed_dim=16, depths=(1, 1), num_heads=(1, 2), window_size=6), "digits"),
    "timm-mvitv2": (lambda: timm_mvit.MultiScaleVit(timm_mvit.MultiScaleVitCfg(depths=(1, 1), embed_dim=16),
                                                    img_size=(32, 32), num_classes=5),
                    "mvitv2_tiny", dict(img_size=48, embed_dim=16, depths=(1, 1)), "digits"),
    "hf-cvt": (_hf_cvt, "cvt_13_224", dict(img_size=24, embed_dims=(16, 32, 48), num_heads=(1, 2, 3), depths=(1, 2, 3)),
               "digits"),
    "hf-timesformer": (_hf_timesformer, "timesformer_base_8x224_divided_space_time",
                       dict(img_size=16, patch_size=8, num_frames=6, embed_dim=48, depth=2, num_heads=3),
                       "moving-digits"),
    "tv-swin_t": (lambda: torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1],
                                                             num_heads=[1, 2], window_size=[4, 4], num_classes=5),
                  "swin_tiny_patch4_window7_224",
                  dict(img_size=48, embed_dim=16, depths=(1, 1), num_heads=(1, 2), window_size=6), "digits"),
    "tv-mvit_v2_s": (_tv_mvit_v2, "mvitv2_small_16x4",
                     dict(num_frames=6, img_size=32, embed_dim=16, depths=(1, 2, 1), pool_stride_kv=(1, 4, 4)),
                     "moving-digits"),
}


def _fc1_weights_come_from(model, source: dict) -> bool:
    """Every MLP's first weight equals a tensor of the source file (the same numbers under another name)."""
    fc1 = [p for n, p in model.named_parameters() if n.endswith("fc1.weight")]
    return bool(fc1) and all(any(t.shape == p.shape and torch.equal(t, p) for t in source.values()) for p in fc1)


@pytest.mark.parametrize("case", sorted(CASES))
def test_foreign_random_init_fine_tunes_at_another_size_and_class_count(tmp_path, case):
    build, name, overrides, data = CASES[case]
    torch.manual_seed(0)
    ref = build()
    torch.save(ref.state_dict(), tmp_path / "ref.pth")
    num_classes = 8 if data == "moving-digits" else 10
    model = vitkit.create_model(name, num_classes=num_classes, **overrides)
    notes = init_from_checkpoint(model, tmp_path / "ref.pth")
    source = case.split("-")[0]
    assert f"({ {'tv': 'torchvision'}.get(source, source)} layout)" in notes[0] or "(vitkit layout)" in notes[0]
    assert any("checkpoint predicts 5 classes, this run " + str(num_classes) in n for n in notes), notes
    assert _fc1_weights_come_from(model, ref.state_dict())

    result = train(TrainConfig(model=name, data=data, overrides=overrides, init=str(tmp_path / "ref.pth"), epochs=1,
                               batch_size=4, limit=4, progress=False, out=str(tmp_path / "run")))
    assert result.model.num_classes == num_classes
    assert torch.isfinite(torch.tensor(result.history[0]["train_loss"]))


@pytest.mark.parametrize("name, inflate", [("vivit_base_16x2_factorised_encoder", "central"),
                                           ("vivit_base_16x2_spatiotemporal", "mean"),
                                           ("timesformer_base_8x224_divided_space_time", "central")])
def test_an_image_vit_initialises_video_models(tmp_path, capsys, name, inflate):
    heads = 4 if "vivit" in name else 3
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=heads,
                            num_classes=5)
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    overrides = [f"--override={k}={v}" for k, v in dict(img_size=16, patch_size=8, num_frames=4, embed_dim=48, depth=2,
                                                         num_heads=heads).items()]
    if "vivit" in name:
        overrides += ["--override=tubelet_size=2", "--override=temporal_depth=1"]
    argv = ["train", "--model", name, "--data", "moving-digits", "--init", str(tmp_path / "vit.pth"), "--inflate",
            inflate, "--epochs", "1", "--batch-size", "4", "--limit", "4", "--out", str(tmp_path / "run"), *overrides]
    assert main(argv) == 0
    how = f"{inflate} tubelet init" if "vivit" in name else "TimeSformer App. A init"
    said = f"from the image ViT {str(tmp_path / 'vit.pth')!r} ({how})"
    assert "".join(said.split()) in "".join(capsys.readouterr().err.split())  # rich wraps lines anywhere
    model = vitkit.load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert model.num_classes == 8

    fresh = vitkit.create_model(name, num_classes=8, **{k: v for k, v in dict(
        img_size=16, patch_size=8, num_frames=4, embed_dim=48, depth=2, num_heads=heads).items()},
        **(dict(tubelet_size=2, temporal_depth=1) if "vivit" in name else {}))
    init_from_checkpoint(fresh, tmp_path / "vit.pth", inflate)
    assert torch.equal(fresh.blocks[1].mlp.fc2.weight, vit.blocks[1].mlp.fc2.weight)


def test_a_mismatched_checkpoint_lists_its_keys_in_one_error(tmp_path):
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=5)
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    model = vitkit.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=1, num_classes=10)
    with pytest.raises(CheckpointError, match=r"does not match model .*unexpected keys \(e.g. blocks\.1\."):
        init_from_checkpoint(model, tmp_path / "vit.pth")
