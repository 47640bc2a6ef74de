"""Functional optimiser cores: one parameter, its gradient and its state, updated in place.

Each function is the update rule of one seed, written out so that it can be read next to the paper.
The ``torch.optim.Optimizer`` wrappers in ``adamnoise.optim.optimizers`` only loop over parameters,
keep the state and call these. Notation: θ parameter, g gradient, η learning rate, λ weight decay,
t the 1-based number of the update being made (t = 1 for the first step).

Weight decay comes in two forms:

* coupled (L2): g ← g + λθ before the update, as ``torch.optim.Adam`` and ``torch.optim.SGD`` do;
* decoupled (Loshchilov & Hutter): θ ← θ − ηλθ next to the update, as ``torch.optim.AdamW``.
  Seed 003 (App. A) uses decoupled decay for every method it compares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from adamnoise.optim.configs import KADAM_STRATEGIES

# --------------------------------------------------------------------------------------------
# Clipping (seed 002 App. B, seed 003 §2)


def global_grad_norm(grads: Sequence[Tensor]) -> Tensor:
    """‖g‖₂ of all gradients taken together as one vector (0-dim tensor, stays on device)."""
    return torch.nn.utils.get_total_norm(grads, norm_type=2.0)


def gclip_scale(grad_norm: Tensor, max_norm: float) -> Tensor:
    """Gclip factor: g ← g · min(1, c / ‖g‖) rescales the raw gradient to norm at most c.

    Seed 003 §2 (Gclip "processes gradients fresh out of the backward pass"), seed 002 App. B
    ("global norm clipping ... on the raw gradient, as a first step", c = 1). Unlike
    ``torch.nn.utils.clip_grad_norm_`` no 1e-6 is added to ‖g‖. A zero gradient gives c/0 = inf,
    clamped to 1; a NaN norm gives NaN, so a diverged step stays visibly diverged.
    """
    return torch.clamp(max_norm / grad_norm, max=1.0)


def coordinate_quantile(tensors: Sequence[Tensor], q: float) -> Tensor:
    """The q-quantile of |x| over all coordinates of ``tensors`` (0-dim tensor).

    Same definition as ``torch.quantile(..., interpolation="linear")``: the value at position
    q·(N − 1) of the sorted magnitudes, interpolated linearly between its two neighbours. Written
    with one ``kthvalue`` (a selection, not a sort) because ``torch.quantile`` sorts and refuses
    inputs of more than 2**24 elements.
    """
    magnitudes = torch.cat([x.detach().abs().flatten() for x in tensors])
    position = q * (magnitudes.numel() - 1)
    below = math.floor(position)
    low = torch.kthvalue(magnitudes, below + 1).values  # order statistic `below`; counts from 1
    if position == below:
        return low
    # the next order statistic: `low` again if it is tied, else the smallest larger magnitude
    tied = (magnitudes <= low).sum() > below + 1
    larger = torch.where(magnitudes > low, magnitudes, torch.inf).min()
    high = torch.where(tied, low, larger)
    return torch.lerp(low, high, position - below)


# --------------------------------------------------------------------------------------------
# Adam / AdamW / RMSprop (seed 000 Def. 3.1, seed 003 §2 and App. B.5)


def adam_update_(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    bias_correction: bool = True,
    gradient_init: bool = False,
) -> None:
    """One Adam step (seed 000 Def. 3.1, Kingma & Ba 2014), in place.

        m_t = β1 m_{t−1} + (1 − β1) g_t
        v_t = β2 v_{t−1} + (1 − β2) g_t²
        θ_t = θ_{t−1} − η · (m_t / (1 − β1^t)) / (√(v_t / (1 − β2^t)) + ε)

    ε is added to the bias-corrected √v̂, as in seed 000 and ``torch.optim.Adam``.

    Seed 003's ablations (App. B.5, Table 3): ``bias_correction=False`` drops both (1 − β^t)
    factors (−BC); ``gradient_init=True`` initialises the moving averages at the first gradient,
    m_1 = g_1 and v_1 = g_1² (GI), instead of m_0 = v_0 = 0 (ZI, the default).

    RMSprop is this update with β1 = 0 (seed 003 §2: "RMSprop ... sets β1 = 0"; seed 004 App. C).
    Then m_t = g_t and the step is η g_t / (√(v_t/(1 − β2^t)) + ε); without bias correction this is
    exactly ``torch.optim.RMSprop(alpha=β2, eps=ε)`` (no momentum, not centred).
    """
    constants = adam_constants(
        step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay, bias_correction=bias_correction,
    )  # fmt: skip
    adam_apply_(
        param, grad, exp_avg, exp_avg_sq, constants, step=step, weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay, gradient_init=gradient_init,
    )  # fmt: skip


def adam_constants(
    *,
    step: int,
    lr: float | Tensor,
    beta1: float | Tensor,
    beta2: float | Tensor,
    eps: float | Tensor,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    bias_correction: bool = True,
) -> dict[str, float | Tensor]:
    """The numbers of one Adam step, formed once for all parameters: 1 − β1, β2, 1 − β2,
    √(1 − β2^t), ε, −η/(1 − β1^t) and the decoupled decay factor 1 − ηλ.

    Python floats for a run; for stacked runs (training/stacked.py) float64 tensors ``[K]``, one
    entry per run, which ``adam_apply_`` rounds once to the parameters' dtype — the rounding a
    Python float gets inside the kernel — so each row takes its single run's constants.
    """
    if bias_correction:
        correction1, correction2 = 1.0 - beta1**step, 1.0 - beta2**step
    else:
        correction1 = correction2 = 1.0
    if torch.is_tensor(correction2):
        sqrt_correction2 = correction2.sqrt()
    else:
        sqrt_correction2 = math.sqrt(correction2)
    return {
        "one_minus_beta1": 1.0 - beta1,
        "beta2": beta2,
        "one_minus_beta2": 1.0 - beta2,
        "sqrt_correction2": sqrt_correction2,
        "eps": eps,
        "step_size": -lr / correction1,
        "decay": 1.0 - lr * weight_decay if weight_decay and decoupled_weight_decay else 1.0,
    }


def adam_apply_(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    constants: dict[str, float | Tensor],
    *,
    step: int,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    gradient_init: bool = False,
) -> None:
    """``adam_update_`` with its ``adam_constants`` given: Python floats, or tensors already in
    the parameter's dtype and shaped to broadcast against it (``[K, 1, ..., 1]``)."""
    c = constants
    if weight_decay and not decoupled_weight_decay:
        grad = grad.add(param, alpha=weight_decay)
    if gradient_init and step == 1:
        exp_avg.copy_(grad)
        torch.mul(grad, grad, out=exp_avg_sq)
    else:
        exp_avg.lerp_(grad, c["one_minus_beta1"])
        exp_avg_sq.mul_(c["beta2"])
        if torch.is_tensor(c["one_minus_beta2"]):  # addcmul_ takes only a Python scale
            exp_avg_sq.addcmul_(grad * c["one_minus_beta2"], grad)
        else:
            exp_avg_sq.addcmul_(grad, grad, value=c["one_minus_beta2"])
    if weight_decay and decoupled_weight_decay:
        param.mul_(c["decay"])
    denom = (exp_avg_sq.sqrt() / c["sqrt_correction2"]).add_(c["eps"])
    if torch.is_tensor(c["step_size"]):
        param.add_((exp_avg / denom).mul_(c["step_size"]))
    else:
        param.addcdiv_(exp_avg, denom, value=c["step_size"])


