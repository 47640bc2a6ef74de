"""Seed 003 Prop. 1 / Prop. 2 / Thm 4.1 (adamnoise.theory.sign_descent) against a direct Adam
recursion and a numerical minimisation of the variational objective."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from adamnoise.theory import sign_descent as sd


def direct_adam_direction(grads: np.ndarray, beta1: float, beta2: float) -> np.ndarray:
    """Adam without bias correction and eps, coordinate by coordinate, written out plainly."""
    steps, dims = grads.shape
    out = np.zeros_like(grads)
    for j in range(dims):
        m = v = 0.0
        for k in range(steps):
            m = beta1 * m + (1 - beta1) * grads[k, j]
            v = beta2 * v + (1 - beta2) * grads[k, j] ** 2
            out[k, j] = m / np.sqrt(v)
    return out


def gradient_sequences(seed: int, steps: int = 300, dims: int = 6) -> np.ndarray:
    """Noisy gradients with a drifting mean and coordinate-dependent scale and noise level."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None]
    mean = np.sin(t / 40.0 + np.arange(dims)) * np.logspace(-2, 1, dims)
    noise = rng.standard_normal((steps, dims)) * np.linspace(0.1, 3.0, dims)
    return mean + noise


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.95, 0.999])
@pytest.mark.parametrize("seed", [0, 1])
def test_prop1_denominator_through_deviation_average(beta, seed):
    grads = gradient_sequences(seed)
    m, v = sd.adam_moments(grads, beta, beta)
    m_dev, s = sd.deviation_average(grads, beta)
    np.testing.assert_allclose(m_dev, m, rtol=1e-13, atol=1e-15)
    # v_k = m_k^2 + beta s_k, step by step and coordinate by coordinate
    np.testing.assert_allclose(sd.variance_form_denominator(m, s, beta), np.sqrt(v), rtol=1e-10)


@pytest.mark.parametrize("beta", [0.9, 0.99])
def test_mollified_signum_equals_direct_adam(beta):
    grads = gradient_sequences(3)
    direct = direct_adam_direction(grads, beta, beta)
    via_variance = sd.adam_direction_equal_betas(grads, beta)
    np.testing.assert_allclose(via_variance, direct, rtol=1e-9, atol=1e-12)
    # a Signum step mollified by the noise-to-signal ratio: same sign, never longer than 1
    assert np.all(np.sign(via_variance) == np.sign(direct))
    assert np.all(np.abs(via_variance) <= 1 + 1e-12)


def test_mollified_direction_at_zero_momentum():
    assert sd.mollified_signum_direction(0.0, 1.0) == 0.0
    assert sd.mollified_signum_direction(-2.0, 0.0) == -1.0  # no noise: pure sign
    assert sd.mollified_signum_direction(1.0, 3.0) == pytest.approx(0.5)


def test_prop2_identity_needs_equal_betas():
    grads = gradient_sequences(4, steps=200, dims=3)
    # equal betas, scale = beta: exact
    assert np.max(np.abs(sd.second_moment_gap(grads, 0.9, 0.9, 0.9))) < 1e-12
    # unequal betas: no constant scale makes the gap vanish (best least-squares scale still fails)
    m, v = sd.adam_moments(grads, 0.9, 0.999)
    zero_scale_gap = sd.second_moment_gap(grads, 0.9, 0.999, 0.0)
    unit_gap = sd.second_moment_gap(grads, 0.9, 0.999, 1.0)
    s = zero_scale_gap - unit_gap  # the deviation average itself
    best = np.sum(zero_scale_gap * s) / np.sum(s * s)
    residual = sd.second_moment_gap(grads, 0.9, 0.999, best)
    assert np.max(np.abs(residual)) > 1e-2 * np.max(v)


def test_thm41_closed_form_minimises_variational_objective():
    rng = np.random.default_rng(5)
    for beta in (0.5, 0.9, 0.99):
        rho = sd.regularisation_for_beta(beta)
        for _ in range(5):
            grad = rng.normal(scale=2.0)
            mean_prev = rng.normal()
            var_prev = rng.uniform(0.05, 3.0)
            mean, var = sd.variational_step(grad, mean_prev, var_prev, beta)

            def objective(x, grad=grad, mean_prev=mean_prev, var_prev=var_prev, rho=rho):
                return sd.variational_objective(x[0], np.exp(x[1]), grad, mean_prev, var_prev, rho)

            found = optimize.minimize(
                objective, x0=[mean_prev, np.log(var_prev)], method="Nelder-Mead",
                options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 20000},
            )  # fmt: skip
            assert found.x[0] == pytest.approx(mean, abs=1e-6)
            assert np.exp(found.x[1]) == pytest.approx(var, rel=1e-5)
            assert objective([mean, np.log(var)]) <= found.fun + 1e-12


def test_thm41_recursion_is_adams_variance():
    """Iterating the VI step from (0, 0) gives sigma2_k = beta s_k, i.e. v_k = m_k^2 + sigma2_k."""
    beta = 0.95
    grads = gradient_sequences(6, steps=150, dims=2)
    mean = np.zeros(2)
    var = np.zeros(2)
    m, v = sd.adam_moments(grads, beta, beta)
    for k, g in enumerate(grads):
        mean, var = sd.variational_step(g, mean, var, beta)
        np.testing.assert_allclose(mean, m[k], rtol=1e-12)
        np.testing.assert_allclose(mean**2 + var, v[k], rtol=1e-10)


def test_rejects_scalar_sequence():
    with pytest.raises(ValueError):
        sd.deviation_average(1.0, 0.9)
