"""The run loop: ``adamnoise train RUN.yaml --out RESULT.nc [--resume]`` and, for K runs of one
shape in one job, ``adamnoise train-pack``. One loop drives the runs of a job (its members) and an
engine does each step's computation: ``SequentialEngine`` (sequential.py; every single run, and
packs that cannot be stacked) or ``StackedEngine`` (stacked.py; dropout-free Adam runs as one
vmapped model). Everything a run records is decided here, once, for both.

One optimiser step (batches.py for the data protocol):

1. take the step's batch from the epoch's permutation (``m`` batches of about ``N/m`` sequences
   per epoch, batches.py);
2. accumulate the full-batch mean gradient over micro-batches, measuring the micro-batch and
   full-batch gradient norms for B_simple on the way (gradients.py, noise_scale.py);
3. copy theta_n, let the optimiser update, measure ||theta_{n+1} - theta_n||_inf (seed 004);
4. fetch loss, norms and max-update with one device synchronisation, check for divergence;
5. evaluate every ``eval_every`` epochs (and before the first step); checkpoint every
   ``checkpoint_minutes`` of wall-clock time (``--checkpoint-minutes``, 20 by default; a job
   setting, not part of the run's config, because it does not change a number), every
   ``checkpoint_every`` steps if that is set, and on SIGTERM (a Slurm time limit or
   preemption): the job then exits with status 143 and ``--resume`` continues it.

Evaluations happen at steps 0, k, 2k, ... with k = max(1, round(eval_every * m)) (m batches per
epoch) and at the last step. A diverged run (NaN/inf loss or loss above ``divergence_loss``)
stops, and its result file is written with status ``diverged``; it is not an error. With
``stop_on_divergence: false`` it trains on to its cap instead, recording every step (NaN where the
weights have become NaN): seed 004 Fig. 1 reads the max-update of runs in the unstable region B-
at every step to the end. Either way the result records the first divergent step
(``diverged_at_step``, -1 if none) and how many steps were trained after it
(``steps_after_divergence``).

Stopping (seed 000 trains "until the model overfits"). The cap is ``epochs`` (and ``max_steps``).
With ``patience = p`` the run stops at the first evaluation that is the p-th in a row without a
new minimum of the validation loss and at least ``patience_fraction`` times the best evaluation's
step after it: it has passed its minimum. (Patience counts evaluations, which are one step apart
at full batch; the fraction keeps a short loss spike there from ending the run.) The result
records why it stopped (``stop_reason``: ``patience``, ``cap`` or ``diverged``) and whether its
best evaluation is its last one (``best_is_last``): such a run's "minimum" may only be where
training stopped.

Packs. The members of a pack share everything that fixes the shape of the computation and may
differ only in seed, lr, beta1, beta2 and eps (packing.py). Each member's model is built as its
single run's (``seed_everything(seed)`` then ``build_model``); each keeps its own data order,
B_simple averages, history, best weights and stopping state, and a member that stops leaves the
computation. Its result file is the single run's format plus ``pack_size``, ``pack_index`` and
``pack_engine``; ``train_time_s`` is its share of the steps it trained in (the step time divided
among the members in the step), ``wall_time_s`` runs until it stopped.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from adamnoise.status import COMPLETED, DIVERGED, STOP_CAP, STOP_DIVERGED, STOP_PATIENCE
from adamnoise.training.batches import EpochSampler, micro_batch_plan
from adamnoise.training.checkpoint import (
    checkpoint_file,
    load_checkpoint,
    remove_checkpoint,
    rng_states,
    save_checkpoint,
    set_aside,
    set_rng_states,
)
from adamnoise.training.config import (
    DEFAULT_CHECKPOINT_MINUTES,
    ConfigError,
    RunConfig,
    config_differences,
)
from adamnoise.training.epochs import batch_bounds
from adamnoise.training.evaluation import (
    evaluate,
    keeps_best_weights,
    measure_at_best,
    passed_minimum,
    record_evaluation,
)
from adamnoise.training.noise_scale import NoiseScaleEMA
from adamnoise.training.packing import check_packable
from adamnoise.training.progress import Progress
from adamnoise.training.result import History, build_dataset, perplexity
from adamnoise.training.runtime import (
    RandomStream,
    blame,
    host_values,
    noise_scale_for,
    seed_everything,
    sequence_cuts,
    setup_torch,
    total_steps_of,
)

# the layout of checkpoint.pt; a checkpoint of another layout is set aside and the run starts over
CHECKPOINT_FORMAT = 2
PREEMPTED_EXIT_STATUS = 128 + signal.SIGTERM  # what a shell reports for a SIGTERM'd process


@dataclass
class RunOutcome:
    status: str
    steps: int
    out: Path
    stop_reason: str = STOP_CAP


class Preempted(Exception):
    """SIGTERM arrived; the job was checkpointed at ``step`` and ``--resume`` continues it."""

    def __init__(self, step: int, checkpoint: Path):
        self.step, self.checkpoint = step, checkpoint
        super().__init__(f"SIGTERM: checkpointed at step {step} in {checkpoint}; rerun to resume")


@dataclass
class Member:
    """What one run of a job records besides its weights (which the engine holds)."""

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


def build_engine(configs: list[RunConfig], models, device, autocast, total_steps: int):
    """The stacked engine where the members can share one vmapped model, else the sequential."""
    from adamnoise.training.sequential import SequentialEngine
    from adamnoise.training.stacked import StackedEngine, stackable

    if stackable(configs, models[0][0]) is None:
        return StackedEngine(configs, models, device, autocast, total_steps)
    return SequentialEngine(configs, models, device, autocast, total_steps)


class Trainer:
    """The runs of one job (one run, or a pack); ``run()`` trains them and writes their results."""

    def __init__(
        self,
        configs: RunConfig | list[RunConfig],
        outs: str | Path | list[str | Path],
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        progress_stream=None,
        checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES,
    ):
        # imported here: these modules are other concerns' and import heavy dependencies
        from adamnoise.data.corpus import load_prepared
        from adamnoise.models import build_model

        single = isinstance(configs, RunConfig)
        configs = [configs] if single else list(configs)
        outs = [outs] if single else list(outs)
        if len(configs) != len(outs):
            raise ConfigError("", f"{len(configs)} run configs but {len(outs)} result files")
        if len(configs) > 1:
            check_packable(configs)
        self.configs = configs
        self.is_pack = not single
        self.checkpoint_dir = Path(
            checkpoint_dir or (f"{outs[0]}.pack.ckpt" if self.is_pack else f"{outs[0]}.ckpt")
        )
        self.progress_stream = progress_stream
        if not checkpoint_minutes >= 0:
            raise ConfigError("", f"--checkpoint-minutes must be >= 0, got {checkpoint_minutes}")
        self.checkpoint_minutes = checkpoint_minutes
        t = configs[0].training
        self.device, self.autocast = setup_torch(t)

        with blame("data.corpus", (OSError, ValueError)):
            corpus = load_prepared(configs[0].data.corpus)
        models = []
        for config in configs:
            seed_everything(config.training.seed)  # each member's init is its single run's
            with blame("model", (ValueError, TypeError)):
                model = build_model(dict(config.model), len(corpus.vocab)).to(self.device)
            # what the generator holds now is the single run's stream of dropout masks
            models.append((model, RandomStream(self.device)))
        self.train_cut, self.valid_cut, self.test_cut = sequence_cuts(
            corpus, configs[0].data, models[0][0], self.device
        )
        self.members = []
        for config, out in zip(configs, outs, strict=True):
            try:
                sampler = EpochSampler(
                    self.train_cut.num_sequences, t.batch_size, config.training.seed
                )
            except ValueError as exc:
                raise ConfigError("training.batch_size", str(exc)) from exc
            noise = noise_scale_for(config.training, self.train_cut.num_sequences)
            self.members.append(Member(config, Path(out), sampler, noise))
        self.steps_per_epoch = self.members[0].sampler.batches_per_epoch
        self.total_steps = total_steps_of(t.epochs, self.steps_per_epoch, t.max_steps)
        self.eval_interval = max(1, round(t.eval_every * self.steps_per_epoch))
        self.engine = build_engine(configs, models, self.device, self.autocast, self.total_steps)
        self.step = 0
        self.resumed_from: int | None = None
        self._sigterm = threading.Event()
        if resume:
            self._resume()

    # a job of one run, as the tests and benchmarks read it
    @property
    def history(self) -> History:
        return self.members[0].history

    @property
    def sampler(self) -> EpochSampler:
        return self.members[0].sampler

    @property
    def model(self) -> torch.nn.Module:
        return self.engine.evaluator(0)[0]

    @property
    def name(self) -> str:
        if not self.is_pack:
            return self.configs[0].run_id
        return f"pack[{', '.join(c.run_id for c in self.configs)}]"

    # ----------------------------------------------------------------------------------------
    # checkpoints

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "run_configs": [c.to_dict() for c in self.configs],
            "step": self.step,
            "engine": self.engine.kind,
            "optimizer_kernel": self.engine.optimizer_kernel,
            "engine_state": self.engine.state_dict(),
            "members": [m.state_dict() for m in self.members],
            "rng": rng_states(),
        }

    def save_checkpoint(self) -> Path:
        return save_checkpoint(self.checkpoint_dir, self.checkpoint_state())

    def _resume(self) -> None:
        state = load_checkpoint(self.checkpoint_dir)
        if state is None:
            return  # nothing to resume: a fresh start
        saved = state.get("run_configs")
        if saved is None and "run_config" in state:  # format 1 kept one run's config
            saved = [state["run_config"]]
        if saved is None:
            set_aside(self.checkpoint_dir, "it holds no run config (not written by a trainer)")
            return
        current = [c.to_dict() for c in self.configs]
        differences = [] if len(saved) == len(current) else ["number of runs"]
        for old, new in zip(saved, current, strict=False):
            differences += config_differences(old, new)
        if differences:
            raise ConfigError(
                "",
                f"checkpoint in {self.checkpoint_dir} belongs to a different "
                f"{'pack' if self.is_pack else 'run config'} "
                f"(differs in {'; '.join(differences)}); remove it or run without --resume",
            )
        layout = (state.get("format"), state.get("engine"), state.get("optimizer_kernel"))
        expected = (CHECKPOINT_FORMAT, self.engine.kind, self.engine.optimizer_kernel)
        if layout != expected:
            set_aside(
                self.checkpoint_dir,
                f"it was written by another version of the trainer or on another device "
                f"(format, engine, optimiser kernel: {layout}; this run: {expected})",
            )
            return
        self.engine.load_state_dict(state["engine_state"])
        for member, member_state in zip(self.members, state["members"], strict=True):
            member.load_state_dict(member_state)
        self.step = state["step"]
        set_rng_states(state["rng"])
        self.resumed_from = self.step

    # ----------------------------------------------------------------------------------------
    # the loop

    def _active(self) -> list[int]:
        return [i for i, member in enumerate(self.members) if member.active]

    def _evaluate_and_record(self, index: int, progress: Progress) -> None:
        member = self.members[index]
        module, loss_of = self.engine.evaluator(index)
        val = evaluate(
            module, loss_of, self.valid_cut, member.config.training.eval_batch_size, self.autocast
        )
        improved = record_evaluation(
            member.history, self.step, self.steps_per_epoch, val, member.noise
        )
        if improved and keeps_best_weights(member.config.training):
            member.best_state = self.engine.best_weights(index)
        progress.evaluation(self.step, perplexity(val[0]))

    def train_step(self) -> list[tuple[int, float, bool]]:
        """One optimiser step of every active member; returns (member, loss, diverged) each."""
        t = self.configs[0].training
        batches = {}
        for index in self._active():
            indices = self.members[index].sampler.batch_indices(self.step).to(self.device)
            inputs, targets = self.train_cut.batch(indices)
            slices, b_small = micro_batch_plan(len(indices), t.micro_batch)
            batches[index] = [(inputs[s], targets[s]) for s in slices]
        batch_size = len(indices)
        values, lrs = self.engine.step(batches)
        rows = host_values(values)  # the one synchronisation of the step
        self.step += 1
        outcomes = []
        for index, row, lr in zip(batches, rows, lrs, strict=True):
            member = self.members[index]
            loss, small_sq, big_sq, max_update, clip_fraction = row
            member.step = self.step
            member.noise.update(small_sq, big_sq, b_small, batch_size)
            member.history.record_step(
                loss=loss,
                lr=lr,
                grad_norm=math.sqrt(big_sq) if big_sq >= 0 else math.nan,
                max_update=max_update / lr if lr > 0 else math.nan,
                clip_fraction=clip_fraction,
            )
            member.history.train_tokens += batch_size * member.config.data.seq_len
            diverged = not math.isfinite(loss) or loss > t.divergence_loss
            outcomes.append((index, loss, diverged))
        return outcomes

    def _stop(self, index: int, reason: str, wall_now: float) -> None:
        member = self.members[index]
        member.active, member.stop_reason = False, reason
        member.history.wall_time_s = wall_now
        self.engine.drop(index)

    def run(self) -> list[RunOutcome]:
        t = self.configs[0].training
        progress = Progress(
            self.name,
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
        if self.is_pack:
            progress.message(f"{len(self.members)} runs, {self.engine.kind} engine")
        started = time.perf_counter()
        last_checkpoint = started
        wall_before = [m.history.wall_time_s for m in self.members]

        def wall(index: int) -> float:
            return wall_before[index] + time.perf_counter() - started

        previous_handler = self._catch_sigterm()
        try:
            if self.step == 0:
                for index in self._active():
                    if not self.members[index].history.eval_step:
                        self._evaluate_and_record(index, progress)
            while self.step < self.total_steps and self._active():
                step_started = time.perf_counter()
                outcomes = self.train_step()
                share = (time.perf_counter() - step_started) / len(outcomes)
                for index, _, _ in outcomes:
                    self.members[index].history.train_time_s += share
                progress.step(self.step, min(loss for _, loss, _ in outcomes))
                for index, loss, diverged in outcomes:
                    self._after_step(index, loss, diverged, progress, wall)
                if self._checkpoint_due(last_checkpoint):
                    for index in self._active():
                        self.members[index].history.wall_time_s = wall(index)
                    self.save_checkpoint()
                    last_checkpoint = time.perf_counter()
                    if self._sigterm.is_set():
                        raise Preempted(self.step, checkpoint_file(self.checkpoint_dir))
            for index in self._active():
                self.members[index].history.wall_time_s = wall(index)
            for index, member in enumerate(self.members):
                if member.best_state is not None:
                    module, loss_of, params = self.engine.at_weights(index, member.best_state)
                    with self.engine.random_stream(index):
                        measure_at_best(
                            member.history, member.config.training, module, loss_of, params,
                            (self.train_cut, self.test_cut), self.autocast,
                        )  # fmt: skip
            outcomes = []
            for index, member in enumerate(self.members):
                # from the history: a run resumed after its divergence still says it diverged
                status = COMPLETED if member.history.diverged_at_step is None else DIVERGED
                self._write_result(index, status)
                outcomes.append(RunOutcome(status, member.step, member.out, member.stop_reason))
            remove_checkpoint(self.checkpoint_dir)
        finally:
            progress.close()
            # held to here: a SIGTERM while the results are written waits for them (an ignored
            # one after the last step costs nothing; the results come next)
            self._release_sigterm(previous_handler)
        return outcomes

    def _after_step(self, index: int, loss: float, diverged: bool, progress, wall) -> None:
        """Divergence, evaluation and the stopping rule of member ``index`` after a step."""
        member = self.members[index]
        t = member.config.training
        if diverged and member.history.diverged_at_step is None:
            member.history.diverged_at_step = self.step
            if t.stop_on_divergence:
                progress.message(
                    f"{member.config.run_id} diverged at step {self.step}: loss {loss}"
                )
                self._stop(index, STOP_DIVERGED, wall(index))
                return
            progress.message(
                f"{member.config.run_id} diverged at step {self.step}: loss {loss}; training on "
                f"to step {self.total_steps} (stop_on_divergence: false)"
            )
        if self.step % self.eval_interval == 0 or self.step == self.total_steps:
            self._evaluate_and_record(index, progress)
            if passed_minimum(member.history, t, self.step):
                history = member.history
                progress.message(
                    f"{member.config.run_id} passed the minimum: no improvement for "
                    f"{len(history.val_loss) - 1 - history.best_index} evaluations (best at "
                    f"step {history.eval_step[history.best_index]})"
                )
                self._stop(index, STOP_PATIENCE, wall(index))

    def _checkpoint_due(self, last_checkpoint: float) -> bool:
        t = self.configs[0].training
        if self.step >= self.total_steps or not self._active():
            return False  # the results are written next
        by_steps = bool(t.checkpoint_every) and self.step % t.checkpoint_every == 0
        by_clock = bool(self.checkpoint_minutes) and (
            time.perf_counter() - last_checkpoint >= 60 * self.checkpoint_minutes
        )
        return by_steps or by_clock or self._sigterm.is_set()

    def _catch_sigterm(self):
        """SIGTERM (Slurm's time limit, preemption) checkpoints after the current step."""
        if threading.current_thread() is not threading.main_thread():
            return None
        return signal.signal(signal.SIGTERM, lambda signum, frame: self._sigterm.set())

    def _release_sigterm(self, previous_handler) -> None:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)

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
            num_parameters=self.engine.num_parameters,
            device=self.device,
        )
        attrs["optimizer_kernel"] = self.engine.optimizer_kernel
        if self.is_pack:
            attrs["pack_size"] = len(self.members)
            attrs["pack_index"] = index
            attrs["pack_engine"] = self.engine.kind
        save_netcdf(build_dataset(member.history, attrs), member.out)


