"""Seed 000: how mini-batch noise changes the implicit bias of Adam's memory — the formulas.

Everything here follows "The Effect of Mini-Batch Noise on the Implicit Bias of Adam" (seed 000):

* the constants C1..C5 of App. A.2 and the aggregated coefficient C_total of eq. (7),
* the noise ratio lambda = (N/b - 1)/(N - 1) * B_simple of eq. (8) and its inverse (the batch
  size at which lambda crosses a threshold),
* exact derivatives of C_total along a sweep of one beta (Taylor series, ``taylor.Taylor2``),
* the two implicit-regularisation coefficients of SGD with momentum (Sec. 2.1).

The lemmas built on them are in ``theory.lemmas``, the rule of thumb of Sec. 3.3 in
``theory.rule_of_thumb``.
"""

from __future__ import annotations

import numpy as np

from adamnoise.theory.taylor import Taylor2

# ---------------------------------------------------------------------------------------------
# App. A.2: the constants C1..C5 and eq. (7)
#
# The underscored versions use arithmetic operators only, so that they also evaluate on Taylor2
# series (exact derivatives); the public versions convert and broadcast their arguments.
# ---------------------------------------------------------------------------------------------


def _full_batch(b1, b2):
    """FB of Prop. 3.3 divided by grad_j ||g||_1: beta1/(1-beta1) - beta2/(1-beta2)."""
    return b1 / (1 - b1) - b2 / (1 - b2)


# C1...C5 of App. A.2 as expressions of any number type (floats, arrays, Fractions, the dual
# numbers of lemmas.py); c1...c5 below take array-likes and return float arrays


def c1_expression(b1, b2):
    """C1(beta1, beta2) of App. A.2 (coefficient of MBN1, the noise-weighted l1-sharpness term)."""
    return (
        (1 - b1**2) / (b1 * (1 - b1 * b2))
        + (1 - b1) ** 2 / (b1 * (1 - b1 * b2) ** 2)
        + 3 * (1 + b1) / (2 * (1 - b1) * (1 + b2))
        - 2 / (b1 * (1 - b1))
        + 3 / (2 - 2 * b2)
        + 3 / (1 + b2) ** 2
        - 2
    )


def c2_expression(b1, b2):
    """C2(beta1, beta2) of App. A.2 (coefficient of MBN2); zero on the diagonal beta1 = beta2."""
    return (
        (b1 - b2)
        * (b1 * b2**2 - b1 * b2 + b1 + b2**2 - 2 * b2)
        / ((1 - b1) * (1 - b2) * (1 + b2) * (1 - b1 * b2))
    )


def c3_expression(b1, b2):
    """C3(beta1, beta2) of App. A.2 (coefficient of MBN3, argued neutral in App. A.3.1)."""
    numerator = (
        -2 * b1**2 * b2**5
        + (b1**2 + 8 * b1) * b2**4
        + (-5 * b1**2 + 2 * b1 - 4) * b2**3
        + (2 * b1**2 - 2 * b1 - 1) * b2
        - 2 * b1 * b2**5
        + (2 * b1 + 1) * b2**2
    )
    return numerator / ((1 - b2) * (1 + b2) ** 2 * (1 - b1 * b2) ** 2)


def c4_expression(b1, b2):
    """C4(beta1, beta2) of App. A.2 (coefficient of MBN4, small by Lemma A.1)."""
    return -((b1 - b2) ** 2) / ((1 + b1) * (1 + b2) * (1 - b1 * b2))


def c5_expression(b1, b2):
    """C5(beta1, beta2) of App. A.2 (coefficient of MBN5, small by Lemma A.1)."""
    return b2 * (b2 - b1) * (2 * b2 - 3 * b1 - 1) / ((1 + b1) * (1 + b2) ** 2 * (1 - b1 * b2))


def _noise_slope(b1, b2):
    """S = C1 + C2: the coefficient of lambda in C_total after the B_simple replacement."""
    return c1_expression(b1, b2) + c2_expression(b1, b2)


