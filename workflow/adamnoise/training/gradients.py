"""One optimiser step's gradient: accumulation over micro-batches, and the cheap measurements on it.

Gradient accumulation. The step's loss is the mean per-token cross-entropy over the whole batch
of B sequences of L tokens. Micro-batch j (n_j sequences) contributes ``sum(per-token loss) /
(B * L)``, so the contributions add up to the full-batch mean and the accumulated ``.grad`` equals
the full-batch gradient (up to floating-point summation order).

B_simple without extra passes. Each micro-batch's backward writes into fresh ``.grad`` tensors
(they are set to ``None`` before it); we take the squared norm of that contribution c_j, then add
it into an accumulator that becomes ``.grad`` at the end. The gradient of micro-batch j's own
mean loss is G_j = c_j * B / n_j, so |G_j|^2 = |c_j|^2 (B / n_j)^2 (noise_scale.py).

All reductions stay on the device as 0-d tensors; the trainer fetches them with a single
synchronisation per step.

Stacked members (training.stacked): with ``stacked=True`` every parameter holds K members as rows
``[K, ...]``, a micro-batch is ``[K, n, L]`` and every value is a ``[K]`` tensor, one per member.
The rows never mix: the backward of the rows' summed losses gives each row its own gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch


class GradientAccumulator:
    """Forward/backward over a step's micro-batches; leaves the mean gradient in ``.grad``."""

    def __init__(self, params: Sequence[torch.nn.Parameter], stacked: bool = False):
        self.params = [p for p in params if p.requires_grad]
        self.stacked = stacked

    def _collect_grads(self) -> list[torch.Tensor]:
        # a parameter the loss does not reach (unused embedding rows are still reached) has no grad
        return [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]

    def run(
        self,
        loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        micro_batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Accumulate the full-batch mean gradient into ``.grad``.

        ``loss_of(inputs, targets)`` returns per-token losses ``[n, L]`` (stacked: ``[K, n, L]``).
        Returns float32 tensors ``(mean loss, mean_j |G_j|^2, |G_big|^2)``: 0-d, or ``[K]``.
        """
        sequence_dim = 1 if self.stacked else 0
        batch_size = sum(inputs.shape[sequence_dim] for inputs, _ in micro_batches)
        tokens = sum(targets.shape[sequence_dim:].numel() for _, targets in micro_batches)
        shape = self.params[0].shape[:1] if self.stacked else ()
        device = self.params[0].device
        accumulated: list[torch.Tensor] | None = None
        loss_total = torch.zeros(shape, dtype=torch.float32, device=device)
        small_sq_total = torch.zeros(shape, dtype=torch.float32, device=device)
        for inputs, targets in micro_batches:
            for p in self.params:
                p.grad = None
            with autocast():
                per_token = loss_of(inputs, targets)
            if self.stacked:
                loss = per_token.float().sum(dim=(1, 2)) / tokens
                loss.sum().backward()
            else:
                loss = per_token.float().sum() / tokens
                loss.backward()
            grads = self._collect_grads()
            contribution_sq = _row_sq_norms(grads) if self.stacked else _sq_norm(grads)
            scale = batch_size / inputs.shape[sequence_dim]  # G_j = c_j * B / n_j
            small_sq_total += contribution_sq * scale**2
            loss_total += loss.detach()
            if accumulated is None:
                accumulated = grads  # take ownership: the next backward writes fresh tensors
            else:
                torch._foreach_add_(accumulated, grads)
        for p, g in zip(self.params, accumulated, strict=True):
            p.grad = g
        big_sq = _row_sq_norms(accumulated) if self.stacked else _sq_norm(accumulated)
        return loss_total, small_sq_total / len(micro_batches), big_sq


def _sq_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Squared Euclidean norm of a list of tensors, in float32, as a 0-d device tensor."""
    norms = torch._foreach_norm(tensors)
    return torch.stack(norms).float().square().sum()


def _row_sq_norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Per-row squared Euclidean norm ``[K]`` of a list of stacked tensors, in float32."""
    norms = torch.stack([t.detach().flatten(1).float().norm(dim=1) for t in tensors])
    return norms.square().sum(0)


class UpdateTracker:
    """||theta_{n+1} - theta_n||_inf of one optimiser step (seed 004, Sec. 3, max-update).

    Keeps one persistent copy of the parameters: ``before()`` copies theta_n into it, ``after()``
    subtracts theta_{n+1} in place and takes the max-abs; no allocation per step. Stacked members:
    one max-abs per row, ``[K]``.
    """

    def __init__(self, params: Sequence[torch.nn.Parameter], stacked: bool = False):
        # detached views share storage with the parameters, so they see in-place updates
        self._values = [p.detach() for p in params if p.requires_grad]
        self._previous = [torch.empty_like(v) for v in self._values]
        self.stacked = stacked

    @torch.no_grad()
    def before(self) -> None:
        torch._foreach_copy_(self._previous, self._values)

    def release(self) -> None:
        """Free the copy (a run that has stopped measures no more updates)."""
        self._values, self._previous = [], []

    @torch.no_grad()
    def after(self) -> torch.Tensor:
        torch._foreach_sub_(self._previous, self._values)
        if self.stacked:
            rows = [change.abs().flatten(1).amax(dim=1) for change in self._previous]
            return torch.stack(rows).amax(0).float()
        norms = torch._foreach_norm(self._previous, ord=float("inf"))
        return torch.stack(norms).float().max()
