"""The Trainer (setup / resume / fit with callbacks, objects built in memory, a mode that writes nothing) and
--log-interval: the host reads losses and gradient norms at sync points only, and a non-finite step still never
reaches the weights in between."""

import csv
import inspect

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

import vitkit
from vitkit.cli import build_parser, train_settings
from vitkit.errors import ConfigError
from vitkit.train import engine
from vitkit.train.callbacks import Callback
from vitkit.train.engine import DivergedError, TrainState, train_epoch
from vitkit.train.optim import build_optimizer
from vitkit.train.run import TrainConfig, Trainer, train

TINY = dict(img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2)


def _model(name="vit_tiny_patch16_224", classes=4):
    torch.manual_seed(0)
    return vitkit.create_model(name, num_classes=classes, **TINY)


def _batches(n: int, classes: int = 4, seed: int = 0) -> list:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 3, 16, 16, generator=g), torch.randint(0, classes, (4,), generator=g)) for _ in range(n)]


def _params(model) -> dict:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


class Recorder(Callback):
    """The steps of each sync point, and the weights after each optimiser step (index: steps done)."""

    def __init__(self, model):
        self.model, self.syncs, self.weights = model, [], {0: _params(model)}

    def on_sync(self, rows):
        self.syncs.append([r["step"] for r in rows])

    def on_step(self, epoch, step, meter):
        self.weights[step] = _params(self.model)


def _state(model, criterion=None, log_interval=1, fused=True) -> TrainState:
    opt = build_optimizer(model, 1e-2) if fused else torch.optim.AdamW(model.parameters(), 1e-2, fused=False)
    assert getattr(opt, "_step_supports_amp_scaling", False) == fused  # the guard's two ways are both tested
    return TrainState(model, criterion or torch.nn.CrossEntropyLoss(), opt, clip_grad=1.0, seed=0,
                      log_interval=log_interval)


def test_the_step_loop_takes_at_most_six_parameters():
    assert len(inspect.signature(train_epoch).parameters) <= 6


@pytest.mark.parametrize("fused", [True, False])
def test_metrics_are_read_at_sync_points_and_the_weights_do_not_depend_on_the_interval(fused):
    runs = {}
    for interval in (1, 3):
        model = _model()
        rec = Recorder(model)
        stats = train_epoch(_state(model, log_interval=interval, fused=fused), _batches(8), 0, [rec])
        runs[interval] = (rec, stats, _params(model))
    assert runs[1][0].syncs == [[s] for s in range(8)]
    assert runs[3][0].syncs == [[0, 1, 2], [3, 4, 5], [6, 7]]  # every 3 steps and at the epoch's end
    assert runs[1][1]["train_loss"] == runs[3][1]["train_loss"] and runs[1][1]["grad_norm"] == runs[3][1]["grad_norm"]
    assert all(torch.equal(runs[1][2][k], runs[3][2][k]) for k in runs[1][2])


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("kind, match", [("loss", r"training loss became nan at epoch 0, step 1;"),
                                         ("grad", r"gradient norm became nan at epoch 0, step 1 while the loss")])
def test_a_non_finite_step_between_sync_points_never_reaches_the_weights(kind, match, fused):
    calls = []

    def criterion(logits, targets):  # micro-batch 1 (step 1) goes bad; log_interval 4 syncs after step 3
        calls.append(1)
        if len(calls) == 2 and kind == "grad":
            logits.register_hook(lambda g: torch.full_like(g, float("nan")))  # a broken backward
        loss = F.cross_entropy(logits, targets)
        return loss * float("nan") if len(calls) == 2 and kind == "loss" else loss

    model = _model()
    rec = Recorder(model)
    with pytest.raises(DivergedError, match=match):
        train_epoch(_state(model, criterion, log_interval=4, fused=fused), _batches(8), 0, [rec])
    assert len(calls) == 4 and rec.syncs == []  # raised at the first sync point, after step 3's backward
    assert not torch.equal(rec.weights[1]["head.weight"], rec.weights[0]["head.weight"])  # step 0 was taken
    now = _params(model)
    assert all(torch.equal(now[k], rec.weights[1][k]) for k in now)  # steps 1 and 2 were withheld, 3 never ran
    assert all(torch.isfinite(v).all() for v in now.values())


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(model="deit_tiny_patch16_224", data="digits", overrides=TINY, epochs=2, batch_size=8, limit=32,
                lr=2e-3, warmup_epochs=1, progress=False, out=str(tmp_path / "run"))
    return TrainConfig(**{**base, **kw})


