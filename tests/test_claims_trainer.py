"""The claims train on the shipped trainer: experiments/ has no step loop of its own, `fit` runs vitkit's Trainer
(a fixed step budget, early stopping on validation with the best weights kept), and a run depends on its
settings and seed alone, whatever ran before it in the process."""

import re
import sys

import pytest
import torch

from vitkit.errors import ConfigError
from vitkit.tools.reproduce import experiments_dir
from vitkit.train import engine

sys.path.insert(0, str(experiments_dir()))
import common as C  # experiments/ is not a package: its modules import each other by name

TINY_VIT = dict(img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2, in_chans=1, num_classes=10)
STEP_LOOP = re.compile(r"\.backward\(|\b(optimizer|opt)\.step\(|clip_grad_norm_|torch\.optim\.|lr_scheduler")


def test_experiments_have_no_training_loop_of_their_own():
    found = [f"{path.name}:{i}: {line.strip()}" for path in sorted(experiments_dir().glob("*.py"))
             for i, line in enumerate(path.read_text().splitlines(), 1) if STEP_LOOP.search(line)]
    assert found == []
    assert STEP_LOOP.search("    loss.backward()") and STEP_LOOP.search("opt.step()")  # the pattern can fail


def _data(n: int, seed: int, classes: int = 10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 16, 16, generator=g), torch.randint(0, classes, (n,), generator=g)


def _fit(seed: int, **fit):
    x, y = _data(96, 0)
    model = C.create("vit_tiny_patch16_224", seed=seed, **TINY_VIT)
    r = C.fit(model, x, y, C.Fit(**{"epochs": 2, "batch_size": 16, **fit}), seed, test=_data(32, 1))
    return r["history"], {k: v.clone() for k, v in model.state_dict().items()}


def test_a_fit_alone_equals_the_same_fit_after_another_run():
    alone, weights = _fit(seed=3)
    _fit(seed=5, max_shift=2, lr=3e-3)  # another run in between moves every global random state
    again, weights_again = _fit(seed=3)
    assert alone == again and len(alone) == 2
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)
    other, _ = _fit(seed=4)
    assert other != alone


def test_a_step_budget_runs_that_many_optimiser_steps(monkeypatch):
    real, steps = engine._optimizer_step, []
    monkeypatch.setattr(engine, "_optimizer_step", lambda s, *a, **k: (steps.append(1), real(s, *a, **k))[1])
    x, y = _data(100, 0)  # 6 steps of 16 per epoch: 10 steps end inside the second epoch
    r = C.fit(C.create("vit_tiny_patch16_224", seed=0, **TINY_VIT), x, y, C.Fit(steps=10, batch_size=16), 0,
              test=_data(16, 1))
    assert len(steps) == 10 and len(r["history"]) == 2


def test_fit_stops_early_on_validation_and_ends_with_the_best_epochs_weights():
    """Validation labels the model cannot learn (random): its top-1 wanders, so the run stops long before 40
    epochs, `patience` epochs after its best one, and the model scores what that epoch scored."""
    x, y = _data(64, 0)
    val = _data(64, 2)
    model = C.create("vit_tiny_patch16_224", seed=0, **TINY_VIT)
    r = C.fit(model, x, y, C.Fit(epochs=40, batch_size=16, lr=3e-3, patience=2), 0, val=val)
    history, best = r["val_history"], r["best_epoch"]
    assert len(history) < 40 and len(history) == best + 3
    assert history[best] == max(history) and history.index(max(history)) == best
    assert C.accuracy(model, *val) == pytest.approx(history[best], abs=1e-3)  # the best weights are back
    with pytest.raises(ConfigError, match="Fit.patience stops on validation accuracy: pass val"):
        C.fit(model, x, y, C.Fit(epochs=1, patience=2), 0)


@pytest.mark.parametrize("shape", [(5, 1, 8, 8), (3, 2, 4, 6, 10)])  # images and clips
def test_shifted_translates_each_sample_with_draws_from_the_seeded_generator(shape):
    x, s = torch.randn(shape), 2
    data = C.Shifted(x, torch.arange(shape[0]), s)
    H, W = shape[-2:]
    for i in range(shape[0]):
        torch.default_generator.manual_seed(100 + i)
        out, label = data[i]
        torch.default_generator.manual_seed(100 + i)
        dy, dx = torch.randint(0, 2 * s + 1, (2,)).tolist()
        want = torch.full_like(x[i], x.amin().item())  # the sample moved by (s - dy, s - dx), the border black
        want[..., max(s - dy, 0):H + min(s - dy, 0), max(s - dx, 0):W + min(s - dx, 0)] = \
            x[i][..., max(dy - s, 0):H + min(dy - s, 0), max(dx - s, 0):W + min(dx - s, 0)]
        torch.testing.assert_close(out, want, rtol=0, atol=1e-6)
        assert label == i
    assert torch.equal(C.Shifted(x, torch.arange(shape[0]), 0)[1][0], x[1])