def _c_total(b1, b2, lam):
    return _full_batch(b1, b2) + _noise_slope(b1, b2) * lam


def _as_float_arrays(*arrays):
    return [np.asarray(a, dtype=float) for a in arrays]


def _on_float_arrays(expression, name: str):
    """``expression(beta1, beta2)`` for array-likes: both become float arrays and broadcast."""

    def on_float_arrays(beta1, beta2):
        return expression(*_as_float_arrays(beta1, beta2))

    on_float_arrays.__name__ = on_float_arrays.__qualname__ = name
    on_float_arrays.__doc__ = expression.__doc__
    return on_float_arrays


full_batch_coefficient = _on_float_arrays(_full_batch, "full_batch_coefficient")
c1 = _on_float_arrays(c1_expression, "c1")
c2 = _on_float_arrays(c2_expression, "c2")
c3 = _on_float_arrays(c3_expression, "c3")
c4 = _on_float_arrays(c4_expression, "c4")
c5 = _on_float_arrays(c5_expression, "c5")


def c_total(beta1, beta2, lam):
    """Eq. (7): C_total(beta1, beta2, lambda) = beta1/(1-beta1) - beta2/(1-beta2) + (C1+C2) lambda.

    Positive values mean implicit regularisation (penalised approximate sharpness), negative
    values anti-regularisation. ``lam`` is the noise ratio of eq. (8), see ``noise_ratio``.
    All arguments broadcast against each other.
    """
    return _c_total(*_as_float_arrays(beta1, beta2, lam))


# ---------------------------------------------------------------------------------------------
# Eq. (8): the noise ratio and the batch size at which it crosses a threshold
# ---------------------------------------------------------------------------------------------


def noise_ratio(n_samples, batch_size, b_simple):
    """lambda = (N/b - 1)/(N - 1) * B_simple (eq. 8), i.e. (m - 1)/(mb - 1) * B_simple with N = mb.

    ``b_simple`` and ``batch_size`` must be in the same unit (samples / sequences). lambda = 0 at
    full batch (b = N) and lambda = B_simple at b = 1.
    """
    n, b, s = _as_float_arrays(n_samples, batch_size, b_simple)
    return (n / b - 1) / (n - 1) * s


def flip_batch_size(n_samples, b_simple, threshold=0.5):
    """The batch size b at which ``noise_ratio(N, b, B_simple)`` equals ``threshold``.

    Solving (N/b - 1) B / (N - 1) = t gives b = N B / (B + t (N - 1)); threshold 0.5 gives the
    paper's 2 N B / (N + 2 B - 1) (the beta2 reversal of Lemma 3.4) and threshold 1 gives
    N B / (N + B - 1) (the beta1 reversal of Lemma 3.6). Smaller batches have larger lambda.
    """
    n, s, t = _as_float_arrays(n_samples, b_simple, threshold)
    return n * s / (s + t * (n - 1))


# ---------------------------------------------------------------------------------------------
# Sweeps: derivatives along beta1 or beta2 with the other beta fixed
# ---------------------------------------------------------------------------------------------

SWEEPS = ("beta1", "beta2")
# stand-in for the open end of [lo, 1): see the module docstring
OPEN_END = 1.0 - 1e-10


def _sweep_series(formula, sweep: str, fixed: float, x):
    """Evaluate ``formula(b1, b2)`` on Taylor series in the swept variable at points x."""
    variable = Taylor2.variable(x)
    if sweep == "beta2":
        return formula(float(fixed), variable)
    if sweep == "beta1":
        return formula(variable, float(fixed))
    raise ValueError(f"sweep must be one of {SWEEPS}, got {sweep!r}")


def sweep_derivatives(sweep: str, fixed: float, x):
    """d/dx and d^2/dx^2 of FB and S = C1 + C2 along a sweep, exact up to rounding.

    Returns a dict with keys ``fb_d1``, ``fb_d2``, ``s_d1``, ``s_d2`` (arrays shaped like x); the
    derivatives of C_total are then ``fb_d1 + lam * s_d1`` and ``fb_d2 + lam * s_d2``.
    """
    fb = _sweep_series(_full_batch, sweep, fixed, x)
    s = _sweep_series(_noise_slope, sweep, fixed, x)
    return {"fb_d1": fb.d1, "fb_d2": fb.d2, "s_d1": s.d1, "s_d2": s.d2}


