"""Optimiser groups, schedule, the epoch loop, training checkpoints, resume and the NaN guard."""

import csv
import dataclasses
import math

import pytest
import torch

import vitkit
from vitkit.errors import CheckpointError, ConfigError
from vitkit.train import run as run_mod
from vitkit.train.engine import DivergedError
from vitkit.train.optim import param_groups
from vitkit.train.run import TrainConfig, train
from vitkit.train.schedule import WarmupCosine
from vitkit.train.state import load_training_state

STUDENT = dict(img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2, drop_path_rate=0.2, drop_rate=0.1)


def tiny_cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(model="deit_tiny_distilled_patch16_224", data="digits", overrides=STUDENT, epochs=2, batch_size=16,
                lr=2e-3, warmup_epochs=1, limit=48, out=str(tmp_path / "run"), progress=False)
    return TrainConfig(**{**base, **kw})


def test_param_groups_exclude_biases_norms_and_tokens():
    m = vitkit.create_model("deit_tiny_distilled_patch16_224", **STUDENT)
    decay, no_decay = param_groups(m, 0.05)
    names = {id(p): n for n, p in m.named_parameters()}
    no = {names[id(p)] for p in no_decay["params"]}
    yes = {names[id(p)] for p in decay["params"]}
    assert {"cls_token", "dist_token", "pos_embed", "norm.weight", "head.bias"} <= no
    assert "head.weight" in yes and "blocks.0.attn.qkv.weight" in yes and not yes & no
    assert len(yes) + len(no) == len(list(m.parameters()))
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0


def test_warmup_cosine_values_and_resume():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = WarmupCosine(opt, warmup_steps=4, total_steps=12, min_lr_ratio=0.1)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(11):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # after warm-up: 0.1 + 0.9 · ½(1 + cos(π·k/8)) for k = 1..8
    assert lrs[4:] == pytest.approx([0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 8)) for k in range(1, 9)])
    other = WarmupCosine(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), 4, 12, 0.1)
    other.load_state_dict(sched.state_dict())
    assert other.get_last_lr() == pytest.approx([lrs[-1]])


def test_training_writes_checkpoint_metrics_and_weights(tmp_path):
    result = train(tiny_cfg(tmp_path, epochs=2))
    out = tmp_path / "run"
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"] and all(0 <= float(r["val_acc1"]) <= 100 for r in rows)
    state = load_training_state(out / "last.pt")
    assert state["epoch"] == 1 and len(state["history"]) == 2 and state["model_name"] == result.model.model_name
    back = vitkit.load_checkpoint(out / "model.safetensors")
    for k, v in result.model.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path, monkeypatch):
    teacher = vitkit.create_model("resnet_tiny_cifar", num_classes=10, img_size=16, widths=(4, 8, 8))
    vitkit.save_checkpoint(teacher, tmp_path / "teacher.safetensors")
    common = dict(distill="hard", teacher=str(tmp_path / "teacher.safetensors"))
    whole = train(tiny_cfg(tmp_path, out=str(tmp_path / "whole"), **common))

    real = run_mod.train_one_epoch
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during the second epoch
        return real(*args, **kwargs)

    monkeypatch.setattr(run_mod, "train_one_epoch", interrupted)
    cfg = tiny_cfg(tmp_path, out=str(tmp_path / "cut"), **common)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert load_training_state(tmp_path / "cut" / "last.pt")["epoch"] == 0
    torch.manual_seed(12345)  # whatever the global generator holds now must not matter
    monkeypatch.setattr(run_mod, "train_one_epoch", real)
    resumed = train(dataclasses.replace(cfg, resume=True))

    a, b = _weights(whole.model), _weights(resumed.model)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]


