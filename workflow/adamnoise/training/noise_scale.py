"""The simple gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018, App. A.1).

For a batch of B samples drawn from a distribution of per-sample gradients with mean G and
covariance Sigma, the squared norm of the batch-mean gradient has expectation

    E |G_B|^2 = |G|^2 + tr(Sigma) / B.

Measuring |G_B|^2 at two batch sizes B_small < B_big and solving the two equations gives unbiased
estimates (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training", App. A.1):

    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

In the trainer, B_big is the optimiser step's batch and B_small its micro-batches: |G_small|^2 is
the mean of the squared norms of the micro-batch gradients (each the gradient of that
micro-batch's mean loss) and |G_big|^2 the squared norm of the accumulated (full-batch) gradient.
If the micro-batches have unequal sizes B_j (a batch split into halves of odd size), the mean of
|G_j|^2 has expectation |G|^2 + tr(Sigma) * mean_j(1/B_j), so B_small is the harmonic mean of the
B_j. Single-step estimates are very noisy (the |G|^2 estimate can be negative), so, as in gpt-neox,
the two estimates are smoothed by separate bias-corrected exponential moving averages and
B_simple is the ratio of the averages. B_simple is measured in samples, i.e. sequences here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def small_batch_size(micro_batch_sizes: Sequence[int]) -> float:
    """Effective B_small of a set of micro-batches: the harmonic mean of their sizes."""
    return len(micro_batch_sizes) / sum(1.0 / size for size in micro_batch_sizes)


def unbiased_estimates(
    small_sq_norm: float, big_sq_norm: float, b_small: float, b_big: float
) -> tuple[float, float]:
    """(|G|^2, tr(Sigma)) from |G_small|^2 measured at b_small and |G_big|^2 at b_big."""
    grad_sq_norm = (b_big * big_sq_norm - b_small * small_sq_norm) / (b_big - b_small)
    noise_trace = (small_sq_norm - big_sq_norm) / (1.0 / b_small - 1.0 / b_big)
    return grad_sq_norm, noise_trace


class NoiseScaleEMA:
    """Bias-corrected exponential moving averages of the |G|^2 and tr(Sigma) estimates.

    After t updates with factor beta, the average is sum_s (1-beta) beta^(t-s) x_s / (1 - beta^t),
    the Adam-style bias correction, so the first values are not pulled towards zero.
    """

    def __init__(self, beta: float):
        self.beta = beta
        self.count = 0
        self._grad_sq_norm = 0.0
        self._noise_trace = 0.0

    def update(self, small_sq_norm: float, big_sq_norm: float, b_small: float, b_big: float):
        if not b_small < b_big:
            return  # nothing to compare with: a batch of one sequence
        grad_sq_norm, noise_trace = unbiased_estimates(small_sq_norm, big_sq_norm, b_small, b_big)
        if not (math.isfinite(grad_sq_norm) and math.isfinite(noise_trace)):
            return  # a diverging step; keep the averages of the finite ones
        self.count += 1
        self._grad_sq_norm = self.beta * self._grad_sq_norm + (1 - self.beta) * grad_sq_norm
        self._noise_trace = self.beta * self._noise_trace + (1 - self.beta) * noise_trace

    @property
    def grad_sq_norm(self) -> float:
        """Averaged |G|^2 estimate (NaN before the first update)."""
        return self._grad_sq_norm / self._correction() if self.count else math.nan

    @property
    def noise_trace(self) -> float:
        """Averaged tr(Sigma) estimate (NaN before the first update)."""
        return self._noise_trace / self._correction() if self.count else math.nan

    @property
    def b_simple(self) -> float:
        """tr(Sigma) / |G|^2 of the averages (the bias corrections cancel)."""
        if not self.count or self._grad_sq_norm == 0.0:
            return math.nan
        return self._noise_trace / self._grad_sq_norm

    def _correction(self) -> float:
        return 1.0 - self.beta**self.count if self.beta > 0 else 1.0

    def state_dict(self) -> dict[str, float]:
        return {
            "beta": self.beta,
            "count": self.count,
            "grad_sq_norm": self._grad_sq_norm,
            "noise_trace": self._noise_trace,
        }

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.beta = float(state["beta"])
        self.count = int(state["count"])
        self._grad_sq_norm = float(state["grad_sq_norm"])
        self._noise_trace = float(state["noise_trace"])