def c_total_derivative(sweep: str, fixed: float, x, lam, order: int = 1):
    """The first or second derivative of C_total along a sweep (broadcasts x against lam)."""
    d = sweep_derivatives(sweep, fixed, np.asarray(x, dtype=float))
    lam = np.asarray(lam, dtype=float)
    if order == 1:
        return d["fb_d1"] + lam * d["s_d1"]
    if order == 2:
        return d["fb_d2"] + lam * d["s_d2"]
    raise ValueError("order must be 1 or 2")


def sweep_grid(
    lo: float = 0.9, hi: float = OPEN_END, n_uniform: int = 4001, n_geometric: int = 801
):
    """Dense points of [lo, hi]: uniform, plus geometric ones accumulating at hi (beta -> 1)."""
    uniform = np.linspace(lo, hi, n_uniform)
    gap = hi - lo
    geometric = hi - gap * np.geomspace(1e-2, 1e-12, n_geometric)
    return np.unique(np.concatenate([uniform, geometric[geometric > lo], [lo, hi]]))


# ---------------------------------------------------------------------------------------------
# Sec. 2.1: SGD with momentum
# ---------------------------------------------------------------------------------------------


def sgdm_memory_coefficient(beta):
    """beta / (2 (1 - beta)^2): implicit regularisation by memory, multiplies eta ||grad L||^2.

    Sec. 2.1: E Main + eta E Corr = 1/(1-beta) grad(L + eta beta/(2(1-beta)^2) ||grad L||^2
    + eta beta/(2(1-beta)(1+beta)) tr(Sigma)/b), up to o_n(1). Present already at full batch.
    """
    beta = np.asarray(beta, dtype=float)
    return beta / (2 * (1 - beta) ** 2)


def sgdm_noise_coefficient(beta):
    """beta / (2 (1 - beta)(1 + beta)): implicit regularisation by stochasticity, multiplies
    eta tr(Sigma) / b (Sec. 2.1)."""
    beta = np.asarray(beta, dtype=float)
    return beta / (2 * (1 - beta) * (1 + beta))


def sgdm_modified_loss(loss, grad_sq_norm, noise_trace, batch_size, beta, lr):
    """The modified loss of Sec. 2.1 whose gradient (times 1/(1-beta)) SGD with momentum follows."""
    return (
        np.asarray(loss, dtype=float)
        + lr * sgdm_memory_coefficient(beta) * np.asarray(grad_sq_norm, dtype=float)
        + lr * sgdm_noise_coefficient(beta) * np.asarray(noise_trace, dtype=float) / batch_size
    )


def sgdm_correction_weights(beta: float, n_steps: int) -> np.ndarray:
    """Pair weights of Corr_t in eq. (4): W[a, c] multiplies grad^2 L_a grad L_c, with t = n_steps.

    Corr_t = beta sum_{b=0}^{t-1} beta^b sum_{l'=1}^{b+1} sum_{b'=0}^{t-l'} beta^{b'}
    grad^2 L_{t-1-b} grad L_{t-l'-b'}. Summed directly (no closed forms), so that the two
    coefficients above can be checked against it: after E_pi only same-batch pairs (a = c) keep
    noise, and as t -> infinity sum(W) -> beta/(1-beta)^3 (full-batch part) and
    trace(W) -> beta/((1-beta)^2 (1+beta)) (noise part).
    """
    t = int(n_steps)
    weights = np.zeros((t + 1, t + 1))
    for b in range(t):
        for l_prime in range(1, b + 2):
            b_prime = np.arange(0, t - l_prime + 1)
            weights[t - 1 - b, t - l_prime - b_prime] += beta ** (1 + b + b_prime)
    return weights
