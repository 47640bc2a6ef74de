"""Optimisers without a torch.optim counterpart, against direct transcriptions of the seeds.

Each ``reference_*`` function below is written from the paper's pseudo-code, line by line, with
plain loops over the parameter tensors, independently of ``adamnoise.optim.functional``. Both sides
train the same small tanh regression for a few steps on the same mini-batches and must agree to
float32 rounding.
"""

from __future__ import annotations

import math

import pytest
import test_optim
import torch
from torch.testing import assert_close

from adamnoise.optim import OPTIMIZERS, build_optimizer, kadam_betas

torch.set_num_threads(1)

STEPS = 12
N_SAMPLES, N_IN, N_OUT, BATCH = 48, 5, 3, 8


# --------------------------------------------------------------------------------------------
# the problem: y ≈ tanh(x W + b) on a fixed random data set, mini-batch t drawn with seed t


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(N_SAMPLES, N_IN, generator=gen)
    y = torch.randn(N_SAMPLES, N_OUT, generator=gen)
    return x, y


X, Y = _data()


def initial_params() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return [torch.randn(N_IN, N_OUT, generator=gen), torch.randn(N_OUT, generator=gen)]


def batch_loss(params: list[torch.Tensor], t: int) -> torch.Tensor:
    rows = torch.randperm(N_SAMPLES, generator=torch.Generator().manual_seed(t))[:BATCH]
    weight, bias = params
    return ((torch.tanh(X[rows] @ weight + bias) - Y[rows]) ** 2).mean()


def grads_at(params: list[torch.Tensor], t: int) -> list[torch.Tensor]:
    leaves = [p.detach().requires_grad_(True) for p in params]
    return list(torch.autograd.grad(batch_loss(leaves, t), leaves))


def run_ours(cfg: dict, steps: int = STEPS) -> tuple[list[torch.Tensor], list[dict]]:
    params = [torch.nn.Parameter(p) for p in initial_params()]
    optimizer = build_optimizer(params, cfg)
    stats = []
    for t in range(1, steps + 1):
        optimizer.zero_grad()
        batch_loss(params, t).backward()
        optimizer.step()
        stats.append(optimizer.last_step_stats)
    return [p.detach() for p in params], stats


def gclip(grads: list[torch.Tensor], max_norm: float | None) -> tuple[list[torch.Tensor], float]:
    """Seed 003 §2 Gclip: g ← min(1, c/‖g‖) g with ‖g‖ over all parameters; returns (g, ‖g‖)."""
    norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
    if max_norm is None:
        return grads, norm
    factor = min(1.0, max_norm / norm)
    return [g * factor for g in grads], norm


# --------------------------------------------------------------------------------------------
# transcriptions


