"""Seed 003, Sec. 4 (Prop. 1, Prop. 2, Thm 4.1): Adam with beta1 = beta2 as a mollified Signum.

Take Adam without bias correction and without eps (seed 003's eq. 2), per coordinate, with one
beta for both moments:

    m_k = beta m_{k-1} + (1 - beta) g_k,     v_k = beta v_{k-1} + (1 - beta) g_k^2,
    update_k = m_k / sqrt(v_k),              m_{-1} = v_{-1} = 0.

Prop. 1: with the exponential moving average of squared deviations of the incoming gradient from
the *previous* momentum,

    s_k = beta s_{k-1} + (1 - beta) (g_k - m_{k-1})^2,    s_{-1} = 0,

the second moment is exactly v_k = m_k^2 + beta s_k, so

    update_k = m_k / sqrt(m_k^2 + beta s_k) = sign(m_k) / sqrt(1 + beta s_k / m_k^2):

Signum's sign(m_k), mollified by the noise-to-signal ratio. (Expand both sides: the cross terms
cancel only because both averages use the same beta; for beta1 != beta2 no such identity exists,
Prop. 2, which ``second_moment_gap`` lets one check numerically.)

Thm 4.1: (m_k, sigma2_k) with sigma2_k = beta s_k is the exact minimiser of the regularised
Gaussian maximum-likelihood problem

    min_{m, sigma2}  -log N(g_k; m, sigma2) + (1/rho) KL(N(m_{k-1}, sigma2_{k-1}) || N(m, sigma2)),

with beta = 1/(1 + rho): setting both partial derivatives to zero gives m = beta m_{k-1} +
(1 - beta) g_k and sigma2 = beta sigma2_{k-1} + beta (1 - beta) (g_k - m_{k-1})^2. (Seed 003's text
as we have it lost the displayed formulas; the direction of the KL and the parameterisation of
its weight here are the ones for which this closed form holds, which is what the theorem states.)
"""

from __future__ import annotations

import numpy as np


def _as_steps_first(grads) -> np.ndarray:
    grads = np.asarray(grads, dtype=float)
    if grads.ndim == 0:
        raise ValueError("grads must have a leading step axis")
    return grads


def _moving_average(values: np.ndarray, beta: float) -> np.ndarray:
    """a_k = beta a_{k-1} + (1 - beta) x_k from a_{-1} = 0, step axis first."""
    averages = np.empty_like(values)
    average = np.zeros_like(values[0])
    for k, x in enumerate(values):
        average = beta * average + (1 - beta) * x
        averages[k] = average
    return averages


def _previous(averages: np.ndarray) -> np.ndarray:
    """a_{k-1} at step k (a_{-1} = 0)."""
    return np.concatenate([np.zeros_like(averages[:1]), averages[:-1]])


def adam_moments(grads, beta1: float, beta2: float):
    """The plain Adam moving averages (no bias correction), step axis first: m_k and v_k."""
    grads = _as_steps_first(grads)
    return _moving_average(grads, beta1), _moving_average(grads * grads, beta2)


def deviation_average(grads, beta: float):
    """s_k = beta s_{k-1} + (1 - beta)(g_k - m_{k-1})^2 of Prop. 1, with m the momentum of the same
    beta. Returns (m, s), step axis first."""
    grads = _as_steps_first(grads)
    m = _moving_average(grads, beta)
    return m, _moving_average((grads - _previous(m)) ** 2, beta)


def variance_form_denominator(m, s, beta: float):
    """sqrt(m^2 + beta s): Adam's denominator sqrt(v) through the deviation average (Prop. 1)."""
    m = np.asarray(m, dtype=float)
    return np.sqrt(m * m + beta * np.asarray(s, dtype=float))


def mollified_signum_direction(m, sigma2):
    """sign(m) / sqrt(1 + sigma2 / m^2) (seed 003 eq. 9); sigma2 = beta s, the variance estimate.

    Equal to m / sqrt(m^2 + sigma2); written in the sign form to show the Signum it mollifies.
    Where m = 0 the direction is 0.
    """
    m = np.asarray(m, dtype=float)
    sigma2 = np.asarray(sigma2, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        direction = np.sign(m) / np.sqrt(1 + sigma2 / (m * m))
    return np.where(m == 0, 0.0, direction)


def adam_direction_equal_betas(grads, beta: float):
    """Adam's direction with beta1 = beta2 = beta via Prop. 1 / Thm 4.1 (step axis first)."""
    m, s = deviation_average(grads, beta)
    return mollified_signum_direction(m, beta * s)


def second_moment_gap(grads, beta1: float, beta2: float, scale: float):
    """v_k - (m_k^2 + scale * s_k) for Adam with (beta1, beta2), s averaged with beta2 around the
    beta1-momentum. Zero for every gradient sequence iff beta1 = beta2 and scale = beta (Prop. 2).
    """
    grads = _as_steps_first(grads)
    m, v = adam_moments(grads, beta1, beta2)
    s = _moving_average((grads - _previous(m)) ** 2, beta2)
    return v - (m * m + scale * s)


# ---------------------------------------------------------------------------------------------
# Thm 4.1: one step of online Gaussian variational inference
# ---------------------------------------------------------------------------------------------


def regularisation_for_beta(beta):
    """rho = (1 - beta)/beta, the KL weight 1/rho for which the VI step averages with beta."""
    beta = np.asarray(beta, dtype=float)
    return (1 - beta) / beta


def variational_objective(mean, var, grad, mean_prev, var_prev, rho):
    """-log N(grad; mean, var) + KL(N(mean_prev, var_prev) || N(mean, var)) / rho (Thm 4.1)."""
    neg_log_likelihood = 0.5 * np.log(2 * np.pi * var) + (grad - mean) ** 2 / (2 * var)
    kl = 0.5 * (np.log(var / var_prev) + (var_prev + (mean_prev - mean) ** 2) / var - 1)
    return neg_log_likelihood + kl / rho


def variational_step(grad, mean_prev, var_prev, beta):
    """The closed-form minimiser of ``variational_objective`` with rho = (1 - beta)/beta (Thm 4.1):

    mean = beta mean_prev + (1 - beta) grad,
    var = beta var_prev + beta (1 - beta) (grad - mean_prev)^2.
    """
    grad = np.asarray(grad, dtype=float)
    mean = beta * mean_prev + (1 - beta) * grad
    var = beta * var_prev + beta * (1 - beta) * (grad - mean_prev) ** 2
    return mean, var
