"""Seed 000 theory (adamnoise.theory.implicit_bias) against the paper's printed numbers and
against independent transcriptions of its formulas."""

from __future__ import annotations

import math
from fractions import Fraction as F

import numpy as np
import pytest

from adamnoise.theory import implicit_bias as ib
from adamnoise.theory import lemmas as lm
from adamnoise.theory import rule_of_thumb as rc
from adamnoise.theory.taylor import Taylor2

# ---------------------------------------------------------------------------------------------
# Exact rational arithmetic: the package's App. A.2 against an independent transcription of
# Prop. A.6
# ---------------------------------------------------------------------------------------------


def c_package(b1: F, b2: F) -> dict[str, F]:
    """C1..C5 as the package writes them (App. A.2), evaluated exactly in Fractions."""
    constants = {f"c{i}": getattr(ib, f"c{i}_expression")(b1, b2) for i in range(1, 6)}
    assert all(isinstance(c, F) for c in constants.values()), "a float in an expression"
    return constants


def c_prop_a6(b: F, r: F) -> dict[str, F]:
    """C1..C5 from the limits of Prop. A.6 (L/R minus MP/R^3), beta = beta1, rho = beta2.

    This is a second, independent route to the constants: App. A.2 is supposed to be the
    difference of the coefficients printed in Prop. A.6 (eq. 11 and the L/R expansion).
    """
    lr_c1 = b * (1 - 2 * r) / ((1 - b) * (1 + r))
    mp_c1 = -(
        4 * b**2 * r**5 + 2 * b * r**5 + 3 * b**2 * r**4 - 6 * b * r**4 - 3 * r**4
        - 5 * b**2 * r**3 - 10 * b * r**3 + 3 * r**3 + 3 * b**2 * r**2 + 6 * b * r**2
        + 9 * r**2 + b**2 * r - 4 * b * r - 3 * r
    ) / ((1 - r) * (1 + r) ** 2 * (1 - b * r) ** 2)  # fmt: skip
    lr_c2 = b * (b * r**2 - b * r + b + r**2 - 2 * r) / ((1 - b) * (1 + r) * (1 - b * r))
    mp_c2 = r * (b * r**2 - b * r + b + r**2 - 2 * r) / ((1 + r) * (1 - r) * (1 - b * r))
    lr_c3 = -b * r * (1 - b) * (1 - r) / (1 - b * r) ** 2
    mp_c3 = (
        3 * b**2 * r**5 - b**2 * r**4 + 3 * b**2 * r**3 - b**2 * r + b * r**5 - 8 * b * r**4
        - 2 * b * r**2 + b * r + 4 * r**3 - r**2 + r
    ) / ((1 - r) * (1 + r) ** 2 * (1 - b * r) ** 2)  # fmt: skip
    lr_c4 = b * (r - b) / ((1 + b) * (1 - b * r))
    mp_c4 = r * (r - b) / ((1 + r) * (1 - b * r))
    lr_c5 = -b * r * (r - b) * (1 - r) / ((1 + r) * (1 - b * r) ** 2)
    mp_c5 = (
        r * (r - b) * (b**2 * (r**2 - 3 * r - 1) + b * (3 * r**2 - r + 2) + 1 - 2 * r)
        / ((1 + b) * (1 + r) ** 2 * (1 - b * r) ** 2)
    )  # fmt: skip
    return {
        "c1": lr_c1 - mp_c1,
        "c2": lr_c2 - mp_c2,
        "c3": lr_c3 - mp_c3,
        "c4": lr_c4 - mp_c4,
        "c5": lr_c5 - mp_c5,
    }


RATIONAL_POINTS = [
    (F(9, 10), F(999, 1000)),
    (F(99, 100), F(95, 100)),
    (F(1, 2), F(3, 10)),
    (F(9, 10), F(9, 10) + F(1, 7)),
    (F(97, 100), F(9999, 10000)),
]


