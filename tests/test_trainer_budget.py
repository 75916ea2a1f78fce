"""What a run's length and calls can be besides --epochs: a step budget that ends mid-epoch (--max-steps, the
schedule spanning it), early stopping on validation with the best epoch's weights put back, and a caller's
choice of how the training loop calls the model (`forward=`)."""

import pytest
import torch
from torch.utils.data import TensorDataset

import vitkit
from vitkit.cli import build_parser, train_settings
from vitkit.errors import ConfigError
from vitkit.train.callbacks import Callback, EarlyStopping
from vitkit.train.run import TrainConfig, Trainer

TINY = dict(img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2)


def _data(n: int = 40, classes: int = 4):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, classes, (n,), generator=g)


def _trainer(name="vit_tiny_patch16_224", callbacks=(), forward=None, **kw) -> Trainer:
    x, y = _data()
    torch.manual_seed(0)
    model = vitkit.create_model(name, num_classes=4, **TINY)
    cfg = TrainConfig(**{**dict(model=name, epochs=3, batch_size=8, lr=2e-3, warmup_epochs=1, progress=False,
                                device="cpu", precision="fp32"), **kw})
    return Trainer(cfg, model=model, train_set=TensorDataset(x, y), val_set=TensorDataset(x[:16], y[:16]),
                   write=False, callbacks=list(callbacks), forward=forward)


class Steps(Callback):
    def __init__(self):
        self.steps = []

    def on_step(self, epoch, step, meter):
        self.steps.append((epoch, step))


def test_max_steps_ends_inside_an_epoch_with_the_schedule_at_its_floor():
    steps = Steps()
    trainer = _trainer(callbacks=[steps], epochs=10, max_steps=7)  # 40 samples / 8: 5 steps per epoch
    result = trainer.run()
    assert steps.steps == [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (1, 1), (1, 2)]
    assert len(result.history) == 2
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(2e-3 * 0.01)  # the cosine ended at step 7


def test_max_steps_is_a_flag_and_is_checked():
    args = build_parser().parse_args(["train", "--model", "vit_tiny_patch16_224", "--max-steps", "100"])
    assert TrainConfig(**train_settings(args)).max_steps == 100
    with pytest.raises(ConfigError, match="--max-steps must be at least 1, got 0"):
        TrainConfig(max_steps=0).validate()


class Scripted(Callback):
    """Replaces the row's val top-1 by scripted values and keeps the weights at each epoch's end."""

    def __init__(self, values):
        self.values, self.weights = list(values), []

    def on_evaluate(self, trainer, row):
        row["val_acc1"] = self.values[row["epoch"]]

    def on_epoch_end(self, trainer, row):
        self.weights.append({k: v.clone() for k, v in trainer.model.state_dict().items()})


def test_early_stopping_stops_after_patience_and_restores_the_best_epoch():
    script, stop = Scripted([10.0, 30.0, 20.0, 25.0, 50.0, 60.0]), EarlyStopping(patience=2)
    trainer = _trainer(callbacks=[script, stop], epochs=6)
    result = trainer.run()
    assert [row["val_acc1"] for row in result.history] == [10.0, 30.0, 20.0, 25.0]  # 2 epochs without a gain
    assert (stop.best_epoch, stop.best) == (1, 30.0)
    best, last = script.weights[1], script.weights[3]
    assert any(not torch.equal(best[k], last[k]) for k in best)  # the run went on training after its best epoch
    for k, v in result.model.state_dict().items():
        torch.testing.assert_close(v, best[k], rtol=0, atol=0)


def test_early_stopping_without_a_plateau_runs_every_epoch_and_refuses_a_negative_patience():
    stop = EarlyStopping(patience=2)
    result = _trainer(callbacks=[Scripted([1.0, 2.0, 3.0]), stop]).run()
    assert len(result.history) == 3 and stop.best_epoch == 2
    with pytest.raises(ConfigError, match="patience must be non-negative, got -1"):
        EarlyStopping(patience=-1)


def test_forward_chooses_what_the_training_loop_calls():
    """A distilled student trained without distillation on its class head only: the distillation head gets no
    gradient (AdamW leaves it as it was), while the model's own call (both heads averaged) trains both."""
    calls = []

    def cls_head(model, x):
        calls.append(len(x))
        return model.forward_distill(x)  # (cls, dist): a DistillationLoss of kind none uses cls

    trainer = _trainer("deit_tiny_distilled_patch16_224", forward=cls_head, epochs=1)
    before = {k: v.clone() for k, v in trainer.given["model"].state_dict().items()}
    model = trainer.run().model
    assert sum(calls) == 40
    assert torch.equal(model.head_dist.weight, before["head_dist.weight"])
    assert not torch.equal(model.head.weight, before["head.weight"])
    plain = _trainer("deit_tiny_distilled_patch16_224", epochs=1).run().model
    assert not torch.equal(plain.head_dist.weight, before["head_dist.weight"])
