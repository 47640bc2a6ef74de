"""``torch.optim.Optimizer`` wrappers around the functional cores in ``adamnoise.optim.functional``.

The wrappers hold hyperparameters in ``param_groups`` (so ``LambdaLR`` can scale ``lr``) and the
per-parameter state in ``state`` (so ``state_dict()``/``load_state_dict()`` restore a run bit for
bit; the step count is a Python int per parameter). Every optimiser here can clip the raw
gradient to a global norm first (Gclip, ``grad_clip_norm``), because seeds 002 and 003 do so for
SGD, Adam and the sign methods alike.

Instrumentation: after each ``step()``, ``optimizer.last_step_stats`` is a dict of floats:

* ``grad_norm``, ``grad_clipped`` (1.0 or 0.0) when Gclip is on;
* ``coordinate_clip_fraction`` (fraction of coordinates clipped) when Cclip is on (SGD);
* ``clip_fraction``: the Cclip fraction if Cclip is on, else the Gclip indicator;
* nothing (an empty dict) when no clipping is configured.

The numbers are accumulated on the device and read back with a single ``.tolist()`` per step, and
only when there is something to report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from adamnoise.optim.functional import (
    adam_update_,
    clipped_descent_,
    coordinate_quantile,
    gclip_scale,
    global_grad_norm,
    kadam_betas,
    kadam_update_,
    sgd_momentum_,
    sign_momentum_update_,
    signsgd_update_,
)

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class InstrumentedOptimizer(torch.optim.Optimizer):
    """Base class: optional Gclip of the raw gradient, ``last_step_stats``, the step loop.

    Subclasses implement ``_update(grad_scale)``, which applies their rule to every parameter that
    has a gradient (multiplying it by ``grad_scale`` when that is not None) and returns a dict of
    0-dim tensors to report.
    """

    def __init__(
        self, params: ParamsT, defaults: dict[str, Any], grad_clip_norm: float | None = None
    ):
        super().__init__(params, defaults)
        # a global norm spans all parameter groups, so it is a property of the optimiser
        self.grad_clip_norm = grad_clip_norm
        self.last_step_stats: dict[str, float | Tensor] = {}
        # True: ``last_step_stats`` keeps 0-d device tensors (no synchronisation of its own)
        self.stats_on_device = False

    def _params_with_grad(self) -> Iterator[tuple[dict[str, Any], Tensor]]:
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                yield group, param

    @staticmethod
    def _scaled(grad: Tensor, grad_scale: Tensor | None) -> Tensor:
        # p.grad itself is never modified: the trainer may still read it after the step
        return grad if grad_scale is None else grad * grad_scale

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        stats: dict[str, Tensor] = {}
        grad_scale = None
        if self.grad_clip_norm is not None:
            grads = [param.grad for _, param in self._params_with_grad()]
            if grads:
                grad_norm = global_grad_norm(grads)
                grad_scale = gclip_scale(grad_norm, self.grad_clip_norm)
                stats["grad_norm"] = grad_norm
                stats["grad_clipped"] = (grad_norm > self.grad_clip_norm).float()
        stats.update(self._update(grad_scale))
        if "coordinate_clip_fraction" in stats:
            stats["clip_fraction"] = stats["coordinate_clip_fraction"]
        elif "grad_clipped" in stats:
            stats["clip_fraction"] = stats["grad_clipped"]
        if stats and self.stats_on_device:  # the trainer fetches them with its own copy
            self.last_step_stats = {k: v.detach().float().reshape(()) for k, v in stats.items()}
        elif stats:  # one device-to-host copy for all numbers of this step
            values = torch.stack([v.detach().float().reshape(()) for v in stats.values()]).tolist()
            self.last_step_stats = dict(zip(stats, values, strict=True))
        else:
            self.last_step_stats = {}
        return loss

    def _update(self, grad_scale: Tensor | None) -> dict[str, Tensor]:
        raise NotImplementedError


class Adam(InstrumentedOptimizer):
    """Adam / AdamW with seed 003's ablations: see ``functional.adam_update_``.

    ``decoupled_weight_decay=False`` is ``torch.optim.Adam`` (L2 added to the gradient), ``True`` is
    ``torch.optim.AdamW``. ``gradient_init=True`` (GI) needs ``bias_correction=False``: the bias
    correction compensates for the zero initialisation, which GI does not have.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        bias_correction: bool = True,
        gradient_init: bool = False,
        grad_clip_norm: float | None = None,
    ):
        if gradient_init and bias_correction:
            raise ValueError("gradient_init=True needs bias_correction=False (seed 003 Table 3)")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            bias_correction=bias_correction,
            gradient_init=gradient_init,
        )
        super().__init__(params, defaults, grad_clip_norm)

    def _update(self, grad_scale: Tensor | None) -> dict[str, Tensor]:
        for group, param in self._params_with_grad():
            state = self.state[param]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["step"] += 1
            beta1, beta2 = group["betas"]
            adam_update_(
                param,
                self._scaled(param.grad, grad_scale),
                state["exp_avg"],
                state["exp_avg_sq"],
                step=state["step"],
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
                bias_correction=group["bias_correction"],
                gradient_init=group["gradient_init"],
            )
        return {}


