"""The stacked engine: K runs of one shape as one model with parameters ``[K, ...]`` (vmap).

* each member's model is built exactly as its single run's (trainer.py), and
  ``torch.func.stack_module_state`` stacks the K models' parameters into leaves ``[K, ...]``;
* a training forward is ``torch.vmap`` over ``functional_call`` of one model skeleton, with each
  member's own batch; the backward of the sum of the members' losses leaves each member's own
  gradient in its row of the stacked ``.grad``, because no operation mixes members;
* gradient accumulation, the micro-batch bookkeeping of B_simple and the max-update are
  gradients.py's, as in a single run, taken per row (``stacked=True``);
* ``StackedAdam`` applies our Adam (``adamnoise.optim.functional``: ``adam_constants`` once per
  step, ``adam_apply_`` per parameter, as ``adam_update_`` does for a run) to the stacked tensors,
  with per-member lr, beta1, beta2 and eps held on the device as ``[K]`` float64 tensors built
  once; on CPU single runs use the same code (on CUDA they take torch's fused Adam);
* a member that stops (diverged, passed its minimum) leaves the stack: the rows of the others are
  copied into smaller tensors, so a job costs what its members still train, not K times its
  longest member;
* evaluation is per member with ``functional_call`` on its row (not vmapped): the same operations
  as the single run's evaluation, so equal weights give equal validation losses.

Equality with single runs is to float tolerance, not bitwise: vmap turns the members' matmuls into
batched matmuls, whose kernels may sum in another order (tests/test_training_packed.py states the
tolerance measured).

Only runs without randomness in training are stacked: vmap would draw every member's dropout
masks from one generator by position in the stack, so a run's noise would depend on its pack.
``stackable`` says which jobs qualify; the others train in the sequential engine (sequential.py).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch

from adamnoise.optim.functional import adam_apply_, adam_constants
from adamnoise.training.gradients import GradientAccumulator, UpdateTracker
from adamnoise.training.runtime import blame, offload

# optimisers whose update StackedAdam applies (adam_apply_), without Gclip's global norm
STACKABLE_OPTIMIZERS = ("adam", "adamw")


def has_dropout(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())


def stackable(configs, model: torch.nn.Module) -> str | None:
    """Why these runs cannot share one stacked model (None: they can)."""
    if len(configs) < 2:
        return "a single run"
    if has_dropout(model):
        return "dropout: each run draws its own masks in sequence"
    if getattr(model, "loss_chunk_tokens", None):
        return "loss_chunk_tokens: activation checkpointing does not run under vmap"
    if configs[0].training.compile:
        return "compile: each run's model is compiled in sequence"
    for config in configs:
        name = config.optimizer.get("name")
        if name not in STACKABLE_OPTIMIZERS:
            return f"optimizer {name!r}: only {', '.join(STACKABLE_OPTIMIZERS)} are stacked"
        if config.optimizer.get("grad_clip_norm") is not None:
            return "optimizer.grad_clip_norm: Gclip takes a norm over all of a run's parameters"
    return None


class StackedAdam:
    """Adam/AdamW over stacked parameters ``[K, ...]``: our Adam with per-row constants."""

    def __init__(self, params: list[torch.Tensor], optimizer_cfgs: list[dict[str, Any]]):
        from adamnoise.optim.factory import optimizer_config

        self.configs = configs = [optimizer_config(dict(cfg)) for cfg in optimizer_cfgs]
        shared = configs[0]
        self.options = dict(
            weight_decay=shared.weight_decay,
            decoupled_weight_decay=shared.decoupled_weight_decay,
            bias_correction=shared.bias_correction,
            gradient_init=shared.init == "gradient",
        )
        self.params = params
        device = params[0].device
        # float64, as the single run's Python floats: each constant is rounded once per step
        self.hyper = torch.tensor(
            [[c.lr, c.beta1, c.beta2, c.eps] for c in configs], dtype=torch.float64
        ).to(device)
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]

    def keep(self, rows: torch.Tensor, params: list[torch.Tensor]) -> None:
        """Keep only ``rows`` (members still training); ``params`` are the new stacked leaves."""
        self.params = params
        self.hyper = self.hyper[rows]
        self.exp_avg = [m[rows] for m in self.exp_avg]
        self.exp_avg_sq = [v[rows] for v in self.exp_avg_sq]

    @torch.no_grad()
    def step(self, lr_multiplier: float) -> None:
        """One update of every row, its learning rate scaled by the schedule's multiplier."""
        self.step_count += 1
        lr, beta1, beta2, eps = (self.hyper[:, i] for i in range(4))
        # the step's constants, [K] float64 on the device, rounded once to the parameters' dtype
        constants = adam_constants(
            step=self.step_count, lr=lr * lr_multiplier, beta1=beta1, beta2=beta2, eps=eps,
            weight_decay=self.options["weight_decay"],
            decoupled_weight_decay=self.options["decoupled_weight_decay"],
            bias_correction=self.options["bias_correction"],
        )  # fmt: skip
        dtype = self.params[0].dtype
        constants = {k: (v.to(dtype) if torch.is_tensor(v) else v) for k, v in constants.items()}
        for param, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            shape = (-1,) + (1,) * (param.dim() - 1)
            grad = param.grad if param.grad is not None else torch.zeros_like(param)
            adam_apply_(
                param, grad, m, v,
                {k: (c.view(shape) if torch.is_tensor(c) else c) for k, c in constants.items()},
                step=self.step_count,
                weight_decay=self.options["weight_decay"],
                decoupled_weight_decay=self.options["decoupled_weight_decay"],
                gradient_init=self.options["gradient_init"],
            )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_count, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step"])
        for mine, saved in zip(self.exp_avg, state["exp_avg"], strict=True):
            mine.copy_(saved)
        for mine, saved in zip(self.exp_avg_sq, state["exp_avg_sq"], strict=True):
            mine.copy_(saved)


