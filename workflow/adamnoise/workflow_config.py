"""The workflow config checked, then built into experiments: ``load_experiments(config)``.

Each key is checked in one place. The schema (``adamnoise.config_schema``, run first) owns the
structure and each value's type, range and choices; this module owns what the schema cannot say:

- the rules across keys (``active`` names defined experiments; the grid's betas are a beta1 x
  beta2 product or a curve; ``tie_betas``, ``pack``, ``budget``, the curve and ``figures`` against
  the rest of the experiment; keys that the grid sets are not set again in a section);
- the registries of the package (``dataset`` is a corpus; ``model``, ``optimizer`` and
  ``schedule`` are checked by the modules that build them);
- what needs the data: the number N of training sequences, against the batch sizes;
- every run config (``RunConfig.from_dict``), its keys named where the experiment spells them.

Every error is a ``ConfigError`` naming the dotted key (``experiments.<name>.grid.batch_size``).
"""

from __future__ import annotations

from typing import Any

from adamnoise.config_schema import check_schema
from adamnoise.data.corpus import CORPORA
from adamnoise.errors import ConfigError
from adamnoise.experiment import (
    BETA_AXES,
    FULL_BATCH,
    GRID_OWNED,
    Experiment,
    corpus_dir,
    format_value,
    optimizer_betas,
)
from adamnoise.figures import CURVE_FIGURES, FIGURES
from adamnoise.models.presets import resolve_model_config
from adamnoise.optim.factory import resolve_optimizer_config
from adamnoise.schedules import resolve_schedule_config
from adamnoise.training.config import RunConfig
from adamnoise.training.epochs import MAX_BATCH_DEVIATION, batch_deviation, batches_per_epoch

__all__ = ["active_experiments", "load_experiments", "one_value_sweeps", "validate_experiment"]

# run-config keys that the experiment config spells differently
RUN_KEYS_IN_EXPERIMENT = {"data.seq_len": "seq_len", "data.corpus": "dataset"}


def load_experiments(config: dict[str, Any]) -> dict[str, Experiment]:
    """All experiments of a workflow config: the schema, then each experiment, run by run."""
    check_schema(config)
    experiments = {name: Experiment(name, cfg) for name, cfg in config["experiments"].items()}
    known = ", ".join(sorted(experiments)) or "none"
    if not config["active"]:
        raise ConfigError(
            "active", f"empty; name at least one experiment to build (defined: {known})"
        )
    for name in config["active"]:
        if name not in experiments:
            raise ConfigError("active", f"unknown experiment {name!r} (defined: {known})")
    for experiment in experiments.values():
        validate_experiment(experiment, config.get("results", "results"))
    return experiments


def active_experiments(config: dict[str, Any]) -> dict[str, Experiment]:
    experiments = load_experiments(config)
    return {name: experiments[name] for name in config["active"]}


def one_value_sweeps(experiment: Experiment) -> list[str]:
    """Warnings for figures that sweep a beta axis with a single value (a degenerate figure),
    each naming the key. A predictions figure cannot be computed from one value: that is a
    ``ConfigError`` instead."""
    warnings = []
    for figure in experiment.figures:
        spec = FIGURES.get(figure)
        if spec is None or spec.axis is None or len(experiment.axis_values(spec.axis)) > 1:
            continue
        axis = spec.axis
        key = f"experiments.{experiment.name}.grid.{axis}"
        if spec.needs_sweep:
            raise ConfigError(
                key,
                f"one value; figure {figure!r} compares predictions of the best {axis} "
                "across a sweep: give two values or more, or remove the figure",
            )
        warnings.append(
            f"{key}: one value; figure {figure!r} shows a sweep of a single point "
            "(give two values or more, or remove the figure)"
        )
    return warnings


def validate_experiment(experiment: Experiment, results: str = "results") -> None:
    """The rules across keys of one (schema-valid) experiment, and every run config it makes."""
    prefix = f"experiments.{experiment.name}"
    try:
        _check_experiment(experiment)
    except ConfigError as error:
        raise error.under(prefix) from None
    for point in experiment.points():
        run = experiment.run_config(point, corpus_dir(results, experiment.dataset))
        try:
            RunConfig.from_dict(run)
        except ConfigError as error:
            where = error.renamed(RUN_KEYS_IN_EXPERIMENT)
            raise where.under(prefix, note=f"run {point.run_id}") from None


def _check_experiment(experiment: Experiment) -> None:
    """Keys relative to the experiment (``grid.lr``); ``validate_experiment`` prefixes them."""
    cfg = experiment.config
    if experiment.dataset not in CORPORA:
        raise ConfigError("dataset", f"{experiment.dataset!r} is not one of {tuple(CORPORA)}")
    _check_betas(experiment)
    for section, keys in GRID_OWNED.items():
        for key in keys:
            if key in cfg.get(section, {}):
                raise ConfigError(f"{section}.{key}", f"set by grid.{key}; remove it here")
    for section in ("model", "optimizer", "schedule"):
        if section in cfg:
            _check_component(section, cfg[section])
    _check_batch_sizes(experiment)
    name = cfg["optimizer"]["name"]
    if "budget" in cfg and "epochs" in cfg.get("training", {}):
        raise ConfigError("training.epochs", "set by budget.epochs; remove one of them")
    missing_betas = [axis for axis in BETA_AXES if axis not in optimizer_betas(name)]
    if experiment.beta_curve is not None and missing_betas:
        raise ConfigError(
            "grid.betas",
            f"optimizer {name!r} has no {' and no '.join(missing_betas)}; "
            "a curve of (beta1, beta2) needs both",
        )
    for axis in missing_betas:
        if len(experiment.axis_values(axis)) > 1:
            raise ConfigError(f"grid.{axis}", f"optimizer {name!r} has no {axis}; give one value")
    if not experiment.run_ids_are_distinct:
        raise ConfigError("grid", "two grid points format to the same run id")