class RMSprop(Adam):
    """RMSprop as seed 003 runs it: Adam with β1 = 0 and decoupled weight decay (App. A.1.1,
    "RMSprop implemented using the AdamW Pytorch class").

    With ``bias_correction=False`` and no weight decay it equals
    ``torch.optim.RMSprop(lr, alpha=beta2, eps=eps)``; with bias correction (the default, as in
    AdamW) it equals ``torch.optim.AdamW(lr, betas=(0, beta2), eps=eps)``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        bias_correction: bool = True,
        grad_clip_norm: float | None = None,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=(0.0, beta2),
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=True,
            bias_correction=bias_correction,
            grad_clip_norm=grad_clip_norm,
        )


class SGDMomentum(InstrumentedOptimizer):
    """SGD with momentum (``torch.optim.SGD`` with nesterov off, coupled weight decay), plus Cclip.

    Cclip clips the momentum coordinate-wise before the step, either at a fixed value
    (``coordinate_clip``, seed 003 §2) or at the (1 − p)-quantile of |m_t| over all parameters
    (``coordinate_clip_fraction`` = p, seed 002 App. G.2 Algorithm 1, "clip the top p% of the
    largest momentum coordinates"). The order is Gclip → weight decay → momentum → Cclip → step.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        momentum: float = 0.9,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        coordinate_clip: float | None = None,
        coordinate_clip_fraction: float | None = None,
        grad_clip_norm: float | None = None,
    ):
        if coordinate_clip is not None and coordinate_clip_fraction is not None:
            raise ValueError("give coordinate_clip or coordinate_clip_fraction, not both")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
        super().__init__(params, defaults, grad_clip_norm)
        # like Gclip, an adaptive threshold is a quantile over all groups: optimiser-wide settings
        self.coordinate_clip = coordinate_clip
        self.coordinate_clip_fraction = coordinate_clip_fraction

    def _update(self, grad_scale: Tensor | None) -> dict[str, Tensor]:
        # phase 1: momentum of every parameter (Algorithm 1 needs all of m_t before τ_t)
        steps = []
        for group, param in self._params_with_grad():
            grad = self._scaled(param.grad, grad_scale)
            if group["weight_decay"]:
                grad = grad.add(param, alpha=group["weight_decay"])
            state = self.state[param]
            first_step = "momentum_buffer" not in state
            if first_step:
                state["momentum_buffer"] = torch.empty_like(param)
            sgd_momentum_(
                state["momentum_buffer"],
                grad,
                momentum=group["momentum"],
                dampening=group["dampening"],
                first_step=first_step,
            )
            steps.append((group["lr"], param, state["momentum_buffer"]))
        if not steps:
            return {}

        # phase 2: the clipping threshold, then the descent step
        if self.coordinate_clip_fraction is not None:
            threshold = coordinate_quantile(
                [b for _, _, b in steps], 1 - self.coordinate_clip_fraction
            )
        else:
            threshold = self.coordinate_clip
        clipped = []
        for lr, param, buffer in steps:
            count = clipped_descent_(param, buffer, lr=lr, clip_value=threshold)
            if count is not None:
                clipped.append(count)
        if not clipped:
            return {}
        total = sum(buffer.numel() for _, _, buffer in steps)
        return {"coordinate_clip_fraction": torch.stack(clipped).sum() / total}