class StackedEngine:
    """The members as rows of one stacked model (module docstring); trainer.py's interface."""

    kind = "stacked"
    optimizer_kernel = "adamnoise-stacked"

    def __init__(self, configs, models, device, autocast, total_steps: int):
        from torch.func import stack_module_state

        from adamnoise.schedules import build_schedule

        modules = [model for model, _ in models]
        self.device, self.autocast = device, autocast
        # the skeleton whose parameters functional_call replaces; member 0's model, unused weights
        self.model = modules[0]
        self.model.train()
        params, buffers = stack_module_state(modules)
        self.names = list(params)
        self.params = [params[name] for name in self.names]
        self.member_buffers = buffers  # [K, ...] by member index, for evaluation
        self.buffers = buffers  # by row, for the stacked forward
        self.rows = list(range(len(modules)))  # member index of each row
        self.num_parameters = sum(p.numel() for p in modules[0].parameters())
        with blame("optimizer", (ValueError, TypeError)):
            self.optimizer = StackedAdam(self.params, [dict(c.optimizer) for c in configs])
        with blame("schedule", (ValueError, TypeError)):
            self.schedule = build_schedule(dict(configs[0].schedule), total_steps)
        self.schedule_step = 0
        self.base_lrs = [c.lr for c in self.optimizer.configs]  # Python floats, for the record

        def member_loss(member_params, member_buffers, inputs, targets):
            return torch.func.functional_call(
                self.model, (member_params, member_buffers), (inputs, targets)
            )

        self._stacked_loss = torch.vmap(member_loss, randomness="error")
        self._bind_measurements()

    def step(self, batches: dict[int, list[tuple[torch.Tensor, torch.Tensor]]]):
        """One optimiser step of every row; ``batches`` holds each row's micro-batches, in the
        order of ``rows``. Returns the ``[rows, 5]`` values of ``SequentialEngine.step``."""
        if list(batches) != self.rows:
            raise RuntimeError(f"batches for {list(batches)}, but the stack holds {self.rows}")
        per_member = list(batches.values())
        micro_batches = [
            (
                torch.stack([mb[j][0] for mb in per_member]),
                torch.stack([mb[j][1] for mb in per_member]),
            )
            for j in range(len(per_member[0]))
        ]  # [K, n_j, L] per micro-batch
        self.update_tracker.before()
        loss, small_sq, big_sq = self.accumulator.run(
            self._stacked_loss_of, micro_batches, self.autocast
        )
        multiplier = self.schedule(self.schedule_step)
        lrs = [self.base_lrs[member] * multiplier for member in self.rows]
        self.optimizer.step(multiplier)
        self.schedule_step += 1
        for p in self.params:
            p.grad = None
        max_update = self.update_tracker.after()
        clip = torch.zeros_like(loss)  # Gclip is never stacked: nothing is clipped
        return torch.stack([loss, small_sq, big_sq, max_update, clip], dim=1), lrs

    def _stacked_loss_of(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-token losses ``[K, n, L]`` of every row on its own micro-batch."""
        with warnings.catch_warnings():
            # SDPA has no batching rule on some backends: vmap loops over members there
            warnings.filterwarnings("ignore", message=".*batching rule.*")
            weights = dict(zip(self.names, self.params, strict=True))
            return self._stacked_loss(weights, self.buffers, inputs, targets)

    def _bind_measurements(self) -> None:
        """The step's gradient accumulation and max-update, over the rows the stack now holds."""
        self.accumulator = GradientAccumulator(self.params, stacked=True)
        self.update_tracker = UpdateTracker(self.params, stacked=True)

    # evaluation and the best weights

    def _row_weights(self, index: int) -> dict[str, torch.Tensor]:
        row = self.rows.index(index)
        return {n: p[row] for n, p in zip(self.names, self.params, strict=True)}

    def _loss_with(self, index: int, weights: dict[str, torch.Tensor]):
        buffers = {name: b[index] for name, b in self.member_buffers.items()}

        def loss_of(inputs, targets):
            return torch.func.functional_call(self.model, (weights, buffers), (inputs, targets))

        return loss_of

    def evaluator(self, index: int):
        return self.model, self._loss_with(index, self._row_weights(index))

    def best_weights(self, index: int) -> dict[str, torch.Tensor]:
        return {name: offload(value) for name, value in self._row_weights(index).items()}

    def at_weights(self, index: int, weights: dict[str, torch.Tensor]):
        weights = {n: w.to(self.device).requires_grad_() for n, w in weights.items()}
        return self.model, self._loss_with(index, weights), list(weights.values())

    def random_stream(self, index: int):
        return contextlib.nullcontext()  # stacked runs draw no random numbers

    def drop(self, index: int) -> None:
        """Member ``index`` leaves the stack: the other rows are copied into smaller leaves."""
        keep_rows = [row for row, member in enumerate(self.rows) if member != index]
        self._keep(keep_rows)

    def _keep(self, keep_rows: list[int]) -> None:
        if not keep_rows:
            self.rows = []
            self.update_tracker.release()
            return
        rows = torch.tensor(keep_rows, device=self.device)
        with torch.no_grad():
            self.params = [p.detach()[rows].clone().requires_grad_() for p in self.params]
        self.optimizer.keep(rows, self.params)
        self._bind_measurements()
        self.rows = [self.rows[r] for r in keep_rows]
        members = torch.tensor(self.rows, device=self.device)
        self.buffers = {name: b[members] for name, b in self.member_buffers.items()}

    # checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {
            "rows": list(self.rows),
            "params": {n: p.detach() for n, p in zip(self.names, self.params, strict=True)},
            "optimizer": self.optimizer.state_dict(),
            "schedule_step": self.schedule_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._keep([self.rows.index(member) for member in state["rows"]])
        if not self.rows:
            return
        with torch.no_grad():
            for name, param in zip(self.names, self.params, strict=True):
                param.copy_(state["params"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule_step = int(state["schedule_step"])