def test_steps_csv_holds_each_step_once_across_an_interrupted_and_resumed_run(tmp_path, monkeypatch):
    real, calls = engine.loss_fn, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 7:  # epoch 1, step 2 (4 steps an epoch), after the checkpoint of step 2
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(engine, "loss_fn", interrupted)
    cfg = _cfg(tmp_path, save_every=1, log_interval=3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.setattr(engine, "loss_fn", real)
    result = train(TrainConfig(**{**cfg.__dict__, "resume": True}))
    with open(tmp_path / "run" / "steps.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["epoch"]), int(r["step"])) for r in rows] == [(e, s) for e in range(2) for s in range(4)]
    for row in result.history:  # equal micro-batches: the epoch's loss is the mean of its steps'
        losses = [float(r["loss"]) for r in rows if int(r["epoch"]) == row["epoch"]]
        assert row["train_loss"] == pytest.approx(sum(losses) / len(losses), abs=1e-5)


def test_trainer_takes_built_objects_and_can_write_nothing(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(48, 3, 16, 16, generator=g), torch.randint(0, 4, (48,), generator=g)
    student = _model("deit_tiny_distilled_patch16_224")
    teacher = vitkit.create_model("resnet_tiny_cifar", num_classes=4, img_size=16, widths=(4, 8, 8))
    seen = []
    teacher.register_forward_hook(lambda module, inputs, out: seen.append(len(inputs[0])))
    before = _params(student)
    cfg = _cfg(tmp_path, model="deit_tiny_distilled_patch16_224", distill="hard", limit=None, out=str(tmp_path / "no"))
    trainer = Trainer(cfg, model=student, train_set=TensorDataset(x[:32], y[:32]), val_set=TensorDataset(x[32:], y[32:]),
                      teacher=teacher, write=False)
    result = trainer.run()
    assert not (tmp_path / "no").exists() and list(tmp_path.iterdir()) == []
    assert result.model is student and result.final_model is student and len(result.history) == 2
    assert sum(seen) == 2 * 32  # the given teacher labelled every training image of both epochs
    assert not torch.equal(before["head.weight"], student.head.weight) and result.train_time > 0
    with pytest.raises(ConfigError, match="a teacher was given but distill is 'none'"):
        Trainer(TrainConfig(**{**cfg.__dict__, "distill": "none"}), teacher=teacher)
    with pytest.raises(ConfigError, match="write=False keeps no checkpoint"):
        Trainer(cfg, model=student, train_set=TensorDataset(x, y), val_set=TensorDataset(x, y), teacher=teacher,
                write=False).setup().resume()


def test_labels_distillation_trains_both_heads_without_a_teacher(tmp_path):
    """distill=labels (DeiT §4's control): no teacher is needed or taken, and the distillation head learns."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 16, 16, generator=g), torch.randint(0, 4, (32,), generator=g)
    student = _model("deit_tiny_distilled_patch16_224")
    before = _params(student)
    cfg = _cfg(tmp_path, model="deit_tiny_distilled_patch16_224", distill="labels", limit=None, out=str(tmp_path / "no"))
    trainer = Trainer(cfg, model=student, train_set=TensorDataset(x, y), val_set=TensorDataset(x, y), write=False)
    trainer.run()
    # each head gets its own label loss (not the mean of the two heads' logits, as with distill=none)
    assert isinstance(trainer.call_model, engine.DistillHeads) and trainer.criterion.teacher is None
    assert not torch.equal(before["head_dist.weight"], student.head_dist.weight)
    assert not torch.equal(before["head.weight"], student.head.weight)
    teacher = vitkit.create_model("resnet_tiny_cifar", num_classes=4, img_size=16, widths=(4, 8, 8))
    with pytest.raises(ConfigError, match="a teacher was given but distill is 'labels'"):
        Trainer(cfg, teacher=teacher)


def test_log_interval_is_a_flag_and_is_checked(tmp_path):
    args = build_parser().parse_args(["train", "--model", "vit_tiny_patch16_224", "--log-interval", "5"])
    assert TrainConfig(**train_settings(args)).log_interval == 5
    with pytest.raises(ConfigError, match="--log-interval: expected a positive integer, got 0"):
        build_parser().parse_args(["train", "--log-interval", "0"])
    with pytest.raises(ConfigError, match="--log-interval must be at least 1, got 0"):
        _cfg(tmp_path, log_interval=0).validate()


def _full(model) -> dict:
    return {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().clone() for k, v in model.named_parameters()}


class FullRecorder(Callback):
    """The gathered weights after each optimiser step of a Trainer's model (index: steps done)."""

    def on_fit_start(self, trainer):
        self.model, self.weights = trainer.model, {0: _full(trainer.model)}

    def on_step(self, epoch, step, meter):
        self.weights[step] = _full(self.model)


def test_the_guard_keeps_a_non_finite_step_out_of_fsdp_shards(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, model="vit_tiny_patch16_224", epochs=1, limit=48, fsdp=True, device="cpu", log_interval=4)
    every = train(TrainConfig(**{**cfg.__dict__, "log_interval": 1, "out": str(tmp_path / "a")})).model
    guarded = train(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "b")})).model
    a, b = _full(every), _full(guarded)
    assert all(torch.equal(a[k], b[k]) for k in a)  # finite steps pass the guard unchanged (6 steps, 2 guarded)
    real, calls = engine.loss_fn, []

    def poisoned(*args):
        calls.append(1)
        loss = real(*args)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(engine, "loss_fn", poisoned)
    rec = FullRecorder()
    trainer = Trainer(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "c")}), callbacks=[rec])
    with pytest.raises(DivergedError, match="loss became nan at epoch 0, step 1"):
        trainer.run()
    now = _full(trainer.model)
    assert len(calls) == 4 and all(torch.equal(now[k], rec.weights[1][k]) for k in now)