class Signum(InstrumentedOptimizer):
    """Signum, sign of the momentum (seed 003 §2): see ``functional.sign_momentum_update_``."""

    _sign_first = False  # EMASign has the same state and takes the sign before the momentum

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        gradient_init: bool = False,
        grad_clip_norm: float | None = None,
    ):
        defaults = dict(
            lr=lr, momentum=momentum, weight_decay=weight_decay, gradient_init=gradient_init
        )
        super().__init__(params, defaults, grad_clip_norm)

    def _update(self, grad_scale: Tensor | None) -> dict[str, Tensor]:
        for group, param in self._params_with_grad():
            state = self.state[param]
            first_step = "exp_avg" not in state
            if first_step:
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            sign_momentum_update_(
                param,
                self._scaled(param.grad, grad_scale),
                state["exp_avg"],
                sign_first=self._sign_first,
                first_step=first_step,
                lr=group["lr"],
                beta=group["momentum"],
                weight_decay=group["weight_decay"],
                gradient_init=group["gradient_init"],
            )
        return {}


class EMASign(Signum):
    """EMASign, momentum of the signs (seed 003 §3.1): see ``functional.sign_momentum_update_``."""

    _sign_first = True


class SignSGD(InstrumentedOptimizer):
    """SignSGD (seed 003 §2): θ ← θ − ηλθ − η sign(g). Stateless."""

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        weight_decay: float = 0.0,
        grad_clip_norm: float | None = None,
    ):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay), grad_clip_norm)

    def _update(self, grad_scale: Tensor | None) -> dict[str, Tensor]:
        for group, param in self._params_with_grad():
            signsgd_update_(
                param,
                self._scaled(param.grad, grad_scale),
                lr=group["lr"],
                weight_decay=group["weight_decay"],
            )
        return {}


class KAdam(InstrumentedOptimizer):
    """k-Adam (seed 004 §4.2, App. S Algorithm 1): see ``functional.kadam_update_``.

    ``betas = (β̃1, β̃2)`` are the base momentum and second-moment factors (seed 004's γ̃ and β̃);
    ``strategy`` turns each into k per-level factors (``functional.kadam_betas``). Weight decay is
    decoupled unless ``coupled_weight_decay``; seed 004 finds 2-Adam with the inverse-exp strategy
    and decoupled decay best (§4.2), hence the defaults. ε = 1e-30 is Algorithm 1's default.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        k: int = 2,
        betas: tuple[float, float] = (0.9, 0.999),
        strategy: str = "inverse_exp",
        eps: float = 1e-30,
        weight_decay: float = 0.0,
        coupled_weight_decay: bool = False,
        grad_clip_norm: float | None = None,
    ):
        kadam_betas(betas[0], k, strategy)  # rejects an unknown strategy now, not at step 1
        defaults = dict(
            lr=lr,
            k=k,
            betas=tuple(betas),
            strategy=strategy,
            eps=eps,
            weight_decay=weight_decay,
            coupled_weight_decay=coupled_weight_decay,
        )
        super().__init__(params, defaults, grad_clip_norm)

    def _update(self, grad_scale: Tensor | None) -> dict[str, Tensor]:
        for group, param in self._params_with_grad():
            k = group["k"]
            state = self.state[param]
            if not state:
                state["step"] = 0
                state["exp_avgs"] = param.new_zeros((k, *param.shape))
                state["exp_avg_sqs"] = param.new_zeros((k, *param.shape))
            state["step"] += 1
            momentum_beta, second_moment_beta = group["betas"]
            kadam_update_(
                param,
                self._scaled(param.grad, grad_scale),
                state["exp_avgs"],
                state["exp_avg_sqs"],
                step=state["step"],
                lr=group["lr"],
                momentum_betas=kadam_betas(momentum_beta, k, group["strategy"]),
                second_moment_betas=kadam_betas(second_moment_beta, k, group["strategy"]),
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                coupled_weight_decay=group["coupled_weight_decay"],
            )
        return {}