def _check_betas(experiment: Experiment) -> None:
    """The betas: ``beta1`` and ``beta2`` (a product), or ``betas`` (a curve), not both."""
    grid = experiment.config["grid"]
    if "betas" not in grid:
        for axis in BETA_AXES:
            if axis not in grid:
                raise ConfigError(
                    f"grid.{axis}",
                    "required key is missing (give beta1 and beta2, or betas for a curve)",
                )
        return
    for axis in BETA_AXES:
        if axis in grid:
            raise ConfigError(f"grid.{axis}", "the betas come from grid.betas; remove it")
    _check_beta_curve(experiment)


def _check_beta_curve(experiment: Experiment) -> None:
    """``grid.betas``: a section inside the unit square whose points have distinct run ids, and
    the experiment's other keys fit a curve (its shape and ranges are the schema's)."""
    # here, not at the top: it imports scipy (a second at every Snakemake start)
    from adamnoise.theory.stability import normal_curve_beta1_interval, normal_curve_constant

    if experiment.tie_betas:
        raise ConfigError("tie_betas", "a curve of betas cannot tie beta1 to beta2")
    curve = experiment.beta_curve
    key = "grid.betas.normal_curve"
    beta1, beta2 = (curve["through"][axis] for axis in BETA_AXES)
    ends = curve["beta1_range"]
    start, stop = ends
    low, high = normal_curve_beta1_interval(float(normal_curve_constant(beta1, beta2)))
    if start == stop or not (low < start < high and low < stop < high):
        raise ConfigError(
            f"{key}.beta1_range",
            f"{ends} must be two distinct beta1 strictly inside ({low:.6g}, {high:.6g}), where "
            f"the normal curve through (beta1, beta2) = ({beta1:g}, {beta2:g}) runs inside the "
            "unit square",
        )
    seen: dict[str, int] = {}
    for index, (b1, b2) in enumerate(experiment.curve_pairs):
        name = f"b1-{format_value(b1)}_b2-{format_value(b2)}"
        if name in seen:
            raise ConfigError(
                f"{key}.points",
                f"points {seen[name]} and {index} of the curve both give the run id part "
                f"{name!r} (run ids print 6 significant digits); take fewer points or a longer "
                "section",
            )
        seen[name] = index
    for figure in experiment.figures:
        if figure not in CURVE_FIGURES:
            raise ConfigError(
                "figures",
                f"{figure!r} reads a beta1 or beta2 axis; betas along a curve have a point axis "
                f"instead (figures for them: {', '.join(CURVE_FIGURES)})",
            )
    training = experiment.config.get("training", {})
    if training.get("stop_on_divergence", True) is not False:
        raise ConfigError(
            "training.stop_on_divergence",
            "set it to false for betas along a curve: seed 004 Fig. 1 reads every run's "
            "max-update to its last step, runs in B- (whose loss may blow up) included",
        )
    if training.get("patience") is not None:
        raise ConfigError(
            "training.patience",
            "remove it for betas along a curve: every run trains to its cap (seed 004 Fig. 1 "
            "reads the max-update at n = 500 of 1,500 iterations)",
        )


def _check_batch_sizes(experiment: Experiment) -> None:
    """Every batch size a whole number of batches per epoch realises: b <= N, within 10 %."""
    available = experiment.available_train_sequences
    subset = experiment.config.get("train_sequences")
    where = f"{experiment.dataset} at seq_len {experiment.config['seq_len']}"
    if subset is not None and subset > available:
        raise ConfigError(
            "train_sequences",
            f"{subset} exceeds the {available} training sequences of {where}",
        )
    n = experiment.num_train_sequences
    seen: dict[int, Any] = {}
    key = "grid.batch_size"
    for configured, b in zip(
        experiment.config["grid"]["batch_size"], experiment.axis_values("batch_size"), strict=True
    ):
        if b > n:
            raise ConfigError(
                key,
                f"{b} exceeds N = {n}, the training sequences of {where}"
                + (f" (train_sequences {subset})" if subset else "")
                + f"; write {FULL_BATCH!r} for full batch",
            )
        m = batches_per_epoch(n, b)
        if batch_deviation(n, b) > MAX_BATCH_DEVIATION:
            nearest = sorted({-(-n // k) for k in (m - 1, m, m + 1) if k >= 1})
            raise ConfigError(
                key,
                f"{configured} is realised as {m} batch(es) of about {n / m:.0f} of the "
                f"N = {n} sequences per epoch, more than {MAX_BATCH_DEVIATION:.0%} off; "
                f"batch sizes near it that split an epoch evenly: {nearest}",
            )
        if m in seen:
            raise ConfigError(
                key, f"{seen[m]} and {configured} both give {m} batch(es) per epoch (N = {n})"
            )
        seen[m] = configured


def _check_component(section: str, cfg: dict[str, Any]) -> None:
    """Let the package module that owns a config section check it (unknown keys, bad values)."""
    checkers = {
        "model": resolve_model_config,
        # lr comes from the grid: check the rest with a placeholder
        "optimizer": lambda c: resolve_optimizer_config({"lr": 1.0, **c}),
        "schedule": resolve_schedule_config,
    }
    try:
        checkers[section](cfg)
    except ConfigError:
        raise  # already names its key (optimizer.beta1, schedule.name)
    except (ValueError, TypeError) as error:
        raise ConfigError(section, str(error)) from None
