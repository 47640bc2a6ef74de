"""Experiments as configuration: an experiment config expands into a grid of runs.

An experiment names a dataset, a model, an optimiser, a schedule, training settings and a
``grid`` whose axes are ``batch_size``, ``beta1``, ``beta2``, ``lr`` and ``seed`` (each a list).
Every grid point is one run. Its id is built from its own hyperparameters only, so adding a
value to an axis adds runs without renaming the others::

    bs64_b1-0.9_b2-0.999_lr-0.001_s0

With ``tie_betas: true`` (seed 003's beta1 = beta2 setting) the ``beta1`` axis is ignored and every
run uses beta1 = beta2.

Batch sizes count training sequences. ``N``, the number of training sequences, is known when the
config is parsed (``adamnoise.data.corpus.train_token_count``, ``seq_len``, the model's context and
``train_sequences``): ``batch_size: full`` resolves to ``N``, and a batch size above ``N`` or one
that no whole number of batches per epoch realises within 10 % (``training/epochs.py``) is
rejected, naming the experiment and the value. An optional ``budget`` sets each run's epoch cap
from its batch size (``epochs_for_batch``).

The structure of the config is validated against ``workflow/schemas/config.schema.yaml`` by the
Snakefile; this module validates what the schema cannot (model, optimiser, schedule and training
fields, which belong to the package) by building every run config and naming the offending key.
"""

from __future__ import annotations

import copy
import functools
import itertools
from dataclasses import dataclass
from typing import Any

GRID_AXES = ("batch_size", "beta1", "beta2", "lr", "seed")
FULL_BATCH = "full"  # grid value of batch_size meaning b = N (one batch per epoch)
BUDGET_KEYS = ("epochs", "reference_batch_size", "exponent")
BETA_AXES = ("beta1", "beta2")
# keys of the optimizer and training sections that the grid sets for every run
GRID_OWNED = {"optimizer": ("lr", "beta1", "beta2"), "training": ("batch_size", "seed")}

# corpus name -> tokens per training sequence is an experiment choice; these are the corpora the
# data stage can prepare (the data rules match on them)
OFFLINE_CORPORA = ("pydoc-char", "pydoc-word")
DOWNLOADED_CORPORA = ("wikitext2",)


class ConfigError(ValueError):
    """A config value is wrong; the message names the key (dotted path) and what is expected."""


def format_value(value: float | int) -> str:
    """Compact, stable text for a hyperparameter: 0.999 -> '0.999', 3.16e-4 -> '0.000316'."""
    if isinstance(value, bool):
        raise TypeError("booleans are not hyperparameter values")
    if isinstance(value, int):
        return str(value)
    return format(float(value), ".6g")


