"""Competing rules for how Adam's betas should change with the batch size, side by side.

Each rule maps a batch size b to the beta it recommends for one swept beta (``beta2`` with beta1
fixed, or ``beta1`` with beta2 fixed). Rules that transfer a tuned value are *anchored*: they take
the empirically best beta at an anchor batch size b0 (the smallest batch of a sweep) and move it
to b. All functions broadcast over their array arguments; NaN marks "no prediction".

* ``implicit_bias``: seed 000 (Sec. 3.3, Lemmas 3.4-3.6). The implicit regulariser C_total
  (eq. 7) with the noise ratio lambda = (N/b - 1)/(N - 1) B_simple (eq. 8); the rule takes the
  candidate beta that maximises C_total at that lambda. Along a beta2 sweep with beta1 = 0.9 that
  is the highest beta2 for lambda > 0.5082 and the lowest for lambda < 0.4945 (Lemma 3.4); along a
  beta1 sweep with beta2 = 0.999 the lowest beta1 for lambda >= 1.002 and the highest for
  lambda < 0.995 (Lemma 3.6); along beta1 = beta2 (a tied sweep) the highest (Lemma 3.7).
* ``token_half_life``: keep the half-life of the EMA measured in *tokens* fixed when the batch
  changes: a step sees b sequences, so beta(b) = beta(b0) ** (b / b0). Marek, Lotfi, Somasundaram,
  Wilson, Goldblum, "Small Batch Size Training for Language Models: When Vanilla SGD Works, and
  Why Gradient Accumulation Is Wasteful" (NeurIPS 2025, arXiv:2507.07101), their rule for beta2;
  applied here to either beta.
* ``sqrt_scaling``: the square-root scaling rule of the Adam SDE, Malladi, Lyu, Panigrahi, Arora,
  "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms" (NeurIPS 2022,
  arXiv:2205.10287):
  with kappa = b / b0, lr -> sqrt(kappa) lr, 1 - beta1 -> kappa (1 - beta1),
  1 - beta2 -> kappa (1 - beta2) (and eps -> eps / sqrt(kappa)). Undefined (NaN) where
  kappa (1 - beta0) > 1, as the rule itself is (it is an approximation for moderate kappa).
* ``equal_betas``: beta1 = beta2, the "secret sauce" of seed 003 (Orvieto & Gower, "In Search of
  Adam's Secret Sauce", 2025, Takeaway 2 and Sec. 3): the swept beta equals the fixed one.
* ``fixed_default``: PyTorch's default (beta1, beta2) = (0.9, 0.999) at every batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from adamnoise.theory.implicit_bias import c_total

DEFAULT_BETAS = {"beta1": 0.9, "beta2": 0.999}
AXES = ("beta2", "beta1")


def token_half_life(anchor_beta, anchor_batch_size, batch_size):
    """beta(b) = beta(b0) ** (b / b0): the EMA forgets half its memory after the same number of
    tokens at every batch size (Marek et al. 2025). E.g. 0.999 at b0 = 8 gives 0.999 ** 4 =
    0.996006 at b = 32."""
    anchor_beta, anchor_batch_size, batch_size = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (anchor_beta, anchor_batch_size, batch_size))
    )
    return anchor_beta ** (batch_size / anchor_batch_size)


def sqrt_scaling(anchor_beta, anchor_batch_size, batch_size):
    """1 - beta(b) = (b / b0) (1 - beta(b0)) (Malladi et al. 2022's square-root rule for the
    betas); NaN where that leaves no beta in [0, 1). E.g. 0.999 at b0 = 8 gives 0.996 at b = 32."""
    anchor_beta, anchor_batch_size, batch_size = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (anchor_beta, anchor_batch_size, batch_size))
    )
    beta = 1.0 - batch_size / anchor_batch_size * (1.0 - anchor_beta)
    return np.where(beta >= 0.0, beta, np.nan)


def implicit_bias_choice(axis: str, fixed: float, noise_ratio, candidates, tied: bool = False):
    """The candidate beta that maximises C_total(beta1, beta2, lambda) along the sweep (seed 000).

    ``axis`` is the swept beta, ``fixed`` the other one; with ``tied`` the sweep runs along the
    diagonal beta1 = beta2 (Lemma 3.7) and ``fixed`` is not used. ``noise_ratio`` broadcasts,
    candidates is the last axis of the comparison. NaN where lambda is not finite, where C_total
    is not finite at any candidate (e.g. a NaN ``fixed``), or where it is the same at every
    candidate (the diagonal at lambda = 0: no preference).
    """
    _check_axis(axis)
    candidates = np.asarray(candidates, dtype=float)
    lam = np.asarray(noise_ratio, dtype=float)[..., None]
    safe = np.where(np.isfinite(lam), lam, 0.0)
    if tied:
        coefficient = c_total(candidates, candidates, safe)
    elif axis == "beta2":
        coefficient = c_total(fixed, candidates, safe)
    else:
        coefficient = c_total(candidates, fixed, safe)
    finite = np.isfinite(coefficient)
    masked = np.where(finite, coefficient, -np.inf)
    choice = candidates[np.argmax(masked, axis=-1)]
    # C_total equal at every candidate (the diagonal at lambda = 0): the theory prefers none
    spread = masked.max(axis=-1) - np.where(finite, coefficient, np.inf).min(axis=-1)
    flat = spread <= 1e-12 * np.maximum(1.0, np.abs(masked.max(axis=-1)))
    return np.where(np.isfinite(lam[..., 0]) & finite.any(axis=-1) & ~flat, choice, np.nan)


def equal_betas(axis: str, fixed: float, batch_size):
    """beta_axis = the fixed beta at every batch size (seed 003's beta1 = beta2)."""
    _check_axis(axis)
    return np.full(np.shape(batch_size), float(fixed))


def fixed_default(axis: str, batch_size):
    """PyTorch's default value of the swept beta at every batch size."""
    _check_axis(axis)
    return np.full(np.shape(batch_size), DEFAULT_BETAS[axis])


@dataclass(frozen=True)
class SweepContext:
    """What a rule may use to predict the swept beta at ``batch_sizes``.

    ``anchor_beta`` is the empirically best beta at ``anchor_batch_size``; ``noise_ratio`` is
    lambda at each batch size (same shape as ``batch_sizes``); ``candidates`` the swept grid.
    """

    axis: str
    fixed: float
    batch_sizes: np.ndarray
    noise_ratio: np.ndarray
    anchor_batch_size: float
    anchor_beta: float | np.ndarray  # an array broadcasts against batch_sizes (resamples)
    candidates: np.ndarray
    tied: bool = False  # a beta1 = beta2 sweep


@dataclass(frozen=True)
class ScalingRule:
    name: str
    label: str
    source: str
    predict: Callable[[SweepContext], np.ndarray]
    anchored: bool  # transfers the empirical best of the anchor batch size

    def __call__(self, context: SweepContext) -> np.ndarray:
        return np.asarray(self.predict(context), dtype=float)


RULES: dict[str, ScalingRule] = {
    rule.name: rule
    for rule in (
        ScalingRule(
            "implicit_bias",
            "seed 000: max C_total(lambda)",
            "seed 000 Sec. 3.3, Lemmas 3.4-3.6 (eqs. 7, 8)",
            lambda c: implicit_bias_choice(c.axis, c.fixed, c.noise_ratio, c.candidates, c.tied),
            anchored=False,
        ),
        ScalingRule(
            "token_half_life",
            "token half-life: beta0^(b/b0)",
            "Marek et al. 2025, arXiv:2507.07101",
            lambda c: token_half_life(c.anchor_beta, c.anchor_batch_size, c.batch_sizes),
            anchored=True,
        ),
        ScalingRule(
            "sqrt_scaling",
            "SDE sqrt rule: 1-beta ~ b",
            "Malladi et al. 2022, arXiv:2205.10287",
            lambda c: sqrt_scaling(c.anchor_beta, c.anchor_batch_size, c.batch_sizes),
            anchored=True,
        ),
        ScalingRule(
            "equal_betas",
            "beta1 = beta2",
            "seed 003 (Orvieto & Gower 2025), Takeaway 2",
            lambda c: equal_betas(c.axis, c.fixed, c.batch_sizes),
            anchored=False,
        ),
        ScalingRule(
            "fixed_default",
            "default (0.9, 0.999)",
            "torch.optim.Adam defaults (Kingma & Ba 2015)",
            lambda c: fixed_default(c.axis, c.batch_sizes),
            anchored=False,
        ),
    )
}


def predict_all(context: SweepContext) -> dict[str, np.ndarray]:
    """Every rule's beta at ``context.batch_sizes`` (NaN where a rule gives none)."""
    _check_axis(context.axis)
    return {name: rule(context) for name, rule in RULES.items()}


def nearest_candidate(beta, candidates) -> tuple[np.ndarray, np.ndarray]:
    """Index of the candidate nearest to ``beta`` in log(1 - beta) (the scale betas are swept on)
    and whether ``beta`` lies outside the candidates' range (beyond 1 % in 1 - beta): then the
    comparison uses the end of the grid, not the rule's value. NaN beta gives index -1."""
    beta = np.asarray(beta, dtype=float)
    candidates = np.asarray(candidates, dtype=float)
    valid = np.isfinite(beta) & (beta < 1)
    log_gap = np.log(1 - np.where(valid, beta, 0.5))[..., None]
    grid = np.log(1 - candidates)
    index = np.abs(log_gap - grid).argmin(axis=-1)
    tolerance = np.log1p(0.01)
    off_grid = (log_gap[..., 0] < grid.min() - tolerance) | (
        log_gap[..., 0] > grid.max() + tolerance
    )
    return np.where(valid, index, -1), valid & off_grid


def _check_axis(axis: str) -> None:
    if axis not in AXES:
        raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