# --------------------------------------------------------------------------------------------
# SGD with momentum, Cclip (seed 002 §2 and App. G.2 Algorithm 1, seed 003 §2 and App. A.1.1)


def sgd_momentum_(
    momentum_buffer: Tensor,
    grad: Tensor,
    *,
    momentum: float,
    dampening: float,
    first_step: bool,
) -> None:
    """Momentum of SGD, in place: b_1 = g_1, then b_t = μ b_{t−1} + (1 − τ) g_t.

    This is ``torch.optim.SGD``'s convention (first buffer = the gradient itself, whatever the
    dampening τ). With τ = 0 it is seed 002 Algorithm 1's m_t = β m_{t−1} + g_t from m_0 = 0; with
    τ = μ it is the normalised EMA of seed 003 eq. (1) after the first step.
    """
    if first_step:
        momentum_buffer.copy_(grad)
    else:
        momentum_buffer.mul_(momentum).add_(grad, alpha=1.0 - dampening)


def clipped_descent_(
    param: Tensor, direction: Tensor, *, lr: float, clip_value: float | Tensor | None
) -> Tensor | None:
    """θ ← θ − η · clip(d, −c, c); returns how many coordinates were clipped (0-dim tensor).

    Cclip of seed 003 §2 ("coordinate clipping ... after momentum is applied") with a fixed c, and
    of seed 002 Algorithm 1 (m̂_t = sign(m_t) · min(|m_t|, τ_t)) with c = τ_t a quantile of |m_t|.
    ``clip_value=None`` is plain SGD with momentum and returns None.
    """
    if clip_value is None:
        param.add_(direction, alpha=-lr)
        return None
    clipped = torch.clamp(direction, min=-clip_value, max=clip_value)
    param.add_(clipped, alpha=-lr)
    return (direction.abs() > clip_value).sum()


