"""Seed 000: how mini-batch noise changes the implicit bias of Adam's memory.

Everything here follows "The Effect of Mini-Batch Noise on the Implicit Bias of Adam" (seed 000):

* the constants C1..C5 of App. A.2 and the aggregated coefficient C_total of eq. (7),
* the noise ratio lambda = (N/b - 1)/(N - 1) * B_simple of eq. (8) and its inverse (the batch
  size at which lambda crosses a threshold),
* the monotonicity thresholds of Lemmas 3.4-3.6, the diagonal claim of Lemma 3.7 and the six
  bounds of Lemma A.1, all *computed* (never typed in) so they can be held against the printed
  numbers,
* the two implicit-regularisation coefficients of SGD with momentum (Sec. 2.1),
* the concluding rule of thumb of Sec. 3.3 as ``recommend``.

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

from adamnoise.theory.taylor import Taylor2

# ---------------------------------------------------------------------------------------------
# App. A.2: the constants C1..C5 and eq. (7)
#
# The underscored versions use arithmetic operators only, so that they also evaluate on Taylor2
# series (exact derivatives); the public versions convert and broadcast their arguments.
# ---------------------------------------------------------------------------------------------


def _full_batch(b1, b2):
    return b1 / (1 - b1) - b2 / (1 - b2)


def _c1(b1, b2):
    return (
        (1 - b1**2) / (b1 * (1 - b1 * b2))
        + (1 - b1) ** 2 / (b1 * (1 - b1 * b2) ** 2)
        + 3 * (1 + b1) / (2 * (1 - b1) * (1 + b2))
        - 2 / (b1 * (1 - b1))
        + 3 / (2 - 2 * b2)
        + 3 / (1 + b2) ** 2
        - 2
    )


def _c2(b1, b2):
    return (
        (b1 - b2)
        * (b1 * b2**2 - b1 * b2 + b1 + b2**2 - 2 * b2)
        / ((1 - b1) * (1 - b2) * (1 + b2) * (1 - b1 * b2))
    )


def _c3(b1, b2):
    numerator = (
        -2 * b1**2 * b2**5
        + (b1**2 + 8 * b1) * b2**4
        + (-5 * b1**2 + 2 * b1 - 4) * b2**3
        + (2 * b1**2 - 2 * b1 - 1) * b2
        - 2 * b1 * b2**5
        + (2 * b1 + 1) * b2**2
    )
    return numerator / ((1 - b2) * (1 + b2) ** 2 * (1 - b1 * b2) ** 2)


def _c4(b1, b2):
    return -((b1 - b2) ** 2) / ((1 + b1) * (1 + b2) * (1 - b1 * b2))


def _c5(b1, b2):
    return b2 * (b2 - b1) * (2 * b2 - 3 * b1 - 1) / ((1 + b1) * (1 + b2) ** 2 * (1 - b1 * b2))


def _noise_slope(b1, b2):
    """S = C1 + C2: the coefficient of lambda in C_total after the B_simple replacement."""
    return _c1(b1, b2) + _c2(b1, b2)


def _c_total(b1, b2, lam):
    return _full_batch(b1, b2) + _noise_slope(b1, b2) * lam


def _as_float_arrays(*arrays):
    return [np.asarray(a, dtype=float) for a in arrays]


def full_batch_coefficient(beta1, beta2):
    """FB of Prop. 3.3 divided by grad_j ||g||_1: beta1/(1-beta1) - beta2/(1-beta2)."""
    return _full_batch(*_as_float_arrays(beta1, beta2))


def c1(beta1, beta2):
    """C1(beta1, beta2) of App. A.2 (coefficient of MBN1, the noise-weighted l1-sharpness term)."""
    return _c1(*_as_float_arrays(beta1, beta2))


def c2(beta1, beta2):
    """C2(beta1, beta2) of App. A.2 (coefficient of MBN2); zero on the diagonal beta1 = beta2."""
    return _c2(*_as_float_arrays(beta1, beta2))


def c3(beta1, beta2):
    """C3(beta1, beta2) of App. A.2 (coefficient of MBN3, argued neutral in App. A.3.1)."""
    return _c3(*_as_float_arrays(beta1, beta2))


def c4(beta1, beta2):
    """C4(beta1, beta2) of App. A.2 (coefficient of MBN4, small by Lemma A.1)."""
    return _c4(*_as_float_arrays(beta1, beta2))


def c5(beta1, beta2):
    """C5(beta1, beta2) of App. A.2 (coefficient of MBN5, small by Lemma A.1)."""
    return _c5(*_as_float_arrays(beta1, beta2))


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
    return _c1(b, b).d1


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
    ("|C4/C1|", _c4, _c1, "beta2", 0.9, 3e-4),
    ("|C5/C1|", _c5, _c1, "beta2", 0.9, 4e-3),
    ("|C4/C2|", _c4, _c2, "beta2", 0.99, 1e-3),
    ("|C5/C2|", _c5, _c2, "beta2", 0.99, 6e-3),
    ("|C4/C2|", _c4, _c2, "beta1", 0.999, 6e-5),
    ("|C5/C2|", _c5, _c2, "beta1", 0.999, 5e-4),
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


# ---------------------------------------------------------------------------------------------
# Sec. 3.3: the concluding rule of thumb
# ---------------------------------------------------------------------------------------------

DEFAULT_BETAS = (0.9, 0.999)  # small-batch choice of Sec. 3.3
EQUAL_BETAS = (0.999, 0.999)  # large-batch choice of Sec. 3.3 (beta1 = beta2 high)


@dataclass(frozen=True)
class Recommendation:
    """Sec. 3.3's rule of thumb applied to one training setup."""

    n_samples: float
    batch_size: float
    b_simple: float
    noise_ratio: float
    regime: str  # "small batch" | "transition" | "large batch"
    beta1: float
    beta2: float
    batch_size_lambda_1: float  # b at which lambda = 1: below it, lambda > 1 (small batch)
    batch_size_lambda_half: float  # b at which lambda = 0.5: above it, lambda < 0.5 (large batch)
    reasoning: str

    def as_dict(self) -> dict:
        return asdict(self)