def reference_signum(lr, beta, weight_decay, gradient_init, max_norm, steps=STEPS):
    """Seed 003 §2 (Signum, with Gclip first): m_k = β m_{k−1} + (1−β) g_k, θ ← θ − η sign(m_k);
    decoupled decay (App. A.1.1); GI: m starts at the first gradient (App. B.5)."""
    params = initial_params()
    momentum = [torch.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        grads, _ = gclip(grads_at(params, t), max_norm)
        for i in range(len(params)):
            if gradient_init and t == 1:
                momentum[i] = grads[i].clone()
            else:
                momentum[i] = beta * momentum[i] + (1 - beta) * grads[i]
            params[i] = params[i] - lr * weight_decay * params[i] - lr * torch.sign(momentum[i])
    return params


def reference_signsgd(lr, weight_decay, steps=STEPS):
    """Seed 003 §2 (SignSGD): θ ← θ − η sign(g), decoupled decay."""
    params = initial_params()
    for t in range(1, steps + 1):
        grads = grads_at(params, t)
        for i in range(len(params)):
            params[i] = params[i] - lr * weight_decay * params[i] - lr * torch.sign(grads[i])
    return params


def reference_emasign(lr, beta, weight_decay, gradient_init, steps=STEPS):
    """Seed 003 §3.1 / App. A.1.1 (EMASign, momentum on SignSGD):
    m ← β m + (1−β) sign(g), θ ← θ − η m, decoupled decay."""
    params = initial_params()
    momentum = [torch.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        grads = grads_at(params, t)
        for i in range(len(params)):
            if gradient_init and t == 1:
                momentum[i] = torch.sign(grads[i])
            else:
                momentum[i] = beta * momentum[i] + (1 - beta) * torch.sign(grads[i])
            params[i] = params[i] - lr * weight_decay * params[i] - lr * momentum[i]
    return params


def reference_sgd_clipped(
    lr, momentum, dampening, max_norm, clip_value, clip_fraction, steps=STEPS
):
    """SGD with momentum (torch.optim.SGD's rule), Gclip on the raw gradient (seed 002 App. B, seed
    003 §2), then Cclip of the momentum, either at a fixed value (seed 003) or at the
    (1 − p)-quantile of |m_t| over all coordinates (seed 002 App. G.2 Algorithm 1):

        m_t ← β m_{t−1} + g_t;  τ_t = (1 − p)-quantile of |m_t|;
        m̂_t ← sign(m_t) · min(|m_t|, τ_t);  x_{t+1} ← x_t − η m̂_t

    Returns the parameters, the Gclip indicators and the fractions of clipped coordinates."""
    params = initial_params()
    buffers: list[torch.Tensor | None] = [None] * len(params)
    grad_clipped, clip_fractions = [], []
    for t in range(1, steps + 1):
        grads, norm = gclip(grads_at(params, t), max_norm)
        grad_clipped.append(float(max_norm is not None and norm > max_norm))
        for i in range(len(params)):
            if buffers[i] is None:
                buffers[i] = grads[i].clone()
            else:
                buffers[i] = momentum * buffers[i] + (1 - dampening) * grads[i]
        if clip_fraction is not None:
            all_magnitudes = torch.cat([b.abs().flatten() for b in buffers])
            tau = torch.quantile(all_magnitudes, 1 - clip_fraction)
        else:
            tau = clip_value
        n_clipped, n_total = 0, 0
        for i in range(len(params)):
            m = buffers[i]
            if tau is not None:
                n_clipped += int((m.abs() > tau).sum())
                m = torch.sign(m) * torch.minimum(m.abs(), torch.as_tensor(tau))
            n_total += m.numel()
            params[i] = params[i] - lr * m
        clip_fractions.append(n_clipped / n_total)
    return params, grad_clipped, clip_fractions


def reference_adam_ablation(
    lr, beta1, beta2, eps, bias_correction, gradient_init, max_norm, steps=STEPS
):
    """Seed 000 Def. 3.1 (Adam, ε on the corrected √v̂) with seed 003 App. B.5's ablations: no bias
    correction (−BC) and moving averages initialised at the first gradient and its square (GI)."""
    params = initial_params()
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        grads, _ = gclip(grads_at(params, t), max_norm)
        for j in range(len(params)):
            g = grads[j]
            if gradient_init and t == 1:
                m[j], v[j] = g.clone(), g * g
            else:
                m[j] = beta1 * m[j] + (1 - beta1) * g
                v[j] = beta2 * v[j] + (1 - beta2) * g * g
            if bias_correction:
                m_hat, v_hat = m[j] / (1 - beta1**t), v[j] / (1 - beta2**t)
            else:
                m_hat, v_hat = m[j], v[j]
            params[j] = params[j] - lr * m_hat / (torch.sqrt(v_hat) + eps)
    return params


def reference_kadam(lr, weight_decay, coupled, gammas, betas, eps, steps=STEPS):
    """Seed 004 App. S, Algorithm 1 (k-Adam update rule); γ_i momentum, β_i second-moment factors:

    g ← ∇L(θ_n);  if coupled: g ← g + λθ_n;  ĝ ← g
    for i = 1..k:  m_i ← γ_i m_i + (1 − γ_i) ĝ;  v_i ← β_i v_i + (1 − β_i) ĝ²;
                   C ← √(1 − β_i^{n+1}) / (1 − γ_i^{n+1});  ĝ ← C m_i / (√v_i + ε)
    u ← ĝ;  if not coupled: u ← u + λθ_n;  θ_{n+1} ← θ_n − η u;  n ← n + 1
    """
    k = len(gammas)
    params = initial_params()
    m = [[torch.zeros_like(p) for _ in range(k)] for p in params]
    v = [[torch.zeros_like(p) for _ in range(k)] for p in params]
    for n in range(steps):  # seed 004 counts steps from n = 0
        grads = grads_at(params, n + 1)
        for j in range(len(params)):
            g = grads[j]
            if coupled:
                g = g + weight_decay * params[j]
            g_hat = g
            for i in range(k):
                m[j][i] = gammas[i] * m[j][i] + (1 - gammas[i]) * g_hat
                v[j][i] = betas[i] * v[j][i] + (1 - betas[i]) * g_hat**2
                c = math.sqrt(1 - betas[i] ** (n + 1)) / (1 - gammas[i] ** (n + 1))
                g_hat = c * m[j][i] / (torch.sqrt(v[j][i]) + eps)
            u = g_hat
            if not coupled:
                u = u + weight_decay * params[j]
            params[j] = params[j] - lr * u
    return params


# --------------------------------------------------------------------------------------------
# tests


@pytest.mark.parametrize(
    "beta, weight_decay, init, max_norm",
    [(0.9, 0.0, "zero", None), (0.5, 0.1, "zero", 0.1), (0.95, 0.0, "gradient", 0.2)],
)
def test_signum_matches_seed_003(beta, weight_decay, init, max_norm):
    cfg = {"name": "signum", "lr": 0.01, "beta1": beta, "weight_decay": weight_decay, "init": init}
    ours, stats = run_ours({**cfg, "grad_clip_norm": max_norm})
    expected = reference_signum(0.01, beta, weight_decay, init == "gradient", max_norm)
    assert_close(ours, expected)
    if max_norm is None:
        assert stats[-1] == {}


def test_signum_gradient_init_differs_from_zero_init():
    # GI vs ZI only changes the weights of the first gradient in m, yet that must show
    zero, _ = run_ours({"name": "signum", "lr": 0.01, "beta1": 0.5, "init": "zero"})
    grad, _ = run_ours({"name": "signum", "lr": 0.01, "beta1": 0.5, "init": "gradient"})
    assert not torch.equal(zero[0], grad[0])


def test_signsgd_matches_seed_003():
    ours, _ = run_ours({"name": "signsgd", "lr": 0.01, "weight_decay": 0.05})
    assert_close(ours, reference_signsgd(0.01, 0.05))


@pytest.mark.parametrize("beta, init", [(0.9, "zero"), (0.7, "gradient")])
def test_emasign_matches_seed_003(beta, init):
    cfg = {"name": "emasign", "lr": 0.01, "beta1": beta, "weight_decay": 0.01, "init": init}
    ours, _ = run_ours(cfg)
    assert_close(ours, reference_emasign(0.01, beta, 0.01, init == "gradient"))
    # seed 003 App. A.1.1: Gclip before EMASign changes nothing ("the two methods are equal")
    clipped, stats = run_ours({**cfg, "grad_clip_norm": 0.05})
    assert all(s["grad_clipped"] == 1.0 for s in stats)
    assert torch.equal(ours[0], clipped[0]) and torch.equal(ours[1], clipped[1])


@pytest.mark.parametrize(
    "momentum, dampening, max_norm, clip_value, clip_fraction",
    [
        (0.9, 0.0, 0.4, None, None),  # SGD + Gclip (seed 002, seed 003)
        (0.98, 0.98, 0.4, 0.05, None),  # + Cclip at a fixed value (seed 003 Figure 8)
        (0.9, 0.0, None, None, 0.25),  # adaptive Cclip, seed 002 Algorithm 1
        (0.5, 0.0, 0.4, None, 0.1),
    ],
)
def test_sgd_clipping_matches_seeds(momentum, dampening, max_norm, clip_value, clip_fraction):
    cfg = {
        "name": "sgd",
        "lr": 0.3,
        "beta1": momentum,
        "dampening": dampening,
        "grad_clip_norm": max_norm,
        "coordinate_clip": clip_value,
        "coordinate_clip_fraction": clip_fraction,
    }
    ours, stats = run_ours(cfg)
    expected, grad_clipped, clip_fractions = reference_sgd_clipped(
        0.3, momentum, dampening, max_norm, clip_value, clip_fraction
    )
    assert_close(ours, expected)
    if max_norm is not None:
        assert [s["grad_clipped"] for s in stats] == grad_clipped
        assert 0.0 < sum(grad_clipped) < STEPS  # the test problem exercises both branches
    if clip_value is not None or clip_fraction is not None:
        assert [s["coordinate_clip_fraction"] for s in stats] == pytest.approx(clip_fractions)
        assert [s["clip_fraction"] for s in stats] == pytest.approx(clip_fractions)
        assert max(clip_fractions) > 0
    else:
        assert [s["clip_fraction"] for s in stats] == grad_clipped


def test_adaptive_cclip_clips_the_top_fraction():
    # 18 coordinates, p = 0.25: the linear-interpolated 0.75-quantile sits at position 12.75 of the
    # sorted magnitudes, so exactly the 5 largest (positions 13..17) lie above it
    _, stats = run_ours({"name": "sgd", "lr": 0.1, "coordinate_clip_fraction": 0.25}, steps=3)
    assert all(s["coordinate_clip_fraction"] == pytest.approx(5 / 18) for s in stats)


@pytest.mark.parametrize(
    "beta1, beta2, eps, bias_correction, init, max_norm",
    [
        (0.9, 0.999, 1e-8, False, "zero", None),  # Adam +ZI −BC
        (0.9, 0.95, 1e-6, False, "gradient", None),  # Adam +GI −BC
        (0.95, 0.95, 1e-8, True, "zero", 0.2),  # β1 = β2 with Gclip (seed 003 Table 2 setting)
    ],
)
def test_adam_ablations_match_seed_003(beta1, beta2, eps, bias_correction, init, max_norm):
    cfg = {
        "name": "adam",
        "lr": 0.01,
        "beta1": beta1,
        "beta2": beta2,
        "eps": eps,
        "bias_correction": bias_correction,
        "init": init,
        "grad_clip_norm": max_norm,
    }
    ours, _ = run_ours(cfg)
    expected = reference_adam_ablation(
        0.01, beta1, beta2, eps, bias_correction, init == "gradient", max_norm
    )
    assert_close(ours, expected)


def test_bias_correction_and_gradient_init_change_the_trajectory():
    base = {"name": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.99}
    runs = [
        run_ours(base)[0][0],
        run_ours({**base, "bias_correction": False})[0][0],
        run_ours({**base, "bias_correction": False, "init": "gradient"})[0][0],
    ]
    for a in range(3):
        for b in range(a + 1, 3):
            assert (runs[a] - runs[b]).abs().max() > 1e-4


def test_kadam_strategies_seed_004():
    # §4.2, for β̃ = 0.999 and k = 2, by hand: 1 − √0.001, 0.999², 0.999/2, 0.999
    assert kadam_betas(0.999, 2, "inverse_exp") == pytest.approx([0.96837722] * 2)
    assert kadam_betas(0.999, 2, "exp") == pytest.approx([0.998001] * 2)
    assert kadam_betas(0.999, 2, "scaled") == pytest.approx([0.4995] * 2)
    assert kadam_betas(0.999, 2, "naive") == pytest.approx([0.999] * 2)
    # App. Q: the inverse-exp strategy keeps the prefactor (1 − β_1)···(1 − β_k) = 1 − β̃
    assert math.prod(1 - b for b in kadam_betas(0.9, 3, "inverse_exp")) == pytest.approx(0.1)
    for strategy in ("inverse_exp", "exp", "scaled", "naive"):
        assert kadam_betas(0.9, 1, strategy) == pytest.approx([0.9])


@pytest.mark.parametrize(
    "k, strategy, coupled, eps",
    [
        (2, "inverse_exp", False, 1e-30),
        (2, "exp", True, 1e-30),
        (3, "scaled", False, 1e-8),
        (3, "naive", False, 1e-30),
        (1, "naive", True, 1e-3),  # ε on the uncorrected √v, as Algorithm 1 has it
    ],
)
def test_kadam_matches_seed_004_algorithm_1(k, strategy, coupled, eps):
    cfg = {
        "name": "kadam",
        "lr": 0.01,
        "k": k,
        "strategy": strategy,
        "beta1": 0.9,
        "beta2": 0.99,
        "eps": eps,
        "weight_decay": 0.1,
        "coupled_weight_decay": coupled,
    }
    ours, _ = run_ours(cfg)
    gammas, betas = kadam_betas(0.9, k, strategy), kadam_betas(0.99, k, strategy)
    assert_close(ours, reference_kadam(0.01, 0.1, coupled, gammas, betas, eps))


# --------------------------------------------------------------------------------------------
# every registered optimiser is held against something it did not write itself


# name -> the tests that compare it with torch.optim (test_optim.py) or a transcription of its
# paper (this module)
REFERENCE_TESTS = {
    "adam": ["test_optim.test_adam_matches_torch", "test_adam_ablations_match_seed_003"],
    "adamw": ["test_optim.test_adam_matches_torch"],
    "sgd": ["test_optim.test_sgd_matches_torch", "test_sgd_clipping_matches_seeds"],
    "signum": ["test_signum_matches_seed_003"],
    "signsgd": ["test_signsgd_matches_seed_003"],
    "emasign": ["test_emasign_matches_seed_003"],
    "rmsprop": [
        "test_optim.test_rmsprop_without_bias_correction_matches_torch_rmsprop",
        "test_optim.test_rmsprop_is_adamw_with_beta1_zero",
    ],
    "kadam": ["test_optim.test_kadam_with_k_1_is_adam", "test_kadam_matches_seed_004_algorithm_1"],
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_registered_optimizer_has_a_reference_test(name):
    assert name in REFERENCE_TESTS, (
        f"{name!r} is registered but nothing checks its update: add a test against torch.optim "
        "(test_optim.py) or a transcription of its paper (here), and name it in REFERENCE_TESTS"
    )
    for test in REFERENCE_TESTS[name]:
        module, _, function = test.rpartition(".")
        tests = vars(test_optim) if module else globals()
        assert callable(tests.get(function)), f"{test} does not exist"


@pytest.mark.parametrize("name, weight_decay", [("adam", 0.0), ("adam", 0.1), ("adamw", 0.1)])
def test_the_fused_kernel_the_trainer_takes_on_cuda_is_our_adam(name, weight_decay):
    """build_optimizer(fused=True) (single runs on CUDA) against our Adam, on torch's CPU fused
    kernel; the ablations and Gclip keep ours."""
    cfg = {"name": name, "lr": 3e-2, "beta1": 0.9, "beta2": 0.99, "eps": 1e-6,
           "weight_decay": weight_decay}  # fmt: skip
    fused_params = [torch.nn.Parameter(p) for p in initial_params()]
    fused = build_optimizer(fused_params, cfg, fused=True)
    assert fused.defaults["fused"] and fused.last_step_stats == {}
    for t in range(1, STEPS + 1):
        for p, g in zip(fused_params, grads_at(list(fused_params), t), strict=True):
            p.grad = g
        fused.step()
    ours, _ = run_ours(cfg)
    for a, b in zip(fused_params, ours, strict=True):
        assert_close(a.detach(), b, rtol=1e-5, atol=1e-6)
    for ablation in ({"bias_correction": False}, {"grad_clip_norm": 1.0}):
        kept = build_optimizer(
            [torch.nn.Parameter(torch.zeros(2))], {**cfg, **ablation}, fused=True
        )
        assert not getattr(kept, "defaults", {}).get("fused"), ablation