# --------------------------------------------------------------------------------------------
# Sign methods (seed 003 §2 and App. A.1.1)


def sign_momentum_update_(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    *,
    sign_first: bool,
    first_step: bool,
    lr: float,
    beta: float,
    weight_decay: float = 0.0,
    gradient_init: bool = False,
) -> None:
    """Signum (``sign_first=False``) or EMASign (``sign_first=True``), in place.

    Signum (Bernstein et al. 2018; seed 003 §2), sign of the momentum:

        m_t = β m_{t−1} + (1 − β) g_t          (m_0 = 0, or m_1 = g_1 with gradient_init)
        θ_t = θ_{t−1} − ηλ θ_{t−1} − η sign(m_t)

    Global-norm clipping changes Signum (clipped gradients are averaged, then the sign is taken;
    seed 003 App. A.1.1).

    EMASign, "momentum on SignSGD" (seed 003 §3.1 and App. A.1.1), the momentum of the signs:

        m_t = β m_{t−1} + (1 − β) sign(g_t)   (m_0 = 0, or m_1 = sign(g_1) with gradient_init)
        θ_t = θ_{t−1} − ηλ θ_{t−1} − η m_t

    The order of sign and EMA is the reverse of Signum. Global-norm clipping has no effect here,
    because sign(c·g) = sign(g) for c > 0 (seed 003 App. A.1.1: "the two methods are equal").
    """
    value = torch.sign(grad) if sign_first else grad
    if gradient_init and first_step:
        exp_avg.copy_(value)
    else:
        exp_avg.lerp_(value, 1.0 - beta)
    _decayed_descent_(param, exp_avg if sign_first else torch.sign(exp_avg), lr, weight_decay)


def signsgd_update_(param: Tensor, grad: Tensor, *, lr: float, weight_decay: float = 0.0) -> None:
    """SignSGD (seed 003 §2: Adam with β1 = β2 = 0, ε = 0), in place.

    θ_t = θ_{t−1} − ηλ θ_{t−1} − η sign(g_t)
    """
    _decayed_descent_(param, torch.sign(grad), lr, weight_decay)


