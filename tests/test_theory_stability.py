"""Seed 004 Sec. 3.1 / App. E (adamnoise.theory.stability) against the numbers the seed prints and
a separately written discrete Adam recursion."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from adamnoise.theory import stability as st


def c_seed004(beta: F, gamma: F) -> F:
    """C(beta, gamma) exactly as printed, in seed 004's own letters (beta: 2nd moment)."""
    return (2 * beta * (1 - gamma) - gamma * (1 - beta)) / (beta * gamma)


def test_stability_constant_in_seed_notation():
    for beta, gamma in [(F(999, 1000), F(9, 10)), (F(95, 100), F(9, 10)), (F(9, 10), F(99, 100))]:
        # our API: beta1 = gamma (first moment), beta2 = beta (second moment)
        computed = st.stability_constant(beta1=float(gamma), beta2=float(beta))
        assert computed == pytest.approx(float(c_seed004(beta, gamma)), rel=1e-13)
    assert st.to_seed004(0.9, 0.999) == (0.999, 0.9)


def test_pytorch_defaults_lie_in_b_plus():
    # "(beta~, gamma~) := (0.999, 0.9) lie within B+"
    c = st.stability_constant(0.9, 0.999)
    assert c == pytest.approx(2 / 0.9 - 1 / 0.999 - 1, rel=1e-13)
    assert c > 0
    assert st.stability_region(0.9, 0.999) == "B+"


def test_beta_greater_than_gamma_is_sufficient_for_b_plus():
    # "beta > gamma is a sufficient condition for (beta, gamma) in B+"
    rng = np.random.default_rng(1)
    gamma = rng.uniform(1e-3, 1 - 1e-3, 100_000)
    beta = gamma + (1 - gamma) * rng.uniform(1e-9, 1, gamma.size)
    assert np.all(st.stability_constant(gamma, beta) > 0)
    # ... but not necessary: some beta < gamma are in B+ too
    assert st.stability_constant(0.9, 0.85) > 0


def test_region_labels_and_codes_broadcast():
    beta1 = np.array([[0.9], [0.99], [0.5]])
    beta2 = np.array([0.999, 0.95])
    labels = st.stability_region(beta1, beta2)
    codes = st.stability_region_code(beta1, beta2)
    assert labels.shape == codes.shape == (3, 2)
    assert labels[0, 0] == "B+" and labels[1, 1] == "B-"
    assert codes.dtype == np.int8
    assert set(np.unique(codes)) <= {-1, 0, 1}
    # on C = 0 (beta2 = beta1 / (2 - beta1), since 2/beta1 - 1/beta2 - 1 = 0) B0 needs a tolerance
    b1 = np.array([0.3, 0.6, 0.9])
    on_b0 = b1 / (2 - b1)
    np.testing.assert_allclose(st.stability_constant(b1, on_b0), 0, atol=1e-14)
    assert np.all(st.stability_region(b1, on_b0, atol=1e-12) == "B0")


def test_bound_factor_branches():
    n = np.array([1, 10, 100])
    # B+: 1/sqrt(C), independent of n
    c_plus = st.stability_constant(0.9, 0.999)
    np.testing.assert_allclose(st.bound_factor(0.9, 0.999, n), 1 / np.sqrt(c_plus))
    # B-: exp(n|C|/2)/sqrt(|C|)
    c_minus = st.stability_constant(0.99, 0.95)
    np.testing.assert_allclose(
        st.bound_factor(0.99, 0.95, n), np.exp(n * abs(c_minus) / 2) / np.sqrt(abs(c_minus))
    )
    # B0 (C = 0 at beta2 = beta1/(2 - beta1), up to rounding): sqrt(n)
    assert abs(st.stability_constant(0.5, 1 / 3)) < 1e-15
    np.testing.assert_allclose(st.bound_factor(0.5, 1 / 3, n, atol=1e-12), np.sqrt(n))


