"""The exact noise scale of a training set at one point: all N per-sequence gradients.

The trainer estimates B_simple = tr(Sigma) / |G|^2 cheaply from each step's micro-batches and
averages the estimates over a horizon of data (noise_scale.py). That estimate is a shortcut; this
module is the slow truth it is checked against: at fixed weights theta,

    G = (1/N) sum_i g_i,   tr(Sigma) = (1/(N-1)) sum_i |g_i - G|^2,   B_simple = tr(Sigma)/|G|^2,

with g_i the gradient of sequence i's mean token loss (the training loss of a batch is the mean
of these over its sequences). It costs N forward/backward passes of one sequence, so it is
computed once per run (at the weights of the best evaluation, ``training.exact_noise_scale``)
and only where N is small (the CPU defaults; at N = 16,317 it is a few GPU-minutes).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from adamnoise.training.batches import SequenceCut
from adamnoise.training.runtime import host_values


@dataclass(frozen=True)
class ExactNoise:
    grad_sq_norm: float  # |G|^2 of the mean gradient over all N sequences
    noise_trace: float  # tr(Sigma), per-sequence covariance with divisor N - 1
    num_sequences: int

    @property
    def b_simple(self) -> float:
        return self.noise_trace / self.grad_sq_norm if self.grad_sq_norm > 0 else math.nan


def exact_noise_scale(
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    params: Sequence[torch.Tensor],
    cut: SequenceCut,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> ExactNoise:
    """|G|^2 and tr(Sigma) from the per-sequence gradients of every training sequence of ``cut``.

    ``loss_of(inputs, targets)`` returns per-token losses ``[n, L]`` and depends on ``params``
    (tensors with ``requires_grad``); sums are kept in float64 on the parameters' device.
    """
    n = cut.num_sequences
    if n < 2:
        raise ValueError("the exact noise scale needs at least two training sequences")
    device = params[0].device
    total = [torch.zeros_like(p, dtype=torch.float64) for p in params]
    total_sq = torch.zeros((), dtype=torch.float64, device=device)
    for index in range(n):
        inputs, targets = cut.batch(torch.tensor([index], device=cut.stream.device))
        with autocast():
            loss = loss_of(inputs, targets).float().mean()
        grads = torch.autograd.grad(loss, list(params), allow_unused=True)
        grads = [
            torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)
        ]
        grads64 = [g.double() for g in grads]
        torch._foreach_add_(total, grads64)
        total_sq += sum(g.square().sum() for g in grads64)
    mean_sq = sum(t.square().sum() for t in total) / n**2  # |G|^2
    trace = (total_sq - n * mean_sq) / (n - 1)
    grad_sq_norm, noise_trace = host_values(torch.stack([mean_sq, trace]))
    return ExactNoise(grad_sq_norm, noise_trace, n)
