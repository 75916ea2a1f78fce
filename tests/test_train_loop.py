"""The training step on the CPU: device and precision errors, a step of every family in fp32 and bf16, gradient
accumulation equal to the large batch, EMA against a hand-computed average, layer-wise lr decay by hand."""

import copy
import dataclasses
import re

import pytest
import torch
from PIL import Image
from tiny import tiny_overrides
from torch import nn

import vitkit
from vitkit.cli import main
from vitkit.train.ema import EMA
from vitkit.train.engine import train_one_epoch
from vitkit.train.optim import build_optimizer
from vitkit.train.run import TrainConfig, train

FAMILIES = ["vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224", "swin_tiny_patch4_window7_224", "cvt_13_224",
            "vivit_base_16x2_factorised_encoder", "timesformer_base_8x224_divided_space_time", "mvitv2_tiny",
            "mvit_base_16x4"]


@pytest.mark.parametrize("argv, message", [
    (["--device", "cuda"], "--device cuda was asked for but no CUDA device is available"),
    (["--device", "cuda:1"], "--device cuda:1 was asked for but no CUDA device is available"),
    (["--precision", "fp16", "--device", "cpu"], "--precision fp16 is not supported on the CPU"),
    (["--device", "tpu"], "unknown --device 'tpu'"),
])
@pytest.mark.parametrize("command", ["train", "eval", "predict", "profile"])
def test_unusable_device_or_precision_is_one_sentence(tmp_path, monkeypatch, capsys, argv, message, command):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    m = vitkit.create_model("vit_tiny_patch16_224", **tiny_overrides("vit_tiny_patch16_224"))
    vitkit.save_checkpoint(m, tmp_path / "m.safetensors")
    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")  # a real input: paths are checked before the device
    args = {"train": ["train", "--model", "vit_tiny_patch16_224", "--out", str(tmp_path / "run")],
            "eval": ["eval", str(tmp_path / "m.safetensors")],
            "predict": ["predict", str(tmp_path / "m.safetensors"), str(tmp_path / "x.png")],
            "profile": ["profile", "vit_tiny_patch16_224", "--no-throughput"]}[command] + argv
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", FAMILIES)
def test_one_training_step_per_family(name, precision):
    torch.manual_seed(0)  # the model and batch must not depend on which tests ran before in this worker
    model = vitkit.create_model(name, **tiny_overrides(name))
    x = torch.randn(2, *model.input_shape())
    y = torch.tensor([0, 1])
    before = copy.deepcopy(model.state_dict())
    opt = build_optimizer(model, 1e-3)
    stats = train_one_epoch(model, [(x, y)], nn.CrossEntropyLoss(), opt, precision=precision, clip_grad=1.0, seed=0)
    assert torch.isfinite(torch.tensor(stats["train_loss"])) and stats["grad_norm"] > 0
    after = model.state_dict()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    changed = [k for k, v in after.items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert len(changed) >= len(list(model.parameters())) // 2



@pytest.mark.parametrize("name", [*FAMILIES, "resnet_tiny_cifar"])
def test_bf16_autocast_gradients_agree_with_fp32_per_family(name):
    """Every parameter's bf16-autocast gradient is the fp32 one up to bf16 rounding (here ≤ 0.08 relative; torch
    2.14.1's oneDNN bf16 conv backward gave MViT's pooling convs 1.1 before layers.conv routed them to fp32)."""
    torch.manual_seed(0)
    model = vitkit.create_model(name, **tiny_overrides(name)).eval()  # eval: no dropout draws between the two
    x, y = torch.randn(4, *model.input_shape()), torch.arange(4) % 7
    grads = []
    for bf16 in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            nn.functional.cross_entropy(model(x), y).backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
    fp32, bf16 = grads
    top = max(g.norm() for g in fp32.values())
    for k, g in fp32.items():
        if g.norm() > 1e-2 * top:  # gradients that are ~0 in exact arithmetic are rounding noise in both
            assert torch.isfinite(bf16[k]).all() and (bf16[k] - g).norm() / g.norm() < 0.25, k

VIT = dict(img_size=16, patch_size=8, embed_dim=24, depth=1, num_heads=2, qkv_bias=False, drop_rate=0.0,
           drop_path_rate=0.0)


def test_accumulating_two_batches_of_8_equals_one_of_16(tmp_path):
    common = dict(model="vit_tiny_patch16_224", overrides=VIT, epochs=1, limit=16, augment=False, warmup_epochs=0,
                  lr=1e-3, progress=False)
    big = train(TrainConfig(batch_size=16, out=str(tmp_path / "a"), **common)).model.state_dict()
    accum = train(TrainConfig(batch_size=8, accum_steps=2, out=str(tmp_path / "b"), **common)).model.state_dict()
    start = vitkit.create_model("vit_tiny_patch16_224", **VIT)
    assert not torch.equal(big["head.weight"], start.head.weight)  # it moved (one optimiser step)
    for k in big:
        torch.testing.assert_close(accum[k], big[k], rtol=0, atol=1e-6, msg=k)


def test_ema_equals_the_hand_computed_average():
    model = vitkit.create_model("vit_tiny_patch16_224", **tiny_overrides("vit_tiny_patch16_224"))
    batches = [(torch.randn(4, *model.input_shape()), torch.randint(0, 7, (4,))) for _ in range(4)]
    ema = EMA(model, 0.75)
    seen = []
    opt = build_optimizer(model, 1e-2)
    train_one_epoch(model, batches, nn.CrossEntropyLoss(), opt, ema=ema, ema_source=model,
                    on_step=lambda step, totals: seen.append({k: p.detach().clone() for k, p in model.named_parameters()}))
    assert len(seen) == 4
    for name, p in ema.module.named_parameters():
        expected = seen[0][name]  # the first update copies
        for weights in seen[1:]:
            expected = 0.75 * expected + 0.25 * weights[name]
        torch.testing.assert_close(p, expected, rtol=0, atol=1e-6, msg=name)
    assert not torch.equal(ema.module.head.weight, model.head.weight)


def test_ema_every_n_counts_across_a_reload():
    """every=3 averages steps 0, 3, 6, ...; an EMA reloaded after step 4 averages at step 6 as the original."""
    model = nn.Linear(3, 2)
    ema, weights = EMA(model, 0.5, every=3), []
    for _ in range(5):
        with torch.no_grad():
            model.weight.add_(1.0)
        weights.append(model.weight.detach().clone())
        ema.update_parameters(model)
    copy = EMA(nn.Linear(3, 2), 0.5, every=3)
    copy.update_parameters(nn.Linear(3, 2))  # its own count (1) must give way to the loaded one (5)
    copy.load_state_dict(ema.state_dict())
    for e in (ema, copy):
        for _ in range(2):
            with torch.no_grad():
                model.weight.add_(1.0)
            e.update_parameters(model)
        model.weight.data.sub_(2.0)
    expected = 0.125 * (0.125 * weights[0] + 0.875 * weights[3]) + 0.875 * (weights[4] + 2.0)
    for e in (ema, copy):
        torch.testing.assert_close(e.module.weight, expected)
        assert int(e.steps_seen) == 7


def test_ema_is_evaluated_saved_and_resumed(tmp_path, monkeypatch):
    from vitkit.train import run as run_mod

    cfg = TrainConfig(model="vit_tiny_patch16_224", overrides=VIT, epochs=2, batch_size=16, limit=32, ema=0.5,
                      progress=False, out=str(tmp_path / "whole"))
    whole = train(cfg)
    assert all(r["val_ema_acc1"] is not None for r in whole.history)
    real, calls = run_mod.train_one_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(run_mod, "train_one_epoch", interrupted)
    cut = dataclasses.replace(cfg, out=str(tmp_path / "cut"))
    with pytest.raises(KeyboardInterrupt):
        train(cut)
    monkeypatch.setattr(run_mod, "train_one_epoch", real)
    resumed = train(dataclasses.replace(cut, resume=True))
    for k, v in whole.ema_model.state_dict().items():
        assert torch.equal(v, resumed.ema_model.state_dict()[k]), k
    saved = vitkit.load_checkpoint(tmp_path / "whole" / "model.safetensors").state_dict()
    last = whole.history[-1]
    best = whole.ema_model if last["val_ema_acc1"] > last["val_acc1"] else whole.model
    assert all(torch.equal(v, best.state_dict()[k]) for k, v in saved.items())


# Layer ids by hand for each tiny configuration: (regex on the parameter name, id); the first match wins.
LAYERS = {
    "vit_tiny_patch16_224": (3, [(r"blocks\.(\d+)\.", lambda i: i + 1), (r"(norm|head)\.", 3), (r".", 0)]),
    "deit_tiny_distilled_patch16_224": (3, [(r"blocks\.(\d+)\.", lambda i: i + 1), (r"(norm|head|head_dist)\.", 3),
                                            (r".", 0)]),
    # depths (2, 2, 2): stage s block j -> 2s + j + 1; merging at the start of stage s -> its first block's id
    "swin_tiny_patch4_window7_224": (7, [(r"layers\.(\d+)\.blocks\.(\d+)\.", lambda s, j: 2 * s + j + 1),
                                         (r"layers\.(\d+)\.downsample\.", lambda s: 2 * s + 1),
                                         (r"(norm|head)\.", 7), (r".", 0)]),
    # depths (1, 1, 2)
    "cvt_13_224": (5, [(r"stages\.(\d+)\.blocks\.(\d+)\.", lambda s, j: [1, 2, 3][s] + j),
                       (r"stages\.0\.", 0), (r"stages\.(\d+)\.", lambda s: [1, 2, 3][s]), (r"(norm|head)\.", 5)]),
    # spatial depth 2, temporal depth 1
    "vivit_base_16x2_factorised_encoder": (4, [(r"blocks\.(\d+)\.", lambda i: i + 1),
                                               (r"temporal_blocks\.0\.", 3),
                                               (r"(norm\.|temporal_cls_token|temporal_pos_embed)", 3),
                                               (r"(temporal_norm|head)\.", 4), (r".", 0)]),
    "timesformer_base_8x224_divided_space_time": (3, [(r"blocks\.(\d+)\.", lambda i: i + 1), (r"(norm|head)\.", 3),
                                                      (r".", 0)]),
    "mvitv2_tiny": (3, [(r"blocks\.(\d+)\.", lambda i: i + 1), (r"(norm|head)\.", 3), (r".", 0)]),
}


def _expected_id(name: str, rules) -> int:
    for pattern, value in rules:
        m = re.match(pattern, name)
        if m:
            return value(*map(int, m.groups())) if callable(value) else value
    raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_decay_lr_of_every_parameter(name):
    model = vitkit.create_model(name, **tiny_overrides(name))
    head, rules = LAYERS[name]
    opt = build_optimizer(model, lr=2.0, layer_decay=0.5)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert len(lr_of) == len(list(model.parameters()))
    for pname, p in model.named_parameters():
        assert lr_of[id(p)] == pytest.approx(2.0 * 0.5 ** (head - _expected_id(pname, rules))), pname
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert id(model.head.weight if hasattr(model.head, "weight") else model.head.fc.weight) in decay
    assert all(p.ndim > 1 for p in model.parameters() if id(p) in decay)


def test_grad_scaler_skips_a_step_with_overflowing_gradients_and_counts_it():
    model = vitkit.create_model("vit_tiny_patch16_224", **tiny_overrides("vit_tiny_patch16_224"))
    x, y = torch.randn(2, *model.input_shape()), torch.tensor([0, 1])
    before = copy.deepcopy(model.state_dict())
    huge = lambda logits, targets: nn.functional.cross_entropy(logits, targets) * 1e35  # × scale 65536 -> inf
    scaler = torch.amp.GradScaler("cpu")
    stats = train_one_epoch(model, [(x, y)], huge, build_optimizer(model, 1e-3), scaler=scaler)
    assert stats["skipped_steps"] == 1 and scaler.get_scale() == 32768.0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    stats = train_one_epoch(model, [(x, y)], nn.CrossEntropyLoss(), build_optimizer(model, 1e-3), scaler=scaler)
    assert stats["skipped_steps"] == 0 and not torch.equal(model.head.weight, before["head.weight"])


def test_log_dir_gets_the_scalars_and_every_run_draws_its_curves(tmp_path, monkeypatch):
    from vitkit.train import run as run_mod

    logged = []

    class Writer:
        def add_scalar(self, tag, value, step):
            logged.append((tag, step))

        def flush(self):
            pass

        def close(self):
            logged.append(("closed", None))

    monkeypatch.setattr(run_mod, "_tensorboard", lambda log_dir, say: Writer() if log_dir else None)
    train(TrainConfig(model="vit_tiny_patch16_224", overrides=VIT, epochs=2, batch_size=16, limit=16, ema=0.5,
                      log_dir=str(tmp_path / "tb"), progress=False, out=str(tmp_path / "run")))
    tags = {t for t, _ in logged}
    assert {"train_loss", "val_loss", "val_acc1", "val_ema_acc1", "lr", "grad_norm", "samples_per_s", "closed"} <= tags
    assert sorted(s for t, s in logged if t == "val_acc1") == [1, 2]
    png = (tmp_path / "run" / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_without_tensorboard_log_dir_says_so_in_one_line(tmp_path):
    from vitkit.train.run import _tensorboard

    said = []
    writer = _tensorboard(str(tmp_path / "tb"), said.append)
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert writer is None and len(said) == 1 and "tensorboard is not installed" in said[0]
    else:
        assert writer is not None
        writer.close()
