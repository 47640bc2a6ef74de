"""Packed runs: K runs of the same shape trained in one process (issue 11).

The members of a pack share everything that fixes the shape and the order of the computation
(model, corpus, sequence length, batch and micro-batch size, epochs, evaluation, stopping and
schedule settings) and may differ only in ``PACKABLE_KEYS``: the seed (initialisation and data
order), lr, beta1, beta2 and eps (``pack_differences`` names the first other key that differs).

How it works:

* each member's model is built exactly as the single-run trainer builds it (``seed_everything``
  then ``build_model``), so its initial weights are the single run's; ``torch.func
  .stack_module_state`` stacks the K models' parameters into leaves of shape ``[K, ...]``;
* a training forward is ``torch.vmap`` over ``functional_call`` of one model skeleton, with each
  member's own batch (from its own epoch permutation); the backward of the sum of the members'
  losses leaves each member's own gradient in its slice of the stacked ``.grad``, because no
  operation mixes members;
* the micro-batch bookkeeping of B_simple (gradients.py) is done per member on the slices:
  the squared norm of every micro-batch contribution and of the accumulated gradient, per member;
* ``BatchedAdam`` is a transcription of ``adamnoise.optim.functional.adam_update_`` whose lr,
  beta1, beta2 and eps are ``[K]`` tensors, with a mask: a member that has stopped (diverged,
  passed its minimum) is no longer updated and no longer recorded, the others go on unchanged;
* evaluation is per member with ``functional_call`` on its slice of the weights (not vmapped): the
  same operations as the single run's evaluation, so equal weights give equal validation losses;
* one checkpoint per pack holds the stacked weights, the optimiser moments, and every member's
  B_simple averages, history, best weights and stop state; resuming it is bit-identical;
* each member's result file is the single run's format (``result_attrs`` of the trainer) plus
  the attrs ``pack_size`` and ``pack_index``.

Equality with single runs is to float tolerance, not bitwise: vmap turns the members' matmuls
into batched matmuls, whose kernels may sum in a different order (tests/test_training_packed.py
states the tolerance measured).

Models with dropout (txl-paper) train packed with ``vmap(randomness="different")``: each member
draws its own masks from the global generator, whose state the checkpoint holds, so a pack is
reproducible and resumes bit-identically, but its members' masks are not their single runs' (the
single run draws them from its own seed's stream): with dropout, packed equals sequential in
distribution only. Not packable (refused with ``ConfigError``): optimisers other than adam/adamw
and Gclip (``grad_clip_norm``).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from adamnoise.status import COMPLETED, DIVERGED, STOP_CAP, STOP_DIVERGED, STOP_PATIENCE
from adamnoise.training.batches import EpochSampler, SequenceCut, micro_batch_plan
from adamnoise.training.checkpoint import (
    checkpoint_file,
    load_checkpoint,
    remove_checkpoint,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from adamnoise.training.config import ConfigError, RunConfig, config_differences
from adamnoise.training.noise_scale import NoiseScaleEMA
from adamnoise.training.packing import check_packable
from adamnoise.training.progress import Progress
from adamnoise.training.result import History, build_dataset, perplexity
from adamnoise.training.trainer import (
    RunOutcome,
    _blame,
    evaluate,
    keeps_best_weights,
    measure_at_best,
    noise_scale_for,
    passed_minimum,
    record_evaluation,
    result_attrs,
    seed_everything,
    sequence_cuts,
    setup_torch,
    total_steps_of,
)

# --------------------------------------------------------------------------------------------
# the batched optimiser


class BatchedAdam:
    """Adam/AdamW over stacked parameters ``[K, ...]`` with per-member lr, beta1, beta2, eps.

    A transcription of ``adamnoise.optim.functional.adam_update_`` (read that docstring): the
    per-member scalars become ``[K, 1, ..., 1]`` float32 tensors computed in double precision
    first, as the single run's Python floats are, so that each member's update uses the same
    float32 constants. ``active`` masks members: an inactive member's weights and moments are
    left as they are.
    """

    def __init__(self, params: list[torch.Tensor], optimizer_cfgs: list[dict[str, Any]]):
        from adamnoise.optim.factory import optimizer_config

        configs = [optimizer_config(dict(cfg)) for cfg in optimizer_cfgs]
        shared = configs[0]
        self.params = params
        self.weight_decay = shared.weight_decay
        self.decoupled = shared.decoupled_weight_decay
        self.bias_correction = shared.bias_correction
        self.gradient_init = shared.init == "gradient"
        self.base_lr = [c.lr for c in configs]
        self.beta1 = [c.beta1 for c in configs]
        self.beta2 = [c.beta2 for c in configs]
        self.eps = [c.eps for c in configs]
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]

    def _per_member(self, values: list[float], like: torch.Tensor) -> torch.Tensor:
        shape = (len(values),) + (1,) * (like.dim() - 1)
        return torch.tensor(values, dtype=torch.float64).to(like.dtype).to(like.device).view(shape)

    @torch.no_grad()
    def step(self, lrs: list[float], active: torch.Tensor) -> None:
        """One update of every active member with learning rates ``lrs`` (schedule applied)."""
        self.step_count += 1
        t = self.step_count
        if self.bias_correction:
            correction1 = [1.0 - b**t for b in self.beta1]
            correction2 = [1.0 - b**t for b in self.beta2]
        else:
            correction1 = correction2 = [1.0] * len(lrs)
        step_size = [-lr / c for lr, c in zip(lrs, correction1, strict=True)]
        sqrt_correction2 = [math.sqrt(c) for c in correction2]
        decay = [1.0 - lr * self.weight_decay for lr in lrs]
        for param, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            grad = param.grad if param.grad is not None else torch.zeros_like(param)
            mask = active.view((-1,) + (1,) * (param.dim() - 1))
            if self.weight_decay and not self.decoupled:
                grad = grad.add(param, alpha=self.weight_decay)
            if self.gradient_init and t == 1:
                new_m, new_v = grad.clone(), grad * grad
            else:
                new_m = m.lerp(grad, self._per_member([1.0 - b for b in self.beta1], m))
                new_v = (v * self._per_member(self.beta2, v)).addcmul_(
                    grad * self._per_member([1.0 - b for b in self.beta2], v), grad
                )
            new_p = param
            if self.weight_decay and self.decoupled:
                new_p = param * self._per_member(decay, param)
            denom = (new_v.sqrt() / self._per_member(sqrt_correction2, v)).add_(
                self._per_member(self.eps, v)
            )
            new_p = new_p + (new_m / denom) * self._per_member(step_size, param)
            m.copy_(torch.where(mask, new_m, m))
            v.copy_(torch.where(mask, new_v, v))
            param.copy_(torch.where(mask, new_p, param))

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_count, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step"])
        for mine, saved in zip(self.exp_avg, state["exp_avg"], strict=True):
            mine.copy_(saved)
        for mine, saved in zip(self.exp_avg_sq, state["exp_avg_sq"], strict=True):
            mine.copy_(saved)


def _member_sq_norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Per-member squared Euclidean norm ``[K]`` of a list of stacked tensors, in float32."""
    norms = torch.stack([t.detach().flatten(1).float().norm(dim=1) for t in tensors])
    return norms.square().sum(0)


