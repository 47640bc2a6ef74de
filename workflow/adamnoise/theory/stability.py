"""Seed 004, Sec. 3.1 and App. E: the continuous-time stability region of Adam's (beta1, beta2).

Notation. Seed 004 ("A Continuous-Time Analysis of Adaptive Optimization and Normalization")
writes beta for Adam's *second*-moment parameter and gamma for the *first*-moment one:

    seed 004 (beta, gamma)  ==  our (beta2, beta1).

Every function here takes ``beta1, beta2`` in the PyTorch sense (first moment, second moment)
and translates. With that mapping, eq. (5) and its constant read

    C = (2 beta2 (1 - beta1) - beta1 (1 - beta2)) / (beta1 beta2) = 2/beta1 - 1/beta2 - 1,

    ||u_n||_inf <= sqrt(1 - beta2^(n+1)) / (1 - beta1^(n+1)) * (1 - beta1)/beta1
                   * sqrt(beta2/(1 - beta2)) * B_n,

with B_n = 1/sqrt(C) in B+ (C > 0), sqrt(n) in B0 (C = 0) and exp(n|C|/2)/sqrt(|C|) in B- (C < 0).
In B- the bound grows like exp(n |C| / 2): the predicted growth exponent of the max-update.

Level curves {C = c} and the normal curves crossing them (App. E): in seed-004 coordinates the
normal curve through (beta0, gamma0) is gamma = (k - 2 beta^3)^(1/3) with k = 2 beta0^3 + gamma0^3,
i.e. beta1 = (k - 2 beta2^3)^(1/3) with k = 2 beta2_0^3 + beta1_0^3.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

# integer codes of the regions (netCDF-friendly); labels as printed in seed 004
REGION_CODES = {"B+": 1, "B0": 0, "B-": -1}
REGION_LABELS = {code: label for label, code in REGION_CODES.items()}

# the PyTorch defaults, (beta~, gamma~) = (0.999, 0.9) in seed 004's notation
DEFAULT_BETA1, DEFAULT_BETA2 = 0.9, 0.999


def to_seed004(beta1, beta2):
    """(beta1, beta2) -> seed 004's (beta, gamma) = (beta2, beta1)."""
    return beta2, beta1


def stability_constant(beta1, beta2):
    """C(beta, gamma) = (2 beta (1 - gamma) - gamma (1 - beta)) / (beta gamma) of seed 004 Sec. 3.1,
    with beta = beta2 and gamma = beta1. Broadcasts."""
    beta1 = np.asarray(beta1, dtype=float)
    beta2 = np.asarray(beta2, dtype=float)
    return (2 * beta2 * (1 - beta1) - beta1 * (1 - beta2)) / (beta1 * beta2)


def stability_region_code(beta1, beta2, atol: float = 0.0):
    """+1 in B+ (C > atol), 0 in B0 (|C| <= atol), -1 in B- (C < -atol), as int8."""
    c = stability_constant(beta1, beta2)
    code = np.where(c > atol, 1, np.where(c < -atol, -1, 0))
    return code.astype(np.int8)


def stability_region(beta1, beta2, atol: float = 0.0):
    """Region labels "B+", "B0", "B-" of seed 004 (array of str; atol widens B0, which has measure
    zero in floating point otherwise)."""
    code = stability_region_code(beta1, beta2, atol)
    labels = np.array([REGION_LABELS[1], REGION_LABELS[0], REGION_LABELS[-1]])
    return labels[1 - code]


def bound_factor(beta1, beta2, n):
    """B_n(beta, gamma) of eq. (5): 1/sqrt(C), sqrt(n) or exp(n|C|/2)/sqrt(|C|) by the sign of C.

    Exactly C = 0 selects the sqrt(n) branch.
    """
    c = stability_constant(beta1, beta2)
    n = np.asarray(n, dtype=float)
    c, n = np.broadcast_arrays(c, n)
    abs_c = np.abs(c)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        positive = 1 / np.sqrt(c)
        negative = np.exp(n * abs_c / 2) / np.sqrt(abs_c)
    return np.where(c > 0, positive, np.where(c < 0, negative, np.sqrt(n)))


def max_update_bound(beta1, beta2, n):
    """Eq. (5): the bound on the max-update ||u_n||_inf = ||theta_{n+1} - theta_n||_inf / eta at step n
    (n = 0, 1, ...; bias-corrected Adam without eps)."""
    beta1 = np.asarray(beta1, dtype=float)
    beta2 = np.asarray(beta2, dtype=float)
    n = np.asarray(n, dtype=float)
    bias = np.sqrt(1 - beta2 ** (n + 1)) / (1 - beta1 ** (n + 1))
    return bias * (1 - beta1) / beta1 * np.sqrt(beta2 / (1 - beta2)) * bound_factor(beta1, beta2, n)


