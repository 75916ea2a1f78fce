"""The review's verdicts come from rules each claim declares (experiments/rules.py): for every claim, synthetic
results that must give each of the three verdicts give it, and the why-sentence is generated from the numbers."""

import math
import sys

import pytest

from vitkit.tools.reproduce import experiments_dir, load_claims

sys.path.insert(0, str(experiments_dir()))
import rules as R  # experiments/ is not a package: its modules import each other by name

CLAIMS = load_claims()
YES, PART, NO = R.VERDICTS
# C6's exact counts as a window-attention Swin and a global-attention ViT give them (size-matched pairs)
C6_COST = {"Swin-T_attention_exponent": [1.0], "Swin-B_attention_exponent": [1.0], "DeiT-S_attention_exponent": [2.0],
           "ViT-B/16_attention_exponent": [1.99], "Swin-T_exponent": [1.0], "Swin-B_exponent": [1.0],
           "Swin-T_over_DeiT-S": [0.34], "Swin-B_over_ViT-B/16": [0.45]}
# per claim and verdict: synthetic per-seed values of every part of its rule (exact parts: one value)
CASES = {
    "C1": {YES: {"cnn_lead_smallest": [8, 10, 9], "error_ratio_change": [1.0, 0.8, 1.2],
                 "error_ratio_largest": [-0.5, -0.3, -0.4]},
           PART: {"cnn_lead_smallest": [8, 10, 9], "error_ratio_change": [-0.5, -0.4, -0.6],
                  "error_ratio_largest": [1.5, 2.0, 1.8]},  # the CNN leads on little data, and its error lead grows
           NO: {"cnn_lead_smallest": [-1, -2, -0.5], "error_ratio_change": [-1, -0.5, -2],
                "error_ratio_largest": [1.5, 2.0, 1.8]}},
    "C2": {YES: {"r_minus_null": [-0.5, -0.6, -0.55], "p_max": [0.0005]},
           PART: {"r_minus_null": [-0.1, -0.15, -0.12], "p_max": [0.0005]},  # significant, but weaker than claimed
           NO: {"r_minus_null": [0.05, 0.0, 0.02], "p_max": [0.4]}},
    "C3": {YES: {"hard_minus_soft_cls": [1.0, 1.2, 0.9, 1.1, 0.8], "hard_minus_soft_token": [0.7, 0.9, 0.6, 0.8, 1.0]},
           PART: {"hard_minus_soft_cls": [1.0, 1.2, 0.9, 1.1, 0.8],          # the class token's row holds,
                  "hard_minus_soft_token": [0.2, -0.3, 0.4, 0.1, 0.3]},      # the token's is not resolved
           NO: {"hard_minus_soft_cls": [-0.5, -1.0, -0.2, -0.4, -0.6], "hard_minus_soft_token": [-0.2, 0.1, -0.4, -0.3, -0.1]}},
    "C4": {YES: {"token_minus_cls": [0.6, 0.8, 0.7, 0.5, 0.9], "token_beyond_second_token": [0.5, 0.7, 0.4, 0.6, 0.8]},
           PART: {"token_minus_cls": [0.6, 0.8, 0.7, 0.5, 0.9],              # a gain a second label token also gives
                  "token_beyond_second_token": [-0.1, 0.2, -0.3, 0.1, -0.2]},
           NO: {"token_minus_cls": [-0.3, -0.2, -0.4, 0.1, -0.2], "token_beyond_second_token": [-0.5, -0.1, -0.3, -0.2, 0.0]}},
    "C5": {YES: {"student_minus_teacher": [0.4, 0.6, 0.3, 0.5, 0.7], "student_minus_none": [1.5, 1.7, 1.4, 1.6, 1.8]},
           PART: {"student_minus_teacher": [-0.4, -0.2, -0.6, -0.3, -0.5],   # distillation helps, not past the teacher
                  "student_minus_none": [0.8, 0.6, 0.9, 0.7, 0.5]},
           NO: {"student_minus_teacher": [-1.4, -1.2, -1.6, -1.3, -1.5], "student_minus_none": [-0.4, -0.2, -0.6, 0.1, -0.3]}},
    "C6": {YES: C6_COST,
           PART: {**C6_COST, "Swin-T_exponent": [1.3], "Swin-B_exponent": [1.3]},  # attention linear, the rest not
           NO: {**{k: [1.5] for k in C6_COST if "exponent" in k}, "DeiT-S_attention_exponent": [1.0],
                "ViT-B/16_attention_exponent": [1.0], "Swin-T_over_DeiT-S": [1.2], "Swin-B_over_ViT-B/16": [1.1]}},
    "C7": {YES: {"cvt_minus_vit": [5, 6, 5.5], "cvt_pos_drop": [0.1, -0.2, 0.1], "vit_minus_cvt_drop": [3, 4, 3.5]},
           PART: {"cvt_minus_vit": [5, 6, 5.5], "cvt_pos_drop": [3, 4, 3.5], "vit_minus_cvt_drop": [3, 4, 3.5]},
           NO: {"cvt_minus_vit": [-2, -1, -3], "cvt_pos_drop": [3, 4, 3.5], "vit_minus_cvt_drop": [-1, -2, -1.5]}},
    "C8": {YES: {"m1_minus_best_other": [1, 1.5, 1.2], "m2_speed_ratio": [1.3]},
           PART: {"m1_minus_best_other": [1, 1.5, 1.2], "m2_speed_ratio": [1.05]},  # faster, within timing noise
           NO: {"m1_minus_best_other": [-1, -1, -2], "m2_speed_ratio": [0.9]}},
    "C9": {YES: {"appearance_range": [2, 3, 2.5], "motion_gap": [20, 25, 22]},
           PART: {"appearance_range": [2, 3, 2.5], "motion_gap": [-1, 0, -2]},
           NO: {"appearance_range": [15, 20, 18], "motion_gap": [-1, 0, -2]}},
    "C10": {YES: {"mvit_cost_ratio": [0.3], "mvit_minus_best": [0, -1, 0.5], "mvit_shuffle_drop": [8, 9, 7],
                  "vit_shuffle_drop": [0.2, -0.3, 0.1]},
            PART: {"mvit_cost_ratio": [0.3], "mvit_minus_best": [-10, -12, -11], "mvit_shuffle_drop": [-1, 0, -0.5],
                   "vit_shuffle_drop": [10, 12, 11]},
            NO: {"mvit_cost_ratio": [1.2], "mvit_minus_best": [-10, -12, -11], "mvit_shuffle_drop": [-1, 0, -0.5],
                 "vit_shuffle_drop": [10, 12, 11]}},
}