# --------------------------------------------------------------------------------------------
# the pack


@dataclass
class Member:
    """What one run of the pack records besides the shared weights."""

    config: RunConfig
    out: Path
    sampler: EpochSampler
    noise: NoiseScaleEMA
    history: History = field(default_factory=History)
    best_state: dict[str, torch.Tensor] | None = None
    active: bool = True
    stop_reason: str = STOP_CAP
    step: int = 0  # optimiser steps this member trained

    def state_dict(self) -> dict[str, Any]:
        return {
            "noise_scale": self.noise.state_dict(),
            "history": self.history.state_dict(),
            "best_state": self.best_state,
            "active": self.active,
            "stop_reason": self.stop_reason,
            "step": self.step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.load_state_dict(state["noise_scale"])
        self.history = History.from_state_dict(state["history"])
        self.best_state = state["best_state"]
        self.active = state["active"]
        self.stop_reason = state["stop_reason"]
        self.step = state["step"]


class PackedTrainer:
    """K runs of one shape (module docstring); ``run()`` trains them and writes K result files."""

    def __init__(
        self,
        configs: list[RunConfig],
        outs: list[str | Path],
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        progress_stream=None,
    ):
        from torch.func import stack_module_state

        from adamnoise.data.corpus import load_prepared
        from adamnoise.models import build_model
        from adamnoise.schedules import build_schedule

        if len(configs) != len(outs):
            raise ConfigError("", f"{len(configs)} run configs but {len(outs)} result files")
        check_packable(configs)
        self.configs = list(configs)
        self.outs = [Path(out) for out in outs]
        self.checkpoint_dir = (
            Path(checkpoint_dir) if checkpoint_dir else Path(f"{self.outs[0]}.pack.ckpt")
        )
        self.progress_stream = progress_stream
        shared = configs[0]
        t = shared.training
        self.device, self.autocast = setup_torch(t)

        with _blame("data.corpus", (OSError, ValueError)):
            corpus = load_prepared(shared.data.corpus)
        models = []
        for config in configs:
            seed_everything(config.training.seed)  # each member's init is its single run's
            with _blame("model", (ValueError, TypeError)):
                models.append(build_model(dict(config.model), len(corpus.vocab)).to(self.device))
        # dropout under vmap draws independent masks per member from the global generator
        # (saved in the checkpoint): reproducible, but not the single runs' masks
        self.has_dropout = any(
            isinstance(m, torch.nn.Dropout) and m.p > 0 for m in models[0].modules()
        )
        # the skeleton whose parameters functional_call replaces; member 0's model, unused weights
        self.model = models[0]
        self.model.train()
        params, buffers = stack_module_state(models)
        self.param_names = list(params)
        self.params = [params[name] for name in self.param_names]
        self.buffers = buffers
        self.num_parameters = sum(p.numel() for p in models[0].parameters())
        self.train_cut, self.valid_cut, self.test_cut = sequence_cuts(
            corpus, shared.data, self.model, self.device
        )
        self.members = []
        for config, out in zip(configs, self.outs, strict=True):
            try:
                sampler = EpochSampler(
                    self.train_cut.num_sequences, t.batch_size, config.training.seed
                )
            except ValueError as exc:
                raise ConfigError("training.batch_size", str(exc)) from exc
            noise = noise_scale_for(config.training, self.train_cut.num_sequences)
            self.members.append(Member(config, out, sampler, noise))
        self.steps_per_epoch = self.members[0].sampler.batches_per_epoch
        self.total_steps = total_steps_of(t.epochs, self.steps_per_epoch, t.max_steps)
        self.eval_interval = max(1, round(t.eval_every * self.steps_per_epoch))
        with _blame("optimizer", (ValueError, TypeError)):
            self.optimizer = BatchedAdam(self.params, [dict(c.optimizer) for c in configs])
        with _blame("schedule", (ValueError, TypeError)):
            self.schedule = build_schedule(dict(shared.schedule), self.total_steps)
        self.step = 0
        self.resumed_from: int | None = None

        def member_loss(member_params, member_buffers, inputs, targets):
            return torch.func.functional_call(
                self.model, (member_params, member_buffers), (inputs, targets)
            )

        randomness = "different" if self.has_dropout else "error"
        self._packed_loss = torch.vmap(member_loss, randomness=randomness)
        if resume:
            self._resume()

    # ----------------------------------------------------------------------------------------
    # checkpoints

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "run_configs": [c.to_dict() for c in self.configs],
            "step": self.step,
            "params": {n: p.detach() for n, p in zip(self.param_names, self.params, strict=True)},
            "optimizer": self.optimizer.state_dict(),
            "members": [m.state_dict() for m in self.members],
            "rng": rng_states(),
        }

    def save_checkpoint(self) -> Path:
        return save_checkpoint(self.checkpoint_dir, self.checkpoint_state())

    def _resume(self) -> None:
        state = load_checkpoint(self.checkpoint_dir)
        if state is None:
            return
        saved = state["run_configs"]
        current = [c.to_dict() for c in self.configs]
        differences = [] if len(saved) == len(current) else ["number of runs"]
        for old, new in zip(saved, current, strict=False):
            differences += config_differences(old, new)
        if differences:
            raise ConfigError(
                "",
                f"checkpoint in {self.checkpoint_dir} belongs to a different pack "
                f"(differs in {'; '.join(differences)}); remove it or run without --resume",
            )
        with torch.no_grad():
            for name, param in zip(self.param_names, self.params, strict=True):
                param.copy_(state["params"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        for member, member_state in zip(self.members, state["members"], strict=True):
            member.load_state_dict(member_state)
        self.step = state["step"]
        set_rng_states(state["rng"])
        self.resumed_from = self.step

    # ----------------------------------------------------------------------------------------
    # per-member pieces

    def member_params(self, index: int) -> dict[str, torch.Tensor]:
        return {n: p[index] for n, p in zip(self.param_names, self.params, strict=True)}

    def _member_loss(self, index: int, weights: dict[str, torch.Tensor]):
        """Per-token losses of member ``index`` with the given weights (one model, functional)."""
        buffers = {name: b[index] for name, b in self.buffers.items()}

        def loss_of(inputs, targets):
            return torch.func.functional_call(self.model, (weights, buffers), (inputs, targets))

        return loss_of

    def _evaluate_member(self, index: int, cut: SequenceCut) -> tuple[float, float]:
        loss_of = self._member_loss(index, self.member_params(index))
        return evaluate(
            self.model, loss_of, cut, self.configs[0].training.eval_batch_size, self.autocast
        )

    def _evaluate_and_record(self, index: int, progress: Progress) -> None:
        member = self.members[index]
        val = self._evaluate_member(index, self.valid_cut)
        improved = record_evaluation(
            member.history, self.step, self.steps_per_epoch, val, member.noise
        )
        if improved and keeps_best_weights(member.config.training):
            member.best_state = {
                name: value.detach().to("cpu", copy=True)
                for name, value in self.member_params(index).items()
            }
        progress.evaluation(self.step, perplexity(val[0]))

    # ----------------------------------------------------------------------------------------
    # the loop

    def train_step(self, active: torch.Tensor) -> list[tuple[float, bool]]:
        """One optimiser step of every member; updates only the ``active`` ones.

        Returns per member (loss, diverged). The gradient bookkeeping is that of
        ``GradientAccumulator.run``, per member on the slices of the stacked gradients.
        """
        t = self.configs[0].training
        batches = [
            self.train_cut.batch(m.sampler.batch_indices(self.step).to(self.device))
            for m in self.members
        ]
        inputs = torch.stack([b[0] for b in batches])  # [K, n, L]
        targets = torch.stack([b[1] for b in batches])
        batch_size = inputs.shape[1]
        slices, b_small = micro_batch_plan(batch_size, t.micro_batch)
        tokens = targets[0].numel()
        k = len(self.members)
        loss_total = torch.zeros(k, dtype=torch.float32, device=self.device)
        small_sq_total = torch.zeros(k, dtype=torch.float32, device=self.device)
        accumulated: list[torch.Tensor] | None = None
        before = [p.detach().clone() for p in self.params]
        for s in slices:
            for p in self.params:
                p.grad = None
            with warnings.catch_warnings():
                # SDPA has no batching rule on some backends: vmap loops over members there
                warnings.filterwarnings("ignore", message=".*batching rule.*")
                with self.autocast():
                    per_token = self._packed_loss(
                        dict(zip(self.param_names, self.params, strict=True)),
                        self.buffers,
                        inputs[:, s],
                        targets[:, s],
                    )
            loss = per_token.float().sum(dim=(1, 2)) / tokens  # [K]
            loss.sum().backward()  # members do not mix: each slice of .grad is its member's
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
            scale = batch_size / (s.stop - s.start)
            small_sq_total += _member_sq_norms(grads) * scale**2
            loss_total += loss.detach()
            if accumulated is None:
                accumulated = grads
            else:
                torch._foreach_add_(accumulated, grads)
        for p, g in zip(self.params, accumulated, strict=True):
            p.grad = g
        big_sq = _member_sq_norms(accumulated)
        multiplier = self.schedule(self.step)
        lrs = [base * multiplier for base in self.optimizer.base_lr]
        self.optimizer.step(lrs, active)
        for p in self.params:
            p.grad = None
        max_update = torch.stack(
            [
                (b - p.detach()).abs().flatten(1).amax(dim=1)
                for b, p in zip(before, self.params, strict=True)
            ]
        ).amax(0)
        # the one synchronisation of the step
        values = torch.stack([loss_total, small_sq_total / len(slices), big_sq, max_update])
        values = values.tolist()
        self.step += 1
        outcomes = []
        for i, member in enumerate(self.members):
            if not member.active:
                outcomes.append((math.nan, False))
                continue
            loss_i, small_i, big_i, update_i = (values[row][i] for row in range(4))
            lr = lrs[i]
            member.step = self.step
            member.noise.update(small_i, big_i, b_small, batch_size)
            member.history.record_step(
                loss=loss_i,
                lr=lr,
                grad_norm=math.sqrt(big_i) if big_i >= 0 else math.nan,
                max_update=update_i / lr if lr > 0 else math.nan,
                clip_fraction=0.0,  # Gclip is refused: nothing is ever clipped
            )
            member.history.train_tokens += batch_size * member.config.data.seq_len
            diverged = not math.isfinite(loss_i) or loss_i > t.divergence_loss
            outcomes.append((loss_i, diverged))
        return outcomes

    def _active_mask(self) -> torch.Tensor:
        return torch.tensor([m.active for m in self.members], device=self.device)

    def run(self) -> list[RunOutcome]:
        t = self.configs[0].training
        pack_name = f"pack[{', '.join(c.run_id for c in self.configs)}]"
        progress = Progress(
            pack_name,
            self.total_steps,
            self.steps_per_epoch,
            start_step=self.step,
            log_every=t.log_every,
            stream=self.progress_stream,
        )
        if self.resumed_from is not None:
            progress.message(f"resumed from step {self.resumed_from} ({self.checkpoint_dir})")
        elif checkpoint_file(self.checkpoint_dir).exists():
            progress.message(
                f"starting afresh; the checkpoint in {self.checkpoint_dir} is replaced"
            )
        started = time.perf_counter()
        wall_before = [m.history.wall_time_s for m in self.members]
        try:
            if self.step == 0:
                for i, member in enumerate(self.members):
                    if not member.history.eval_step:
                        self._evaluate_and_record(i, progress)
            while self.step < self.total_steps and any(m.active for m in self.members):
                step_started = time.perf_counter()
                outcomes = self.train_step(self._active_mask())
                elapsed = time.perf_counter() - step_started
                active_losses = []
                for i, (member, (loss, diverged)) in enumerate(
                    zip(self.members, outcomes, strict=True)
                ):
                    if not member.active:
                        continue
                    member.history.train_time_s += elapsed
                    active_losses.append(loss)
                    if diverged and member.history.diverged_at_step is None:
                        member.history.diverged_at_step = self.step
                        progress.message(f"{member.config.run_id} diverged at step {self.step}")
                        if t.stop_on_divergence:
                            member.active, member.stop_reason = False, STOP_DIVERGED
                            continue
                    if self.step % self.eval_interval == 0 or self.step == self.total_steps:
                        self._evaluate_and_record(i, progress)
                        if passed_minimum(member.history, member.config.training, self.step):
                            member.active, member.stop_reason = False, STOP_PATIENCE
                            progress.message(f"{member.config.run_id} passed its minimum")
                progress.step(self.step, min(active_losses) if active_losses else math.nan)
                if (
                    t.checkpoint_every
                    and self.step % t.checkpoint_every == 0
                    and self.step < self.total_steps
                ):
                    now = time.perf_counter() - started
                    for member, before in zip(self.members, wall_before, strict=True):
                        member.history.wall_time_s = before + now
                    self.save_checkpoint()
            for i, member in enumerate(self.members):
                if member.best_state is not None:
                    weights = {
                        n: w.to(self.device).requires_grad_() for n, w in member.best_state.items()
                    }
                    measure_at_best(
                        member.history, member.config.training, self.model,
                        self._member_loss(i, weights), list(weights.values()),
                        (self.train_cut, self.test_cut), self.autocast,
                    )  # fmt: skip
        finally:
            progress.close()
        now = time.perf_counter() - started
        outcomes = []
        for index, (member, before) in enumerate(zip(self.members, wall_before, strict=True)):
            member.history.wall_time_s = before + now
            status = COMPLETED if member.history.diverged_at_step is None else DIVERGED
            self._write_result(index, status)
            outcomes.append(RunOutcome(status, member.step, member.out, member.stop_reason))
        remove_checkpoint(self.checkpoint_dir)
        return outcomes

    def _write_result(self, index: int, status: str) -> None:
        from adamnoise.io import save_netcdf

        member = self.members[index]
        attrs = result_attrs(
            config=member.config,
            history=member.history,
            status=status,
            stop_reason=member.stop_reason,
            steps=member.step,
            steps_per_epoch=self.steps_per_epoch,
            train_sequences=self.train_cut.num_sequences,
            total_steps=self.total_steps,
            num_parameters=self.num_parameters,
            device=self.device,
        )
        attrs["pack_size"] = len(self.members)
        attrs["pack_index"] = index
        save_netcdf(build_dataset(member.history, attrs), member.out)


def train_pack(
    configs: list[RunConfig],
    outs: list[str | Path],
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress_stream=None,
) -> list[RunOutcome]:
    """Train the runs of one pack and write one result file per run; see the module docstring."""
    trainer = PackedTrainer(configs, outs, checkpoint_dir, resume, progress_stream)
    return trainer.run()
