"""B_simple estimator (McCandlish et al. 2018) on synthetic gradients of known mean and covariance.

Per-sample gradients are g_i = mu + C z_i with z_i standard normal, so the true |G|^2 = |mu|^2,
tr(Sigma) = ||C||_F^2 and B_simple = tr(Sigma) / |mu|^2 are known exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adamnoise.training.gradients import GradientAccumulator
from adamnoise.training.noise_scale import NoiseScaleEMA, small_batch_size, unbiased_estimates

DIM = 12


def synthetic_problem(seed: int, b_simple: float):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=DIM)
    mu /= np.linalg.norm(mu)  # |G|^2 = 1
    C = rng.normal(size=(DIM, DIM))
    C *= math.sqrt(b_simple) / np.linalg.norm(C)  # tr(Sigma) = ||C||_F^2 = b_simple
    return rng, mu, C


def step_norms(rng, mu, C, b_big: int, b_small: int, steps: int):
    """|G_small|^2 (mean over the step's micro-batches) and |G_big|^2 of ``steps`` steps."""
    k = b_big // b_small
    samples = mu + rng.normal(size=(steps, b_big, DIM)) @ C.T
    micro_means = samples.reshape(steps, k, b_small, DIM).mean(axis=2)
    small = (micro_means**2).sum(-1).mean(-1)
    big = (samples.mean(axis=1) ** 2).sum(-1)
    return small, big


def test_estimates_are_unbiased():
    rng, mu, C = synthetic_problem(0, b_simple=40.0)
    small, big = step_norms(rng, mu, C, b_big=32, b_small=4, steps=40000)
    grad_sq, trace = unbiased_estimates(small, big, 4, 32)
    # means of 40000 independent estimates: standard errors ~1 % of the true values
    assert np.mean(grad_sq) == pytest.approx(1.0, rel=0.05)
    assert np.mean(trace) == pytest.approx(40.0, rel=0.03)
    # the plain norms are biased upwards by tr(Sigma)/B, which the estimator removes
    assert np.mean(big) == pytest.approx(1.0 + 40.0 / 32, rel=0.03)


@pytest.mark.parametrize(("b_simple", "b_big", "b_small"), [(40.0, 32, 4), (300.0, 256, 64)])
def test_ema_ratio_converges_to_true_b_simple(b_simple, b_big, b_small):
    rng, mu, C = synthetic_problem(1, b_simple)
    small, big = step_norms(rng, mu, C, b_big, b_small, steps=6000)
    ema = NoiseScaleEMA(horizon=1000 * b_big)  # about the last 1000 steps
    for s, g in zip(small, big, strict=True):
        ema.update(s, g, b_small, b_big)
    assert ema.count == 6000
    assert ema.b_simple == pytest.approx(b_simple, rel=0.15)
    assert ema.noise_trace == pytest.approx(b_simple, rel=0.1)
    assert ema.b_simple == pytest.approx(ema.noise_trace / ema.grad_sq_norm)


def test_ema_bias_correction_and_state():
    ema = NoiseScaleEMA(horizon=40.0)
    assert math.isnan(ema.b_simple) and math.isnan(ema.grad_sq_norm)
    # a constant estimate is returned exactly from the first update on (bias-corrected)
    small, big = 3.0, 1.0  # B_small 2, B_big 4: |G|^2 = (4 - 6)/2 = -1, tr = 2/(1/2 - 1/4) = 8
    for _ in range(3):
        ema.update(small, big, 2, 4)
        assert ema.grad_sq_norm == pytest.approx(-1.0)
        assert ema.noise_trace == pytest.approx(8.0)
    ema.update(math.nan, 1.0, 2, 4)  # a diverging step is skipped
    assert ema.count == 3
    ema.update(1.0, 1.0, 1, 1)  # a one-sequence batch has nothing to compare
    assert ema.count == 3
    clone = NoiseScaleEMA(horizon=1.0)
    clone.load_state_dict(ema.state_dict())
    assert clone.state_dict() == ema.state_dict()
    assert clone.b_simple == ema.b_simple == pytest.approx(-8.0)


def test_horizon_is_an_amount_of_data_not_of_steps():
    """After the same number of sequences, runs of any batch size weigh the past alike."""
    horizon = 256.0
    by_batch = {}
    for b_big, steps in ((8, 64), (32, 16), (256, 2)):  # 512 sequences each
        ema = NoiseScaleEMA(horizon)
        for _ in range(steps):
            ema.update(3.0, 1.0, b_big / 2, b_big)
        by_batch[b_big] = ema.weight
    assert by_batch[8] == pytest.approx(1 - math.exp(-512 / horizon))
    assert by_batch[32] == pytest.approx(by_batch[8])
    assert by_batch[256] == pytest.approx(by_batch[8])
    # a per-step factor would not: 0.99 per step leaves 0.99**64 after 64 steps, 0.99**2 after 2
    assert NoiseScaleEMA(horizon).decay_for(8) ** 64 == pytest.approx(math.exp(-2.0))


@pytest.mark.parametrize(("b_big", "b_small"), [(16, 4), (64, 32), (64, 16)])
def test_estimates_unbiased_without_replacement(b_big, b_small):
    """Batches drawn without replacement from N samples: with n_population = N the estimates are
    unbiased for the exact |G|^2 and tr(Sigma) (divisor N - 1) of those N samples, including a
    full batch (b_big = N); without the correction |G|^2 is low by tr(Sigma)/N."""
    n = 64
    rng, mu, C = synthetic_problem(3, b_simple=20.0)
    samples = mu + rng.normal(size=(n, DIM)) @ C.T
    exact_grad_sq = float((samples.mean(axis=0) ** 2).sum())
    exact_trace = float(((samples - samples.mean(axis=0)) ** 2).sum() / (n - 1))
    draws = 20000
    order = np.argsort(rng.random((draws, n)), axis=1)[:, :b_big]  # without replacement
    batches = samples[order]  # [draws, b_big, DIM]
    micro = batches.reshape(draws, b_big // b_small, b_small, DIM).mean(axis=2)
    small = (micro**2).sum(-1).mean(-1)
    big = (batches.mean(axis=1) ** 2).sum(-1)
    grad_sq, trace = unbiased_estimates(small, big, b_small, b_big, n_population=n)
    se_grad = np.std(grad_sq) / math.sqrt(draws)
    se_trace = np.std(trace) / math.sqrt(draws)
    assert abs(np.mean(trace) - exact_trace) < 4 * se_trace + 1e-9
    assert abs(np.mean(grad_sq) - exact_grad_sq) < 4 * se_grad + 1e-9
    plain, _ = unbiased_estimates(small, big, b_small, b_big)
    se_plain = np.std(plain) / math.sqrt(draws)
    assert abs(np.mean(plain) - (exact_grad_sq - exact_trace / n)) < 4 * se_plain + 1e-9
    assert exact_trace / n > 10 * se_plain  # the correction is resolved by these draws


def test_harmonic_mean_small_batch():
    assert small_batch_size([4, 4, 4]) == 4
    assert small_batch_size([4, 3]) == pytest.approx(2 / (1 / 4 + 1 / 3))


class LinearSamples(torch.nn.Module):
    """Per-sample loss <theta, x_i>: the per-sample gradient is exactly x_i (any theta)."""

    def __init__(self, samples: torch.Tensor):
        super().__init__()
        self.samples = samples
        self.theta = torch.nn.Parameter(torch.zeros(samples.shape[1], dtype=torch.float64))

    def forward(self, inputs, targets):
        return self.samples[inputs] @ self.theta  # [n, 1] "per-token" losses


@pytest.mark.parametrize("micro", [2, 4, 8])
def test_accumulator_measures_micro_and_full_batch_gradients(micro):
    torch.set_num_threads(1)
    rng, mu, C = synthetic_problem(2, b_simple=10.0)
    samples = mu + rng.normal(size=(8, DIM)) @ C.T
    model = LinearSamples(torch.from_numpy(samples))
    indices = torch.arange(8)[:, None]
    from adamnoise.training.batches import split_micro_batches

    slices = split_micro_batches(8, micro)
    loss, small_sq, big_sq = GradientAccumulator(list(model.parameters())).run(
        model, [(indices[s], indices[s]) for s in slices]
    )
    micro_means = [samples[s].mean(axis=0) for s in slices]
    assert small_sq.item() == pytest.approx(np.mean([(m**2).sum() for m in micro_means]), rel=1e-6)
    assert big_sq.item() == pytest.approx((samples.mean(axis=0) ** 2).sum(), rel=1e-6)
    np.testing.assert_allclose(model.theta.grad.numpy(), samples.mean(axis=0), rtol=1e-12)
    assert loss.item() == 0.0  # theta = 0