DDP_SCRIPT = '''
import json, sys
import torch
from vitkit.train import engine
from vitkit.train.callbacks import Callback
from vitkit.train.distributed import init_distributed
from vitkit.train.engine import DivergedError
from vitkit.train.run import TrainConfig, Trainer

info = init_distributed("cpu")
cfg = TrainConfig(**json.loads(sys.argv[2]))
real, calls = engine.loss_fn, []

def poisoned(model, criterion, images, targets):  # rank 1's first micro-batch only
    calls.append(1)
    loss = real(model, criterion, images, targets)
    return loss * float("nan") if info.rank == 1 and len(calls) == 1 else loss

class Start(Callback):
    def on_fit_start(self, trainer):
        self.weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

engine.loss_fn, start = poisoned, Start()
trainer = Trainer(cfg, info=info, callbacks=[start])
try:
    trainer.run()
    message = None
except DivergedError as e:
    message = str(e)
same = all(torch.equal(v, start.weights[k]) for k, v in trainer.model.state_dict().items())
json.dump({"message": message, "same": same, "calls": len(calls)}, open(f"{sys.argv[1]}/rank{info.rank}.json", "w"))
'''


def test_a_nan_on_one_rank_between_sync_points_is_withheld_on_every_rank(tmp_path):
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "script.py").write_text(DDP_SCRIPT)
    cfg = dict(model="vit_tiny_patch16_224", data="digits", overrides=TINY, epochs=1, limit=48, batch_size=8,
               progress=False, device="cpu", log_interval=3, out=str(tmp_path / "run"))  # 3 steps: one sync, at the end
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(tmp_path / "script.py"), str(tmp_path), json.dumps(cfg)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["message"].startswith("the training loss became nan at epoch 0, step 0;"), got
        assert got["same"] and got["calls"] == 3, got  # every step ran, none changed the weights


def test_the_progress_bar_follows_the_sync_points_and_says_one_line_per_epoch():
    from vitkit.train.callbacks import ProgressBar

    said, model = [], _model()
    bar = ProgressBar(said.append, epochs=3)
    rec = Recorder(model)
    stats = train_epoch(_state(model, log_interval=2), _batches(4), 0, [rec, bar])
    assert rec.syncs == [[0, 1], [2, 3]] and len(bar.losses) == 4 and bar.bar is None  # stopped at the epoch's end
    assert sum(bar.losses) / 4 == pytest.approx(stats["train_loss"])  # equal batches: the epoch's mean
    bar.on_epoch_end(None, {"epoch": 0, "train_loss": 1.5, "val_acc1": 50.0, "val_ema_acc1": None, "epoch_time": 2.0})
    assert said == ["epoch 1/3  loss 1.5000  val acc 50.00%  (2.0s)"]