@dataclass(frozen=True)
class GridPoint:
    """One run of an experiment."""

    batch_size: int
    beta1: float
    beta2: float
    lr: float
    seed: int

    @property
    def run_id(self) -> str:
        return (
            f"bs{self.batch_size}_b1-{format_value(self.beta1)}_b2-{format_value(self.beta2)}"
            f"_lr-{format_value(self.lr)}_s{self.seed}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {axis: getattr(self, axis) for axis in GRID_AXES}


@dataclass(frozen=True)
class Experiment:
    name: str
    config: dict[str, Any]

    @property
    def dataset(self) -> str:
        return self.config["dataset"]

    @property
    def tie_betas(self) -> bool:
        return bool(self.config.get("tie_betas", False))

    @property
    def figures(self) -> list[str]:
        return list(self.config.get("figures", []))

    @functools.cached_property
    def available_train_sequences(self) -> int:
        """Training sequences of the whole training split (before ``train_sequences``)."""
        from adamnoise.data.corpus import train_token_count
        from adamnoise.models.presets import context_len_of
        from adamnoise.training.epochs import sequence_count

        tokens = train_token_count(self.dataset)
        return sequence_count(tokens, self.config["seq_len"], context_len_of(self.config["model"]))

    @property
    def num_train_sequences(self) -> int:
        """N of the theory: the training sequences every epoch visits once."""
        return self.config.get("train_sequences") or self.available_train_sequences

    def axis_values(self, axis: str) -> list:
        if axis == "beta1" and self.tie_betas:
            return list(self.config["grid"]["beta2"])
        if axis == "batch_size":
            n = self.num_train_sequences
            return [n if b == FULL_BATCH else b for b in self.config["grid"]["batch_size"]]
        return list(self.config["grid"][axis])

    def epochs_for(self, batch_size: int) -> float | None:
        """The run's epoch cap under ``budget`` (None: ``training.epochs`` applies)."""
        from adamnoise.training.epochs import epochs_for_batch, mean_batch_size

        budget = self.config.get("budget")
        if budget is None:
            return None
        realised = mean_batch_size(self.num_train_sequences, batch_size)
        return round(epochs_for_batch(realised, *(budget[key] for key in BUDGET_KEYS)), 3)

    def grid_dims(self) -> tuple[str, ...]:
        """The dimensions of the aggregated dataset (beta1 folds into beta2 when tied)."""
        return tuple(axis for axis in GRID_AXES if not (axis == "beta1" and self.tie_betas))

    def points(self) -> list[GridPoint]:
        return list(self._points_by_id.values())

    @functools.cached_property
    def _points_by_id(self) -> dict[str, GridPoint]:
        return {point.run_id: point for point in self._expand_grid()}

    def _expand_grid(self) -> list[GridPoint]:
        axes = {axis: self.axis_values(axis) for axis in GRID_AXES}
        if self.tie_betas:
            combos = itertools.product(axes["batch_size"], axes["beta2"], axes["lr"], axes["seed"])
            return [GridPoint(b, beta, beta, lr, s) for b, beta, lr, s in combos]
        combos = itertools.product(*(axes[axis] for axis in GRID_AXES))
        return [GridPoint(*combo) for combo in combos]

    def run_ids(self) -> list[str]:
        return [point.run_id for point in self.points()]

    def point(self, run_id: str) -> GridPoint:
        try:
            return self._points_by_id[run_id]
        except KeyError:
            raise KeyError(f"experiment {self.name!r} has no run {run_id!r}") from None

    def run_config(self, point: GridPoint, corpus_dir: str) -> dict[str, Any]:
        """The complete config of one run, as ``adamnoise train`` reads it."""
        cfg = self.config
        optimizer = {**copy.deepcopy(cfg["optimizer"]), "lr": point.lr}
        for axis in optimizer_betas(optimizer["name"]):
            optimizer[axis] = getattr(point, axis)
        training = {
            **copy.deepcopy(cfg.get("training", {})),
            "batch_size": point.batch_size,
            "seed": point.seed,
        }
        epochs = self.epochs_for(point.batch_size)
        if epochs is not None:
            training["epochs"] = epochs
        data = {"corpus": corpus_dir, "seq_len": cfg["seq_len"]}
        if cfg.get("train_sequences") is not None:
            data["train_sequences"] = cfg["train_sequences"]
        return {
            "run_id": f"{self.name}/{point.run_id}",
            "data": data,
            "model": copy.deepcopy(cfg["model"]),
            "optimizer": optimizer,
            "schedule": copy.deepcopy(cfg.get("schedule", {"name": "constant"})),
            "training": training,
        }


def corpus_dir(results: str, dataset: str) -> str:
    return f"{results}/data/{dataset}"


def load_experiments(config: dict[str, Any]) -> dict[str, Experiment]:
    """All experiments of a (schema-validated) workflow config, each checked run by run."""
    experiments = {name: Experiment(name, cfg) for name, cfg in config["experiments"].items()}
    for name in config.get("active", []):
        if name not in experiments:
            known = ", ".join(sorted(experiments)) or "none"
            raise ConfigError(f"active: unknown experiment {name!r} (defined: {known})")
    for experiment in experiments.values():
        validate_experiment(experiment, config.get("results", "results"))
    return experiments


def active_experiments(config: dict[str, Any]) -> dict[str, Experiment]:
    experiments = load_experiments(config)
    return {name: experiments[name] for name in config.get("active", [])}


def optimizer_betas(name: str) -> tuple[str, ...]:
    """The beta axes an optimiser takes: beta1 is the momentum of every optimiser that has one,
    beta2 the second-moment factor (SGD has no beta2, SignSGD neither). An unknown name takes
    both, so that its config check reports the name rather than a beta."""
    from adamnoise.optim import OPTIMIZER_PARAMETERS  # here: importing optim loads torch

    accepted = OPTIMIZER_PARAMETERS.get(name, set(BETA_AXES))
    return tuple(axis for axis in BETA_AXES if axis in accepted)


def validate_experiment(experiment: Experiment, results: str = "results") -> None:
    """Check every run config the experiment produces, naming the offending key on failure."""
    from adamnoise.training.config import ConfigError as RunConfigError
    from adamnoise.training.config import RunConfig

    prefix = f"experiments.{experiment.name}"
    known = OFFLINE_CORPORA + DOWNLOADED_CORPORA
    if experiment.dataset not in known:
        raise ConfigError(f"{prefix}.dataset: {experiment.dataset!r} is not one of {known}")
    for axis in GRID_AXES:
        values = experiment.config["grid"][axis]
        if len(set(values)) != len(values):
            raise ConfigError(f"{prefix}.grid.{axis}: values repeat: {values}")
    for section, keys in GRID_OWNED.items():
        for key in keys:
            if key in experiment.config.get(section, {}):
                raise ConfigError(f"{prefix}.{section}.{key}: set by grid.{key}; remove it here")
    for section in ("model", "optimizer", "schedule"):
        if section in experiment.config:
            _check_component(prefix, section, experiment.config[section])
    _check_batch_sizes(experiment, prefix)
    if "budget" in experiment.config and "epochs" in experiment.config.get("training", {}):
        raise ConfigError(f"{prefix}.training.epochs: set by budget.epochs; remove one of them")
    name = experiment.config["optimizer"]["name"]
    for axis in (axis for axis in BETA_AXES if axis not in optimizer_betas(name)):
        if len(experiment.axis_values(axis)) > 1:
            raise ConfigError(
                f"{prefix}.grid.{axis}: optimizer {name!r} has no {axis}; give one value"
            )
    if len(experiment._points_by_id) != len(experiment._expand_grid()):
        raise ConfigError(f"{prefix}.grid: two grid points format to the same run id")
    for point in experiment.points():
        run = experiment.run_config(point, corpus_dir(results, experiment.dataset))
        try:
            RunConfig.from_dict(run)
        except RunConfigError as error:
            raise ConfigError(
                f"{prefix} (run {point.run_id}): {_under_experiment(error)}"
            ) from None


def _check_batch_sizes(experiment: Experiment, prefix: str) -> None:
    """Every batch size a whole number of batches per epoch realises: b <= N, within 10 %."""
    from adamnoise.training.epochs import (
        MAX_BATCH_DEVIATION,
        batch_deviation,
        batches_per_epoch,
    )

    available = experiment.available_train_sequences
    subset = experiment.config.get("train_sequences")
    where = f"{experiment.dataset} at seq_len {experiment.config['seq_len']}"
    if subset is not None and subset > available:
        raise ConfigError(
            f"{prefix}.train_sequences: {subset} exceeds the {available} training sequences of "
            f"{where}"
        )
    n = experiment.num_train_sequences
    seen: dict[int, Any] = {}
    for configured, b in zip(
        experiment.config["grid"]["batch_size"], experiment.axis_values("batch_size"), strict=True
    ):
        key = f"{prefix}.grid.batch_size"
        if b > n:
            raise ConfigError(
                f"{key}: {b} exceeds N = {n}, the training sequences of {where}"
                + (f" (train_sequences {subset})" if subset else "")
                + f"; write {FULL_BATCH!r} for full batch"
            )
        m = batches_per_epoch(n, b)
        if batch_deviation(n, b) > MAX_BATCH_DEVIATION:
            nearest = sorted({-(-n // k) for k in (m - 1, m, m + 1) if k >= 1})
            raise ConfigError(
                f"{key}: {configured} is realised as {m} batch(es) of about {n / m:.0f} of the "
                f"N = {n} sequences per epoch, more than {MAX_BATCH_DEVIATION:.0%} off; "
                f"batch sizes near it that split an epoch evenly: {nearest}"
            )
        if m in seen:
            raise ConfigError(
                f"{key}: {seen[m]} and {configured} both give {m} batch(es) per epoch (N = {n})"
            )
        seen[m] = configured


def _check_component(prefix: str, section: str, cfg: dict[str, Any]) -> None:
    """Let the package module that owns a config section check it (unknown keys, bad values)."""
    from adamnoise.models.presets import resolve_model_config
    from adamnoise.optim import resolve_optimizer_config
    from adamnoise.schedules import resolve_schedule_config

    checkers = {
        "model": resolve_model_config,
        # lr comes from the grid: check the rest with a placeholder
        "optimizer": lambda c: resolve_optimizer_config({"lr": 1.0, **c}),
        "schedule": resolve_schedule_config,
    }
    try:
        checkers[section](cfg)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{prefix}.{section}: {error}") from None


def _under_experiment(error: Exception) -> str:
    """Map a run-config key (``data.seq_len``) to where it lives in the experiment config."""
    message = str(error)
    for run_key, experiment_key in (("data.seq_len", "seq_len"), ("data.corpus", "dataset")):
        message = message.replace(run_key, experiment_key)
    return message