def test_a_different_seed_gives_different_weights(tmp_path):
    # the resume test would pass vacuously if training ignored its randomness; it does not
    a = train(tiny_cfg(tmp_path, out=str(tmp_path / "a"), epochs=1)).model
    b = train(tiny_cfg(tmp_path, out=str(tmp_path / "b"), epochs=1, seed=1)).model
    assert not torch.equal(a.head.weight, b.head.weight)


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = run_mod.train_one_epoch
    calls = []

    def poisoned(model, loader, criterion, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second epoch's loss becomes NaN
            criterion = lambda *a: torch.tensor(float("nan"), requires_grad=True)
        return real(model, loader, criterion, *args, **kwargs)

    monkeypatch.setattr(run_mod, "train_one_epoch", poisoned)
    with pytest.raises(DivergedError, match=r"loss became nan at epoch 1, step 0.*last good checkpoint"):
        train(tiny_cfg(tmp_path, epochs=3))
    state = load_training_state(tmp_path / "run" / "last.pt")
    assert state["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_resume_refuses_missing_or_mismatched_state(tmp_path):
    with pytest.raises(CheckpointError, match="cannot resume: .*last.pt' does not exist"):
        train(tiny_cfg(tmp_path, resume=True))
    train(tiny_cfg(tmp_path, epochs=1))
    with pytest.raises(CheckpointError, match="other settings"):
        train(tiny_cfg(tmp_path, epochs=1, lr=1e-2, resume=True))
    (tmp_path / "run" / "last.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="could not be read"):
        train(tiny_cfg(tmp_path, epochs=1, resume=True))


def test_bf16_and_plain_model_training(tmp_path):
    result = train(tiny_cfg(tmp_path, model="resnet_tiny_cifar", overrides=dict(img_size=16, widths=(4, 8, 8)),
                            epochs=1, precision="bf16"))
    assert result.model.head.weight.dtype == torch.float32 and len(result.history) == 1


@pytest.mark.parametrize("kw, match", [
    (dict(epochs=0), "--epochs must be at least 1"),
    (dict(lr=-1.0), "--lr must be positive"),
    (dict(distill="medium"), "--distill must be one of"),
    (dict(distill="hard"), "needs --teacher"),
    (dict(alpha=2.0), "--alpha"),
    (dict(overrides=dict(num_classes=3)), "num_classes=3 but the dataset 'digits' has 10 classes"),
])
def test_bad_settings(tmp_path, kw, match):
    with pytest.raises(ConfigError, match=match):
        train(tiny_cfg(tmp_path, **kw))


def test_main_job_teacher_sees_the_students_input():
    """Hard distillation feeds the student's batch to the teacher: both models must take the same image size."""
    from vitkit.train.main_job import MainJob

    job = MainJob()
    with torch.device("meta"):
        teacher = vitkit.create_model(job.teacher.model, num_classes=10, **job.teacher.overrides)
        student = vitkit.create_model(job.student.model, num_classes=10, **job.student.overrides)
    assert teacher.input_shape()[1:] == student.input_shape()[1:] == (16, 16)
    assert student.pos_embed.shape[1] == 2 + 16  # cls + dist + 4×4 patch tokens


def test_main_job_pipeline_on_a_tiny_budget_reuses_its_teacher(tmp_path):
    from vitkit.train.main_job import MainJob, run_main_job

    job = MainJob(
        teacher=TrainConfig(model="resnet_tiny_cifar", overrides=dict(img_size=16, widths=(4, 8, 8)), epochs=1,
                            limit=32, batch_size=16, progress=False),
        student=tiny_cfg(tmp_path, epochs=1, limit=32, distill="hard", precision="bf16"),
        out=str(tmp_path / "main"))
    first = run_main_job(job)
    assert not first["teacher_cached"] and 0 <= first["student_test_acc"] <= 100
    for f in ("teacher/model.safetensors", "student/model.safetensors", "student/metrics.csv", "summary.json"):
        assert (tmp_path / "main" / f).is_file(), f
    second = run_main_job(job)
    assert second["teacher_cached"] and second["teacher_test_acc"] == first["teacher_test_acc"]


def test_resume_with_tuple_overrides(tmp_path):
    cfg = tiny_cfg(tmp_path, model="resnet_tiny_cifar", overrides={"img_size": 16, "widths": (4, 8, 8)}, epochs=1)
    train(cfg)
    assert len(train(dataclasses.replace(cfg, epochs=1, resume=True)).history) == 1


def test_a_nan_gradient_under_a_finite_loss_stops_before_the_step(tmp_path, monkeypatch):
    """A broken backward (the loss is finite, a gradient is NaN) must not reach the weights."""
    real = run_mod.train_one_epoch

    class NanGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return torch.full_like(g, float("nan"))

    def poisoned(model, *args, **kwargs):
        model.head.register_forward_hook(lambda module, inputs, out: NanGrad.apply(out))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(run_mod, "train_one_epoch", poisoned)
    with pytest.raises(DivergedError, match=r"gradient norm became nan at epoch 0, step 0 while the loss was finite"):
        train(tiny_cfg(tmp_path, epochs=1))