@pytest.mark.parametrize(("b1", "b2"), RATIONAL_POINTS)
def test_app_a2_constants_equal_prop_a6_limits(b1, b2):
    """App. A.2 (as the package writes it) and Prop. A.6 (typed again below) are two printings
    of the same constants: exactly equal in rational arithmetic."""
    assert c_package(b1, b2) == c_prop_a6(b1, b2)


@pytest.mark.parametrize(("b1", "b2"), RATIONAL_POINTS)
@pytest.mark.parametrize("name", ["c1", "c2", "c3", "c4", "c5"])
def test_float_constants_match_exact_values(b1, b2, name):
    exact = c_package(b1, b2)[name]
    computed = getattr(ib, name)(float(b1), float(b2))
    assert computed == pytest.approx(float(exact), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize(("b1", "b2"), RATIONAL_POINTS)
@pytest.mark.parametrize("lam", [F(0), F(1, 2), F(1), F(3)])
def test_c_total_matches_exact_transcription(b1, b2, lam):
    constants = c_package(b1, b2)
    exact = b1 / (1 - b1) - b2 / (1 - b2) + (constants["c1"] + constants["c2"]) * lam
    assert ib.c_total(float(b1), float(b2), float(lam)) == pytest.approx(float(exact), rel=1e-10)


def test_c_total_hand_values():
    # at lambda = 0 only the full-batch part remains: 9 - 999 for the PyTorch defaults
    assert ib.c_total(0.9, 0.999, 0.0) == pytest.approx(9.0 - 999.0, rel=1e-12)
    # on the diagonal FB = C2 = C4 = 0 and C_total = lambda C1(beta, beta)
    beta = np.linspace(0.5, 0.999, 11)
    assert np.all(ib.c2(beta, beta) == 0)
    assert np.all(ib.c4(beta, beta) == 0)
    np.testing.assert_allclose(ib.c_total(beta, beta, 2.5), 2.5 * ib.c1(beta, beta), rtol=1e-12)


def test_broadcasting_shapes():
    b1 = np.linspace(0.9, 0.99, 3)
    b2 = np.linspace(0.9, 0.999, 4)
    lam = np.array([0.1, 0.5, 1.0, 2.0, 5.0])
    out = ib.c_total(b1[:, None, None], b2[None, :, None], lam[None, None, :])
    assert out.shape == (3, 4, 5)
    assert out[1, 2, 3] == pytest.approx(ib.c_total(b1[1], b2[2], lam[3]), rel=1e-14)
    for fn in (ib.c1, ib.c2, ib.c3, ib.c4, ib.c5, ib.full_batch_coefficient):
        assert fn(b1[:, None], b2[None, :]).shape == (3, 4)
    assert ib.noise_ratio(np.array([1000, 2000])[:, None], np.array([1, 10, 100]), 50.0).shape == (
        2,
        3,
    )
    assert ib.flip_batch_size(1000, np.array([10.0, 100.0]), np.array([[0.5], [1.0]])).shape == (
        2,
        2,
    )


# ---------------------------------------------------------------------------------------------
# Eq. (8)
# ---------------------------------------------------------------------------------------------


def test_noise_ratio_endpoints_and_formula():
    n, s = 16384, 300.0
    assert ib.noise_ratio(n, n, s) == 0.0  # full batch: no noise
    assert ib.noise_ratio(n, 1, s) == pytest.approx(s)  # one sample per step
    m, b = 64, 256  # N = mb: lambda = (m - 1)/(mb - 1) B_simple
    assert ib.noise_ratio(m * b, b, s) == pytest.approx((m - 1) / (m * b - 1) * s, rel=1e-14)


def test_flip_batch_size_inverts_noise_ratio():
    rng = np.random.default_rng(0)
    n = rng.integers(1000, 10**6, size=50).astype(float)
    s = rng.uniform(1.0, 1000.0, size=50)
    t = rng.uniform(0.05, 5.0, size=50)
    b = ib.flip_batch_size(n, s, t)
    np.testing.assert_allclose(ib.noise_ratio(n, b, s), t, rtol=1e-12)
    # the paper's closed forms for the two reversals
    np.testing.assert_allclose(ib.flip_batch_size(n, s, 0.5), 2 * n * s / (n + 2 * s - 1))
    np.testing.assert_allclose(ib.flip_batch_size(n, s, 1.0), n * s / (n + s - 1))


# ---------------------------------------------------------------------------------------------
# Exact derivatives
# ---------------------------------------------------------------------------------------------


def test_taylor_derivatives_of_a_rational_function():
    x = np.array([0.1, 0.9, 0.999])
    t = Taylor2.variable(x)
    f = 3 / (1 - t) ** 2 + t * t / (1 + t)
    np.testing.assert_allclose(f.value, 3 / (1 - x) ** 2 + x**2 / (1 + x), rtol=1e-13)
    np.testing.assert_allclose(f.d1, 6 / (1 - x) ** 3 + 1 - 1 / (1 + x) ** 2, rtol=1e-12)
    np.testing.assert_allclose(f.d2, 18 / (1 - x) ** 4 + 2 / (1 + x) ** 3, rtol=1e-12)
    with pytest.raises(ValueError):
        t**-1


@pytest.mark.parametrize(("sweep", "fixed"), [("beta2", 0.9), ("beta2", 0.99), ("beta1", 0.999)])
def test_sweep_derivatives_match_finite_differences(sweep, fixed):
    x = np.array([0.91, 0.95, 0.99, 0.995])
    lam = 0.7
    h = 1e-6

    def f(t):
        return ib.c_total(fixed, t, lam) if sweep == "beta2" else ib.c_total(t, fixed, lam)

    central = (f(x + h) - f(x - h)) / (2 * h)
    second = (f(x + h) - 2 * f(x) + f(x - h)) / h**2
    np.testing.assert_allclose(ib.c_total_derivative(sweep, fixed, x, lam), central, rtol=1e-6)
    np.testing.assert_allclose(ib.c_total_derivative(sweep, fixed, x, lam, 2), second, rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# Lemmas 3.4 - 3.6: thresholds computed vs printed
# ---------------------------------------------------------------------------------------------


def round_conservatively(value: float, printed: float, side: str) -> float:
    """Round ``value`` to the printed number of decimals in the safe direction of the claim."""
    decimals = len(repr(printed).split(".")[1])
    scale = 10**decimals
    rounded = math.ceil(value * scale) if side == "above" else math.floor(value * scale)
    return rounded / scale


@pytest.fixture(scope="module")
def thresholds():
    return {key: lm.monotonicity_thresholds(*key) for key in ib_sweeps()}


def ib_sweeps():
    return [("beta2", 0.9), ("beta2", 0.99), ("beta1", 0.999)]


@pytest.mark.parametrize(
    ("key", "printed_inc", "inc_side", "printed_dec", "dec_side"),
    [
        (("beta2", 0.9), 0.5082, "above", 0.494, "below"),  # Lemma 3.4
        (("beta2", 0.99), 2.685, "above", 0.499, "below"),  # Lemma 3.5
        (("beta1", 0.999), 0.995, "below", 1.002, "above"),  # Lemma 3.6
    ],
)
def test_lemma_thresholds_round_to_printed(
    thresholds, key, printed_inc, inc_side, printed_dec, dec_side
):
    t = thresholds[key]
    assert t.increasing_side == inc_side
    assert t.decreasing_side == dec_side
    # the paper rounds outward (the claim stays true): our exact values round to its numbers
    assert round_conservatively(t.lambda_increasing, printed_inc, inc_side) == printed_inc
    assert round_conservatively(t.lambda_decreasing, printed_dec, dec_side) == printed_dec


def test_lemma_3_5_convex_range(thresholds):
    t = thresholds[("beta2", 0.99)]
    # printed: strictly convex with an interior minimiser for 0.5 < lambda < 2.684
    assert t.lambda_convex == pytest.approx(0.5, abs=1e-9)
    assert round_conservatively(t.lambda_increasing, 2.684, "below") == 2.684
    x = ib.sweep_grid(0.9)
    for lam in (0.5001, 1.0, 2.0, 2.684):
        assert np.all(ib.c_total_derivative("beta2", 0.99, x, lam, order=2) > 0)
        argmin = lm.sweep_minimiser("beta2", 0.99, lam)
        assert 0.9 < argmin < 1.0
        assert ib.c_total_derivative("beta2", 0.99, argmin, lam) == pytest.approx(0, abs=1e-6)
        values = ib.c_total(0.99, x, lam)
        assert ib.c_total(0.99, argmin, lam) <= values.min() + 1e-9
    # outside the range: monotone, no interior minimiser
    assert np.isnan(lm.sweep_minimiser("beta2", 0.99, 2.69))
    assert np.isnan(lm.sweep_minimiser("beta2", 0.99, 0.49))


@pytest.mark.parametrize("key", ib_sweeps())
def test_thresholds_agree_with_direct_sign_check(thresholds, key):
    """Just beyond each threshold the derivative has one sign on the whole grid; inside, not."""
    t = thresholds[key]
    step = 1e-5

    def beyond(value, side):
        return value + step if side == "above" else value - step

    def inside(value, side):
        return value - step if side == "above" else value + step

    assert lm.is_strictly_monotone(*key, beyond(t.lambda_increasing, t.increasing_side)) == 1
    assert lm.is_strictly_monotone(*key, inside(t.lambda_increasing, t.increasing_side)) != 1
    assert lm.is_strictly_monotone(*key, beyond(t.lambda_decreasing, t.decreasing_side)) == -1
    assert lm.is_strictly_monotone(*key, inside(t.lambda_decreasing, t.decreasing_side)) != -1


def test_lemma_3_7_diagonal_increasing():
    check = lm.lemma_3_7()
    assert check.holds
    beta = np.linspace(0.5, 0.9999, 2001)
    assert np.all(lm.diagonal_c1_derivative(beta) > 0)
    # C_total(beta, beta, lam) = lam C1(beta, beta) increases for any lam > 0
    for lam in (1e-3, 0.5, 7.0):
        assert np.all(np.diff(ib.c_total(beta, beta, lam)) > 0)
    # d/dbeta C1(beta, beta) by finite differences
    h = 1e-6
    fd = (ib.c1(beta[:50] + h, beta[:50] + h) - ib.c1(beta[:50] - h, beta[:50] - h)) / (2 * h)
    np.testing.assert_allclose(lm.diagonal_c1_derivative(beta[:50]), fd, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Lemma A.1
# ---------------------------------------------------------------------------------------------


def test_lemma_a1_bounds():
    checks = lm.lemma_a1()
    assert [c.printed_bound for c in checks] == [3e-4, 4e-3, 1e-3, 6e-3, 6e-5, 5e-4]
    for check in checks:
        assert check.holds, check
        # the printed bound is a round number just above the sup, not a loose one
        assert check.computed_sup > 0.4 * check.printed_bound, check
        # brute force on a plain uniform grid cannot exceed the refined sup
        x = np.linspace(0.9, 1 - 1e-7, 200001)
        num = {"|C4/C1|": ib.c4, "|C5/C1|": ib.c5, "|C4/C2|": ib.c4, "|C5/C2|": ib.c5}
        den = ib.c1 if check.ratio.endswith("C1|") else ib.c2
        with np.errstate(invalid="ignore", divide="ignore"):
            if check.sweep == "beta2":
                ratio = np.abs(num[check.ratio](check.fixed, x) / den(check.fixed, x))
            else:
                ratio = np.abs(num[check.ratio](x, check.fixed) / den(x, check.fixed))
        brute = np.nanmax(ratio)
        assert brute <= check.computed_sup * (1 + 1e-9)
        assert brute == pytest.approx(check.computed_sup, rel=1e-4)


def test_lemma_table_rows_consistent():
    rows = lm.lemma_table()
    assert [r.lemma for r in rows] == ["3.4", "3.5", "3.6", "3.7"] + ["A.1"] * 6
    assert all(r.consistent for r in rows)
    as_dict = rows[0].as_dict()
    for key in ("lemma", "fixed", "lambda_increasing", "lambda_decreasing"):
        assert key in as_dict
    assert rows[-1].as_dict()["lambda_increasing"] is None  # NaN -> None for JSON


# ---------------------------------------------------------------------------------------------
# Sec. 2.1: SGD with momentum
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("beta", "n_steps"), [(0.5, 60), (0.8, 160)])
def test_sgdm_coefficients_match_direct_sum_of_eq4(beta, n_steps):
    weights = ib.sgdm_correction_weights(beta, n_steps)
    # full-batch: every pair contributes grad^2 L grad L = grad ||grad L||^2 / 2
    assert weights.sum() == pytest.approx(beta / (1 - beta) ** 3, rel=1e-9)
    # noise: only same-batch pairs survive E_pi
    assert np.trace(weights) == pytest.approx(beta / ((1 - beta) ** 2 * (1 + beta)), rel=1e-9)
    # and the modified-loss coefficients of Sec. 2.1 are these sums times (1 - beta)/2
    assert ib.sgdm_memory_coefficient(beta) == pytest.approx((1 - beta) * weights.sum() / 2)
    assert ib.sgdm_noise_coefficient(beta) == pytest.approx((1 - beta) * np.trace(weights) / 2)


def test_sgdm_modified_loss():
    beta, lr = 0.9, 0.01
    value = ib.sgdm_modified_loss(2.0, 4.0, 30.0, 10, beta, lr)
    expected = 2.0 + lr * 0.9 / (2 * 0.01) * 4.0 + lr * 0.9 / (2 * 0.1 * 1.9) * 3.0
    assert value == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Sec. 3.3: rule of thumb
# ---------------------------------------------------------------------------------------------


def test_recommend_regimes():
    n, s = 100_000, 300.0
    b_one = ib.flip_batch_size(n, s, 1.0)
    b_half = ib.flip_batch_size(n, s, 0.5)
    assert b_one == pytest.approx(n * s / (n + s - 1))
    small = rc.recommend(n, 64, s)
    assert small.regime == "small batch"
    assert (small.beta1, small.beta2) == (0.9, 0.999)
    assert small.noise_ratio > 1
    assert small.batch_size_lambda_1 == pytest.approx(b_one)
    assert small.batch_size_lambda_half == pytest.approx(b_half)
    large = rc.recommend(n, 4096, s)
    assert large.regime == "large batch"
    assert large.beta1 == large.beta2 == 0.999
    middle = rc.recommend(n, 400, s)
    assert middle.regime == "transition"
    assert 0.5 <= middle.noise_ratio <= 1
    assert middle.beta2 == 0.999 and 0.9 <= middle.beta1 <= 0.999
    for rec in (small, large, middle):
        assert "lambda" in rec.reasoning and "\n" not in rec.reasoning


@pytest.mark.parametrize(
    ("n", "b", "s", "message"),
    [(1, 1, 10.0, "n_samples"), (100, 0, 10.0, "batch_size"), (100, 101, 10.0, "exceed"),
     (100, 10, 0.0, "b_simple"), (100, 10, -1.0, "b_simple")],
)  # fmt: skip
def test_recommend_rejects_bad_input(n, b, s, message):
    with pytest.raises(ValueError, match=message):
        rc.recommend(n, b, s)
