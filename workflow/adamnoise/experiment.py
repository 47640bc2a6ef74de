"""Experiments as configuration: an experiment config expands into a grid of runs.

An experiment names a dataset, a model, an optimiser, a schedule, training settings and a
``grid`` whose axes are ``batch_size``, ``beta1``, ``beta2``, ``lr`` and ``seed`` (each a list).
Every grid point is one run. Its id is built from its own hyperparameters only, so adding a
value to an axis adds runs without renaming the others::

    bs64_b1-0.9_b2-0.999_lr-0.001_s0

With ``tie_betas: true`` (seed 003's beta1 = beta2 setting) the ``beta1`` axis is ignored and every
run uses beta1 = beta2.

Betas along a curve (seed 004 Fig. 1). Instead of the ``beta1`` and ``beta2`` axes a grid may give
``betas: {normal_curve: {through: {beta1, beta2}, beta1_range: [start, stop], points: P}}``: the
(beta1, beta2) pairs are P points uniform in arc length on the section of the normal curve
2 beta2^3 + beta1^3 = const through the given point whose beta1 runs from start to stop
(``adamnoise.theory.stability.normal_curve_section``), crossed with the other axes. Run ids keep
their pattern; two points whose betas format alike (``format_value``) are rejected naming
``points``. The aggregate then has a ``point`` dimension (index along the curve, with ``beta1``
and ``beta2`` as coordinates on it) instead of ``beta1`` x ``beta2``. Such runs must train to their
cap, B- runs included: ``training.stop_on_divergence: false`` and no ``patience``.

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
# the aggregate's dimension of a curve of (beta1, beta2) pairs: the index of the point on the curve
CURVE_DIM = "point"
CURVE_KEYS = ("through", "beta1_range", "points")  # keys of grid.betas.normal_curve
FULL_BATCH = "full"  # grid value of batch_size meaning b = N (one batch per epoch)
BUDGET_KEYS = ("epochs", "reference_batch_size", "exponent")
BETA_AXES = ("beta1", "beta2")
# keys of the optimizer and training sections that the grid sets for every run
GRID_OWNED = {"optimizer": ("lr", "beta1", "beta2"), "training": ("batch_size", "seed")}

# a run id names its grid point (GridPoint.run_id); the workflow's run_id wildcard matches this
RUN_ID_PATTERN = r"bs\d+_b1-[^_/]+_b2-[^_/]+_lr-[^_/]+_s\d+"


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
        """``bs<b>_b1-<beta1>_b2-<beta2>_lr-<lr>_s<seed>``: it matches ``RUN_ID_PATTERN``."""
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

    @property
    def beta_curve(self) -> dict[str, Any] | None:
        """``grid.betas.normal_curve`` (betas along a curve), or None for a beta1 x beta2 grid."""
        betas = self.config["grid"].get("betas")
        return betas.get("normal_curve") if isinstance(betas, dict) else None

    @functools.cached_property
    def curve_pairs(self) -> list[tuple[float, float]]:
        """The (beta1, beta2) of every point of the curve, in order along it (plain floats)."""
        from adamnoise.theory.stability import normal_curve_section

        curve = self.beta_curve
        if curve is None:
            return []
        through = curve["through"]
        beta1, beta2 = normal_curve_section(
            through["beta1"], through["beta2"], tuple(curve["beta1_range"]), curve["points"]
        )
        return [(float(b1), float(b2)) for b1, b2 in zip(beta1, beta2, strict=True)]

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
        if axis == CURVE_DIM:
            return list(range(len(self.curve_pairs)))
        if axis in BETA_AXES and self.beta_curve is not None:  # one value per point of the curve
            return [pair[BETA_AXES.index(axis)] for pair in self.curve_pairs]
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
        """The dimensions of the aggregated dataset (beta1 folds into beta2 when tied; a curve of
        betas is one ``point`` dimension)."""
        if self.beta_curve is not None:
            return ("batch_size", CURVE_DIM, "lr", "seed")
        return tuple(axis for axis in GRID_AXES if not (axis == "beta1" and self.tie_betas))

    def grid_index(self, point: GridPoint) -> tuple[int, ...]:
        """Where a run sits in the aggregate: its index along every one of ``grid_dims()``."""
        index = []
        for dim in self.grid_dims():
            if dim == CURVE_DIM:
                index.append(self.curve_pairs.index((point.beta1, point.beta2)))
            else:
                index.append(self.axis_values(dim).index(getattr(point, dim)))
        return tuple(index)

    def points(self) -> list[GridPoint]:
        return list(self._points_by_id.values())

    @functools.cached_property
    def _points_by_id(self) -> dict[str, GridPoint]:
        return {point.run_id: point for point in self._expand_grid()}

    def _expand_grid(self) -> list[GridPoint]:
        if self.beta_curve is not None:
            combos = itertools.product(
                self.axis_values("batch_size"),
                self.curve_pairs,
                self.axis_values("lr"),
                self.axis_values("seed"),
            )
            return [GridPoint(b, b1, b2, lr, s) for b, (b1, b2), lr, s in combos]
        axes = {axis: self.axis_values(axis) for axis in GRID_AXES}
        if self.tie_betas:
            combos = itertools.product(axes["batch_size"], axes["beta2"], axes["lr"], axes["seed"])
            return [GridPoint(b, beta, beta, lr, s) for b, beta, lr, s in combos]
        combos = itertools.product(*(axes[axis] for axis in GRID_AXES))
        return [GridPoint(*combo) for combo in combos]

    def run_ids(self) -> list[str]:
        return [point.run_id for point in self.points()]

    @property
    def pack_size(self) -> int | None:
        """``pack: K``: train the runs in packs of at most K (None: one job per run)."""
        return self.config.get("pack")

    @functools.cached_property
    def packs(self) -> dict[str, list[str]]:
        """Pack id -> run ids: the runs of one batch size, in grid order, cut into packs of <= K.

        Within a batch size the runs differ only in seed, lr and betas, which is what
        ``adamnoise.training.packed`` can pack. Ids are ``bs<b>_p<i>``; adding a batch size leaves
        the other batch sizes' packs as they are, adding another axis value may regroup.
        """
        if self.pack_size is None:
            return {}
        by_batch: dict[int, list[str]] = {}
        for point in self.points():
            by_batch.setdefault(point.batch_size, []).append(point.run_id)
        packs = {}
        for batch_size, run_ids in by_batch.items():
            for i in range(0, len(run_ids), self.pack_size):
                packs[f"bs{batch_size}_p{i // self.pack_size}"] = run_ids[i : i + self.pack_size]
        return packs

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
    if "active" in config and not config["active"]:
        raise ConfigError(
            "active: empty; name at least one experiment to build "
            f"(defined: {', '.join(sorted(experiments)) or 'none'})"
        )
    for name in config.get("active", []):
        if name not in experiments:
            known = ", ".join(sorted(experiments)) or "none"
            raise ConfigError(f"active: unknown experiment {name!r} (defined: {known})")
    for experiment in experiments.values():
        validate_experiment(experiment, config.get("results", "results"))
    return experiments


def one_value_sweeps(experiment: Experiment) -> list[str]:
    """Warnings for figures that sweep a beta axis with a single value (a degenerate figure),
    each naming the key. A predictions figure cannot be computed from one value: that is a
    ``ConfigError`` instead."""
    from adamnoise.figures import FIGURES

    warnings = []
    for figure in experiment.figures:
        spec = FIGURES.get(figure)
        if spec is None or spec.axis is None or len(experiment.axis_values(spec.axis)) > 1:
            continue
        axis = spec.axis
        key = f"experiments.{experiment.name}.grid.{axis}"
        if spec.needs_sweep:
            raise ConfigError(
                f"{key}: one value; figure {figure!r} compares predictions of the best {axis} "
                "across a sweep: give two values or more, or remove the figure"
            )
        warnings.append(
            f"{key}: one value; figure {figure!r} shows a sweep of a single point "
            "(give two values or more, or remove the figure)"
        )
    return warnings


def active_experiments(config: dict[str, Any]) -> dict[str, Experiment]:
    experiments = load_experiments(config)
    return {name: experiments[name] for name in config.get("active", [])}


def optimizer_betas(name: str) -> tuple[str, ...]:
    """The beta axes an optimiser takes: beta1 is the momentum of every optimiser that has one,
    beta2 the second-moment factor (SGD has no beta2, SignSGD neither). An unknown name takes
    both, so that its config check reports the name rather than a beta."""
    from adamnoise.optim.factory import OPTIMIZER_PARAMETERS

    accepted = OPTIMIZER_PARAMETERS.get(name, set(BETA_AXES))
    return tuple(axis for axis in BETA_AXES if axis in accepted)


def validate_experiment(experiment: Experiment, results: str = "results") -> None:
    """Check every run config the experiment produces, naming the offending key on failure."""
    from adamnoise.training.config import ConfigError as RunConfigError
    from adamnoise.training.config import RunConfig

    prefix = f"experiments.{experiment.name}"
    from adamnoise.data.corpus import CORPORA

    known = tuple(CORPORA)
    if experiment.dataset not in known:
        raise ConfigError(f"{prefix}.dataset: {experiment.dataset!r} is not one of {known}")
    if "betas" in experiment.config["grid"]:
        _check_beta_curve(experiment, prefix)
    for axis in GRID_AXES:
        values = experiment.config["grid"].get(axis)
        if values is None and axis in BETA_AXES and experiment.beta_curve is not None:
            continue  # the curve gives the betas
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{prefix}.grid.{axis}: expected a non-empty list, got {values!r}")
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
    if experiment.pack_size is not None:
        from adamnoise.training.packing import PACKABLE_OPTIMIZERS

        name = experiment.config["optimizer"]["name"]
        if name not in PACKABLE_OPTIMIZERS:
            raise ConfigError(
                f"{prefix}.pack: optimizer {name!r} cannot be packed (only "
                f"{', '.join(PACKABLE_OPTIMIZERS)}); remove pack"
            )
        if experiment.config["optimizer"].get("grad_clip_norm") is not None:
            raise ConfigError(f"{prefix}.pack: Gclip (grad_clip_norm) cannot be packed")
    if "budget" in experiment.config and "epochs" in experiment.config.get("training", {}):
        raise ConfigError(f"{prefix}.training.epochs: set by budget.epochs; remove one of them")
    name = experiment.config["optimizer"]["name"]
    missing_betas = [axis for axis in BETA_AXES if axis not in optimizer_betas(name)]
    if experiment.beta_curve is not None and missing_betas:
        raise ConfigError(
            f"{prefix}.grid.betas: optimizer {name!r} has no {' and no '.join(missing_betas)}; "
            "a curve of (beta1, beta2) needs both"
        )
    for axis in missing_betas:
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


def _check_beta_curve(experiment: Experiment, prefix: str) -> None:
    """``grid.betas``: a well-formed normal curve whose points all run, under distinct run ids."""
    from adamnoise.theory.stability import normal_curve_beta1_interval, normal_curve_constant

    grid = experiment.config["grid"]
    key = f"{prefix}.grid.betas"
    betas = grid["betas"]
    if not isinstance(betas, dict) or set(betas) != {"normal_curve"}:
        raise ConfigError(f"{key}: expected {{normal_curve: {{...}}}}, got {betas!r}")
    for axis in BETA_AXES:
        if axis in grid:
            raise ConfigError(f"{prefix}.grid.{axis}: the betas come from grid.betas; remove it")
    if experiment.tie_betas:
        raise ConfigError(f"{prefix}.tie_betas: a curve of betas cannot tie beta1 to beta2")
    curve = betas["normal_curve"]
    key += ".normal_curve"
    if not isinstance(curve, dict):
        raise ConfigError(f"{key}: expected a mapping with {', '.join(CURVE_KEYS)}")
    for name in curve:
        if name not in CURVE_KEYS:
            raise ConfigError(f"{key}.{name}: unknown key (allowed: {', '.join(CURVE_KEYS)})")
    for name in CURVE_KEYS:
        if name not in curve:
            raise ConfigError(f"{key}.{name}: required key is missing")

    def beta(value, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise ConfigError(f"{key}.{where}: expected a number in (0, 1), got {value!r}")
        return float(value)

    through = curve["through"]
    if not isinstance(through, dict) or set(through) != set(BETA_AXES):
        raise ConfigError(f"{key}.through: expected {{beta1: ..., beta2: ...}}, got {through!r}")
    beta1, beta2 = (beta(through[axis], f"through.{axis}") for axis in BETA_AXES)
    points = curve["points"]
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ConfigError(f"{key}.points: expected an integer >= 2, got {points!r}")
    ends = curve["beta1_range"]
    if not isinstance(ends, list) or len(ends) != 2:
        raise ConfigError(f"{key}.beta1_range: expected [start, stop], got {ends!r}")
    start, stop = (beta(end, "beta1_range") for end in ends)
    low, high = normal_curve_beta1_interval(float(normal_curve_constant(beta1, beta2)))
    if start == stop or not (low < start < high and low < stop < high):
        raise ConfigError(
            f"{key}.beta1_range: {ends} must be two distinct beta1 strictly inside "
            f"({low:.6g}, {high:.6g}), where the normal curve through (beta1, beta2) = "
            f"({beta1:g}, {beta2:g}) runs inside the unit square"
        )
    seen: dict[str, int] = {}
    for index, (b1, b2) in enumerate(experiment.curve_pairs):
        name = f"b1-{format_value(b1)}_b2-{format_value(b2)}"
        if name in seen:
            raise ConfigError(
                f"{key}.points: points {seen[name]} and {index} of the curve both give the run id "
                f"part {name!r} (run ids print 6 significant digits); take fewer points or a "
                "longer section"
            )
        seen[name] = index
    from adamnoise.figures import CURVE_FIGURES

    for figure in experiment.figures:
        if figure not in CURVE_FIGURES:
            raise ConfigError(
                f"{prefix}.figures: {figure!r} reads a beta1 or beta2 axis; betas along a curve "
                f"have a point axis instead (figures for them: {', '.join(CURVE_FIGURES)})"
            )
    training = experiment.config.get("training", {})
    if training.get("stop_on_divergence", True) is not False:
        raise ConfigError(
            f"{prefix}.training.stop_on_divergence: set it to false for betas along a curve: "
            "seed 004 Fig. 1 reads every run's max-update to its last step, runs in B- (whose "
            "loss may blow up) included"
        )
    if training.get("patience") is not None:
        raise ConfigError(
            f"{prefix}.training.patience: remove it for betas along a curve: every run trains to "
            "its cap (seed 004 Fig. 1 reads the max-update at n = 500 of 1,500 iterations)"
        )


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
    from adamnoise.optim.factory import resolve_optimizer_config
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
