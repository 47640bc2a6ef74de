"""The training loop of one run: ``adamnoise train RUN.yaml --out RESULT.nc [--resume]``.

One optimiser step (batches.py for the data protocol):

1. take the step's batch from the epoch's permutation (``m`` batches of about ``N/m`` sequences
   per epoch, batches.py);
2. accumulate the full-batch mean gradient over micro-batches, measuring the micro-batch and
   full-batch gradient norms for B_simple on the way (gradients.py, noise_scale.py);
3. copy theta_n, let the optimiser update, measure ||theta_{n+1} - theta_n||_inf (seed 004);
4. fetch loss, norms and max-update with one device synchronisation, check for divergence;
5. evaluate every ``eval_every`` epochs (and before the first step), checkpoint every
   ``checkpoint_every`` steps.

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
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
from adamnoise.training.epochs import batch_bounds
from adamnoise.training.exact_noise import exact_noise_scale
from adamnoise.training.gradients import GradientAccumulator, UpdateTracker
from adamnoise.training.noise_scale import NoiseScaleEMA
from adamnoise.training.progress import Progress
from adamnoise.training.result import History, build_dataset, perplexity


@dataclass
class RunOutcome:
    status: str
    steps: int
    out: Path
    stop_reason: str = STOP_CAP


def select_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device", "cuda requested but no CUDA device is available")
    return torch.device(requested)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def total_steps_of(epochs: float, steps_per_epoch: int, max_steps: int | None) -> int:
    # the small tolerance keeps e.g. epochs=0.3 with m=10 at 3 steps despite 0.3*10 = 2.9999...
    total = max(1, math.floor(epochs * steps_per_epoch + 1e-9))
    return min(total, max_steps) if max_steps is not None else total


@contextlib.contextmanager
def _blame(key: str, errors: tuple[type[Exception], ...]):
    """Report another concern's rejection of its config section as a ConfigError on ``key``."""
    try:
        yield
    except errors as exc:
        raise ConfigError(key, str(exc)) from exc


@torch.no_grad()
def evaluate(model, loss_of, cut: SequenceCut, batch_size: int, autocast) -> tuple[float, float]:
    """Token-weighted mean cross-entropy of a split (every scored token counts once) and its
    standard error over the split's sequences.

    The standard error treats the sequences as the sampled units (their tokens are not
    independent): with T_i scored tokens and mean loss x_i in sequence i, T = sum T_i and the mean
    x = sum T_i x_i / T, se^2 = n/(n-1) sum (T_i/T)^2 (x_i - x)^2, which is s^2/n for sequences of
    equal length. It is the evaluation noise of one number: how much the loss would move on
    another validation sample of the same size.
    """
    was_training = model.training
    model.eval()
    sums, counts = [], []
    for inputs, targets in cut.eval_batches(batch_size):
        with autocast():
            per_token = loss_of(inputs, targets)
        sums.append(per_token.double().sum(dim=-1))
        counts.append(torch.full_like(sums[-1], targets.shape[-1]))
    model.train(was_training)
    if not sums:
        return math.nan, math.nan
    seq_sums, seq_tokens = torch.cat(sums), torch.cat(counts)
    n, tokens = seq_sums.numel(), seq_tokens.sum()
    mean = seq_sums.sum() / tokens
    weights = seq_tokens / tokens
    variance = (
        (weights.square() * (seq_sums / seq_tokens - mean).square()).sum() * n / max(n - 1, 1)
    )
    loss, se = torch.stack([mean, variance.sqrt()]).tolist()  # one synchronisation
    return loss, (se if n > 1 else math.nan)


def _clip_fraction(optimizer) -> float:
    """Clip fraction of the optimiser's last step (adamnoise.optim's ``last_step_stats``).

    Our optimisers report an empty dict when no clipping is configured: nothing was clipped, 0.
    An optimiser without ``last_step_stats`` gives NaN (unknown).
    """
    stats = getattr(optimizer, "last_step_stats", None)
    if not isinstance(stats, dict):
        return math.nan
    value = stats.get("clip_fraction", 0.0)
    return float(value.item() if torch.is_tensor(value) else value)


