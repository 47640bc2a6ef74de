"""The competing beta-scaling rules against values computed by hand from their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from adamnoise.theory import scaling_rules as rules
from adamnoise.theory.lemmas import monotonicity_thresholds


def test_token_half_life_keeps_the_half_life_in_tokens():
    # 0.999 at b0 = 8: b = 32 is four times the tokens per step, 0.999^4 = 0.996005996001
    beta = rules.token_half_life(0.999, 8, [8, 32, 256])
    np.testing.assert_allclose(beta, [0.999, 0.996005996001, 0.999**32], rtol=0, atol=1e-12)
    # the half-life in tokens, b * ln(1/2) / ln(beta), is the same at every batch size
    half_life = np.array([8, 32, 256]) * np.log(0.5) / np.log(beta)
    np.testing.assert_allclose(half_life, half_life[0])
    # smaller batches lengthen the memory: 0.99 at b0 = 32 gives 0.99^(1/4) at b = 8
    assert rules.token_half_life(0.99, 32, 8) == pytest.approx(0.99**0.25)


def test_sqrt_scaling_scales_one_minus_beta_with_the_batch():
    # 1 - beta = (b / b0)(1 - beta0): 0.999 at 8 -> 0.996 at 32, 0.968 at 256, 0.75 at 2000
    beta = rules.sqrt_scaling(0.999, 8, [8, 32, 256, 2000])
    np.testing.assert_allclose(beta, [0.999, 0.996, 0.968, 0.75], atol=1e-12)
    # beyond kappa (1 - beta0) >= 1 the rule gives no beta (0 itself is still one)
    np.testing.assert_array_equal(np.isnan(rules.sqrt_scaling(0.9, 1, [10, 11])), [False, True])


def test_implicit_bias_choice_flips_at_the_lemma_thresholds():
    grid = [0.9, 0.99, 0.999]
    upper, lower = (
        0.5082,
        0.4945,
    )  # Lemma 3.4 (beta1 = 0.9), computed: see test_theory_implicit_bias
    lam = [5.0, upper + 0.01, lower - 0.01, 0.0, np.nan]
    choice = rules.implicit_bias_choice("beta2", 0.9, lam, grid)
    np.testing.assert_array_equal(choice[:4], [0.999, 0.999, 0.9, 0.9])
    assert np.isnan(choice[4])
    # beta1 with beta2 = 0.999 (Lemma 3.6): decreasing in beta1 above ~0.995, increasing below 0.9
    choice = rules.implicit_bias_choice("beta1", 0.999, [2.0, 0.5], [0.9, 0.95, 0.99])
    np.testing.assert_array_equal(choice, [0.9, 0.99])


def test_implicit_bias_choice_agrees_with_the_computed_thresholds():
    thresholds = monotonicity_thresholds("beta2", 0.9)
    grid = np.linspace(0.9, 0.9999, 50)
    above = rules.implicit_bias_choice("beta2", 0.9, thresholds.lambda_increasing + 1e-3, grid)
    below = rules.implicit_bias_choice("beta2", 0.9, thresholds.lambda_decreasing - 1e-3, grid)
    assert above == grid[-1] and below == grid[0]


def test_equal_betas_and_the_default():
    np.testing.assert_array_equal(rules.equal_betas("beta1", 0.999, [8, 64]), [0.999, 0.999])
    np.testing.assert_array_equal(rules.fixed_default("beta2", [8, 64]), [0.999, 0.999])
    np.testing.assert_array_equal(rules.fixed_default("beta1", [8]), [0.9])
    with pytest.raises(ValueError, match="axis"):
        rules.fixed_default("beta3", [8])


def test_every_rule_predicts_from_one_context():
    context = rules.SweepContext(
        axis="beta2",
        fixed=0.9,
        batch_sizes=np.array([8.0, 32.0, 256.0]),
        noise_ratio=np.array([2.0, 0.3, 0.0]),
        anchor_batch_size=8.0,
        anchor_beta=0.99,
        candidates=np.array([0.9, 0.99, 0.999]),
    )
    predicted = rules.predict_all(context)
    assert set(predicted) == set(rules.RULES)
    np.testing.assert_allclose(predicted["token_half_life"], [0.99, 0.99**4, 0.99**32])
    np.testing.assert_allclose(predicted["sqrt_scaling"], [0.99, 0.96, 0.68])
    np.testing.assert_array_equal(predicted["implicit_bias"], [0.999, 0.9, 0.9])
    np.testing.assert_array_equal(predicted["equal_betas"], [0.9, 0.9, 0.9])
    np.testing.assert_array_equal(predicted["fixed_default"], [0.999, 0.999, 0.999])
    for rule in rules.RULES.values():
        assert rule.source and rule.label


def test_nearest_candidate_on_the_log_one_minus_beta_scale():
    index, off = rules.nearest_candidate([0.996, 0.97, 0.5, 0.99999, np.nan], [0.9, 0.99, 0.999])
    # 1 - 0.996 = 0.004: log-distance to 0.01 is 0.92, to 0.001 is 1.39 -> 0.99
    # 1 - 0.97 = 0.03: nearer 0.01 (1.10) than 0.1 (1.20) in log, though nearer 0.9 linearly
    np.testing.assert_array_equal(index, [1, 1, 0, 2, -1])
    np.testing.assert_array_equal(off, [False, False, True, True, False])
