"""Seed 000 Sec. 3.3: the concluding rule of thumb, ``adamnoise recommend``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from adamnoise.theory.implicit_bias import c_total, flip_batch_size, noise_ratio

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
