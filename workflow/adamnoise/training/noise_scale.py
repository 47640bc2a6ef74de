"""The simple gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018, App. A.1).

For a batch of B samples drawn from a distribution of per-sample gradients with mean G and
covariance Sigma, the squared norm of the batch-mean gradient has expectation

    E |G_B|^2 = |G|^2 + tr(Sigma) / B.

Measuring |G_B|^2 at two batch sizes B_small < B_big and solving the two equations gives unbiased
estimates (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training", App. A.1):

    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

Finite training set. Batches are drawn without replacement from N sequences, so
E |G_B|^2 = |G|^2 + tr(Sigma) (1/B - 1/N) with Sigma the per-sequence covariance with divisor
N - 1. The tr(Sigma) estimate is unchanged, but the |G|^2 estimate above has expectation
|G|^2 - tr(Sigma)/N; ``unbiased_estimates(..., n_population=N)`` adds tr(Sigma)/N back. (At
B_simple = 10 and N = 256 the bias would be 4 %; at full batch it is the whole point: the step's
batch is the population.) ``exact_noise_scale`` (exact.py) computes |G|^2 and tr(Sigma) from all
N per-sequence gradients, the value these estimates are checked against.

In the trainer, B_big is the optimiser step's batch and B_small its micro-batches: |G_small|^2 is
the mean of the squared norms of the micro-batch gradients (each the gradient of that
micro-batch's mean loss) and |G_big|^2 the squared norm of the accumulated (full-batch) gradient.
If the micro-batches have unequal sizes B_j (a batch split into halves of odd size), the mean of
|G_j|^2 has expectation |G|^2 + tr(Sigma) * mean_j(1/B_j), so B_small is the harmonic mean of the
B_j. Single-step estimates are very noisy (the |G|^2 estimate can be negative), so, as in gpt-neox,
the two estimates are smoothed by separate bias-corrected exponential moving averages and
B_simple is the ratio of the averages. B_simple is measured in samples, i.e. sequences here.

One horizon in data, not in steps. The averages forget at a rate set by the *data* seen, not by
the number of steps: a step of B sequences multiplies the past by exp(-B / H), H the horizon in
sequences (``training.noise_scale_horizon`` epochs of N sequences). The estimate read at any
evaluation then averages the same amount of training (about the last H sequences) at every batch
size, where a per-step factor of 0.99 averages 100 steps: 800 sequences at b = 8 and 25,600 at
b = 256. Runs of different batch sizes are thus read over a comparable stretch of data; where in
training they are read (at the best evaluation) is the analysis' choice (aggregate.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def small_batch_size(micro_batch_sizes: Sequence[int]) -> float:
    """Effective B_small of a set of micro-batches: the harmonic mean of their sizes."""
    return len(micro_batch_sizes) / sum(1.0 / size for size in micro_batch_sizes)


def unbiased_estimates(
    small_sq_norm: float,
    big_sq_norm: float,
    b_small: float,
    b_big: float,
    n_population: float = math.inf,
):
    """(|G|^2, tr(Sigma)) from |G_small|^2 measured at b_small and |G_big|^2 at b_big, for batches
    drawn without replacement from ``n_population`` samples (inf: with replacement)."""
    noise_trace = (small_sq_norm - big_sq_norm) / (1.0 / b_small - 1.0 / b_big)
    grad_sq_norm = (b_big * big_sq_norm - b_small * small_sq_norm) / (b_big - b_small)
    return grad_sq_norm + noise_trace / n_population, noise_trace


class NoiseScaleEMA:
    """Bias-corrected exponential moving averages of the |G|^2 and tr(Sigma) estimates.

    Each update weighs the past by a factor ``decay`` (the horizon in data: ``decay_for``), and
    the averages are divided by the total weight 1 - prod(decays), the Adam-style bias
    correction, so the first values are not pulled towards zero. ``n_population`` is N, the
    number of training sequences batches are drawn from (``unbiased_estimates``).
    """

    def __init__(self, horizon: float, n_population: float = math.inf):
        self.horizon = horizon  # in samples (sequences)
        self.n_population = n_population
        self.count = 0
        self.weight = 0.0  # 1 - prod(decays): the bias correction
        self._grad_sq_norm = 0.0
        self._noise_trace = 0.0

    def decay_for(self, batch_size: float) -> float:
        """exp(-B / H): the weight left on the past after a step of B samples."""
        return math.exp(-batch_size / self.horizon)

    def update(self, small_sq_norm: float, big_sq_norm: float, b_small: float, b_big: float):
        if not b_small < b_big:
            return  # nothing to compare with: a batch of one sequence
        grad_sq_norm, noise_trace = unbiased_estimates(
            small_sq_norm, big_sq_norm, b_small, b_big, self.n_population
        )
        if not (math.isfinite(grad_sq_norm) and math.isfinite(noise_trace)):
            return  # a diverging step; keep the averages of the finite ones
        decay = self.decay_for(b_big)
        self.count += 1
        self.weight = decay * self.weight + (1 - decay)
        self._grad_sq_norm = decay * self._grad_sq_norm + (1 - decay) * grad_sq_norm
        self._noise_trace = decay * self._noise_trace + (1 - decay) * noise_trace

    @property
    def grad_sq_norm(self) -> float:
        """Averaged |G|^2 estimate (NaN before the first update)."""
        return self._grad_sq_norm / self.weight if self.count else math.nan

    @property
    def noise_trace(self) -> float:
        """Averaged tr(Sigma) estimate (NaN before the first update)."""
        return self._noise_trace / self.weight if self.count else math.nan

    @property
    def b_simple(self) -> float:
        """tr(Sigma) / |G|^2 of the averages (the bias corrections cancel)."""
        if not self.count or self._grad_sq_norm == 0.0:
            return math.nan
        return self._noise_trace / self._grad_sq_norm

    def state_dict(self) -> dict[str, float]:
        return {
            "horizon": self.horizon,
            "n_population": self.n_population,
            "count": self.count,
            "weight": self.weight,
            "grad_sq_norm": self._grad_sq_norm,
            "noise_trace": self._noise_trace,
        }

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.horizon = float(state["horizon"])
        self.n_population = float(state["n_population"])
        self.count = int(state["count"])
        self.weight = float(state["weight"])
        self._grad_sq_norm = float(state["grad_sq_norm"])
        self._noise_trace = float(state["noise_trace"])