def _decayed_descent_(param: Tensor, direction: Tensor, lr: float, weight_decay: float) -> None:
    """θ ← θ − ηλθ − η d: decoupled weight decay, then the step (the sign methods)."""
    if weight_decay:
        param.mul_(1.0 - lr * weight_decay)
    param.add_(direction, alpha=-lr)


# --------------------------------------------------------------------------------------------
# k-Adam (seed 004 §4.2, App. Q, App. S Algorithm 1)


def kadam_betas(beta: float, k: int, strategy: str) -> list[float]:
    """The k per-level moving-average factors from one base value β̃ (seed 004 §4.2).

    (1) inverse_exp: β_i = 1 − (1 − β̃)^(1/k)   — keeps (1 − β_1)···(1 − β_k) = 1 − β̃ (App. Q)
    (2) exp:         β_i = β̃^k
    (3) scaled:      β_i = β̃ / k
    (4) naive:       β_i = β̃
    All levels share one value; for k = 1 every strategy gives β̃ (and k-Adam is Adam).
    """
    if strategy == "inverse_exp":
        level_beta = 1.0 - (1.0 - beta) ** (1.0 / k)
    elif strategy == "exp":
        level_beta = beta**k
    elif strategy == "scaled":
        level_beta = beta / k
    elif strategy == "naive":
        level_beta = beta
    else:
        raise ValueError(f"unknown k-Adam strategy {strategy!r}; allowed: {KADAM_STRATEGIES}")
    return [level_beta] * k


def kadam_update_(
    param: Tensor,
    grad: Tensor,
    exp_avgs: Tensor,
    exp_avg_sqs: Tensor,
    *,
    step: int,
    lr: float,
    momentum_betas: Sequence[float],
    second_moment_betas: Sequence[float],
    eps: float,
    weight_decay: float = 0.0,
    coupled_weight_decay: bool = False,
) -> None:
    """One k-Adam step (seed 004 eq. (10) and App. S Algorithm 1), in place.

    Seed 004 writes γ for the momentum factor (our β1) and β for the second-moment factor (our β2).
    ``exp_avgs`` and ``exp_avg_sqs`` hold the k levels stacked along dim 0. With u⁽⁰⁾ = g (plus λθ
    when the decay is coupled), for i = 1..k:

        m⁽ⁱ⁾ ← γ_i m⁽ⁱ⁾ + (1 − γ_i) u⁽ⁱ⁻¹⁾
        v⁽ⁱ⁾ ← β_i v⁽ⁱ⁾ + (1 − β_i) (u⁽ⁱ⁻¹⁾)²
        u⁽ⁱ⁾ = C_i m⁽ⁱ⁾ / (√v⁽ⁱ⁾ + ε),   C_i = √(1 − β_i^t) / (1 − γ_i^t)

    and θ ← θ − η (u⁽ᵏ⁾ + λθ) when the decay is decoupled, θ ← θ − η u⁽ᵏ⁾ otherwise.

    Note where ε sits: on the *uncorrected* √v, so for k = 1 and ε > 0 this differs slightly from
    Adam (whose ε is added to √v̂ = √v/√(1 − β2^t)); with seed 004's default ε = 1e-30, 1-Adam is
    Adam ("Note that 1-Adam is equivalent to Adam", §4.2).
    """
    if weight_decay and coupled_weight_decay:
        grad = grad.add(param, alpha=weight_decay)
    update = grad
    for level, (gamma, beta) in enumerate(zip(momentum_betas, second_moment_betas, strict=True)):
        m, v = exp_avgs[level], exp_avg_sqs[level]
        m.lerp_(update, 1.0 - gamma)
        v.mul_(beta).addcmul_(update, update, value=1.0 - beta)
        correction = math.sqrt(1.0 - beta**step) / (1.0 - gamma**step)
        update = (m * correction) / (v.sqrt() + eps)
    if weight_decay and not coupled_weight_decay:
        update = update.add(param, alpha=weight_decay)
    param.add_(update, alpha=-lr)