def growth_exponent(beta1, beta2):
    """|C|/2 in B- (predicted slope of log ||u_n||_inf per step, seed 004 Fig. 1b); 0 elsewhere,
    where eq. (5) allows no exponential growth."""
    c = stability_constant(beta1, beta2)
    return np.where(c < 0, np.abs(c) / 2, 0.0)


# ---------------------------------------------------------------------------------------------
# Level curves and normal curves (App. E)
# ---------------------------------------------------------------------------------------------


def _resample_by_arclength(beta1, beta2, n_points: int):
    """n_points uniformly spaced in arc length along a densely sampled polyline."""
    step = np.hypot(np.diff(beta1), np.diff(beta2))
    s = np.concatenate([[0.0], np.cumsum(step)])
    targets = np.linspace(0.0, s[-1], n_points)
    return np.interp(targets, s, beta1), np.interp(targets, s, beta2)


def level_curve(c: float, n_points: int = 256, dense: int = 20001):
    """The level curve B_c = {C = c} inside the unit square, n_points uniform in arc length.

    Solving 2/beta1 - 1/beta2 - 1 = c gives beta1 = 2 beta2 / ((c + 1) beta2 + 1); we keep the
    part with 0 < beta1 < 1, 0 < beta2 < 1 (ordered by increasing beta2).
    Returns (beta1, beta2).
    """
    beta2 = np.linspace(1e-9, 1.0 - 1e-12, dense)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta1 = 2 * beta2 / ((c + 1) * beta2 + 1)
    inside = (beta1 > 0) & (beta1 < 1) & np.isfinite(beta1)
    if inside.sum() < 2:
        raise ValueError(f"the level curve C = {c} does not cross the unit square")
    return _resample_by_arclength(beta1[inside], beta2[inside], n_points)


def level_curve_through(beta1: float, beta2: float, n_points: int = 256):
    """The level curve through (beta1, beta2): B_c with c = C(beta1, beta2)."""
    return level_curve(float(stability_constant(beta1, beta2)), n_points)


def normal_curve_constant(beta1, beta2):
    """k = 2 beta^3 + gamma^3 = 2 beta2^3 + beta1^3 of the normal curve through the point (App. E)."""
    return 2 * np.asarray(beta2, dtype=float) ** 3 + np.asarray(beta1, dtype=float) ** 3


def normal_curve_beta1(beta2, k):
    """beta1 on the normal curve with constant k: (k - 2 beta2^3)^(1/3) (real cube root)."""
    return np.cbrt(k - 2 * np.asarray(beta2, dtype=float) ** 3)


def normal_curve_through(beta1: float, beta2: float, n_points: int = 64, dense: int = 20001):
    """n_points uniform in arc length on the normal curve through (beta1, beta2), seed 004 Fig. 1c.

    Seed 004 takes 64 points "uniformly along a section" of the normal curve through
    (beta, gamma) = (0.999, 0.9) and, in Fig. 9c, along "the entire" curve with (0.999, 0.9) as its
    rightmost point. It does not print the section's other end; we take the curve from where it
    leaves the unit square (beta1 -> 1) down to the given point, which is the last sample. Along
    this path beta2 decreases and beta1 increases towards 1, and C decreases monotonically from
    C(point) through 0 (into B-) when the point is in B+.
    Returns (beta1, beta2), ordered from the given point to the beta1 = 1 end.
    """
    k = float(normal_curve_constant(beta1, beta2))
    # beta1 = 1  <=>  beta2 = ((k - 1)/2)^(1/3); beta1 = 0 <=> beta2 = (k/2)^(1/3)
    beta2_at_edge = np.cbrt((k - 1) / 2) if k > 1 else 0.0
    beta2_path = np.linspace(beta2, max(beta2_at_edge, 1e-9), dense)
    beta1_path = np.clip(normal_curve_beta1(beta2_path, k), 0.0, 1.0)
    return _resample_by_arclength(beta1_path, beta2_path, n_points)


def normal_curve_zero_crossing(beta1: float, beta2: float):
    """The point where the normal curve through (beta1, beta2) meets B0 (C = 0), or None.

    Searched between the point and the beta1 = 1 end of the curve (see ``normal_curve_through``).
    Returns (beta1, beta2).
    """
    k = float(normal_curve_constant(beta1, beta2))
    edge = float(np.cbrt((k - 1) / 2)) if k > 1 else 1e-9

    def c_along(b2):
        return float(stability_constant(normal_curve_beta1(b2, k), b2))

    if np.sign(c_along(beta2)) == np.sign(c_along(edge + 1e-15)):
        return None
    root = optimize.brentq(c_along, edge + 1e-15, beta2, xtol=1e-15)
    return float(normal_curve_beta1(root, k)), float(root)
