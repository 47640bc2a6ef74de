"""Seed 000 Lemmas 3.4-3.7 and A.1, *computed* (never typed in) so they can be held against the
printed numbers, and the lemma table of ``adamnoise theory lemmas``.

Exactness of the thresholds. C_total(beta1, beta2, lam) = FB(beta1, beta2) + lam * S(beta1, beta2)
with S = C1 + C2 is *linear* in lam. Along a sweep of one beta (the other fixed) its derivative is
A(x) + lam * B(x) with A = dFB/dx and B = dS/dx, so C_total is strictly increasing on the whole
interval exactly when lam lies on the right side of the ratio r(x) = -A(x)/B(x) for every x: the
thresholds are sup r and inf r over the interval (B must keep one sign; we check it does). A and
B come from evaluating the very same formulas on second-order Taylor series (``taylor.Taylor2``),
which gives derivatives exact up to rounding, also near beta -> 1 where finite differences fail.
The sup / inf are located on a dense grid (uniform, plus geometric points accumulating at the
open end 1) and refined with a bounded Brent search between the neighbouring grid points. The
open end beta -> 1 is represented by 1 - 1e-10; r is smooth there, so the reported value is the
limit to ~1e-9. Convexity (Lemma 3.5) uses the second derivatives the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize

from adamnoise.theory.implicit_bias import (
    OPEN_END,
    c1_expression,
    c2_expression,
    c4_expression,
    c5_expression,
    c_total_derivative,
    sweep_derivatives,
    sweep_grid,
)
from adamnoise.theory.taylor import Taylor2


@dataclass(frozen=True)
class Extremum:
    """The sup or inf of a function over a grid interval and where it is (approached)."""

    value: float
    at: float


def _extremum(func, x: np.ndarray, kind: str) -> Extremum:
    """Sup (``kind='max'``) or inf of a smooth scalar function: dense grid, then bounded Brent."""
    sign = 1.0 if kind == "max" else -1.0
    values = sign * func(x)
    if not np.all(np.isfinite(values)):
        # isolated removable singularities (0/0 at beta1 = beta2): drop those grid points
        keep = np.isfinite(values)
        x, values = x[keep], values[keep]
    i = int(np.argmax(values))
    if i == len(x) - 1:
        return Extremum(sign * values[i], float(x[i]))
    if i == 0:
        lo, hi = x[0], x[1]
    else:
        lo, hi = x[i - 1], x[i + 1]
    result = optimize.minimize_scalar(
        lambda t: -sign * float(func(np.array([t]))[0]),
        bounds=(float(lo), float(hi)),
        method="bounded",
        options={"xatol": 1e-13 * max(1.0, abs(hi)), "maxiter": 500},
    )
    best_x, best = float(x[i]), float(values[i])
    if result.success and np.isfinite(result.fun) and -result.fun >= best:
        best_x, best = float(result.x), float(-result.fun)
    return Extremum(sign * best, best_x)


@dataclass(frozen=True)
class MonotonicityThresholds:
    """When C_total is strictly monotone along a sweep of one beta, as a function of lambda > 0.

    ``lambda_increasing``: C_total is strictly increasing on the interval for every lambda on the
    ``increasing_side`` ("above" means lambda >= threshold, "below" means 0 < lambda <= threshold);
    likewise for ``lambda_decreasing``. NaN means no lambda > 0 gives that monotonicity.
    ``lambda_convex``: C_total is strictly convex for lambda > lambda_convex (NaN if never / not
    computed). All are sup / inf of derivative ratios, see the module docstring.
    """

    sweep: str
    fixed: float
    interval: tuple[float, float]
    lambda_increasing: float
    increasing_side: str
    lambda_decreasing: float
    decreasing_side: str
    lambda_convex: float = float("nan")
    argsup: float = float("nan")  # where sup r is attained (or approached, near 1)
    arginf: float = float("nan")  # where inf r is attained (or approached, near 1)


def monotonicity_thresholds(
    sweep: str, fixed: float, lo: float = 0.9, hi: float = OPEN_END
) -> MonotonicityThresholds:
    """Lambda thresholds of strict monotonicity (and convexity) of C_total along [lo, 1).

    ``sweep='beta2'`` with ``fixed=beta1`` reproduces Lemmas 3.4 / 3.5; ``sweep='beta1'`` with
    ``fixed=beta2`` reproduces Lemma 3.6. The derivative is A + lam B; with B of one sign on the
    interval, C_total' > 0 everywhere iff lam is beyond r = -A/B everywhere.
    """
    x = sweep_grid(lo, hi)
    d = sweep_derivatives(sweep, fixed, x)
    slope = d["s_d1"]
    if not (np.all(slope > 0) or np.all(slope < 0)):
        raise ValueError(
            f"dS/d{sweep} changes sign on [{lo}, 1) with the other beta at {fixed}: "
            "monotonicity is then not governed by one lambda threshold"
        )

    def ratio(t):
        dt = sweep_derivatives(sweep, fixed, t)
        return -dt["fb_d1"] / dt["s_d1"]

    sup = _extremum(ratio, x, "max")
    inf = _extremum(ratio, x, "min")
    # a threshold <= 0 on the "above" side means: for every lambda > 0 (reported as 0); on the
    # "below" side it means: for no lambda > 0 (NaN)
    if np.all(slope > 0):
        # C' = A + lam B > 0  <=>  lam > r; increasing above sup r, decreasing below inf r
        lam_inc, inc_side = max(sup.value, 0.0), "above"
        lam_dec, dec_side = (inf.value if inf.value > 0 else float("nan")), "below"
    else:
        # B < 0: C' > 0  <=>  lam < r; increasing below inf r, decreasing above sup r
        lam_inc, inc_side = (inf.value if inf.value > 0 else float("nan")), "below"
        lam_dec, dec_side = max(sup.value, 0.0), "above"

    # convexity: C'' = A2 + lam B2 > 0 for all x; with B2 > 0 this is lam > sup(-A2/B2)
    lam_convex = float("nan")
    if np.all(d["s_d2"] > 0):

        def convex_ratio(t):
            dt = sweep_derivatives(sweep, fixed, t)
            return -dt["fb_d2"] / dt["s_d2"]

        lam_convex = max(_extremum(convex_ratio, x, "max").value, 0.0)

    return MonotonicityThresholds(
        sweep=sweep,
        fixed=float(fixed),
        interval=(float(lo), 1.0),
        lambda_increasing=float(lam_inc),
        increasing_side=inc_side,
        lambda_decreasing=float(lam_dec),
        decreasing_side=dec_side,
        lambda_convex=float(lam_convex),
        argsup=sup.at,
        arginf=inf.at,
    )


def sweep_minimiser(sweep: str, fixed: float, lam: float, lo: float = 0.9, hi: float = OPEN_END):
    """The interior minimiser of C_total along a sweep (Lemma 3.5), or NaN if there is none.

    Found as the root of the (exact) derivative between lo and hi when it changes sign from
    negative to positive.
    """

    def derivative(t):
        return float(c_total_derivative(sweep, fixed, np.array([t]), lam)[0])

    if not (derivative(lo) < 0 < derivative(hi)):
        return float("nan")
    return float(optimize.brentq(derivative, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps))


def is_strictly_monotone(sweep: str, fixed: float, lam: float, lo: float = 0.9, hi=OPEN_END):
    """+1 if C_total is strictly increasing on the dense sweep grid, -1 if decreasing, else 0.

    A direct check (sign of the exact derivative on the grid) used to cross-examine the
    thresholds from ``monotonicity_thresholds``.
    """
    derivative = c_total_derivative(sweep, fixed, sweep_grid(lo, hi), lam)
    if np.all(derivative > 0):
        return 1
    if np.all(derivative < 0):
        return -1
    return 0


# ---------------------------------------------------------------------------------------------
# Lemma 3.7 and Lemma A.1
# ---------------------------------------------------------------------------------------------


def diagonal_c1_derivative(beta):
    """d/dbeta C1(beta, beta), exact. On the diagonal FB = C2 = 0, so C_total(beta, beta, lam) =
    lam C1(beta, beta) and Lemma 3.7 (strictly increasing for every lam > 0) is equivalent to this
    being > 0."""
    b = Taylor2.variable(np.asarray(beta, dtype=float))
    return c1_expression(b, b).d1


@dataclass(frozen=True)
class DiagonalCheck:
    """Lemma 3.7 evaluated: the smallest d/dbeta C1(beta, beta) over [lo, 1) and where."""

    lo: float
    min_derivative: float
    at: float
    holds: bool


def lemma_3_7(lo: float = 0.5, hi: float = OPEN_END) -> DiagonalCheck:
    x = sweep_grid(lo, hi)
    low = _extremum(diagonal_c1_derivative, x, "min")
    return DiagonalCheck(lo=lo, min_derivative=low.value, at=low.at, holds=bool(low.value > 0))


# (label, numerator, denominator, swept variable, fixed value, printed bound) of Lemma A.1
LEMMA_A1_CLAIMS = (
    ("|C4/C1|", c4_expression, c1_expression, "beta2", 0.9, 3e-4),
    ("|C5/C1|", c5_expression, c1_expression, "beta2", 0.9, 4e-3),
    ("|C4/C2|", c4_expression, c2_expression, "beta2", 0.99, 1e-3),
    ("|C5/C2|", c5_expression, c2_expression, "beta2", 0.99, 6e-3),
    ("|C4/C2|", c4_expression, c2_expression, "beta1", 0.999, 6e-5),
    ("|C5/C2|", c5_expression, c2_expression, "beta1", 0.999, 5e-4),
)


@dataclass(frozen=True)
class BoundCheck:
    """One Lemma A.1 claim: the computed sup of |numerator/denominator| and the printed bound."""

    ratio: str
    sweep: str
    fixed: float
    computed_sup: float
    at: float
    printed_bound: float

    @property
    def holds(self) -> bool:
        return self.computed_sup < self.printed_bound


def lemma_a1(lo: float = 0.9, hi: float = OPEN_END) -> list[BoundCheck]:
    """The six sup bounds of Lemma A.1, computed by dense grid + bounded Brent refinement.

    The ratios C4/C2 and C5/C2 have a removable 0/0 at beta1 = beta2 (both carry a factor
    beta1 - beta2); that single grid point is skipped and the refinement works around it.
    """
    x = sweep_grid(lo, hi)
    checks = []
    for label, num, den, sweep, fixed, printed in LEMMA_A1_CLAIMS:

        def abs_ratio(t, num=num, den=den, sweep=sweep, fixed=fixed):
            with np.errstate(invalid="ignore", divide="ignore"):
                if sweep == "beta2":
                    return np.abs(num(fixed, t) / den(fixed, t))
                return np.abs(num(t, fixed) / den(t, fixed))

        sup = _extremum(abs_ratio, x, "max")
        checks.append(BoundCheck(label, sweep, fixed, sup.value, sup.at, printed))
    return checks


# ---------------------------------------------------------------------------------------------
# The lemma table (computed vs printed)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LemmaRow:
    """One lemma claim: computed thresholds side by side with the printed (rounded) ones."""

    lemma: str
    fixed: str
    sweep: str
    lambda_increasing: float
    increasing_side: str
    lambda_decreasing: float
    decreasing_side: str
    printed_increasing: float
    printed_decreasing: float
    lambda_convex: float = float("nan")
    printed_convex_range: tuple[float, float] | None = None
    minimiser_example: dict | None = None
    # claims that are not lambda thresholds (Lemma 3.7, Lemma A.1): the quantity, its computed
    # value and the printed bound
    quantity: str = ""
    computed: float = float("nan")
    printed: float = float("nan")
    consistent: bool = True
    note: str = ""

    def as_dict(self) -> dict:
        """Plain dict; NaN (no such threshold) becomes None so that the result is valid JSON."""
        return _nan_to_none(asdict(self))


def _nan_to_none(obj):
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {key: _nan_to_none(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(value) for value in obj]
    return obj


# printed thresholds: (lemma, sweep, fixed, printed increasing, printed decreasing, convex range)
PRINTED_THRESHOLDS = (
    ("3.4", "beta2", 0.9, 0.5082, 0.494, None),
    ("3.5", "beta2", 0.99, 2.685, 0.499, (0.5, 2.684)),
    ("3.6", "beta1", 0.999, 0.995, 1.002, None),
)


def _printed_is_conservative(computed: float, side: str, printed: float) -> bool:
    """A printed threshold is safe if its claim is implied by the computed one.

    "increasing for lam >= printed" (side 'above') needs printed >= computed; "for 0 < lam <
    printed" (side 'below') needs printed <= computed.
    """
    return printed >= computed if side == "above" else printed <= computed


def lemma_table() -> list[LemmaRow]:
    """Lemmas 3.4-3.7 and A.1 recomputed, one row per claim, with the printed numbers."""
    rows = []
    for lemma, sweep, fixed, printed_inc, printed_dec, convex_range in PRINTED_THRESHOLDS:
        t = monotonicity_thresholds(sweep, fixed)
        consistent = _printed_is_conservative(
            t.lambda_increasing, t.increasing_side, printed_inc
        ) and _printed_is_conservative(t.lambda_decreasing, t.decreasing_side, printed_dec)
        other = "beta1" if sweep == "beta2" else "beta2"
        minimiser = None
        note = (
            f"C_total({other}={fixed}) strictly increasing in {sweep} in [0.9,1) for lambda "
            f"{'>=' if t.increasing_side == 'above' else '<='} {t.lambda_increasing:.6g}, "
            f"strictly decreasing for lambda "
            f"{'>=' if t.decreasing_side == 'above' else '<='} {t.lambda_decreasing:.6g}"
        )
        if convex_range is not None:
            # Lemma 3.5: strictly convex with an interior minimiser in between
            low, high = convex_range
            # lambda_convex is a limit at beta -> 1 (0.5 up to rounding), hence the tolerance
            convex_ok = t.lambda_convex <= low + 1e-9
            mid = 0.5 * (low + high)
            where = sweep_minimiser(sweep, fixed, mid)
            interior = bool(np.isfinite(where))
            minimiser = {"lambda": mid, "argmin": where}
            consistent = consistent and convex_ok and interior
            note += (
                f"; strictly convex for lambda > {t.lambda_convex:.6g}, e.g. lambda={mid:g} "
                f"has its minimiser at {sweep}={where:.6f}"
            )
        rows.append(
            LemmaRow(
                lemma=lemma,
                fixed=f"{other}={fixed}",
                sweep=sweep,
                lambda_increasing=t.lambda_increasing,
                increasing_side=t.increasing_side,
                lambda_decreasing=t.lambda_decreasing,
                decreasing_side=t.decreasing_side,
                printed_increasing=printed_inc,
                printed_decreasing=printed_dec,
                lambda_convex=t.lambda_convex,
                printed_convex_range=convex_range,
                minimiser_example=minimiser,
                consistent=bool(consistent),
                note=note,
            )
        )

    diag = lemma_3_7()
    rows.append(
        LemmaRow(
            lemma="3.7",
            fixed="beta1=beta2",
            sweep="beta",
            lambda_increasing=0.0,
            increasing_side="above",
            lambda_decreasing=float("nan"),
            decreasing_side="below",
            printed_increasing=0.0,
            printed_decreasing=float("nan"),
            quantity="min dC1(b,b)/db over b in [0.5,1)",
            computed=diag.min_derivative,
            printed=0.0,
            consistent=diag.holds,
            note=(
                f"C_total(beta, beta, lambda) = lambda C1(beta, beta); min over [0.5,1) of "
                f"dC1(beta,beta)/dbeta = {diag.min_derivative:.6g} at beta={diag.at:.6g} (> 0)"
            ),
        )
    )

    for check in lemma_a1():
        rows.append(
            LemmaRow(
                lemma="A.1",
                fixed=f"{'beta1' if check.sweep == 'beta2' else 'beta2'}={check.fixed}",
                sweep=check.sweep,
                lambda_increasing=float("nan"),
                increasing_side="",
                lambda_decreasing=float("nan"),
                decreasing_side="",
                printed_increasing=float("nan"),
                printed_decreasing=float("nan"),
                quantity=f"sup {check.ratio} over {check.sweep} in [0.9,1)",
                computed=check.computed_sup,
                printed=check.printed_bound,
                consistent=check.holds,
                note=(
                    f"sup {check.ratio} over {check.sweep} in [0.9,1) = {check.computed_sup:.4g} "
                    f"at {check.at:.6g}; printed bound < {check.printed_bound:g}"
                ),
            )
        )
    return rows
