"""DistillationLoss against numbers computed by hand (plain Python arithmetic on 2×3 logits)."""

import math

import pytest
import torch
from torch import nn

from vitkit.errors import ConfigError
from vitkit.train.losses import DistillationLoss

S_CLS = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]      # student class-head logits
S_DIST = [[0.0, 1.0, 0.0], [2.0, 0.0, 1.0]]     # student distillation-head logits
T = [[0.0, 3.0, 0.0], [1.0, 0.0, 0.0]]          # teacher logits: argmax 1 and 0
Y = [0, 1]


class FixedTeacher(nn.Module):
    """Returns T whatever the input; has dropout so eval mode matters, and a parameter to check gradients."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.drop = nn.Dropout(0.9)

    def forward(self, x):
        return self.drop(torch.tensor(T) * self.w)


def ce(row, label):
    """-log softmax(row)[label] = log Σ exp(row) - row[label]."""
    return math.log(sum(math.exp(v) for v in row)) - row[label]


def kl_at(t_row, s_row, tau):
    """Σ_c p_t(c) (log p_t(c) - log p_s(c)) with p = softmax(row / tau)."""
    zt = sum(math.exp(v / tau) for v in t_row)
    zs = sum(math.exp(v / tau) for v in s_row)
    total = 0.0
    for a, b in zip(t_row, s_row):
        pt = math.exp(a / tau) / zt
        total += pt * (math.log(pt) - math.log(math.exp(b / tau) / zs))
    return total


def run(kind, alpha=0.5, tau=1.0, norm="elementwise"):
    loss = DistillationLoss(nn.CrossEntropyLoss(), FixedTeacher(), kind, alpha, tau, norm)
    outputs = (torch.tensor(S_CLS, requires_grad=True), torch.tensor(S_DIST, requires_grad=True))
    return loss, loss(torch.zeros(2, 3, 4, 4), outputs, torch.tensor(Y)), outputs


BASE = (ce(S_CLS[0], 0) + ce(S_CLS[1], 1)) / 2


def test_none_is_the_base_loss():
    _, value, _ = run("none", alpha=0.7)
    assert value.item() == pytest.approx(BASE, abs=1e-6)
    # the same number, spelled out: row 0 is log(e + 2) - 1, row 1 is log(e² + 2) - 2
    assert pytest.approx((math.log(math.e + 2) - 1 + math.log(math.e ** 2 + 2) - 2) / 2) == BASE


def test_hard_is_cross_entropy_against_the_teacher_argmax():
    alpha = 0.3
    _, value, _ = run("hard", alpha=alpha)
    hard = (ce(S_DIST[0], 1) + ce(S_DIST[1], 0)) / 2  # teacher argmax: class 1, then class 0
    assert value.item() == pytest.approx((1 - alpha) * BASE + alpha * hard, abs=1e-6)


def test_labels_trains_the_distillation_head_on_the_labels_without_a_teacher():
    alpha = 0.4
    loss = DistillationLoss(nn.CrossEntropyLoss(), None, "labels", alpha)
    cls, dist = torch.tensor(S_CLS, requires_grad=True), torch.tensor(S_DIST, requires_grad=True)
    value = loss(torch.zeros(2, 3, 4, 4), (cls, dist), torch.tensor(Y))
    second = (ce(S_DIST[0], 0) + ce(S_DIST[1], 1)) / 2  # the labels, not a teacher, supervise the second head
    assert value.item() == pytest.approx((1 - alpha) * BASE + alpha * second, abs=1e-6)
    value.backward()
    assert dist.grad is not None and dist.grad.abs().sum() > 0


@pytest.mark.parametrize("norm, denominator", [("elementwise", 2 * 3), ("batch", 2)])
def test_soft_is_tau_squared_kl_with_the_documented_normalisation(norm, denominator):
    alpha, tau = 0.25, 2.0
    _, value, _ = run("soft", alpha=alpha, tau=tau, norm=norm)
    kl_sum = kl_at(T[0], S_DIST[0], tau) + kl_at(T[1], S_DIST[1], tau)
    expected = (1 - alpha) * BASE + alpha * kl_sum * tau * tau / denominator
    assert value.item() == pytest.approx(expected, abs=1e-6)


def test_teacher_runs_in_eval_mode_without_gradients():
    loss, value, (cls, dist) = run("hard")
    value.backward()
    assert loss.teacher.w.grad is None and not loss.teacher.training
    assert cls.grad is not None and dist.grad is not None
    # the teacher is not a submodule: its weights never reach the student's optimiser or state dict
    assert list(loss.parameters()) == []


def test_a_single_output_serves_both_terms():
    loss = DistillationLoss(nn.CrossEntropyLoss(), FixedTeacher(), "hard", 0.5)
    value = loss(torch.zeros(2, 3), torch.tensor(S_CLS), torch.tensor(Y))
    assert value.item() == pytest.approx(0.5 * BASE + 0.5 * (ce(S_CLS[0], 1) + ce(S_CLS[1], 0)) / 2, abs=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="medium"), "unknown distillation kind"),
    (dict(kind="hard", teacher=None), "needs a teacher"),
    (dict(kind="soft", alpha=1.5), "alpha"),
    (dict(kind="soft", tau=0.0), "tau"),
    (dict(kind="soft", soft_normalisation="class"), "soft_normalisation"),
])
def test_bad_settings(kwargs, match):
    kwargs = {"teacher": FixedTeacher(), **kwargs}
    with pytest.raises(ConfigError, match=match):
        DistillationLoss(nn.CrossEntropyLoss(), **kwargs)
