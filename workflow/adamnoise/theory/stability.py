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


def bound_factor(beta1, beta2, n, atol: float = 0.0):
    """B_n(beta, gamma) of eq. (5): 1/sqrt(C), sqrt(n) or exp(n|C|/2)/sqrt(|C|) by the sign of C.

    |C| <= atol selects the B0 branch sqrt(n) (as in ``stability_region_code``).
    """
    c = stability_constant(beta1, beta2)
    c = np.where(np.abs(c) <= atol, 0.0, c)
    n = np.asarray(n, dtype=float)
    c, n = np.broadcast_arrays(c, n)
    abs_c = np.abs(c)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        positive = 1 / np.sqrt(c)
        negative = np.exp(n * abs_c / 2) / np.sqrt(abs_c)
    return np.where(c > 0, positive, np.where(c < 0, negative, np.sqrt(n)))


def max_update_bound(beta1, beta2, n, atol: float = 0.0):
    """Eq. (5): bound on the max-update ||u_n||_inf = ||theta_{n+1} - theta_n||_inf / eta at step
    n (n = 0, 1, ...; bias-corrected Adam without eps). ``atol`` as in ``bound_factor``."""
    beta1 = np.asarray(beta1, dtype=float)
    beta2 = np.asarray(beta2, dtype=float)
    n = np.asarray(n, dtype=float)
    bias = np.sqrt(1 - beta2 ** (n + 1)) / (1 - beta1 ** (n + 1))
    scale = (1 - beta1) / beta1 * np.sqrt(beta2 / (1 - beta2))
    return bias * scale * bound_factor(beta1, beta2, n, atol)


def growth_exponent(beta1, beta2):
    """|C|/2 in B- (predicted slope of log ||u_n||_inf per step, seed 004 Fig. 1b); 0 elsewhere,
    where eq. (5) allows no exponential growth."""
    c = stability_constant(beta1, beta2)
    return np.where(c < 0, np.abs(c) / 2, 0.0)


# ---------------------------------------------------------------------------------------------
# Level curves and normal curves (App. E)
# ---------------------------------------------------------------------------------------------


def _curve_by_arclength(beta1_of_beta2, beta2_start, beta2_stop, n_points: int, dense: int):
    """n_points on the curve beta1 = f(beta2), uniformly spaced in arc length from beta2_start to
    beta2_stop. The arc length comes from a dense polyline; the points themselves are evaluated
    exactly on the curve (only their beta2 is interpolated)."""
    beta2 = np.linspace(beta2_start, beta2_stop, dense)
    beta1 = beta1_of_beta2(beta2)
    arclength = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(beta1), np.diff(beta2)))])
    beta2_points = np.interp(np.linspace(0.0, arclength[-1], n_points), arclength, beta2)
    beta2_points[[0, -1]] = beta2_start, beta2_stop
    return beta1_of_beta2(beta2_points), beta2_points


def level_curve(c: float, n_points: int = 256, dense: int = 20001, margin: float = 1e-6):
    """The level curve B_c = {C = c} inside the unit square, n_points uniform in arc length.

    Solving 2/beta1 - 1/beta2 - 1 = c gives beta1 = 2 beta2 / ((c + 1) beta2 + 1). We keep the
    part with margin <= beta1, beta2 <= 1 - margin, ordered by increasing beta2.
    Returns (beta1, beta2).
    """

    def beta1_of(beta2):
        return 2 * beta2 / ((c + 1) * beta2 + 1)

    lo, hi = margin, 1.0 - margin
    if c < -1:
        raise ValueError(f"the level curve C = {c} does not cross the unit square")
    # beta1 increases with beta2; it reaches 1 - margin at beta2 = hi' if c < 1
    if beta1_of(hi) > hi:
        hi = hi / (2 - (c + 1) * hi)
    if beta1_of(lo) < margin:
        lo = margin / (2 - (c + 1) * margin)
    if not lo < hi:
        raise ValueError(f"the level curve C = {c} does not cross the unit square")
    return _curve_by_arclength(beta1_of, lo, hi, n_points, dense)


def level_curve_through(beta1: float, beta2: float, n_points: int = 256):
    """The level curve through (beta1, beta2): B_c with c = C(beta1, beta2)."""
    return level_curve(float(stability_constant(beta1, beta2)), n_points)


def normal_curve_constant(beta1, beta2):
    """k = 2 beta^3 + gamma^3 = 2 beta2^3 + beta1^3: the normal curve through the point (App. E)."""
    return 2 * np.asarray(beta2, dtype=float) ** 3 + np.asarray(beta1, dtype=float) ** 3


def normal_curve_beta1(beta2, k):
    """beta1 on the normal curve with constant k: (k - 2 beta2^3)^(1/3) (real cube root)."""
    return np.cbrt(k - 2 * np.asarray(beta2, dtype=float) ** 3)


