"""The recorded series of a run and its result file (docs/architecture.md, "Run result file")."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# name -> (units, description) of every variable in the result file
EVAL_VARIABLES = {
    "val_loss": ("nats/token", "token-weighted cross-entropy on the validation split"),
    "val_loss_se": (
        "nats/token",
        "standard error of val_loss over the validation sequences (evaluation noise)",
    ),
    "val_ppl": ("1", "validation perplexity, exp(val_loss)"),
    "train_loss": (
        "nats/token",
        "mean training loss of the optimiser steps since the previous evaluation (NaN at step 0)",
    ),
    "b_simple": (
        "sequences",
        "simple gradient noise scale tr(Sigma)/|G|^2, ratio of the bias-corrected averages over "
        "the last noise_scale_horizon epochs of data",
    ),
    "grad_noise_trace": (
        "(nats/token)^2",
        "bias-corrected EMA of the unbiased tr(Sigma) estimate (per-sequence gradient covariance)",
    ),
    "grad_sq_norm": ("(nats/token)^2", "bias-corrected EMA of the unbiased |G|^2 estimate"),
}
STEP_VARIABLES = {
    "loss": ("nats/token", "mean training loss of the step's batch"),
    "lr": ("1", "learning rate used by the step (base lr times schedule multiplier)"),
    "grad_norm": (
        "nats/token",
        "Euclidean norm of the step's full-batch gradient, before clipping",
    ),
    "max_update": (
        "1",
        "max-update ||theta_{n+1} - theta_n||_inf / lr (seed 004, Sec. 3)",
    ),
    "clip_fraction": (
        "1",
        "optimiser's clip fraction in this step (Cclip: fraction of coordinates; Gclip: 1 if the "
        "gradient norm was clipped); 0 without clipping",
    ),
}
SUMMARY_VARIABLES = {
    "min_val_ppl": ("1", "minimum validation perplexity over the evaluations"),
    "min_val_ppl_se": (
        "1",
        "evaluation noise of min_val_ppl: min_val_ppl times the standard error of its val_loss",
    ),
    "best_epoch": ("epochs", "epoch of the evaluation with the minimum validation perplexity"),
    "best_step": (
        "steps",
        "optimiser step of the evaluation with the minimum validation perplexity",
    ),
    "test_ppl": (
        "1",
        "test perplexity of the weights at the best validation evaluation (NaN if not measured)",
    ),
    "test_ppl_se": ("1", "evaluation noise of test_ppl (test_ppl times its loss' standard error)"),
    "b_simple_at_best": (
        "sequences",
        "B_simple estimate at the best evaluation (averages over the horizon before it)",
    ),
    "b_simple_exact": (
        "sequences",
        "B_simple from all N per-sequence gradients at the best weights (NaN if not measured)",
    ),
    "wall_time_s": ("s", "wall-clock time of the run, all resumed parts together"),
    "tokens_per_s": (
        "tokens/s",
        "training tokens per second of training time (evaluation excluded)",
    ),
}

# measurements of the machine, not of the run: they differ between two runs of the same config
TIMING_VARIABLES = ("wall_time_s", "tokens_per_s")


@dataclass
class History:
    """Everything a run records; a plain-Python state so that checkpoints can hold it."""

    eval_epoch: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    b_simple: list[float] = field(default_factory=list)
    grad_noise_trace: list[float] = field(default_factory=list)
    grad_sq_norm: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    max_update: list[float] = field(default_factory=list)
    clip_fraction: list[float] = field(default_factory=list)
    val_loss_se: list[float] = field(default_factory=list)
    test_ppl: float = math.nan
    test_loss_se: float = math.nan
    exact_grad_sq_norm: float = math.nan
    exact_noise_trace: float = math.nan
    # the first step whose training loss was non-finite or above divergence_loss (None: none)
    diverged_at_step: int | None = None
    wall_time_s: float = 0.0
    train_time_s: float = 0.0
    train_tokens: int = 0

    def record_step(self, loss, lr, grad_norm, max_update, clip_fraction) -> None:
        self.loss.append(loss)
        self.lr.append(lr)
        self.grad_norm.append(grad_norm)
        self.max_update.append(max_update)
        self.clip_fraction.append(clip_fraction)

    def record_eval(
        self, epoch, step, val_loss, val_loss_se, b_simple, grad_noise_trace, grad_sq_norm
    ) -> None:
        previous_step = self.eval_step[-1] if self.eval_step else 0
        since = self.loss[previous_step:step]
        self.eval_epoch.append(epoch)
        self.eval_step.append(step)
        self.val_loss.append(val_loss)
        self.val_loss_se.append(val_loss_se)
        self.train_loss.append(float(np.mean(since)) if since else math.nan)
        self.b_simple.append(b_simple)
        self.grad_noise_trace.append(grad_noise_trace)
        self.grad_sq_norm.append(grad_sq_norm)

    @property
    def best_index(self) -> int | None:
        finite = [(v, i) for i, v in enumerate(self.val_loss) if math.isfinite(v)]
        return min(finite)[1] if finite else None

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> History:
        return cls(**state)


def perplexity(loss: float) -> float:
    """exp(loss), inf where the loss overflows (a diverged model)."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def build_dataset(history: History, attrs: dict[str, str]):
    """The run result as an xarray Dataset (dims ``eval`` and ``train_step``)."""
    import xarray as xr

    def var(dim, values, units, description, dtype=np.float64):
        return xr.Variable(
            dim, np.asarray(values, dtype=dtype), {"units": units, "description": description}
        )

    best = history.best_index
    val_loss = np.asarray(history.val_loss, dtype=np.float64)
    min_ppl = perplexity(val_loss[best]) if best is not None else math.nan
    eval_series = {
        "val_loss": val_loss,
        "val_loss_se": history.val_loss_se,
        "val_ppl": np.array([perplexity(v) for v in val_loss], dtype=np.float64),
        "train_loss": history.train_loss,
        "b_simple": history.b_simple,
        "grad_noise_trace": history.grad_noise_trace,
        "grad_sq_norm": history.grad_sq_norm,
    }
    step_series = {name: getattr(history, name) for name in STEP_VARIABLES}
    summaries = {
        "min_val_ppl": min_ppl,
        "min_val_ppl_se": min_ppl * history.val_loss_se[best] if best is not None else math.nan,
        "best_epoch": history.eval_epoch[best] if best is not None else math.nan,
        "best_step": history.eval_step[best] if best is not None else math.nan,
        "test_ppl": history.test_ppl,
        "test_ppl_se": history.test_ppl * history.test_loss_se,
        "b_simple_at_best": history.b_simple[best] if best is not None else math.nan,
        "b_simple_exact": (
            history.exact_noise_trace / history.exact_grad_sq_norm
            if history.exact_grad_sq_norm > 0
            else math.nan
        ),
        "wall_time_s": history.wall_time_s,
        "tokens_per_s": (
            history.train_tokens / history.train_time_s if history.train_time_s > 0 else math.nan
        ),
    }
    data_vars = {}
    for name, values in eval_series.items():
        data_vars[name] = var("eval", values, *EVAL_VARIABLES[name])
    for name, values in step_series.items():
        data_vars[name] = var("train_step", values, *STEP_VARIABLES[name])
    for name, value in summaries.items():
        data_vars[name] = var((), value, *SUMMARY_VARIABLES[name])
    coords = {
        "epoch": var(
            "eval", history.eval_epoch, "epochs", "training epochs completed (fractional)"
        ),
        "step": var(
            "eval", history.eval_step, "steps", "optimiser steps completed", dtype=np.int64
        ),
        "train_step": var(
            "train_step",
            np.arange(1, len(history.loss) + 1),
            "steps",
            "index n of the optimiser step (1 = first update)",
            dtype=np.int64,
        ),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