def test_every_claim_declares_a_rule_and_has_cases():
    assert set(CASES) == set(CLAIMS)
    for cid, module in CLAIMS.items():
        assert isinstance(module.RULE, R.Rule) and module.RULE.parts, cid
        names = {p.name for p in module.RULE.parts}
        assert all(set(values) == names for values in CASES[cid].values()), cid


@pytest.mark.parametrize("verdict", R.VERDICTS)
@pytest.mark.parametrize("claim", list(CASES))
def test_synthetic_results_give_each_verdict(claim, verdict):
    judged = R.judge(CLAIMS[claim].RULE, CASES[claim][verdict])
    assert judged.verdict == verdict
    for p in CLAIMS[claim].RULE.parts:  # the sentence is built from every part's measure, number and verdict
        found = judged.parts[p.name]
        assert f"{p.measure} is {found['mean']:{'.2f' if p.exact else '+.2f'}}" in judged.why
        assert found["verdict"] in judged.why


def test_the_interval_is_students_t():
    e = R.estimate([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.303
    assert e.mean == 2.0 and e.n == 3
    assert e.hi - 2.0 == pytest.approx(4.303 / math.sqrt(3), abs=1e-3) and e.lo == pytest.approx(4.0 - e.hi)
    assert R.estimate([5.0], exact=True) == R.Estimate(5.0, 5.0, 5.0, 1)


def test_one_seed_never_reproduces_a_seeded_part():
    part = R.Part("d", "a − b (points)", ">", 0.0, 0.5)
    assert R.judge(R.Rule((part,)), {"d": [40.0]}).verdict == PART  # no interval: not resolved
    assert R.judge(R.Rule((part,)), {"d": [-1.0]}).verdict == NO
    assert R.judge(R.Rule((part,)), {"d": [40.0]}).parts["d"]["lo"] is None  # unbounded, written as JSON null


def test_an_equivalence_part_needs_its_interval_inside_the_band():
    band = R.Rule((R.Part("d", "a − b", "≈", 0.0, 1.0),))
    assert R.judge(band, {"d": [0.1, -0.1, 0.0]}).verdict == YES
    assert R.judge(band, {"d": [0.5, -2.0, 1.5]}).verdict == PART   # straddles the band's edge
    assert R.judge(band, {"d": [3.0, 3.2, 2.9]}).verdict == NO


def test_a_declared_effect_on_the_wrong_side_is_refused():
    with pytest.raises(AssertionError):
        R.Part("d", "a − b", ">", 0.0, -1.0)


def test_the_deit_teacher_rule_picks_the_budget_closest_to_its_target():
    """C3-C5's declared teacher rule: val top-1 closest to the undistilled students' + 1 point, ties to the shorter
    budget; and the disagreement it reports counts argmax ≠ label on shifted training images."""
    import deit_students as S
    import torch
    from torch import nn

    ladder = {25: {"val": 60.0}, 50: {"val": 80.0}, 100: {"val": 90.0}, 200: {"val": 97.0}}
    assert S.choose_teacher(ladder, 88.0) == 100 and S.choose_teacher(ladder, 99.0) == 200
    assert S.choose_teacher(ladder, 70.0) == 25  # 10 points from 60 and from 80: the shorter budget

    class Always(nn.Module):  # predicts class 3 whatever the image
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((len(x),), 3), 10).float()

    y = torch.tensor([3, 3, 1, 2, 3, 0, 3, 3])
    assert S.disagreement(Always(), torch.randn(8, 1, 16, 16), y, batch_size=3) == 100.0 * 3 / 8