def normal_curve_through(
    beta1: float, beta2: float, n_points: int = 64, beta1_max: float = 0.999, dense: int = 20001
):
    """n_points uniform in arc length on the normal curve through (beta1, beta2), seed 004 Fig. 1c.

    Seed 004 takes 64 points "uniformly along a section" of the normal curve through
    (beta, gamma) = (0.999, 0.9) and, in Fig. 9c, along "the entire" curve with (0.999, 0.9) as its
    rightmost point. It does not print where the section ends on the other side; we follow the
    curve from the given point (the first sample) towards larger beta1 until beta1 = beta1_max
    (0.999 by default: beta1 = 1 would freeze Adam's momentum). Along this path beta2 decreases,
    beta1 increases, and C decreases monotonically, from C(point) > 0 through B0 into B-.
    Returns (beta1, beta2).
    """
    k = float(normal_curve_constant(beta1, beta2))
    if not beta1 < beta1_max < 1:
        raise ValueError(f"need beta1 ({beta1}) < beta1_max ({beta1_max}) < 1")
    # beta1 = beta1_max  <=>  beta2 = ((k - beta1_max^3)/2)^(1/3)
    beta2_end = float(np.cbrt((k - beta1_max**3) / 2))
    return _curve_by_arclength(
        lambda b2: normal_curve_beta1(b2, k), beta2, beta2_end, n_points, dense
    )


def normal_curve_beta2(beta1, k):
    """beta2 on the normal curve with constant k: ((k - beta1^3) / 2)^(1/3) (real cube root)."""
    return np.cbrt((k - np.asarray(beta1, dtype=float) ** 3) / 2)


def normal_curve_beta1_interval(k: float) -> tuple[float, float]:
    """The open interval of beta1 over which the normal curve 2 beta2^3 + beta1^3 = k runs inside
    the open unit square: 0 < beta1 < 1 and 0 < beta2 < 1, i.e. k - 2 < beta1^3 < k.

    The curve enters through the edge beta2 = 1 (or beta1 = 0) and leaves through beta1 = 1 (or
    beta2 = 0). Through (beta1, beta2) = (0.9, 0.999): beta1 in (0.8975, 1), beta2 from 1 down to
    0.9515.
    """
    return float(np.cbrt(max(k - 2.0, 0.0))), float(min(1.0, np.cbrt(k)))


def normal_curve_section(
    beta1: float,
    beta2: float,
    beta1_range: tuple[float, float],
    n_points: int,
    dense: int = 20001,
):
    """n_points uniform in arc length on a section of the normal curve through (beta1, beta2).

    Seed 004 Fig. 1 takes "64 points (beta, gamma) taken uniformly along a section of the normal
    curve" through (beta, gamma) = (0.999, 0.9). The section is given here by the beta1 (seed
    004's gamma) of its two ends, ``beta1_range = (start, stop)``, both included; the points run
    from start to stop. beta1 is a single-valued coordinate along the curve (beta2 =
    ((k - beta1^3)/2)^(1/3) falls as beta1 rises), and C decreases monotonically with beta1 along
    it. Both ends must lie strictly inside the unit square (``normal_curve_beta1_interval``).

    Spacing is uniform in Euclidean arc length in the (beta1, beta2) plane (the same in the seed's
    (beta, gamma) plane: the coordinates are only swapped). Every point lies exactly on the curve
    (its beta2 is evaluated from its beta1); where an end is the point the curve was built
    through, that point is returned with its given coordinates, not a cube root's rounding.
    Returns (beta1, beta2) as float arrays.
    """
    k = float(normal_curve_constant(beta1, beta2))
    start, stop = (float(b) for b in beta1_range)
    low, high = normal_curve_beta1_interval(k)
    for end in (start, stop):
        if not low < end < high:
            raise ValueError(
                f"beta1 = {end} is off the normal curve through ({beta1}, {beta2}) inside the unit "
                f"square: it runs over {low:.6g} < beta1 < {high:.6g}"
            )
    if start == stop:
        raise ValueError(f"the section's ends coincide (beta1 = {start})")
    if n_points < 2:
        raise ValueError(f"a section needs at least 2 points, got {n_points}")
    section_beta2, section_beta1 = _curve_by_arclength(
        lambda b1: normal_curve_beta2(b1, k), start, stop, n_points, dense
    )
    for end in (0, -1):
        if section_beta1[end] == beta1:
            section_beta2[end] = beta2
    return section_beta1, section_beta2


def normal_curve_zero_crossing(beta1: float, beta2: float):
    """The point where the normal curve through (beta1, beta2) meets B0 (C = 0), or None.

    Searched between the point and where the curve reaches beta1 = 1 (towards larger beta1).
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
