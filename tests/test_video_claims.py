"""The video claims' shared measurements (experiments/video.py): the order tests tell an order-blind model from
one that reads the order, the joint schemes get their own warm-up, and rows that did not learn or that the budget
ended are named."""

import sys
from dataclasses import dataclass

import torch
from torch import nn

from vitkit.tools.reproduce import experiments_dir

sys.path.insert(0, str(experiments_dir()))
import notes as N
import video as V  # experiments/ is not a package: its modules import each other by name


class FrameMean(nn.Module):
    """Order-blind by construction: a linear read-out of the clip averaged over time."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(V.IMG * V.IMG, 8)

    def forward(self, x):  # (B, 1, T, H, W) -> (B, 8)
        return self.head(x.mean(2).flatten(1))


class FirstMinusLast(FrameMean):
    """Reads the order: the first frame minus the last."""

    def forward(self, x):
        return self.head((x[:, :, 0] - x[:, :, -1]).flatten(1))


def test_shuffled_and_reversed_frames_change_only_an_order_aware_model():
    x, y = V.data("test", V.MOTION, 64)
    assert x.shape == (64, 1, V.FRAMES, V.IMG, V.IMG)
    torch.manual_seed(0)
    blind = V.evaluate(FrameMean(), x, y, V.MOTION)
    assert blind["acc"] == blind["acc_shuffled"] == blind["acc_reversed"]
    torch.manual_seed(0)
    model = FirstMinusLast()
    aware = V.evaluate(model, x, y, V.MOTION)
    with torch.no_grad():  # reversed frames negate its input: its predictions change
        assert not torch.equal(model(x).argmax(1), model(V.reversed_in_time(x)).argmax(1))
    assert set(aware) == {"acc", "acc_shuffled", "acc_reversed", "acc_order_classes"}
    assert torch.equal(V.reversed_in_time(V.reversed_in_time(x)), x)
    assert not torch.equal(V.shuffled(x), x) and torch.equal(V.shuffled(x).sort(2).values, x.sort(2).values)


def test_the_task_neither_caps_order_blind_models_at_half_nor_lets_any_model_reach_100():
    assert V.CHANCE[V.MOTION] < V.BLIND < V.CEILING < 100
    assert V.BLIND > 50 + 10 and V.CEILING - V.BLIND > 20  # room above chance, and for the order to matter


def test_joint_schemes_get_their_warm_up_in_full_mode():
    joint = V.fit_settings("timesformer_base_8x224_joint_space_time", quick=False)
    divided = V.fit_settings("timesformer_base_8x224_divided_space_time", quick=False)
    assert joint.warmup_epochs > divided.warmup_epochs and joint.lr < divided.lr  # the probe's schedule
    assert joint.epochs == divided.epochs == V.FULL.epochs
    assert joint.patience >= 2 * joint.warmup_epochs and divided.patience >= 2 * divided.warmup_epochs
    # every scheme warms up as the probe of the stopped runs asked (3 epochs; joint 5)
    others = ["vivit_base_16x2_factorised_encoder", "vivit_base_16x2_factorised_self_attention",
              "vivit_base_16x2_factorised_dot_product", "mvit_base_16x4", "timesformer_base_8x224_space_only"]
    assert all(V.fit_settings(n, quick=False).warmup_epochs >= 3 for n in others)
    first = V.fit_settings("timesformer_base_8x224_divided_space_time", quick=False, first=True)
    assert (first.warmup_epochs, first.patience) == (V.FIRST["warmup_epochs"], V.FIRST["patience"])  # C9's first report
    assert V.fit_settings("timesformer_base_8x224_joint_space_time", quick=False, first=True) == joint
    assert V.fit_settings("vivit_base_16x2_spatiotemporal", quick=True) == \
        V.fit_settings("vivit_base_16x2_factorised_encoder", quick=True)


def test_rows_that_stayed_at_chance_are_named():
    learned = {"history_val": [20.0, 60.0]}
    stuck = {"history_val": [12.0, 14.0]}
    assert V.learned_note({"a": [learned], "b": [stuck, learned]}, V.MOTION) == \
        ["Did not learn (validation top-1 within 3 points of chance): b (1 of 2 seeds)."]
    assert V.learned_note({"a": [learned, learned]}, V.MOTION) == []


def test_seeds_far_below_their_row_are_named_with_their_epochs():
    rs = [{"acc": a, "epochs_run": e} for a, e in ((80.0, 30), (82.0, 33), (21.5, 10), (79.0, 29))]
    assert N.outliers({"M2": rs, "M1": rs[:2] + rs[3:]}, [0, 1, 4, 7]) == [
        "More than 15 points below the rest of their row (counted in the rule): M2, seed 4: 21.5 % after 10 epochs "
        "(its other seeds 79.0–82.0 % after 29–33)."]
    assert N.outliers({"M2": rs[:2]}, [0, 1]) == []  # one other seed is no row to stand out from


def test_rows_the_epoch_budget_ended_are_named():
    stopped, capped = {"epochs_run": 12}, {"epochs_run": 30}
    assert N.capped({"a": [stopped, capped, capped], "b": [stopped]}, 30) == \
        ["Ended by the 30-epoch budget, not by validation (their top-1 is a lower bound): a (2 of 3 seeds)."]
    assert N.capped({"a": [stopped]}, 30) == [] and N.capped({"a": [capped]}, 31) == []


def test_early_stopping_on_validation_waits_out_the_warm_up(monkeypatch):
    """Where `fit` stops on validation (Fit.patience, fit(val=...)), the claims use it, and a joint scheme's long
    warm-up is not taken for convergence."""
    @dataclass(frozen=True)
    class FitWithPatience(V.C.Fit):
        patience: int = 0

    calls = []

    def fit(model, x, y, cfg, seed, teacher=None, test=None, heads=None, val=None):
        calls.append((cfg, val))
        return {"history": [50.0]}

    monkeypatch.setattr(V.C, "Fit", FitWithPatience)
    monkeypatch.setattr(V.C, "fit", fit)
    joint = V.fit_settings("timesformer_base_8x224_joint_space_time", quick=False)
    assert joint.patience >= 2 * joint.warmup_epochs >= V.FULL.patience
    assert V.fit_settings("mvit_base_16x4", quick=False).patience == V.FULL.patience
    val = V.data("val", V.MOTION, 8)
    assert V._train(nn.Linear(1, 1), val[0], val[1], joint, 0, val) == {"history": [50.0]}
    assert calls[0][1] is val