def result_attrs(
    *,
    config: RunConfig,
    history: History,
    status: str,
    stop_reason: str,
    steps: int,
    steps_per_epoch: int,
    train_sequences: int,
    total_steps: int,
    num_parameters: int,
    device: torch.device,
) -> dict[str, Any]:
    """The attrs of a run result file (docs/architecture.md)."""
    from adamnoise.provenance import as_attrs, collect

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    best = history.best_index
    start, stop = batch_bounds(train_sequences, steps_per_epoch, 0)
    first_batch = stop - start
    b_small = micro_batch_plan(first_batch, config.training.micro_batch)[1]
    diverged_at = history.diverged_at_step
    return {
        "status": status,
        "stop_reason": stop_reason,
        "diverged_at_step": -1 if diverged_at is None else diverged_at,
        "steps_after_divergence": 0 if diverged_at is None else steps - diverged_at,
        "best_is_last": int(best is not None and best == len(history.val_loss) - 1),
        "run_id": config.run_id,
        "run_config": config.to_json(),
        "steps_per_epoch": steps_per_epoch,
        "train_sequences": train_sequences,
        "mean_batch_size": train_sequences / steps_per_epoch,
        "total_steps_planned": total_steps,
        # of the epoch's first (largest) batch; the estimator uses each step's own sizes
        "noise_scale_b_small": b_small,
        "noise_scale_b_big": first_batch,
        "num_parameters": num_parameters,
        **as_attrs(collect(device=device_name)),
    }


def train(
    config: RunConfig,
    out: str | Path,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress_stream=None,
    checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES,
) -> RunOutcome:
    """Train one run and write its result file; see the module docstring."""
    trainer = Trainer(config, out, checkpoint_dir, resume, progress_stream, checkpoint_minutes)
    return trainer.run()[0]


def train_pack(
    configs: list[RunConfig],
    outs: list[str | Path],
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress_stream=None,
    checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES,
) -> list[RunOutcome]:
    """Train the runs of one pack and write one result file per run; see the module docstring."""
    trainer = Trainer(
        list(configs), list(outs), checkpoint_dir, resume, progress_stream, checkpoint_minutes
    )
    return trainer.run()