def test_max_update_bound_formula():
    beta1, beta2, n = 0.9, 0.999, np.array([0, 5, 500])
    expected = (
        np.sqrt(1 - beta2 ** (n + 1))
        / (1 - beta1 ** (n + 1))
        * (1 - beta1)
        / beta1
        * np.sqrt(beta2 / (1 - beta2))
        / np.sqrt(2 / beta1 - 1 / beta2 - 1)
    )
    np.testing.assert_allclose(st.max_update_bound(beta1, beta2, n), expected, rtol=1e-13)
    assert st.max_update_bound(np.array([0.9, 0.95])[:, None], 0.999, n).shape == (2, 3)


def test_growth_exponent_is_log_slope_of_bound():
    """Fig. 1b measures d log||u_n||/dn at n = 500 from n = 495 and 505 against |C|/2 in B-."""
    beta1, beta2 = st.normal_curve_through(0.9, 0.999, 64)
    minus = st.stability_constant(beta1, beta2) < 0
    assert minus.sum() > 5
    exponent = st.growth_exponent(beta1[minus], beta2[minus])
    assert np.all(exponent > 0)
    assert np.all(st.growth_exponent(beta1[~minus], beta2[~minus]) == 0)
    # the n-dependent factor B_n grows at exactly |C|/2 ...
    factor = st.bound_factor(beta1[minus], beta2[minus], np.array([[495], [505]]))
    np.testing.assert_allclose(np.diff(np.log(factor), axis=0)[0] / 10, exponent, rtol=1e-9)
    # ... and so does the whole bound once the bias corrections have died out (at n = 500 they
    # have not for beta1 near 1: 0.995^500 = 0.08)
    bound = st.max_update_bound(beta1[minus], beta2[minus], np.array([[19995], [20005]]))
    np.testing.assert_allclose(np.diff(np.log(bound), axis=0)[0] / 10, exponent, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# The bound against a discrete Adam recursion (separate transcription of seed 004 eq. 1)
# ---------------------------------------------------------------------------------------------


def adam_max_updates(grads, gamma: float, beta: float, bias_correction: bool = True):
    """|u_n| for scalar gradients: sqrt(1-beta^(n+1))/(1-gamma^(n+1)) m_n/sqrt(v_n), no eps."""
    m = v = 0.0
    out = []
    for n, g in enumerate(grads):
        m = gamma * m + (1 - gamma) * g
        v = beta * v + (1 - beta) * g * g
        correction = np.sqrt(1 - beta ** (n + 1)) / (1 - gamma ** (n + 1)) if bias_correction else 1
        out.append(abs(correction * m / np.sqrt(v)))
    return np.array(out)


def worst_case_gradients(gamma: float, beta: float, steps: int) -> np.ndarray:
    """g_k proportional to (beta/gamma)^k: Cauchy-Schwarz equality for every n at once (Adam is
    scale invariant), so this sequence maximises |m_n|/sqrt(v_n) at each step."""
    return np.exp(np.arange(steps) * (np.log(beta) - np.log(gamma)))


@pytest.mark.parametrize(("beta1", "beta2"), [(0.9, 0.999), (0.9, 0.95), (0.95, 0.99), (0.5, 0.6)])
def test_discrete_adam_respects_bound_in_b_plus(beta1, beta2):
    assert st.stability_region(beta1, beta2) == "B+"
    n = np.arange(1500)
    bound = st.max_update_bound(beta1, beta2, n)
    worst = adam_max_updates(worst_case_gradients(beta1, beta2, n.size), beta1, beta2)
    assert np.all(worst <= bound * (1 + 1e-12))
    # and the bound is tight when the moments' decay rates are close (the defaults: within 3%)
    if (beta1, beta2) == (0.9, 0.999):
        assert worst[-1] > 0.97 * bound[-1]
    rng = np.random.default_rng(2)
    random = adam_max_updates(rng.standard_normal(n.size), beta1, beta2)
    assert np.all(random <= bound)


def test_discrete_adam_grows_at_predicted_rate_in_b_minus():
    beta1, beta2 = st.normal_curve_through(0.9, 0.999, 64)
    c = st.stability_constant(beta1, beta2)
    for b1, b2 in zip(beta1[c < -0.02], beta2[c < -0.02], strict=True):
        # growth of m_n / sqrt(v_n) itself (the bias corrections add their own slope at n = 500)
        updates = adam_max_updates(worst_case_gradients(b1, b2, 506), b1, b2, False)
        slope = (np.log(updates[505]) - np.log(updates[495])) / 10
        assert slope == pytest.approx(float(st.growth_exponent(b1, b2)), rel=0.1)


# ---------------------------------------------------------------------------------------------
# Level curves and normal curves (App. E, Fig. 1c, App. O)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", [(0.9, 0.999), (0.9, 0.95)])  # Fig. 1 / Fig. 9 and App. O
def test_normal_curve_through_point(point):
    b1_0, b2_0 = point
    beta1, beta2 = st.normal_curve_through(b1_0, b2_0, 64)
    assert beta1.shape == beta2.shape == (64,)
    assert (beta1[0], beta2[0]) == pytest.approx((b1_0, b2_0), abs=1e-12)
    assert beta1[-1] == pytest.approx(0.999, abs=1e-12)
    # gamma = (k - 2 beta^3)^(1/3), k = 2 beta0^3 + gamma0^3 (seed letters)
    k = 2 * b2_0**3 + b1_0**3
    assert st.normal_curve_constant(b1_0, b2_0) == pytest.approx(k)
    np.testing.assert_allclose(2 * beta2**3 + beta1**3, k, rtol=1e-9)
    # uniform in arc length
    steps = np.hypot(np.diff(beta1), np.diff(beta2))
    np.testing.assert_allclose(steps, steps.mean(), rtol=1e-3)
    # perpendicular to the level curves: the tangent is parallel to grad C = (-2/b1^2, 1/b2^2)
    mid1, mid2 = (beta1[1:] + beta1[:-1]) / 2, (beta2[1:] + beta2[:-1]) / 2
    tangent = np.stack([np.diff(beta1), np.diff(beta2)]) / steps
    grad = np.stack([-2 / mid1**2, 1 / mid2**2])
    grad /= np.linalg.norm(grad, axis=0)
    np.testing.assert_allclose(np.abs(np.sum(tangent * grad, axis=0)), 1, atol=1e-5)
    # "C varies monotonically along a normal curve", here from B+ down into B-
    c = st.stability_constant(beta1, beta2)
    assert np.all(np.diff(c) < 0)
    assert c[0] > 0 > c[-1]


def test_normal_curve_meets_b0_once():
    crossing = st.normal_curve_zero_crossing(0.9, 0.999)
    assert crossing is not None
    b1, b2 = crossing
    assert st.stability_constant(b1, b2) == pytest.approx(0, abs=1e-10)
    assert 2 * b2**3 + b1**3 == pytest.approx(st.normal_curve_constant(0.9, 0.999), rel=1e-12)
    # the curve from a B- point towards beta1 = 1 stays in B-: no crossing
    assert st.normal_curve_zero_crossing(0.99, 0.95) is None


def test_level_curve_through_defaults():
    beta1, beta2 = st.level_curve_through(0.9, 0.999, 256)
    c0 = st.stability_constant(0.9, 0.999)
    np.testing.assert_allclose(st.stability_constant(beta1, beta2), c0, rtol=1e-9)
    assert np.all((beta1 > 0) & (beta1 < 1) & (beta2 > 0) & (beta2 < 1))
    # the curve passes (within sampling) through the point it was built from
    assert np.min(np.hypot(beta1 - 0.9, beta2 - 0.999)) < 5e-3
    with pytest.raises(ValueError):
        st.level_curve(-5.0)