def validate_setup(n_samples, batch_size, b_simple) -> None:
    """Reject inputs outside eq. (8)'s domain with a message that names the offending value."""
    if not np.isfinite(n_samples) or n_samples < 2:
        raise ValueError(f"n_samples must be >= 2 (got {n_samples})")
    if not np.isfinite(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
    if batch_size > n_samples:
        raise ValueError(f"batch_size ({batch_size}) must not exceed n_samples ({n_samples})")
    if not np.isfinite(b_simple) or b_simple <= 0:
        raise ValueError(f"b_simple must be > 0 (got {b_simple})")


def recommend(n_samples, batch_size, b_simple) -> Recommendation:
    """Sec. 3.3's concluding rule of thumb.

    lambda > 1 (b < N B/(N + B - 1)): take beta1 small and beta2 large, e.g. (0.9, 0.999).
    lambda < 0.5 (b > 2 N B/(N + 2 B - 1)): take beta1 = beta2 high, e.g. (0.999, 0.999).
    In between the paper gives no explicit pair; Lemmas 3.4-3.6 then say C_total increases in
    beta2 (for lambda >~ 0.51) and in beta1 (for lambda <~ 0.995), so we keep beta2 = 0.999 and
    take the beta1 in [0.9, 0.999] that maximises C_total(beta1, 0.999, lambda).
    """
    validate_setup(n_samples, batch_size, b_simple)
    lam = float(noise_ratio(n_samples, batch_size, b_simple))
    b_one = float(flip_batch_size(n_samples, b_simple, 1.0))
    b_half = float(flip_batch_size(n_samples, b_simple, 0.5))
    if lam > 1:
        regime, (beta1, beta2) = "small batch", DEFAULT_BETAS
        reasoning = (
            f"lambda = {lam:.3g} > 1 (batch {batch_size:g} < {b_one:.4g}): noise regularises; "
            "C_total rises with beta2 (Lemmas 3.4/3.5) and falls with beta1 (Lemma 3.6), "
            "so keep beta1 small and beta2 large."
        )
    elif lam < 0.5:
        regime, (beta1, beta2) = "large batch", EQUAL_BETAS
        reasoning = (
            f"lambda = {lam:.3g} < 0.5 (batch {batch_size:g} > {b_half:.4g}): memory "
            "anti-regularises; C_total falls with beta2 (Lemma 3.4) and rises along "
            "beta1 = beta2 (Lemma 3.7), so take beta1 = beta2 high."
        )
    else:
        regime = "transition"
        candidates = np.linspace(DEFAULT_BETAS[0], EQUAL_BETAS[0], 1999)
        beta2 = EQUAL_BETAS[1]
        beta1 = float(candidates[np.argmax(c_total(candidates, beta2, lam))])
        reasoning = (
            f"0.5 <= lambda = {lam:.3g} <= 1 (batch between {b_one:.4g} and {b_half:.4g}): "
            f"C_total rises with beta2 (Lemma 3.4), so beta2 = {beta2}; beta1 = {beta1:.4g} "
            "maximises C_total along beta2 = 0.999 (the paper's rule gives no pair here)."
        )
    return Recommendation(
        n_samples=float(n_samples),
        batch_size=float(batch_size),
        b_simple=float(b_simple),
        noise_ratio=lam,
        regime=regime,
        beta1=float(beta1),
        beta2=float(beta2),
        batch_size_lambda_1=b_one,
        batch_size_lambda_half=b_half,
        reasoning=reasoning,
    )