def setup_torch(t) -> tuple[torch.device, Any]:
    """Threads, device, TF32 and the autocast context of a run's ``training`` section."""
    if t.num_threads is not None:
        torch.set_num_threads(t.num_threads)
    device = select_device(t.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = t.tf32
        torch.backends.cudnn.allow_tf32 = t.tf32
    if t.precision == "bf16":
        return device, lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return device, contextlib.nullcontext


def sequence_cuts(corpus, data, model, device) -> tuple[SequenceCut, SequenceCut, SequenceCut]:
    """The train / valid / test splits cut into sequences of ``data.seq_len`` tokens, with the
    preceding context the model wants (Transformer-XL's memory; docs/architecture.md)."""
    context_len = int(getattr(model, "context_len", 0) or 0)
    with _blame("data.train_sequences", (ValueError,)):
        train = SequenceCut(
            corpus.train.to(device), data.seq_len, context_len, data.train_sequences
        )
    valid = SequenceCut(corpus.valid.to(device), data.seq_len, context_len)
    test = SequenceCut(corpus.test.to(device), data.seq_len, context_len)
    return train, valid, test


def record_evaluation(
    history: History, step: int, steps_per_epoch: int, val: tuple[float, float], noise
) -> bool:
    """Record an evaluation (``val``: loss and its standard error) with the current B_simple
    estimates; True if it is a new best."""
    previous_best = history.best_index
    history.record_eval(
        epoch=step / steps_per_epoch,
        step=step,
        val_loss=val[0],
        val_loss_se=val[1],
        b_simple=noise.b_simple,
        grad_noise_trace=noise.noise_trace,
        grad_sq_norm=noise.grad_sq_norm,
    )
    return history.best_index != previous_best


def noise_scale_for(t, num_sequences: int) -> NoiseScaleEMA:
    """The B_simple averages of a run: a horizon of ``noise_scale_horizon`` epochs of data."""
    return NoiseScaleEMA(t.noise_scale_horizon * num_sequences, n_population=num_sequences)


def keeps_best_weights(t) -> bool:
    """Whether a run copies its weights at every new best (for the measurements at the best)."""
    return t.test_at_best or t.exact_noise_scale


def measure_at_best(
    history: History, t, model, loss_of, params, cuts: tuple[SequenceCut, SequenceCut], autocast
) -> None:
    """Test perplexity and the exact B_simple (on the (train, test) ``cuts``) at the weights of
    the best evaluation, which ``loss_of`` and ``params`` must hold; ``model`` is the module whose
    training flag ``evaluate`` switches (B_simple is measured in training mode, as in training)."""
    train_cut, test_cut = cuts
    if t.test_at_best:
        test_loss, test_se = evaluate(model, loss_of, test_cut, t.eval_batch_size, autocast)
        history.test_ppl = perplexity(test_loss)
        history.test_loss_se = test_se
    if t.exact_noise_scale:
        exact = exact_noise_scale(loss_of, params, train_cut, autocast)
        history.exact_grad_sq_norm = exact.grad_sq_norm
        history.exact_noise_trace = exact.noise_trace


def passed_minimum(history: History, t, step: int) -> bool:
    """The stopping rule of the module docstring for ``training`` settings ``t`` (False without
    ``patience``): ``patience`` evaluations and ``patience_fraction`` of the best step since it."""
    best = history.best_index
    if t.patience is None or best is None:
        return False
    best_step = history.eval_step[best]
    evals_since = len(history.val_loss) - 1 - best
    return evals_since >= t.patience and step - best_step >= t.patience_fraction * best_step


class Trainer:
    """Builds everything a run needs from its config; ``run()`` trains and writes the result."""

    def __init__(
        self,
        config: RunConfig,
        out: str | Path,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        progress_stream=None,
    ):
        # imported here: these modules are other concerns' and import heavy dependencies
        from adamnoise.data.corpus import load_prepared
        from adamnoise.models import build_model
        from adamnoise.optim import build_optimizer
        from adamnoise.schedules import build_schedule

        self.config = config
        self.out = Path(out)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else Path(f"{self.out}.ckpt")
        self.progress_stream = progress_stream
        t = config.training

        self.device, self.autocast = setup_torch(t)

        with _blame("data.corpus", (OSError, ValueError)):
            corpus = load_prepared(config.data.corpus)
        seed_everything(t.seed)
        with _blame("model", (ValueError, TypeError)):
            self.model = build_model(dict(config.model), len(corpus.vocab)).to(self.device)
        self.train_cut, self.valid_cut, self.test_cut = sequence_cuts(
            corpus, config.data, self.model, self.device
        )
        try:
            self.sampler = EpochSampler(self.train_cut.num_sequences, t.batch_size, t.seed)
        except ValueError as exc:
            raise ConfigError("training.batch_size", str(exc)) from exc
        self.steps_per_epoch = self.sampler.batches_per_epoch
        self.total_steps = total_steps_of(t.epochs, self.steps_per_epoch, t.max_steps)
        self.eval_interval = max(1, round(t.eval_every * self.steps_per_epoch))

        params = [p for p in self.model.parameters() if p.requires_grad]
        with _blame("optimizer", (ValueError, TypeError)):
            self.optimizer = build_optimizer(params, dict(config.optimizer))
        with _blame("schedule", (ValueError, TypeError)):
            schedule = build_schedule(dict(config.schedule), self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.model.train()  # evaluate() switches to eval mode and back
        self.loss_of = torch.compile(self.model) if t.compile else self.model
        self.accumulator = GradientAccumulator(params)
        self.update_tracker = UpdateTracker(params)
        self.noise = noise_scale_for(t, self.train_cut.num_sequences)
        self.history = History()
        self.best_state: dict[str, torch.Tensor] | None = None
        self.step = 0
        self.resumed_from: int | None = None
        if resume:
            self._resume()

    # ----------------------------------------------------------------------------------------
    # checkpoints

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "run_config": self.config.to_dict(),
            "step": self.step,
            "epoch": self.step // self.steps_per_epoch,
            "position_in_epoch": self.step % self.steps_per_epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "noise_scale": self.noise.state_dict(),
            "history": self.history.state_dict(),
            "best_state": self.best_state,
            "rng": rng_states(),
        }

    def save_checkpoint(self) -> Path:
        return save_checkpoint(self.checkpoint_dir, self.checkpoint_state())

    def _resume(self) -> None:
        state = load_checkpoint(self.checkpoint_dir)
        if state is None:
            return  # nothing to resume: a fresh start
        differences = config_differences(state["run_config"], self.config.to_dict())
        if differences:
            raise ConfigError(
                "",
                f"checkpoint in {self.checkpoint_dir} belongs to a different run config "
                f"(differs in {'; '.join(differences)}); remove it or run without --resume",
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.noise.load_state_dict(state["noise_scale"])
        self.history = History.from_state_dict(state["history"])
        self.best_state = state["best_state"]
        self.step = state["step"]
        set_rng_states(state["rng"])
        self.resumed_from = self.step

    # ----------------------------------------------------------------------------------------
    # the loop

    def _evaluate_and_record(self, progress: Progress) -> None:
        val = evaluate(
            self.model, self.loss_of, self.valid_cut, self.config.training.eval_batch_size,
            self.autocast,
        )  # fmt: skip
        improved = record_evaluation(self.history, self.step, self.steps_per_epoch, val, self.noise)
        if improved and keeps_best_weights(self.config.training):
            self.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
            }
        progress.evaluation(self.step, perplexity(val[0]))

    @property
    def passed_minimum(self) -> bool:
        """The stopping rule of the module docstring (False without ``patience``)."""
        return passed_minimum(self.history, self.config.training, self.step)

    def train_step(self) -> tuple[float, bool]:
        """One optimiser step; returns (loss, diverged)."""
        t = self.config.training
        indices = self.sampler.batch_indices(self.step).to(self.device)
        inputs, targets = self.train_cut.batch(indices)
        slices, b_small = micro_batch_plan(len(indices), t.micro_batch)
        micro_batches = [(inputs[s], targets[s]) for s in slices]
        self.update_tracker.before()
        loss, small_sq, big_sq = self.accumulator.run(self.loss_of, micro_batches, self.autocast)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        max_update = self.update_tracker.after()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        # the one synchronisation of the step
        loss, small_sq, big_sq, max_update = torch.stack(
            [loss, small_sq, big_sq, max_update]
        ).tolist()
        self.step += 1
        self.noise.update(small_sq, big_sq, b_small, len(indices))
        self.history.record_step(
            loss=loss,
            lr=lr,
            grad_norm=math.sqrt(big_sq) if big_sq >= 0 else math.nan,
            max_update=max_update / lr if lr > 0 else math.nan,
            clip_fraction=_clip_fraction(self.optimizer),
        )
        self.history.train_tokens += len(indices) * self.config.data.seq_len
        diverged = not math.isfinite(loss) or loss > t.divergence_loss
        return loss, diverged

    def run(self) -> RunOutcome:
        t = self.config.training
        progress = Progress(
            self.config.run_id,
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
        wall_before = self.history.wall_time_s
        stop_reason = STOP_CAP
        try:
            if self.step == 0 and not self.history.eval_step:
                self._evaluate_and_record(progress)
            while self.step < self.total_steps:
                step_started = time.perf_counter()
                loss, diverged = self.train_step()
                self.history.train_time_s += time.perf_counter() - step_started
                progress.step(self.step, loss)
                if diverged and self.history.diverged_at_step is None:
                    self.history.diverged_at_step = self.step
                    if t.stop_on_divergence:
                        stop_reason = STOP_DIVERGED
                        progress.message(f"diverged at step {self.step}: loss {loss}")
                        break
                    progress.message(
                        f"diverged at step {self.step}: loss {loss}; training on to step "
                        f"{self.total_steps} (stop_on_divergence: false)"
                    )
                if self.step % self.eval_interval == 0 or self.step == self.total_steps:
                    self._evaluate_and_record(progress)
                    if self.passed_minimum:
                        stop_reason = STOP_PATIENCE
                        progress.message(
                            f"passed the minimum: no improvement for "
                            f"{len(self.history.val_loss) - 1 - self.history.best_index} "
                            f"evaluations (best at step "
                            f"{self.history.eval_step[self.history.best_index]})"
                        )
                        break
                if (
                    t.checkpoint_every
                    and self.step % t.checkpoint_every == 0
                    and self.step < self.total_steps
                ):
                    self.history.wall_time_s = wall_before + time.perf_counter() - started
                    self.save_checkpoint()
            if self.best_state is not None:
                self.model.load_state_dict(self.best_state)
                params = [p for p in self.model.parameters() if p.requires_grad]
                measure_at_best(
                    self.history, t, self.model, self.model, params,
                    (self.train_cut, self.test_cut), self.autocast,
                )  # fmt: skip
        finally:
            progress.close()
        self.history.wall_time_s = wall_before + time.perf_counter() - started
        # from the history, so that a run resumed after its divergence still says it diverged
        status = COMPLETED if self.history.diverged_at_step is None else DIVERGED
        self._write_result(status, stop_reason)
        remove_checkpoint(self.checkpoint_dir)
        return RunOutcome(status=status, steps=self.step, out=self.out, stop_reason=stop_reason)

    def _write_result(self, status: str, stop_reason: str) -> None:
        from adamnoise.io import save_netcdf

        attrs = result_attrs(
            config=self.config,
            history=self.history,
            status=status,
            stop_reason=stop_reason,
            steps=self.step,
            steps_per_epoch=self.steps_per_epoch,
            train_sequences=self.train_cut.num_sequences,
            total_steps=self.total_steps,
            num_parameters=sum(p.numel() for p in self.model.parameters()),
            device=self.device,
        )
        save_netcdf(build_dataset(self.history, attrs), self.out)


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
    """The attrs of a run result file (docs/architecture.md); shared with packed runs."""
    from adamnoise.provenance import as_attrs, collect

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
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
) -> RunOutcome:
    """Train one run and write its result file; see the module docstring."""
    trainer = Trainer(config, out, checkpoint_dir, resume=resume, progress_stream=progress_stream)
    return trainer.run()
